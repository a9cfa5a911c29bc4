package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"testing"
)

func TestReadAtEdges(t *testing.T) {
	size := int64(3*testBS + 1234)
	src := newSource(1, int(size))
	c := openCache(t, t.TempDir(), Options{})
	defer closeCache(t, c)
	key := Key{MountID: 1, Path: "/a", Fingerprint: "v1"}

	tests := []struct {
		name    string
		off     int64
		n       int
		wantN   int
		wantEOF bool
	}{
		{"first byte", 0, 1, 1, false},
		{"whole first block", 0, testBS, testBS, false},
		{"last byte of a block", testBS - 1, 1, 1, false},
		{"across one edge", testBS - 10, 20, 20, false},
		{"across two edges", testBS - 10, testBS + 20, testBS + 20, false},
		{"first byte of a block", 2 * testBS, 1, 1, false},
		{"into the short last block", 3*testBS - 5, 10, 10, false},
		{"ends exactly at EOF", size - 100, 100, 100, false},
		{"past EOF", size - 100, 200, 100, true},
		{"whole file and more", 0, int(size) + 7, int(size), true},
		{"at EOF", size, 10, 0, true},
		{"beyond EOF", size + 5000, 10, 0, true},
		{"empty read", 100, 0, 0, false},
	}
	for pass, name := range []string{"cold", "warm"} {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				p := make([]byte, tt.n)
				n, err := c.ReadAt(context.Background(), key, size, p, tt.off, src.load)
				if n != tt.wantN {
					t.Fatalf("n = %d, want %d (err %v)", n, tt.wantN, err)
				}
				if tt.wantEOF != (err == io.EOF) || (err != nil && err != io.EOF) {
					t.Fatalf("err = %v, want EOF %v", err, tt.wantEOF)
				}
				if n > 0 && string(p[:n]) != string(src.data[tt.off:tt.off+int64(n)]) {
					t.Fatal("wrong data")
				}
			})
		}
		if pass == 0 {
			// Every block has been read: the warm pass must not load.
			if got := src.total(); got != 4 {
				t.Fatalf("cold pass made %d loader calls, want 4", got)
			}
			src.reset()
		}
	}
	if got := src.total(); got != 0 {
		t.Fatalf("warm pass made %d loader calls", got)
	}
	if _, err := c.ReadAt(context.Background(), key, size, make([]byte, 1), -1, src.load); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative offset: err = %v", err)
	}
}

func TestEmptyFile(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{})
	defer closeCache(t, c)
	key := Key{Path: "/empty"}
	n, err := c.ReadAt(context.Background(), key, 0, make([]byte, 10), 0, (&source{}).load)
	if n != 0 || err != io.EOF {
		t.Fatalf("n=%d err=%v", n, err)
	}
	p, ok, err := c.OpenComplete(key, 0)
	if err != nil || !ok {
		t.Fatalf("OpenComplete of an empty file: ok=%v err=%v", ok, err)
	}
	if st, _ := statFd(p.Fd()); st.size != 0 {
		t.Fatalf("size %d", st.size)
	}
	p.Release()
}

func TestLoaderErrors(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{})
	defer closeCache(t, c)
	src := newSource(2, 2*testBS)
	boom := errors.New("ufs down")
	src.err = boom
	key := Key{Path: "/err"}
	if _, err := c.ReadAt(context.Background(), key, 2*testBS, make([]byte, 10), 0, src.load); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the loader's", err)
	}
	src.err = nil
	// A size larger than the UFS file makes the loader come up short.
	short := func(ctx context.Context, off int64, dst []byte) (int, error) { return len(dst) - 1, nil }
	if _, err := c.ReadAt(context.Background(), key, 2*testBS, make([]byte, 10), 0, short); !errors.Is(err, ErrShortLoad) {
		t.Fatalf("err = %v, want ErrShortLoad", err)
	}
	readAll(t, c, key, src, 1000)
}

func TestConcurrentMissesOneLoad(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{})
	defer closeCache(t, c)
	src := newSource(3, 4*testBS)
	src.gate = make(chan struct{})
	key := Key{Path: "/hot"}
	const readers = 8
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for i := 0; i < readers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := make([]byte, 100)
			off := int64(testBS + i*100) // all in block 1
			n, err := c.ReadAt(context.Background(), key, 4*testBS, p, off, src.load)
			if err == nil && string(p[:n]) != string(src.data[off:off+100]) {
				err = errors.New("wrong data")
			}
			errs <- err
		}(i)
	}
	waitFor(t, "one load and the other readers waiting for it", func() bool {
		return src.total() == 1 && c.flightWaiters.Load() == readers-1
	})
	close(src.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := src.total(); got != 1 {
		t.Fatalf("%d loader calls, want 1", got)
	}
}

// A waiter whose context is live takes over when the loading caller gives up.
func TestLeaderCancelled(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{})
	defer closeCache(t, c)
	src := newSource(4, testBS)
	src.gate = make(chan struct{})
	key := Key{Path: "/cancel"}
	ctx, cancel := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := c.ReadAt(ctx, key, testBS, make([]byte, 10), 0, src.load)
		leaderErr <- err
	}()
	waitFor(t, "leader loading", func() bool { return src.total() == 1 })
	waiterDone := make(chan error, 1)
	go func() {
		p := make([]byte, 10)
		_, err := c.ReadAt(context.Background(), key, testBS, p, 0, src.load)
		if err == nil && string(p) != string(src.data[:10]) {
			err = errors.New("wrong data")
		}
		waiterDone <- err
	}()
	waitFor(t, "waiter waiting", func() bool { return c.flightWaiters.Load() == 1 })
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader err = %v", err)
	}
	waitFor(t, "waiter loading", func() bool { return src.total() == 2 })
	close(src.gate)
	if err := <-waiterDone; err != nil {
		t.Fatal(err)
	}
}

