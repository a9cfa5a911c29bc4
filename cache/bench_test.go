package cache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const benchFileSize = 64 << 20

// warmBench is a cache holding one verified 64 MiB file, and a plain file
// with the same bytes in the same directory tree.
type warmBench struct {
	c     *Cache
	key   Key
	src   *source
	plain *os.File
}

func newWarmBench(b *testing.B) *warmBench {
	b.Helper()
	dir := b.TempDir()
	c := openCache(b, filepath.Join(dir, "cache"), Options{Capacity: 1 << 30, BlockSize: DefaultBlockSize})
	b.Cleanup(func() { c.Close() })
	src := newSource(900, benchFileSize)
	key := Key{Path: "/bench"}
	if err := c.Put(key, benchFileSize, 0, src.data); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "plain")
	if err := os.WriteFile(path, src.data, 0o600); err != nil {
		b.Fatal(err)
	}
	plain, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { plain.Close() })
	w := &warmBench{c: c, key: key, src: src, plain: plain}
	// One pass of each so both are in the page cache.
	w.readCache(b, 0, 1<<20)
	w.readPlain(b, 0, 1<<20)
	return w
}

func (w *warmBench) readCache(b *testing.B, off int64, n int) {
	buf := make([]byte, n)
	for pos := off; pos < benchFileSize; pos += int64(n) {
		if _, err := w.c.ReadAt(context.Background(), w.key, benchFileSize, buf, pos, w.src.load); err != nil {
			b.Fatal(err)
		}
	}
}

func (w *warmBench) readPlain(b *testing.B, off int64, n int) {
	buf := make([]byte, n)
	for pos := off; pos < benchFileSize; pos += int64(n) {
		if _, err := w.plain.ReadAt(buf, pos); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWarmSequential reads a cached 64 MiB file in 128 KiB requests (a
// FUSE read's size) through ReadAt, and the same bytes from a plain file,
// and reports both throughputs and their ratio.
func BenchmarkWarmSequential(b *testing.B) {
	w := newWarmBench(b)
	var tCache, tPlain time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		w.readCache(b, 0, 128<<10)
		t1 := time.Now()
		w.readPlain(b, 0, 128<<10)
		tCache += t1.Sub(t0)
		tPlain += time.Since(t1)
	}
	mb := float64(b.N) * benchFileSize / (1 << 20)
	b.ReportMetric(mb/tCache.Seconds(), "cache-MiB/s")
	b.ReportMetric(mb/tPlain.Seconds(), "plain-MiB/s")
	b.ReportMetric(tPlain.Seconds()/tCache.Seconds(), "cache/plain")
	if st := w.c.Stats(); st.LoaderCalls != 0 {
		b.Fatalf("warm benchmark loaded %d blocks", st.LoaderCalls)
	}
}

// BenchmarkWarmRandom4K reads 4 KiB at random offsets of a cached 64 MiB file,
// and the same offsets of a plain file.
func BenchmarkWarmRandom4K(b *testing.B) {
	w := newWarmBench(b)
	const reads = 4096
	rng := rand.New(rand.NewPCG(1, 1))
	offs := make([]int64, reads)
	for i := range offs {
		offs[i] = rng.Int64N(benchFileSize/4096) * 4096
	}
	buf := make([]byte, 4096)
	var tCache, tPlain time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		for _, off := range offs {
			if _, err := w.c.ReadAt(context.Background(), w.key, benchFileSize, buf, off, w.src.load); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for _, off := range offs {
			if _, err := w.plain.ReadAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
		tCache += t1.Sub(t0)
		tPlain += time.Since(t1)
	}
	n := float64(b.N) * reads
	b.ReportMetric(tCache.Seconds()*1e9/n, "cache-ns/read")
	b.ReportMetric(tPlain.Seconds()*1e9/n, "plain-ns/read")
	b.ReportMetric(tPlain.Seconds()/tCache.Seconds(), "cache/plain")
}

// BenchmarkColdRead reads 16 MiB files that are not cached, in 128 KiB
// requests, from an in-memory loader: the cost of loading, checksumming and
// writing blocks to the cache.
func BenchmarkColdRead(b *testing.B) {
	const size = 16 << 20
	c := openCache(b, b.TempDir(), Options{Capacity: 256 << 20, BlockSize: DefaultBlockSize})
	defer c.Close()
	src := newSource(901, size)
	buf := make([]byte, 128<<10)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		key := Key{Path: "/cold", Fingerprint: fmt.Sprint(i)}
		for pos := int64(0); pos < size; pos += int64(len(buf)) {
			if _, err := c.ReadAt(context.Background(), key, size, buf, pos, src.load); err != nil {
				b.Fatal(err)
			}
		}
	}
}
