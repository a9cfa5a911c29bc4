package cache

import (
	"bytes"
	"context"
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
// while the Result is held, even after the block left the hot set and its
// buffer's pool served other loads, and the bytes read from cache files
// land in the caller's buffer.
func TestReadByReference(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{StoreQueue: 64, ReadAheadBlocks: -1, HotBlocks: 1})
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
	// Load every other block: block 1 leaves the hot set, buffers cycle.
	q := make([]byte, testBS)
	for b := int64(2); b < blocks; b++ {
		if _, err := r.ReadAt(ctx, q, b*testBS); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Settle(ctx); err != nil {
		t.Fatal(err)
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
