package cache

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// A disk that falls behind does not slow reads: loaded blocks that find the
// store queue full are served and not stored (Stats.StoreDrops), and a
// later read loads them again.
func TestStoreQueueDropsUnderSlowDisk(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{StoreQueue: 1, ReadAheadBlocks: -1, HotBlocks: -1})
	defer closeCache(t, c)
	gate := make(chan struct{})
	var stores atomic.Int64
	c.beforeStore = func() {
		stores.Add(1)
		<-gate
	}
	const blocks = 12
	src := newSource(11, blocks*testBS)
	key := Key{Path: "/slow"}
	done := make(chan struct{})
	go func() {
		defer close(done)
		readAll(t, c, key, src, testBS)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		close(gate)
		t.Fatal("reads waited for the slow disk")
	}
	st := c.Stats()
	// At most one block per store worker is being stored and one waits in
	// the queue; the others were dropped.
	if st.StoreDrops < blocks-storeWorkers-1 || st.Blocks != 0 {
		t.Fatalf("while the disk is stuck: %+v", st)
	}
	close(gate)
	if err := c.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	st = c.Stats()
	if st.Blocks+int64(st.StoreDrops) != blocks {
		t.Fatalf("after the disk caught up: %d blocks stored, %d dropped, want %d in all", st.Blocks, st.StoreDrops, blocks)
	}
	loads := src.total()
	readAll(t, c, key, src, testBS)
	if again := src.total() - loads; again != int(st.StoreDrops) {
		t.Fatalf("second read loaded %d blocks, want the %d dropped", again, st.StoreDrops)
	}
	if err := c.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The second read's blocks go through the queue too (and may be
	// dropped again, the loads being instant): what is not stored is
	// counted.
	if st2 := c.Stats(); st2.Blocks+int64(st2.StoreDrops-st.StoreDrops) != blocks {
		t.Fatalf("after the second read: %+v", st2)
	}
}

// Reader.Read serves blocks in memory by reference: the slices stay right
// while the Result is held, even after the blocks were completed, stored
// and their buffers' pool served other loads, and the bytes read from cache
// files land in the caller's buffer.
func TestReadByReference(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{StoreQueue: 64, ReadAheadBlocks: -1, HotBlocks: -1})
	defer closeCache(t, c)
	const blocks = 8
	src := newSource(12, blocks*testBS)
	key := Key{Path: "/ref"}
	r := c.NewReader(key, int64(len(src.data)), src.load)
	ctx := context.Background()
	// A read over blocks 0 and 1, both loaded now.
	p := make([]byte, testBS)
	off := int64(testBS / 2)
	res, err := r.Read(ctx, p, off)
	if err != nil || res.N != len(p) {
		t.Fatalf("Read: n=%d err=%v", res.N, err)
	}
	held := bytes.Join(res.Slices, nil)
	if !bytes.Equal(held, src.data[off:off+testBS]) {
		t.Fatal("wrong bytes")
	}
	inP := 0
	for _, s := range res.Slices {
		if len(s) > 0 && within(s, p) {
			inP++
		}
	}
	if inP != 0 {
		t.Fatalf("%d slices copied into the caller's buffer, want none (both blocks were just loaded)", inP)
	}
	// Read the rest of blocks 0 and 1 (complete, they are stored) and
	// every other block: buffers cycle.
	q := make([]byte, testBS)
	if _, err := r.ReadAt(ctx, q[:off], 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(ctx, q[:testBS-off], off+testBS); err != nil {
		t.Fatal(err)
	}
	for b := int64(2); b < blocks; b++ {
		if _, err := r.ReadAt(ctx, q, b*testBS); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Blocks != blocks || st.BytesLoaded != int64(len(src.data)) {
		t.Fatalf("after reading every byte once: %+v", st)
	}
	if !bytes.Equal(bytes.Join(res.Slices, nil), held) {
		t.Fatal("a held result changed while its blocks' buffers were free to be reused")
	}
	res.Release()
	res.Release() // harmless

	// Blocks 0 and 1 are on disk now: read from there into p.
	res, err = r.Read(ctx, p, off)
	if err != nil || res.N != len(p) {
		t.Fatalf("Read: n=%d err=%v", res.N, err)
	}
	if got := res.Bytes(make([]byte, len(p))); !bytes.Equal(got, src.data[off:off+testBS]) {
		t.Fatal("wrong bytes from the cache files")
	}
	for _, s := range res.Slices {
		if !within(s, p) {
			t.Fatal("a block read from its cache file was not read into the caller's buffer")
		}
	}
	res.Release()
	// Past the end: the bytes before it, and io.EOF.
	res, err = r.Read(ctx, p, int64(len(src.data))-10)
	if res.N != 10 || err == nil {
		t.Fatalf("read at the end: n=%d err=%v", res.N, err)
	}
	res.Release()
}

// within says whether s starts inside p.
func within(s, p []byte) bool {
	a, lo := uintptr(unsafe.Pointer(unsafe.SliceData(s))), uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	return a >= lo && a < lo+uintptr(len(p))
}

// A reader of scattered ranges (a footer, then column chunks of half a
// block to two blocks, each read in pieces by two goroutines at once, as
// the kernel sends a large read) loads the pages it reads and no more, and
// reads the right bytes.
func TestScatteredRangesLoadWhatIsAsked(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{StoreQueue: 64})
	defer closeCache(t, c)
	const blocks = 64
	size := int64(blocks*testBS - 1000)
	src := newSource(13, int(size))
	r := c.NewReader(Key{Path: "/table.parquet"}, size, src.load)
	ctx := context.Background()
	type rng struct{ off, n int64 }
	ranges := []rng{{size - 8192, 8192}}
	rnd := rand.New(rand.NewPCG(5, 6))
	for range 6 {
		n := testBS/2 + rnd.Int64N(2*testBS-testBS/2)
		ranges = append(ranges, rng{rnd.Int64N(size-n) &^ (partPage - 1), n})
	}
	var asked int64
	pages := map[int64]bool{}
	for _, g := range ranges {
		for pg := g.off / partPage; pg*partPage < g.off+g.n; pg++ {
			pages[pg] = true
		}
		const piece = testBS / 4
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Go(func() {
				buf := make([]byte, piece)
				for off := g.off + int64(w)*piece; off < g.off+g.n; off += 2 * piece {
					m := min(piece, g.off+g.n-off)
					res, err := r.Read(ctx, buf[:m], off)
					if err != nil {
						t.Error(err)
						return
					}
					if got := res.Bytes(make([]byte, m)); !bytes.Equal(got, src.data[off:off+m]) {
						t.Errorf("range at %d: wrong bytes at %d", g.off, off)
					}
					res.Release()
				}
			})
		}
		wg.Wait()
		asked += g.n
	}
	var pageBytes int64
	for pg := range pages {
		pageBytes += min(partPage, size-pg*partPage)
	}
	st := c.Stats()
	if st.BytesLoaded > pageBytes || st.ReadAheads != 0 {
		t.Fatalf("loaded %d bytes (%d read-aheads) for %d asked, %d in whole pages", st.BytesLoaded, st.ReadAheads, asked, pageBytes)
	}
	t.Logf("asked %d bytes, loaded %d (%.3f×) in %d loads", asked, st.BytesLoaded, float64(st.BytesLoaded)/float64(asked), st.LoaderCalls)
}
