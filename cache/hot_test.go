package cache

import (
	"bytes"
	"context"
	"testing"
)

// The blocks loaded last answer reads from memory: a read of a hot block
// does not touch the data file (a corrupted byte there goes unnoticed and
// the loaded bytes are returned); once a block is no longer hot, it is read
// from the data file and verified as always.
func TestHotBlocks(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{HotBlocks: 2, ReadAheadBlocks: -1})
	defer closeCache(t, c)
	ctx := context.Background()
	size := int64(4 * testBS)
	src := newSource(40, int(size))
	key := Key{Path: "/hot"}
	read := func(off int64) []byte {
		t.Helper()
		p := make([]byte, 100)
		if _, err := c.ReadAt(ctx, key, size, p, off, src.load); err != nil {
			t.Fatal(err)
		}
		if want := src.data[off : off+100]; !bytes.Equal(p, want) {
			t.Fatalf("read at %d: wrong bytes", off)
		}
		return p
	}

	read(0) // loads block 0
	corrupt(t, dataFile(c, key, size), 10)
	read(0)
	if st := c.Stats(); st.Misses != 1 || st.HotHits != 1 || st.Hits != 1 || st.CorruptBlocks != 0 {
		t.Fatalf("after a hot read: %+v", st)
	}

	// Blocks 1 and 2 push block 0 out: its next read is from the data file,
	// which is verified, found corrupt, and the block loaded again.
	read(testBS)
	read(2 * testBS)
	src.reset()
	read(0)
	st := c.Stats()
	if st.CorruptBlocks != 1 || src.callsAt(0) != 1 {
		t.Fatalf("block 0 after it left the hot set: %+v, loads %v", st, src.offsets())
	}

	// An evicted block is not hot either: dropping block 0 (as eviction
	// does) makes the next read load it again.
	dropBlock(t, c, key, size, 0)
	src.reset()
	read(0)
	if src.callsAt(0) != 1 {
		t.Fatalf("dropped block 0 read without a load: loads %v", src.offsets())
	}

	// HotBlocks < 0 keeps none.
	c2 := openCache(t, t.TempDir(), Options{HotBlocks: -1})
	defer closeCache(t, c2)
	for range 2 {
		if _, err := c2.ReadAt(ctx, key, size, make([]byte, 100), 0, src.load); err != nil {
			t.Fatal(err)
		}
	}
	if st := c2.Stats(); st.HotHits != 0 || st.Hits != 1 {
		t.Fatalf("HotBlocks -1: %+v", st)
	}
}

// Stats.Blocks counts the blocks present in the cache files.
func TestStatsBlocks(t *testing.T) {
	c := openCache(t, t.TempDir(), Options{ReadAheadBlocks: -1})
	defer closeCache(t, c)
	size := int64(3*testBS + 10)
	src := newSource(41, int(size))
	key := Key{Path: "/count"}
	readAll(t, c, key, src, testBS)
	if st := c.Stats(); st.Blocks != 4 || st.BlockSize != testBS {
		t.Fatalf("after reading 4 blocks: Blocks %d, BlockSize %d", st.Blocks, st.BlockSize)
	}
	dropBlock(t, c, key, size, 1)
	if st := c.Stats(); st.Blocks != 3 {
		t.Fatalf("after dropping one: Blocks %d", st.Blocks)
	}
}

// dropBlock drops block b of the file key of size bytes, as eviction does.
func dropBlock(t *testing.T, c *Cache, key Key, size, b int64) {
	t.Helper()
	e := c.lookup(key, size, false)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := c.openFileLocked(e); err != nil {
		t.Fatal(err)
	}
	c.dropBlockLocked(e, b)
}
