package cache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// With a capacity well below the data set, reads stay correct and the
// directory's allocated size never exceeds the capacity.
func TestCapacityBound(t *testing.T) {
	tests := []struct {
		name     string
		capacity int64
		files    int
		fileSize int64
		noPunch  bool // as on a filesystem without FALLOC_FL_PUNCH_HOLE
	}{
		{"many small files", 256 << 10, 40, 20000, false},
		{"few large files", 512 << 10, 4, 40 * testBS, false},
		{"one file larger than the cache", 300 << 10, 1, 64 * testBS, false},
		{"whole-file eviction", 512 << 10, 8, 10 * testBS, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c := openCache(t, dir, Options{Capacity: tt.capacity})
			defer closeCache(t, c)
			c.noPunch.Store(tt.noPunch)
			srcs := make([]*source, tt.files)
			for i := range srcs {
				srcs[i] = newSource(uint64(100+i), int(tt.fileSize))
			}
			rng := rand.New(rand.NewPCG(1, 2))
			p := make([]byte, 9000)
			for i := 0; i < 600; i++ {
				f := rng.IntN(tt.files)
				off := rng.Int64N(tt.fileSize)
				key := Key{Path: fmt.Sprintf("/f%d", f)}
				n, err := c.ReadAt(context.Background(), key, tt.fileSize, p, off, srcs[f].load)
				if err != nil && off+int64(len(p)) < tt.fileSize {
					t.Fatal(err)
				}
				if string(p[:n]) != string(srcs[f].data[off:off+int64(n)]) {
					t.Fatalf("read %d: wrong data", i)
				}
				if i%50 == 0 {
					if got := du(t, dir); got > tt.capacity {
						t.Fatalf("after %d reads: %d bytes allocated, capacity %d", i, got, tt.capacity)
					}
				}
			}
			st := c.Stats()
			got := du(t, dir)
			if got > tt.capacity || st.Used > tt.capacity {
				t.Fatalf("du %d, accounted %d, capacity %d", got, st.Used, tt.capacity)
			}
			if st.Evictions == 0 || st.Hits == 0 {
				t.Fatalf("stats %+v: want evictions and hits", st)
			}
			t.Logf("du %d accounted %d capacity %d; %+v", got, st.Used, tt.capacity, st)
		})
	}
}

