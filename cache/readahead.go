package cache

import (
	"context"
	"fmt"
	"sync"
)

// seqWindow is how far a read may start from where the previous one ended
// and still count as sequential: the kernel issues a sequential reader's
// requests concurrently and they may arrive slightly out of order.
const seqWindow = 1 << 20

// streamBlocks is how many blocks a run of sequential reads must cover
// before its reader counts as streaming: blocks are then loaded whole, and
// read ahead. Below it (a footer, a column chunk of a Parquet or ORC file)
// a read loads the pages it asks for and nothing more.
const streamBlocks = 4

// A Reader reads one file through the cache on behalf of one open handle.
// It follows the run of sequential reads the handle is making. Until the
// run covers streamBlocks blocks, the reader is taken for a random one: a
// block it needs is loaded only in the pages it reads (partials). Past
// that the reader streams: blocks are loaded whole, and the blocks ahead of
// the reader are loaded in the background, a window that grows with the
// run (a block ahead for every two blocks read) up to
// Options.ReadAheadBlocks, at most Options.MaxBackgroundLoads at a time
// for the whole cache. A Reader is safe for concurrent use.
type Reader struct {
	c    *Cache
	key  Key
	size int64
	load Loader

	mu       sync.Mutex
	e        *entry
	next     int64 // where the previous read ended
	started  bool  // a read was made
	runStart int64 // where the current run of sequential reads started
	ahead    int64 // first block not yet considered for read-ahead
}

// NewReader returns a Reader of the file identified by key and size that
// loads misses through load.
func (c *Cache) NewReader(key Key, size int64, load Loader) *Reader {
	return &Reader{c: c, key: key, size: size, load: load}
}

// ReadAt is Cache.ReadAt for the Reader's file, with read-ahead.
func (r *Reader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	c := r.c
	if err := c.begin(); err != nil {
		return 0, err
	}
	defer c.ops.Done()
	e, whole, from, to, err := r.start(off, len(p))
	if err != nil {
		return 0, err
	}
	n, err := c.readEntry(ctx, e, p, off, r.load, whole)
	r.finish(e, from, to)
	return n, err
}

// Read is ReadAt without copying what is in memory: the Result holds the
// blocks loaded last by reference and the bytes read from cache files in
// p. The caller must Release it. Like ReadAt it fails with io.EOF for a
// read past the end (Result.N is then short).
func (r *Reader) Read(ctx context.Context, p []byte, off int64) (Result, error) {
	c := r.c
	var res Result
	if err := c.begin(); err != nil {
		return res, err
	}
	defer c.ops.Done()
	e, whole, from, to, err := r.start(off, len(p))
	if err != nil {
		return res, err
	}
	err = c.readEntryInto(ctx, e, p, off, r.load, whole, &res)
	r.finish(e, from, to)
	return res, err
}

// start looks the entry up and records a read of n bytes at off; it
// returns whether the reader streams (blocks are loaded whole) and the
// blocks [from, to) to read ahead once the read is served (finish).
func (r *Reader) start(off int64, n int) (e *entry, whole bool, from, to int64, err error) {
	c := r.c
	if r.size < 0 {
		return nil, false, 0, 0, fmt.Errorf("%w: size %d", ErrInvalidArgument, r.size)
	}
	end := off + int64(n)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.e == nil || r.e.isRemoved() {
		r.e = c.lookup(r.key, r.size, true)
	}
	e = r.e
	window := min(int64(seqWindow), c.opts.BlockSize)
	if d := off - r.next; !r.started || d < -window || d > window {
		r.runStart = off
		r.ahead = 0
	}
	r.started = true
	r.next = end
	run := end - r.runStart
	whole = run >= streamBlocks*e.bs
	if whole && c.opts.ReadAheadBlocks > 0 && n > 0 && end <= e.size {
		// The blocks after the one holding the last byte read, a window
		// growing with the run.
		window := min(int64(c.opts.ReadAheadBlocks), max(1, run/(2*e.bs)))
		last := (end - 1) / e.bs
		from = max(last+1, r.ahead)
		to = min(last+1+window, e.nblocks)
	}
	return e, whole, from, to, nil
}

// finish starts the read-ahead of blocks [from, to) that start decided.
func (r *Reader) finish(e *entry, from, to int64) {
	if from >= to {
		return
	}
	last := r.c.readAhead(e, from, to, r.load)
	r.mu.Lock()
	if last > r.ahead && r.e == e {
		r.ahead = last
	}
	r.mu.Unlock()
}

// readAhead starts background loads of the absent blocks in [from, to) and
// returns the first block it did not consider (it stops when the
// background slots are full).
func (c *Cache) readAhead(e *entry, from, to int64, load Loader) int64 {
	for b := from; b < to; b++ {
		if c.inFlight(e, b) || e.maybePresent(b) || c.hasPartial(e, b) {
			continue
		}
		select {
		case c.bgSem <- struct{}{}:
		default:
			return b
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			<-c.bgSem
			return b
		}
		c.bg.Add(1)
		c.mu.Unlock()
		c.st.readAheads.Add(1)
		go func(b int64) {
			defer c.bg.Done()
			defer func() { <-c.bgSem }()
			if bb, err := c.fetch(c.bgCtx, e, b, load, false); err == nil {
				bb.unref()
			}
		}(b)
	}
	return to
}

func (e *entry) isRemoved() bool { return e.gone.Load() }

// maybePresent is isPresent without waiting: while a store holds the entry
// it answers false, and the background load finds out.
func (e *entry) maybePresent(b int64) bool {
	if !e.mu.TryRLock() {
		return false
	}
	defer e.mu.RUnlock()
	return !e.removed && e.present.get(b)
}
