package cache

import (
	"context"
	"slices"
	"testing"
)

func TestReadAheadSequential(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{ReadAheadBlocks: 3})
	defer closeCache(t, c)
	size := int64(16 * testBS)
	src := newSource(20, int(size))
	r := c.NewReader(Key{Path: "/seq"}, size, src.load)
	p := make([]byte, testBS)
	read := func(b int64) {
		t.Helper()
		if _, err := r.ReadAt(context.Background(), p, b*testBS); err != nil {
			t.Fatal(err)
		}
		if string(p) != string(src.data[b*testBS:(b+1)*testBS]) {
			t.Fatalf("block %d: wrong data", b)
		}
	}
	// Until the run covers streamBlocks blocks, nothing is read ahead.
	for b := int64(0); b < streamBlocks-1; b++ {
		read(b)
	}
	c.bg.Wait()
	if got := blocksOf(src.offsets()); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Fatalf("loaded blocks %v before the run streams, want 0-2", got)
	}
	// The fourth read streams: the window opens at two blocks (one for
	// every two read), then grows to ReadAheadBlocks.
	read(3)
	want := []int64{0, 1, 2, 3, 4, 5}
	waitFor(t, "read-ahead of blocks 4-5", func() bool { return len(src.offsets()) == len(want) })
	c.bg.Wait()
	if got := blocksOf(src.offsets()); !slices.Equal(got, want) {
		t.Fatalf("loaded blocks %v, want %v", got, want)
	}
	for b := int64(4); b < 7; b++ {
		read(b)
	}
	c.bg.Wait()
	if got := blocksOf(src.offsets()); !slices.Equal(got, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("loaded blocks %v, want 0-9 (three ahead of block 6)", got)
	}
	for b := int64(0); b < 10; b++ {
		if n := src.callsAt(b * testBS); n != 1 {
			t.Fatalf("block %d loaded %d times, want once", b, n)
		}
	}

	// Small sequential reads (a kernel's 128 KiB requests in a 4 MiB block)
	// count too: each loads its pages until the run streams; read-ahead
	// never reaches past the end of the file, and no byte is loaded twice.
	src2 := newSource(21, int(6*testBS+10))
	r2 := c.NewReader(Key{Path: "/small-reads"}, int64(len(src2.data)), src2.load)
	before := c.Stats().BytesLoaded
	q := make([]byte, testBS/4)
	for off := int64(0); off < 5*testBS; off += int64(len(q)) {
		if _, err := r2.ReadAt(context.Background(), q, off); err != nil {
			t.Fatal(err)
		}
	}
	c.bg.Wait()
	if err := c.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := slices.Compact(blocksOf(src2.offsets()))
	if !slices.Equal(got, []int64{0, 1, 2, 3, 4, 5, 6}) {
		t.Fatalf("loaded blocks %v, want 0-6", got)
	}
	if n := c.Stats().BytesLoaded - before; n != int64(len(src2.data)) {
		t.Fatalf("loaded %d bytes of a %d-byte file", n, len(src2.data))
	}
}

func TestNoReadAheadForRandomReader(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{ReadAheadBlocks: 3})
	defer closeCache(t, c)
	size := int64(64 * testBS)
	src := newSource(22, int(size))
	r := c.NewReader(Key{Path: "/random"}, size, src.load)
	p := make([]byte, 4096)
	blocks := []int64{40, 3, 17, 60, 9, 33, 0, 50}
	for _, b := range blocks {
		if _, err := r.ReadAt(context.Background(), p, b*testBS+100); err != nil {
			t.Fatal(err)
		}
	}
	c.bg.Wait()
	want := slices.Clone(blocks)
	slices.Sort(want)
	if got := blocksOf(src.offsets()); !slices.Equal(got, want) {
		t.Fatalf("loaded blocks %v, want only %v", got, want)
	}
	if st := c.Stats(); st.ReadAheads != 0 {
		t.Fatalf("ReadAheads = %d, want 0", st.ReadAheads)
	}
}

func TestReadAheadDisabled(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{ReadAheadBlocks: -1})
	defer closeCache(t, c)
	size := int64(8 * testBS)
	src := newSource(23, int(size))
	r := c.NewReader(Key{Path: "/off"}, size, src.load)
	p := make([]byte, testBS)
	for b := int64(0); b < 4; b++ {
		if _, err := r.ReadAt(context.Background(), p, b*testBS); err != nil {
			t.Fatal(err)
		}
	}
	c.bg.Wait()
	if got := src.total(); got != 4 {
		t.Fatalf("%d loads, want 4", got)
	}
}

func blocksOf(offs []int64) []int64 {
	var bs []int64
	for _, off := range offs {
		bs = append(bs, off/testBS)
	}
	return bs
}