func TestPut(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{})
	defer closeCache(t, c)
	size := int64(2*testBS + 100)
	src := newSource(5, int(size))
	key := Key{Path: "/written", Fingerprint: "etag1"}
	if err := c.Put(key, size, 0, src.data[:testBS]); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(key, size, testBS, src.data[testBS:]); err != nil {
		t.Fatal(err)
	}
	fail := func(ctx context.Context, off int64, dst []byte) (int, error) {
		t.Errorf("loader called at %d", off)
		return 0, errors.New("no")
	}
	p := make([]byte, size)
	if n, err := c.ReadAt(context.Background(), key, size, p, 0, fail); n != int(size) || err != nil {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if string(p) != string(src.data) {
		t.Fatal("wrong data")
	}
	for _, bad := range []struct{ off, n int64 }{{1, testBS}, {0, testBS - 1}, {testBS, testBS + 1}, {2 * testBS, 200}, {-testBS, testBS}} {
		if err := c.Put(key, size, bad.off, make([]byte, bad.n)); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Put(%d, %d bytes): err = %v", bad.off, bad.n, err)
		}
	}
}

func TestFingerprintChange(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{})
	defer closeCache(t, c)
	size := int64(3 * testBS)
	oldSrc, newSrc := newSource(6, int(size)), newSource(7, int(size))
	oldKey := Key{MountID: 9, Path: "/f", Fingerprint: "etag-1"}
	newKey := Key{MountID: 9, Path: "/f", Fingerprint: "etag-2"}
	readAll(t, c, oldKey, oldSrc, 5000)
	readAll(t, c, newKey, newSrc, 5000)
	if got := newSrc.total(); got != 3 {
		t.Fatalf("new version: %d loader calls, want 3 (old bytes must not be served)", got)
	}
	// The same size under another path or mount is another entry too.
	otherSrc := newSource(8, int(size))
	readAll(t, c, Key{MountID: 10, Path: "/f", Fingerprint: "etag-1"}, otherSrc, 5000)

	if err := c.InvalidatePath(9, "/f"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []Key{oldKey, newKey} {
		if _, err := os.Stat(dataFile(c, k, size)); !os.IsNotExist(err) {
			t.Fatalf("data file of %v still there: %v", k, err)
		}
	}
	newSrc.reset()
	readAll(t, c, newKey, newSrc, 5000)
	if got := newSrc.total(); got != 3 {
		t.Fatalf("after invalidation: %d loader calls, want 3", got)
	}
	if err := c.Invalidate(newKey); err != nil {
		t.Fatal(err)
	}
	if got := c.Stats().Entries; got != 1 {
		t.Fatalf("%d entries left, want 1", got)
	}
}

// injectWriteError makes every block write fail with err.
func injectWriteError(c *Cache, err error) {
	c.writeAt = func(f *os.File, p []byte, off int64) (int, error) {
		// Write part of it first, as a filling disk does.
		n, _ := f.WriteAt(p[:len(p)/2], off)
		return n, err
	}
}

func TestWriteFailureBypasses(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EIO} {
		t.Run(errno.Error(), func(t *testing.T) {
			dir := t.TempDir()
			c := openCache(t, dir, Options{})
			defer closeCache(t, c)
			injectWriteError(c, errno)
			src := newSource(10, 5*testBS+3)
			key := Key{Path: "/full"}
			readAll(t, c, key, src, 3000)
			st := c.Stats()
			if st.Bypasses == 0 || st.Hits != 0 {
				t.Fatalf("stats %+v: want bypasses and no hits", st)
			}
			if got := du(t, dir) - dirAlloc(t, dir); got > 0 {
				t.Fatalf("%d bytes left allocated after failed writes", got)
			}
		})
	}
}

func dirAlloc(t testing.TB, dir string) int64 {
	t.Helper()
	st, err := statPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st.alloc
}

func TestLockedDirectory(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{})
	defer closeCache(t, c)
	if _, err := Open(dir, Options{Capacity: 1 << 20}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: err = %v, want ErrLocked", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, o := range []Options{{}, {Capacity: 1 << 20, BlockSize: 1000}, {Capacity: -1}} {
		if _, err := Open(t.TempDir(), o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("Open(%+v): err = %v", o, err)
		}
	}
}

func TestClosed(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{})
	closeCache(t, c)
	if _, err := c.ReadAt(context.Background(), Key{}, 10, make([]byte, 1), 0, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// The cache keeps at most MaxOpenFiles data files open and reopens others on
// demand.
func TestMaxOpenFiles(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{MaxOpenFiles: 2})
	defer closeCache(t, c)
	srcs := make([]*source, 6)
	for i := range srcs {
		srcs[i] = newSource(uint64(70+i), 2*testBS)
		readAll(t, c, Key{Path: fmt.Sprint(i)}, srcs[i], 5000)
		if n := c.nOpen.Load(); n > 2 {
			t.Fatalf("%d data files open, limit 2", n)
		}
	}
	for i := range srcs {
		srcs[i].reset()
		readAll(t, c, Key{Path: fmt.Sprint(i)}, srcs[i], 5000)
		if srcs[i].total() != 0 {
			t.Fatalf("file %d reloaded after its data file was closed", i)
		}
	}
}
