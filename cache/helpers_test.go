package cache

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testBS is the block size of most tests: small, so files have many blocks.
const testBS = 16 << 10

// source is an in-memory UFS file with a counting loader.
type source struct {
	data []byte

	mu    sync.Mutex
	calls map[int64]int // loader calls by offset
	gate  chan struct{} // if not nil, loads wait for it to close
	err   error
}

func newSource(seed uint64, size int) *source {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return &source{data: data, calls: make(map[int64]int)}
}

func (s *source) load(ctx context.Context, off int64, dst []byte) (int, error) {
	n := int64(len(dst))
	s.mu.Lock()
	s.calls[off]++
	gate, err := s.gate, s.err
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if err != nil {
		return 0, err
	}
	if off+n > int64(len(s.data)) {
		return 0, fmt.Errorf("source: read past end")
	}
	return copy(dst, s.data[off:off+n]), nil
}

// total is the number of loader calls.
func (s *source) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

func (s *source) callsAt(off int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[off]
}

// offsets is the sorted set of offsets loaded.
func (s *source) offsets() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var offs []int64
	for off := range s.calls {
		offs = append(offs, off)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	return offs
}

func (s *source) reset() {
	s.mu.Lock()
	s.calls = make(map[int64]int)
	s.mu.Unlock()
}

// openCache opens a cache for a test. Unless opts.StoreQueue is set, the
// cache stores each loaded block before the read that loaded it returns
// (storeInline), as the tests written for that order expect; tests of the
// store queue set StoreQueue.
func openCache(t testing.TB, dir string, opts Options) *Cache {
	t.Helper()
	inline := opts.StoreQueue == 0
	if opts.Capacity == 0 {
		opts.Capacity = 1 << 30
	}
	if opts.BlockSize == 0 {
		opts.BlockSize = testBS
	}
	c, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	c.storeInline = inline
	return c
}

func closeCache(t testing.TB, c *Cache) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// readAll reads the whole file through c and checks it against src.
func readAll(t testing.TB, c *Cache, key Key, src *source, chunk int) {
	t.Helper()
	size := int64(len(src.data))
	buf := make([]byte, chunk)
	for off := int64(0); off < size; off += int64(chunk) {
		n, err := c.ReadAt(context.Background(), key, size, buf, off, src.load)
		want := src.data[off:min(off+int64(chunk), size)]
		if n != len(want) || (err != nil && off+int64(chunk) < size) {
			t.Fatalf("ReadAt(%d): n=%d err=%v, want n=%d", off, n, err, len(want))
		}
		if string(buf[:n]) != string(want) {
			t.Fatalf("ReadAt(%d): wrong data", off)
		}
	}
}

// du is the allocated size of everything under dir, the directory included.
func du(t testing.TB, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Sys().(*syscall.Stat_t).Blocks * 512
		return nil
	})
	if err != nil {
		t.Fatalf("du: %v", err)
	}
	return total
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// corrupt flips one byte of a file behind the cache's back and moves its
// mtime, as any outside writer would (on kernels with coarse timestamps a
// write alone may leave mtime and ctime unchanged within one tick).
func corrupt(t testing.TB, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	old := time.Unix(1_000_000_000, 0)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

// dataFile is the path of the data file of (key, size) in c.
func dataFile(c *Cache, key Key, size int64) string {
	return c.dataPath(entryID(key, size))
}

// abandon drops c as a crash would: no index flush, no clean marker.
func abandon(c *Cache) {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.bgCancel()
	c.ops.Wait()
	c.bg.Wait()
	c.mu.Lock()
	for _, e := range c.entries {
		e.mu.Lock()
		if e.f != nil {
			e.f.Close()
			e.f = nil
		}
		e.mu.Unlock()
	}
	c.mu.Unlock()
	c.lock.Close()
}
