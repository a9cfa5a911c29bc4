// Package fsbench is the standard benchmark set `skyfs bench` runs against a
// directory: big-file sequential write and read (cold and warm), random 4 KiB
// reads, and small-file create, stat, read and unlink. It works on any mounted
// path, so the same set measures a skyfs mount and a baseline (a local disk, a
// loopback mount) in one run.
//
// Run only reads and writes under the directory it is given, in a subdirectory of
// its own that it removes at the end.
package fsbench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Config says what to run.
type Config struct {
	// Dir is where the benchmark writes its files.
	Dir string
	// BigFileSize is the size of the big file (default 1 GiB).
	BigFileSize int64
	// BlockSize is the I/O size of sequential reads and writes (default 1 MiB).
	BlockSize int
	// RandomReads is the number of random 4 KiB reads (default 10,000).
	RandomReads int
	// SmallFiles is the number of small files (default 1,000), of SmallFileSize
	// bytes each (default 4 KiB), handled by Threads workers (default 1).
	SmallFiles    int
	SmallFileSize int
	Threads       int
	// DropCache, if set, is called with the big file's path after it was
	// written and closed, before the cold read, to drop cached data (for a
	// skyfs mount: the block cache; for a local disk: the page cache, e.g.
	// with DropPageCache).
	DropCache func(ctx context.Context, path string) error
}

// Result is one line of the benchmark table.
type Result struct {
	Name  string  `json:"name"`
	Ops   int64   `json:"ops"`
	Bytes int64   `json:"bytes"`
	Secs  float64 `json:"seconds"`
	MBps  float64 `json:"mb_per_s,omitempty"`
	OpsPS float64 `json:"ops_per_s"`
	// P50Us and P99Us are the latencies of one operation in microseconds.
	P50Us float64 `json:"p50_us"`
	P99Us float64 `json:"p99_us"`
}

func (c *Config) defaults() {
	if c.BigFileSize <= 0 {
		c.BigFileSize = 1 << 30
	}
	if c.BlockSize <= 0 {
		c.BlockSize = 1 << 20
	}
	if c.RandomReads <= 0 {
		c.RandomReads = 10000
	}
	if c.SmallFiles <= 0 {
		c.SmallFiles = 1000
	}
	if c.SmallFileSize <= 0 {
		c.SmallFileSize = 4 << 10
	}
	if c.Threads <= 0 {
		c.Threads = 1
	}
}

// Run runs the whole set and returns one result per benchmark.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	cfg.defaults()
	work, err := os.MkdirTemp(cfg.Dir, ".skyfs-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(work)
	var out []Result
	add := func(r Result, err error) error {
		if err == nil {
			out = append(out, r)
		}
		return err
	}
	big := filepath.Join(work, "big")
	if err := add(seqWrite(ctx, big, cfg)); err != nil {
		return out, err
	}
	if cfg.DropCache != nil {
		if err := cfg.DropCache(ctx, big); err != nil {
			return out, fmt.Errorf("bench: drop cache: %w", err)
		}
	}
	if err := add(seqRead(ctx, big, cfg, "seq-read-cold")); err != nil {
		return out, err
	}
	if err := add(seqRead(ctx, big, cfg, "seq-read-warm")); err != nil {
		return out, err
	}
	if err := add(randRead(ctx, big, cfg)); err != nil {
		return out, err
	}
	small := filepath.Join(work, "small")
	if err := os.Mkdir(small, 0o755); err != nil {
		return out, fmt.Errorf("bench: %w", err)
	}
	for _, op := range []string{"create", "stat", "read", "unlink"} {
		if err := add(smallFiles(ctx, small, cfg, op)); err != nil {
			return out, err
		}
	}
	return out, nil
}

// finish fills in a result's rates and latency percentiles.
func finish(r Result, elapsed time.Duration, lat []time.Duration) Result {
	r.Secs = elapsed.Seconds()
	if r.Secs > 0 {
		r.OpsPS = float64(r.Ops) / r.Secs
		if r.Bytes > 0 {
			r.MBps = float64(r.Bytes) / 1e6 / r.Secs
		}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		us := func(q float64) float64 {
			return float64(lat[int(math.Min(float64(len(lat)-1), q*float64(len(lat))))].Nanoseconds()) / 1e3
		}
		r.P50Us, r.P99Us = us(0.50), us(0.99)
	}
	return r
}

