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
	// Three sequential reads of blocks 0, 1 and 2: the third is the second in
	// a row that continues where the last one ended.
	for b := int64(0); b < 3; b++ {
		if _, err := r.ReadAt(context.Background(), p, b*testBS); err != nil {
			t.Fatal(err)
		}
	}
	want := []int64{0, 1, 2, 3, 4, 5}
	waitFor(t, "read-ahead of blocks 3-5", func() bool { return len(src.offsets()) == len(want) })
	c.bg.Wait()
	if got := blocksOf(src.offsets()); !slices.Equal(got, want) {
		t.Fatalf("loaded blocks %v, want %v", got, want)
	}
	// The reader finds them in the cache, and read-ahead moves on.
	for b := int64(3); b < 6; b++ {
		if _, err := r.ReadAt(context.Background(), p, b*testBS); err != nil {
			t.Fatal(err)
		}
		if string(p) != string(src.data[b*testBS:(b+1)*testBS]) {
			t.Fatalf("block %d: wrong data", b)
		}
	}
	c.bg.Wait()
	if got := src.callsAt(3*testBS) + src.callsAt(4*testBS) + src.callsAt(5*testBS); got != 3 {
		t.Fatalf("blocks 3-5 loaded %d times, want once each", got)
	}
	if got := blocksOf(src.offsets()); !slices.Equal(got, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("loaded blocks %v, want 0-8", got)
	}
	if st := c.Stats(); st.ReadAheads != 7 {
		t.Fatalf("ReadAheads = %d, want 7 (2-4, then one more per read)", st.ReadAheads)
	}

	// Small sequential reads (a kernel's 128 KiB requests in a 4 MiB block)
	// count too, and read-ahead never reaches past the end of the file.
	src2 := newSource(21, int(3*testBS+10))
	r2 := c.NewReader(Key{Path: "/small-reads"}, int64(len(src2.data)), src2.load)
	q := make([]byte, testBS/4)
	for off := int64(0); off < testBS; off += int64(len(q)) {
		if _, err := r2.ReadAt(context.Background(), q, off); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "read-ahead to the end", func() bool { return len(src2.offsets()) == 4 })
	c.bg.Wait()
	if got := blocksOf(src2.offsets()); !slices.Equal(got, []int64{0, 1, 2, 3}) {
		t.Fatalf("loaded blocks %v, want 0-3", got)
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
