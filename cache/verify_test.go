package cache

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

// A corrupted block is detected on the next read, counted, loaded again, and
// the right bytes are returned.
func TestCorruptBlockReadAt(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{HotBlocks: -1}) // every read from the data file
	defer closeCache(t, c)
	size := int64(4 * testBS)
	src := newSource(30, int(size))
	key := Key{Path: "/rot"}
	readAll(t, c, key, src, testBS)
	src.reset()

	corrupt(t, dataFile(c, key, size), 2*testBS+77)
	p := make([]byte, 10)
	if _, err := c.ReadAt(context.Background(), key, size, p, 2*testBS+1000, src.load); err != nil {
		t.Fatal(err)
	}
	if string(p) != string(src.data[2*testBS+1000:2*testBS+1010]) {
		t.Fatal("wrong data after corruption")
	}
	if st := c.Stats(); st.CorruptBlocks != 1 {
		t.Fatalf("CorruptBlocks = %d, want 1", st.CorruptBlocks)
	}
	if got := src.offsets(); len(got) != 1 || got[0] != 2*testBS {
		t.Fatalf("loaded %v, want only block 2 again", got)
	}
	// Every other block was verified again too; the refetched block is good.
	src.reset()
	readAll(t, c, key, src, testBS)
	if src.total() != 0 || c.Stats().CorruptBlocks != 1 {
		t.Fatalf("second pass: %d loads, stats %+v", src.total(), c.Stats())
	}
}

func TestCorruptBlockOpenComplete(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{})
	defer closeCache(t, c)
	size := int64(3*testBS + 500)
	src := newSource(31, int(size))
	key := Key{Path: "/pt"}

	if _, ok, err := c.OpenComplete(key, size); ok || err != nil {
		t.Fatalf("OpenComplete of an uncached file: ok=%v err=%v", ok, err)
	}
	readAll(t, c, key, src, 7000)
	p, ok, err := c.OpenComplete(key, size)
	if err != nil || !ok {
		t.Fatalf("OpenComplete: ok=%v err=%v", ok, err)
	}
	checkFile(t, p, src.data)
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}

	corrupt(t, dataFile(c, key, size), 3*testBS+499)
	if _, ok, err := c.OpenComplete(key, size); ok || err != nil {
		t.Fatalf("OpenComplete of a corrupted file: ok=%v err=%v", ok, err)
	}
	if st := c.Stats(); st.CorruptBlocks != 1 {
		t.Fatalf("CorruptBlocks = %d, want 1", st.CorruptBlocks)
	}
	src.reset()
	readAll(t, c, key, src, 7000)
	if got := src.offsets(); len(got) != 1 || got[0] != 3*testBS {
		t.Fatalf("loaded %v, want only the last block again", got)
	}
	p, ok, err = c.OpenComplete(key, size)
	if err != nil || !ok {
		t.Fatalf("OpenComplete after refetch: ok=%v err=%v", ok, err)
	}
	checkFile(t, p, src.data)
	p.Release()
	if st := c.Stats(); st.Passthroughs != 2 {
		t.Fatalf("Passthroughs = %d, want 2", st.Passthroughs)
	}
}

// A partly cached file is never handed out.
func TestOpenCompleteIncomplete(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{})
	defer closeCache(t, c)
	size := int64(3 * testBS)
	src := newSource(32, int(size))
	key := Key{Path: "/partial"}
	if _, err := c.ReadAt(context.Background(), key, size, make([]byte, 10), testBS, src.load); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.OpenComplete(key, size); ok || err != nil {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
}

// After a crash nothing recorded as verified is trusted: a block corrupted
// while the daemon was down is caught by its checksum.
func TestCrashVerifiesAgain(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{})
	size := int64(4 * testBS)
	src := newSource(33, int(size))
	key := Key{Path: "/crash"}
	readAll(t, c, key, src, testBS)
	path := dataFile(c, key, size)
	abandon(c)

	// Flip a byte without touching the stat a second time (a lost write or
	// bit rot looks like this).
	flipInPlace(t, path, testBS+5)
	c = openCache(t, dir, Options{})
	defer closeCache(t, c)
	src.reset()
	readAll(t, c, key, src, testBS)
	if got := src.offsets(); len(got) != 1 || got[0] != testBS {
		t.Fatalf("loaded %v, want block 1 only", got)
	}
	if st := c.Stats(); st.CorruptBlocks != 1 || st.Hits != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// After a clean shutdown, verified state is trusted only while the data file