func seqWrite(ctx context.Context, path string, cfg Config) (Result, error) {
	buf := make([]byte, cfg.BlockSize)
	if _, err := rand.Read(buf); err != nil {
		return Result{}, err
	}
	f, err := os.Create(path)
	if err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	start := time.Now()
	var written int64
	var lat []time.Duration
	for written < cfg.BigFileSize {
		if err := ctx.Err(); err != nil {
			f.Close()
			return Result{}, err
		}
		n := int(min(int64(len(buf)), cfg.BigFileSize-written))
		t0 := time.Now()
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return Result{}, fmt.Errorf("bench: write: %w", err)
		}
		lat = append(lat, time.Since(t0))
		written += int64(n)
		buf[0]++ // no two blocks alike
	}
	// Close is part of a write: it is where a skyfs mount finishes the upload.
	if err := f.Close(); err != nil {
		return Result{}, fmt.Errorf("bench: close: %w", err)
	}
	return finish(Result{Name: "seq-write", Ops: int64(len(lat)), Bytes: written}, time.Since(start), lat), nil
}

func seqRead(ctx context.Context, path string, cfg Config, name string) (Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	buf := make([]byte, cfg.BlockSize)
	start := time.Now()
	var total int64
	var lat []time.Duration
	for {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		t0 := time.Now()
		n, err := io.ReadFull(f, buf)
		total += int64(n)
		if n > 0 {
			lat = append(lat, time.Since(t0))
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return Result{}, fmt.Errorf("bench: read: %w", err)
		}
	}
	if total != cfg.BigFileSize {
		return Result{}, fmt.Errorf("bench: read %d bytes of a %d-byte file", total, cfg.BigFileSize)
	}
	return finish(Result{Name: name, Ops: int64(len(lat)), Bytes: total}, time.Since(start), lat), nil
}

func randRead(ctx context.Context, path string, cfg Config) (Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	const size = 4 << 10
	buf := make([]byte, size)
	r := mrand.New(mrand.NewPCG(1, 2))
	blocks := cfg.BigFileSize / size
	lat := make([]time.Duration, 0, cfg.RandomReads)
	start := time.Now()
	for range cfg.RandomReads {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		off := r.Int64N(blocks) * size
		t0 := time.Now()
		if _, err := f.ReadAt(buf, off); err != nil {
			return Result{}, fmt.Errorf("bench: read at %d: %w", off, err)
		}
		lat = append(lat, time.Since(t0))
	}
	return finish(Result{Name: "rand-read-4k", Ops: int64(len(lat)), Bytes: int64(len(lat)) * size}, time.Since(start), lat), nil
}

// smallFiles runs one operation over every small file, split among workers.
func smallFiles(ctx context.Context, dir string, cfg Config, op string) (Result, error) {
	data := make([]byte, cfg.SmallFileSize)
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for w := range cfg.Threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, cfg.SmallFileSize)
			mine := make([]time.Duration, 0, cfg.SmallFiles/cfg.Threads+1)
			for i := w; i < cfg.SmallFiles; i += cfg.Threads {
				if ctx.Err() != nil {
					break
				}
				p := filepath.Join(dir, "f"+strconv.Itoa(i))
				t0 := time.Now()
				var err error
				switch op {
				case "create":
					err = os.WriteFile(p, data, 0o644)
				case "stat":
					_, err = os.Stat(p)
				case "read":
					var f *os.File
					if f, err = os.Open(p); err == nil {
						_, err = io.ReadFull(f, buf)
						f.Close()
					}
				case "unlink":
					err = os.Remove(p)
				}
				mine = append(mine, time.Since(t0))
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, fmt.Errorf("bench: %s %s: %w", op, p, err))
					mu.Unlock()
					return
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return Result{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	r := Result{Name: "small-" + op, Ops: int64(len(lat))}
	if op == "create" || op == "read" {
		r.Bytes = int64(len(lat)) * int64(cfg.SmallFileSize)
	}
	return finish(r, elapsed, lat), nil
}

func cmpErr(have, next error) error {
	if have != nil {
		return have
	}
	return next
}

// Table formats results as an aligned text table.
func Table(w io.Writer, rs []Result) error {
	if _, err := fmt.Fprintf(w, "%-16s %10s %12s %10s %12s %10s %10s\n",
		"benchmark", "ops", "ops/s", "MB/s", "bytes", "p50 µs", "p99 µs"); err != nil {
		return err
	}
	for _, r := range rs {
		mb := "-"
		if r.MBps > 0 {
			mb = strconv.FormatFloat(r.MBps, 'f', 1, 64)
		}
		if _, err := fmt.Fprintf(w, "%-16s %10d %12.0f %10s %12d %10.1f %10.1f\n",
			r.Name, r.Ops, r.OpsPS, mb, r.Bytes, r.P50Us, r.P99Us); err != nil {
			return err
		}
	}
	return nil
}
