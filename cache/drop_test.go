package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// DropMatching removes the entries it matches and nothing else; what it
// removed is loaded again, and a file handed out for passthrough keeps its
// content.
func TestDropMatching(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{ReadAheadBlocks: -1})
	defer closeCache(t, c)
	size := int64(3 * testBS)
	type file struct {
		key Key
		src *source
	}
	var files []file
	for i, k := range []Key{
		{MountID: 1, Path: "d/a"}, {MountID: 1, Path: "d/sub/b"}, {MountID: 1, Path: "dd/c"},
		{MountID: 2, Path: "d/a"}, {MountID: 1, Path: "e"},
	} {
		f := file{k, newSource(uint64(500+i), int(size))}
		readAll(t, c, f.key, f.src, testBS)
		files = append(files, f)
	}
	pinned := files[1]
	p, ok, err := c.OpenComplete(pinned.key, size)
	if err != nil || !ok {
		t.Fatalf("OpenComplete: %v %v", ok, err)
	}
	defer p.Release()

	before := c.Stats()
	under := func(k Key) bool { return k.MountID == 1 && (k.Path == "d" || strings.HasPrefix(k.Path, "d/")) }
	res, err := c.DropMatching(under)
	if err != nil {
		t.Fatal(err)
	}
	after := c.Stats()
	if res.Entries != 2 || res.Blocks != 6 || res.Used != after.Used {
		t.Fatalf("DropMatching: %+v (stats after %+v)", res, after)
	}
	if after.Entries != before.Entries-2 || after.Blocks != before.Blocks-6 || after.Used >= before.Used {
		t.Fatalf("stats before %+v, after %+v", before, after)
	}
	checkFile(t, p, pinned.src.data)
	for _, f := range files {
		f.src.reset()
		readAll(t, c, f.key, f.src, testBS)
		if loaded := f.src.total() > 0; loaded != under(f.key) {
			t.Errorf("%+v: loaded again %v, dropped %v", f.key, loaded, under(f.key))
		}
	}

	// Dropping everything empties the cache, down to the directory itself.
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	res, err = c.DropMatching(func(Key) bool { return true })
	if err != nil || res.Entries != len(files) {
		t.Fatalf("drop all: %+v, %v", res, err)
	}
	if st := c.Stats(); st.Entries != 0 || st.Blocks != 0 {
		t.Fatalf("after dropping all: %+v", st)
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasSuffix(n.Name(), dataSuffix) || strings.HasSuffix(n.Name(), idxSuffix) {
			t.Errorf("left after dropping all: %s", n.Name())
		}
	}
}