// is unchanged.
func TestCleanRestartChangedFile(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{})
	size := int64(2 * testBS)
	src := newSource(34, int(size))
	key := Key{Path: "/clean"}
	readAll(t, c, key, src, testBS)
	path := dataFile(c, key, size)
	closeCache(t, c)
	corrupt(t, path, 10)

	c = openCache(t, dir, Options{})
	defer closeCache(t, c)
	if _, ok, _ := c.OpenComplete(key, size); ok {
		t.Fatal("OpenComplete handed out a file changed since shutdown")
	}
	if st := c.Stats(); st.CorruptBlocks != 1 {
		t.Fatalf("CorruptBlocks = %d", st.CorruptBlocks)
	}
	src.reset()
	readAll(t, c, key, src, testBS)
	if got := src.offsets(); len(got) != 1 || got[0] != 0 {
		t.Fatalf("loaded %v, want block 0 only", got)
	}
}

// flipInPlace flips a byte and then restores the file's times, so that only
// the checksum can tell.
func flipInPlace(t *testing.T, path string, off int64) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	f.ReadAt(b, off)
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	os.Chtimes(path, info.ModTime(), info.ModTime())
}

func checkFile(t *testing.T, f io.ReaderAt, want []byte) {
	t.Helper()
	got := make([]byte, len(want)+1)
	n, err := f.ReadAt(got, 0)
	if err != io.EOF || n != len(want) || string(got[:n]) != string(want) {
		t.Fatalf("passthrough file: n=%d err=%v, content equal %v", n, err, string(got[:n]) == string(want))
	}
}

// A passthrough file outlives Close: it stays readable and releasing it
// afterwards is harmless.
func TestReleaseAfterClose(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{})
	size := int64(2 * testBS)
	src := newSource(35, int(size))
	key := Key{Path: "/late"}
	readAll(t, c, key, src, testBS)
	p, ok, err := c.OpenComplete(key, size)
	if err != nil || !ok {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	closeCache(t, c)
	checkFile(t, p, src.data)
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.OpenComplete(key, size); err != ErrClosed {
		t.Fatalf("OpenComplete after Close: err = %v", err)
	}
}

// TestOpenCompleteKeepsDescriptor checks that the opens of a wholly cached
// file share one read-only descriptor, which the entry keeps between them,
// and that dropping the entry closes it once its last Passthrough is
// released.
func TestOpenCompleteKeepsDescriptor(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{})
	defer closeCache(t, c)
	size := int64(2*testBS + 10)
	src := newSource(33, int(size))
	key := Key{Path: "/kept"}
	readAll(t, c, key, src, 5000)
	open := func() *Passthrough {
		t.Helper()
		p, ok, err := c.OpenComplete(key, size)
		if err != nil || !ok {
			t.Fatalf("OpenComplete: ok=%v err=%v", ok, err)
		}
		checkFile(t, p, src.data)
		return p
	}
	p1, p2 := open(), open()
	fd := p1.Fd()
	if p2.Fd() != fd {
		t.Fatalf("two opens: descriptors %d and %d, want one shared", fd, p2.Fd())
	}
	p1.Release()
	p2.Release()
	p3 := open()
	if p3.Fd() != fd {
		t.Fatalf("open after release: descriptor %d, want the kept %d", p3.Fd(), fd)
	}
	data := dataFile(c, key, size)
	openOn := func() bool {
		link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		return err == nil && strings.HasPrefix(link, data)
	}
	if _, err := c.DropMatching(func(Key) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if !openOn() {
		t.Fatalf("dropping the entry closed the descriptor of a Passthrough not released")
	}
	checkFile(t, p3, src.data)
	p3.Release()
	if openOn() {
		t.Fatalf("descriptor %d still open on the dropped data file", fd)
	}
}

// TestPassthroughScanBoundsOpenFiles opens more wholly cached files than
// Options.MaxOpenFiles by passthrough alone, again and again: the data files
// and descriptors the cache keeps stay within the bound, and every open
// still reads its file's content.
func TestPassthroughScanBoundsOpenFiles(t *testing.T) {
	const max = 3
	c := openCache(t, t.TempDir(), Options{MaxOpenFiles: max})
	defer closeCache(t, c)
	size := int64(testBS + 10)
	srcs := make([]*source, 10)
	for i := range srcs {
		srcs[i] = newSource(uint64(40+i), int(size))
		readAll(t, c, Key{Path: fmt.Sprintf("/scan/%d", i)}, srcs[i], 5000)
	}
	for round := 0; round < 3; round++ {
		for i, src := range srcs {
			p, ok, err := c.OpenComplete(Key{Path: fmt.Sprintf("/scan/%d", i)}, size)
			if err != nil || !ok {
				t.Fatalf("round %d, file %d: OpenComplete: ok=%v err=%v", round, i, ok, err)
			}
			checkFile(t, p, src.data)
			p.Release()
			if n := c.nOpen.Load(); n > max {
				t.Fatalf("round %d, file %d: %d data files open, bound %d", round, i, n, max)
			}
		}
	}
}
