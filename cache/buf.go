package cache

import (
	"sync"
	"sync/atomic"
)

// blockBuf holds one loaded block in a buffer of the cache's pool. It is
// shared by reference: the load in flight, the hot blocks, a queued store
// and every read result that serves its bytes each hold one reference, and
// the buffer goes back to the pool when the last is dropped. A reference is
// only ever taken from a holder that still has its own (under the lock that
// guards the holder), so a buffer is never reused while anyone reads it. A
// reference that is never dropped (a reply the FUSE server suppressed) only
// costs the pool that buffer: the garbage collector frees it.
type blockBuf struct {
	b    []byte // the block's bytes; len is the block's length
	full *[]byte
	refs atomic.Int32
	pool *sync.Pool
}

// getBlock returns a buffer of n bytes (at most the block size) from the
// pool, with one reference.
func (c *Cache) getBlock(n int64) *blockBuf {
	p := c.getBuf()
	bb := &blockBuf{b: (*p)[:n], full: p, pool: &c.bufs}
	bb.refs.Store(1)
	return bb
}

// ref takes one more reference.
func (bb *blockBuf) ref() *blockBuf {
	if bb.refs.Add(1) <= 1 {
		panic("cache: reference to a released block buffer")
	}
	return bb
}

// unref drops one reference; the last returns the buffer to the pool.
func (bb *blockBuf) unref() {
	switch n := bb.refs.Add(-1); {
	case n == 0:
		bb.pool.Put(bb.full)
		bb.full, bb.b = nil, nil
	case n < 0:
		panic("cache: block buffer released twice")
	}
}

func (c *Cache) getBuf() *[]byte  { return c.bufs.Get().(*[]byte) }
func (c *Cache) putBuf(p *[]byte) { c.bufs.Put(p) }