// Concurrent readers over a small cache: no errors, no wrong bytes, and the
// bound holds once they are done.
func TestCapacityConcurrent(t *testing.T) {
	dir := t.TempDir()
	const capacity = 400 << 10
	c := openCache(t, dir, Options{Capacity: capacity})
	defer closeCache(t, c)
	const files = 6
	size := int64(20 * testBS)
	srcs := make([]*source, files)
	for i := range srcs {
		srcs[i] = newSource(uint64(200+i), int(size))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			p := make([]byte, 5000)
			for i := 0; i < 300; i++ {
				f := rng.IntN(files)
				off := rng.Int64N(size - int64(len(p)))
				n, err := c.ReadAt(context.Background(), Key{Path: fmt.Sprint(f)}, size, p, off, srcs[f].load)
				if err != nil || string(p[:n]) != string(srcs[f].data[off:off+int64(n)]) {
					errs <- fmt.Errorf("reader %d read %d: n=%d err=%v", g, i, n, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := du(t, dir); got > capacity {
		t.Fatalf("du %d > capacity %d", got, capacity)
	}
}

// A file handed out for passthrough is not punched or evicted while pinned;
// Invalidate unlinks it but the open file keeps its content.
func TestPinnedFileSurvivesPressure(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{Capacity: 300 << 10})
	defer closeCache(t, c)
	size := int64(4 * testBS)
	pinnedSrc := newSource(300, int(size))
	key := Key{Path: "/pinned"}
	readAll(t, c, key, pinnedSrc, testBS)
	p, ok, err := c.OpenComplete(key, size)
	if err != nil || !ok {
		t.Fatalf("OpenComplete: ok=%v err=%v", ok, err)
	}
	// Read far more than the capacity through other files.
	for i := 0; i < 10; i++ {
		src := newSource(uint64(301+i), int(size))
		readAll(t, c, Key{Path: fmt.Sprint("/other", i)}, src, testBS)
	}
	if c.Stats().Evictions == 0 {
		t.Fatal("no evictions")
	}
	checkFile(t, p, pinnedSrc.data)
	if err := c.Invalidate(key); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dataFile(c, key, size)); !os.IsNotExist(err) {
		t.Fatalf("invalidated data file still linked: %v", err)
	}
	checkFile(t, p, pinnedSrc.data)
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if err := p.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	// Once released, the space it held is free again.
	if st := c.Stats(); st.Used > st.Capacity {
		t.Fatalf("used %d > capacity %d", st.Used, st.Capacity)
	}
	if got := du(t, dir); got > 300<<10 {
		t.Fatalf("du %d", got)
	}
}

// A capacity lowered between runs is enforced on Open.
func TestCapacityLoweredOnRestart(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{Capacity: 4 << 20})
	for i := 0; i < 8; i++ {
		readAll(t, c, Key{Path: fmt.Sprint(i)}, newSource(uint64(400+i), 8*testBS), testBS)
	}
	closeCache(t, c)
	const capacity = 256 << 10
	c = openCache(t, dir, Options{Capacity: capacity})
	defer closeCache(t, c)
	if got := du(t, dir); got > capacity {
		t.Fatalf("du %d > capacity %d after reopening smaller", got, capacity)
	}
}

// On a real full filesystem (a 1 MiB tmpfs), reads keep working: blocks
// that do not fit are served from the loader and counted as bypasses.
func TestFullDiskTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	// The cache believes it has 64 MiB; the disk has 1 MiB.
	c := openCache(t, mnt, Options{Capacity: 64 << 20, BlockSize: 64 << 10})
	// Runs before the unmount, even if the test fails: open files would
	// keep the tmpfs busy. Close may fail to write an index on the full
	// disk; it must not hang.
	t.Cleanup(func() { c.Close() })
	size := int64(4<<20 + 1000)
	src := newSource(500, int(size))
	key := Key{Path: "/big"}
	p := make([]byte, 100000)
	for pass := 0; pass < 2; pass++ {
		for off := int64(0); off < size; off += int64(len(p)) {
			n, err := c.ReadAt(context.Background(), key, size, p, off, src.load)
			if err != nil && off+int64(len(p)) < size {
				t.Fatalf("pass %d ReadAt(%d): %v", pass, off, err)
			}
			if string(p[:n]) != string(src.data[off:off+int64(n)]) {
				t.Fatalf("pass %d ReadAt(%d): wrong data", pass, off)
			}
		}
	}
	st := c.Stats()
	if st.Bypasses == 0 || st.Hits == 0 {
		t.Fatalf("stats %+v: want bypasses, and hits for what fitted", st)
	}
	t.Logf("%+v", st)
}

// Readers, read-ahead, passthrough opens, invalidation and eviction all at
// once: no deadlock, no error, no wrong byte.
func TestMixedStress(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{Capacity: 600 << 10, ReadAheadBlocks: 2})
	const files = 5
	size := int64(12*testBS + 99)
	srcs := make([]*source, files)
	for i := range srcs {
		srcs[i] = newSource(uint64(600+i), int(size))
	}
	key := func(f int) Key { return Key{MountID: 1, Path: fmt.Sprint("/s", f)} }
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 99))
			p := make([]byte, 6000)
			for i := 0; i < 200; i++ {
				f := rng.IntN(files)
				switch op := rng.IntN(10); {
				case op < 6:
					r := c.NewReader(key(f), size, srcs[f].load)
					off := rng.Int64N(size)
					for j := 0; j < 4 && off < size; j++ {
						n, err := r.ReadAt(context.Background(), p, off)
						if (err != nil && off+int64(len(p)) < size) || string(p[:n]) != string(srcs[f].data[off:off+int64(n)]) {
							errs <- fmt.Errorf("read %d@%d: n=%d err=%v", f, off, n, err)
							return
						}
						off += int64(n)
					}
				case op < 8:
					pt, ok, err := c.OpenComplete(key(f), size)
					if err != nil {
						errs <- err
						return
					}
					if ok {
						got := make([]byte, size)
						if _, err := pt.ReadAt(got, 0); err != nil || string(got) != string(srcs[f].data) {
							errs <- fmt.Errorf("passthrough %d: err=%v", f, err)
						}
						pt.Release()
					}
				case op < 9:
					c.Invalidate(key(f))
				default:
					c.Put(key(f), size, testBS, srcs[f].data[testBS:2*testBS])
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	closeCache(t, c)
	if got := du(t, dir); got > 600<<10 {
		t.Fatalf("du %d > capacity", got)
	}
	// Everything left is consistent after a restart.
	c = openCache(t, dir, Options{Capacity: 600 << 10})
	defer closeCache(t, c)
	for f := 0; f < files; f++ {
		readAll(t, c, key(f), srcs[f], 7000)
	}
	if st := c.Stats(); st.CorruptBlocks != 0 {
		t.Fatalf("corrupt blocks after restart: %+v", st)
	}
}