// Readers of the files being dropped, over and over, always get their bytes.
func TestDropWithReaders(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{})
	defer closeCache(t, c)
	size := int64(8*testBS + 100)
	var srcs []*source
	for i := range 4 {
		srcs = append(srcs, newSource(uint64(600+i), int(size)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, len(srcs))
	for i, src := range srcs {
		key := Key{MountID: 1, Path: fmt.Sprint("f", i)}
		wg.Go(func() {
			buf := make([]byte, 5000)
			for ctx.Err() == nil {
				r := c.NewReader(key, size, src.load)
				for off := int64(0); off < size; off += int64(len(buf)) {
					n, err := r.ReadAt(ctx, buf, off)
					if err != nil && off+int64(len(buf)) < size {
						errs <- fmt.Errorf("%v at %d: %w", key, off, err)
						return
					}
					if !bytes.Equal(buf[:n], src.data[off:off+int64(n)]) {
						errs <- fmt.Errorf("%v at %d: wrong bytes", key, off)
						return
					}
				}
			}
		})
	}
	for i := range 200 {
		var err error
		if i%2 == 0 {
			_, err = c.DropMatching(func(k Key) bool { return k.Path == "f0" || k.Path == "f2" })
		} else {
			_, _, err = c.Shrink(int64(i%5) * testBS)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	}
	if st := c.Stats(); st.Used > st.Capacity || st.CorruptBlocks != 0 {
		t.Fatalf("after the drops: %+v", st)
	}
}

// Shrink evicts the least recently used blocks down to the target and
// leaves the capacity alone.
func TestShrink(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{ReadAheadBlocks: -1})
	defer closeCache(t, c)
	size := int64(8 * testBS)
	old, recent := newSource(700, int(size)), newSource(701, int(size))
	readAll(t, c, Key{Path: "old"}, old, testBS)
	readAll(t, c, Key{Path: "recent"}, recent, testBS)
	used := c.Stats().Used
	target := used - 4*testBS
	res, ok, err := c.Shrink(target)
	if err != nil || !ok {
		t.Fatalf("Shrink(%d): %v %v", target, ok, err)
	}
	st := c.Stats()
	if st.Used > target || res.Used != st.Used || res.Blocks < 4 || st.Capacity != 1<<30 {
		t.Fatalf("Shrink(%d) from %d: %+v, stats %+v", target, used, res, st)
	}
	if du(t, dir) > target {
		t.Fatalf("du %d after shrinking to %d", du(t, dir), target)
	}
	// The blocks read last stayed.
	recent.reset()
	readAll(t, c, Key{Path: "recent"}, recent, testBS)
	if recent.total() != 0 {
		t.Fatalf("recently read blocks evicted: loads %v", recent.offsets())
	}
	// Down to nothing: every entry goes.
	if res, ok, err := c.Shrink(0); err != nil || !ok || res.Entries != 2 {
		t.Fatalf("Shrink(0): %+v %v %v", res, ok, err)
	}
	if st := c.Stats(); st.Entries != 0 || st.Blocks != 0 {
		t.Fatalf("after Shrink(0): %+v", st)
	}
	if _, _, err := c.Shrink(-1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Shrink(-1): %v", err)
	}
	// A file open for passthrough keeps its blocks: Shrink says so.
	readAll(t, c, Key{Path: "recent"}, recent, testBS)
	p, ok, err := c.OpenComplete(Key{Path: "recent"}, size)
	if err != nil || !ok {
		t.Fatalf("OpenComplete: %v %v", ok, err)
	}
	if res, ok, err := c.Shrink(0); err != nil || ok || res.Blocks != 0 {
		t.Fatalf("Shrink(0) with a pinned file: %+v %v %v", res, ok, err)
	}
	checkFile(t, p, recent.data)
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.Shrink(0); err != nil || !ok {
		t.Fatalf("Shrink(0) once released: %v %v", ok, err)
	}
}

// Settle returns once the blocks handed to readers before it was called are
// stored.
func TestSettle(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{ReadAheadBlocks: -1})
	defer closeCache(t, c)
	size := int64(testBS)
	src := newSource(800, int(size))
	key := Key{Path: "f"}
	entered, gate := make(chan struct{}), make(chan struct{})
	write := c.writeAt
	var once sync.Once
	c.writeAt = func(f *os.File, p []byte, off int64) (int, error) {
		once.Do(func() { close(entered) })
		<-gate
		return write(f, p, off)
	}
	ctx := context.Background()
	leader := make(chan error, 1)
	go func() {
		_, err := c.ReadAt(ctx, key, size, make([]byte, 10), 0, src.load)
		leader <- err
	}()
	<-entered
	// The block is loaded and on its way to the data file: a second reader
	// has it at once.
	buf := make([]byte, 10)
	if _, err := c.ReadAt(ctx, key, size, buf, 0, src.load); err != nil || !bytes.Equal(buf, src.data[:10]) {
		t.Fatalf("second read: %v", err)
	}
	if st := c.Stats(); st.Blocks != 0 {
		t.Fatalf("block counted before it is stored: %+v", st)
	}
	sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := c.Settle(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Settle with the store held: %v", err)
	}
	settled := make(chan error, 1)
	go func() { settled <- c.Settle(ctx) }()
	close(gate)
	if err := <-settled; err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Blocks != 1 || st.Entries != 1 {
		t.Fatalf("after Settle: %+v", st)
	}
	if err := <-leader; err != nil {
		t.Fatal(err)
	}
	// Nothing in flight: Settle returns at once.
	if err := c.Settle(ctx); err != nil {
		t.Fatal(err)
	}
}
