package cache

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// ReadAt reads len(p) bytes at off of the file identified by key and size,
// from the cache where possible and through load otherwise. Like
// io.ReaderAt, it returns n < len(p) only with an error; a read that extends
// past size returns the bytes before size and io.EOF. Errors come from the
// loader or ctx; a local disk that cannot store a block (full, over quota,
// failing) never makes ReadAt fail.
func (c *Cache) ReadAt(ctx context.Context, key Key, size int64, p []byte, off int64, load Loader) (int, error) {
	if err := c.begin(); err != nil {
		return 0, err
	}
	defer c.ops.Done()
	if size < 0 {
		return 0, fmt.Errorf("%w: size %d", ErrInvalidArgument, size)
	}
	return c.readEntry(ctx, c.lookup(key, size, true), p, off, load, true)
}

// readEntry reads into p; see readEntryInto for whole.
func (c *Cache) readEntry(ctx context.Context, e *entry, p []byte, off int64, load Loader, whole bool) (int, error) {
	var res Result
	err := c.readEntryInto(ctx, e, p, off, load, whole, &res)
	n := res.N
	if len(res.bufs) > 0 {
		// Copy the bytes served from memory into p.
		pos := 0
		for _, s := range res.Slices {
			if len(s) > 0 && &s[0] != &p[pos] {
				copy(p[pos:], s)
			}
			pos += len(s)
		}
	}
	res.Release()
	return n, err
}

// A Result is the bytes of one read: slices of the caller's buffer (bytes
// read from a cache file) and of loaded blocks held in memory (by
// reference, not copied), in order, N bytes in all. The slices stay valid
// until Release.
type Result struct {
	Slices [][]byte
	N      int
	bufs   []*blockBuf
}

// Release drops the result's references to loaded blocks. The slices must
// not be used afterwards. It is safe to call more than once.
func (r *Result) Release() {
	for _, bb := range r.bufs {
		bb.unref()
	}
	r.bufs = nil
	r.Slices = nil
}

// Bytes returns the result's bytes as one slice: its only slice, or the
// slices copied into buf (which must hold N bytes).
func (r *Result) Bytes(buf []byte) []byte {
	if len(r.Slices) == 1 {
		return r.Slices[0]
	}
	n := 0
	for _, s := range r.Slices {
		n += copy(buf[n:], s)
	}
	return buf[:n]
}

// readEntryInto reads len(p) bytes at off into res: blocks held in memory
// by reference, blocks read from a cache file into p. On error res holds
// the bytes before the failing block. A block that must be loaded is loaded
// whole when whole is set (a streaming reader), else only in the pages the
// read needs (readPartial).
func (c *Cache) readEntryInto(ctx context.Context, e *entry, p []byte, off int64, load Loader, whole bool, res *Result) error {
	if off < 0 {
		return fmt.Errorf("%w: offset %d", ErrInvalidArgument, off)
	}
	if off >= e.size {
		return io.EOF
	}
	want := p
	if int64(len(p)) > e.size-off {
		want = p[:e.size-off]
	}
	n := 0
	for n < len(want) {
		pos := off + int64(n)
		b := pos / e.bs
		bOff := pos - b*e.bs
		m := int(min(int64(len(want)-n), e.blockLen(b)-bOff))
		bb, err := c.readBlock(ctx, e, b, bOff, want[n:n+m], load, whole)
		if err != nil {
			return err
		}
		if bb != nil {
			res.bufs = append(res.bufs, bb)
			res.Slices = append(res.Slices, bb.b[bOff:bOff+int64(m)])
		} else {
			res.Slices = append(res.Slices, want[n:n+m])
		}
		n += m
		res.N = n
	}
	c.closeIdleFiles()
	if len(want) < len(p) {
		return io.EOF
	}
	return nil
}

// readBlock serves the bytes at bOff of block b, len(dst) of them: from a
// loaded block in memory, returned with a reference for the caller, or
// read from the cache file into dst (nil is returned). A block that is
// nowhere is loaded whole if whole is set, else in part; a block already
// partly loaded is completed in part either way, so that no byte is
// loaded twice.
func (c *Cache) readBlock(ctx context.Context, e *entry, b, bOff int64, dst []byte, load Loader, whole bool) (*blockBuf, error) {
	for attempt := 0; ; attempt++ {
		if bb := c.hot.get(e, b); bb != nil {
			c.st.hotHits.Add(1)
			c.st.hits.Add(1)
			c.st.bytesFromCache.Add(int64(len(dst)))
			return bb, nil
		}
		if c.readCached(e, b, bOff, dst) {
			c.st.hits.Add(1)
			c.st.bytesFromCache.Add(int64(len(dst)))
			return nil, nil
		}
		if (!whole || c.hasPartial(e, b)) && !c.inFlight(e, b) {
			bb, err := c.readPartial(ctx, e, b, bOff, len(dst), load)
			if err != nil {
				return nil, err
			}
			c.st.misses.Add(1)
			return bb, nil
		}
		// The block may have been stored between the check and the load;
		// after a few rounds, load regardless.
		bb, err := c.fetch(ctx, e, b, load, attempt >= 2)
		if errors.Is(err, errPresent) {
			continue
		}
		if err != nil {
			return nil, err
		}
		c.st.misses.Add(1)
		return bb, nil
	}
}

// readCached copies block b's bytes at bOff into dst if the block is present
// and verified (verifying it first if needed). It reports false when the
// block is absent, or was bad and has been dropped.
func (c *Cache) readCached(e *entry, b, bOff int64, dst []byte) bool {
	e.mu.RLock()
	if e.removed || !e.present.get(b) {
		e.mu.RUnlock()
		return false
	}
	if e.f != nil && e.verified.get(b) {
		st, err := statFile(e.f)
		if err == nil && st.same(e.stat) {
			_, err := e.f.ReadAt(dst, b*e.bs+bOff)
			el := e.nodes[b]
			e.mu.RUnlock()
			if err == nil {
				c.touch(e, el)
				return true
			}
			return c.readCachedSlow(e, b, bOff, dst)
		}
	}
	e.mu.RUnlock()
	return c.readCachedSlow(e, b, bOff, dst)
}

// readCachedSlow is readCached under the write lock: it reopens the data
// file, notices changes made behind the cache's back and verifies the block.
func (c *Cache) readCachedSlow(e *entry, b, bOff int64, dst []byte) bool {
	e.mu.Lock()
	if e.removed || !e.present.get(b) {
		e.mu.Unlock()
		return false
	}
	if err := c.openFileLocked(e); err != nil {
		e.mu.Unlock()
		return false
	}
	c.checkStatLocked(e)
	if e.verified.get(b) {
		if _, err := e.f.ReadAt(dst, b*e.bs+bOff); err == nil {
			el := e.nodes[b]
			e.mu.Unlock()
			c.touch(e, el)
			return true
		}
		// An unreadable block is treated like a corrupt one.
	} else if c.verifyBlockLocked(e, b, dst, bOff) {
		el := e.nodes[b]
		e.mu.Unlock()
		c.touch(e, el)
		return true
	}
	c.st.corrupt.Add(1)
	c.dropBlockLocked(e, b)
	e.mu.Unlock()
	_ = c.flushIndex(e, false)
	return false
}

// verifyBlockLocked reads block b whole and checks its CRC; on success it
// marks the block verified and, if dst is not nil, copies the bytes at bOff
// into it. e.mu must be held for writing and e.f open.
func (c *Cache) verifyBlockLocked(e *entry, b int64, dst []byte, bOff int64) bool {
	bufp := c.getBuf()
	defer c.putBuf(bufp)
	blk := (*bufp)[:e.blockLen(b)]
	if _, err := e.f.ReadAt(blk, b*e.bs); err != nil {
		return false
	}
	if crc32.Checksum(blk, castagnoli) != e.crc[b] {
		return false
	}
	e.verified.set(b)
	e.metaDirty.Store(true)
	if dst != nil {
		copy(dst, blk[bOff:])
	}
	return true
}

// errPresent tells readBlock that the block it wants to load is in the cache
// after all.
var errPresent = errors.New("cache: block present")

type flightKey struct {
	e *entry
	b int64
}

// flight is one load in progress into buf, which the flight holds a
// reference to while it is registered; err is set before done closes.
// settled closes once the flight is gone from Cache.flights: its block is
// stored, dropped, bypassed or failed (Settle waits for it).
type flight struct {
	done    chan struct{}
	settled chan struct{}
	buf     *blockBuf
	err     error
}

// fetch loads block b of e through load and queues it to be stored in the
// cache, with at most one load per block in progress: concurrent callers
// wait for it. It returns the block with a reference for the caller. If the
// leader's load failed because its context ended, a waiter whose context is
// still live retries. Unless force is set, fetch returns errPresent when
// the block is in the cache.
func (c *Cache) fetch(ctx context.Context, e *entry, b int64, load Loader, force bool) (*blockBuf, error) {
	k := flightKey{e, b}
	for {
		c.flightMu.Lock()
		if f, ok := c.flights[k]; ok {
			// The flight holds its reference while registered.
			bb := f.buf.ref()
			c.flightMu.Unlock()
			c.flightWaiters.Add(1)
			select {
			case <-f.done:
			case <-ctx.Done():
				c.flightWaiters.Add(-1)
				bb.unref()
				return nil, fmt.Errorf("cache: wait for load: %w", ctx.Err())
			}
			c.flightWaiters.Add(-1)
			if f.err != nil {
				bb.unref()
				if isContextErr(f.err) && ctx.Err() == nil {
					continue
				}
				return nil, f.err
			}
			return bb, nil
		}
		f := &flight{done: make(chan struct{}), settled: make(chan struct{}), buf: c.getBlock(e.blockLen(b))}
		c.flights[k] = f
		c.flightMu.Unlock()

		if !force && e.isPresent(b) {
			f.err = errPresent
		} else {
			f.err = c.loadBlock(ctx, e, b, load, f.buf.b)
		}
		if f.err != nil {
			c.settle(k, f)
			close(f.done)
			f.buf.unref()
			return nil, f.err
		}
		// The waiters have their data as soon as it is loaded; the flight
		// stays registered until the block is stored (or the store
		// dropped), so that a reader coming meanwhile takes the loaded
		// data too instead of loading the block again.
		c.hot.put(e, b, f.buf)
		bb := f.buf.ref()
		close(f.done)
		c.queueStore(e, b, f)
		return bb, nil
	}
}

// settle unregisters flight f of k.
func (c *Cache) settle(k flightKey, f *flight) {
	c.flightMu.Lock()
	delete(c.flights, k)
	c.flightMu.Unlock()
	close(f.settled)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func (c *Cache) inFlight(e *entry, b int64) bool {
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	_, ok := c.flights[flightKey{e, b}]
	return ok
}

func (e *entry) isPresent(b int64) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return !e.removed && e.present.get(b)
}

// loadBlock calls the loader for block b, into dst (the block's length).
func (c *Cache) loadBlock(ctx context.Context, e *entry, b int64, load Loader, dst []byte) error {
	off, n := b*e.bs, len(dst)
	c.st.loaderCalls.Add(1)
	got, err := load(ctx, off, dst)
	if err != nil {
		return fmt.Errorf("cache: load %q block %d: %w", e.key.Path, b, err)
	}
	if got < n {
		return fmt.Errorf("%w: %q block %d: got %d of %d bytes", ErrShortLoad, e.key.Path, b, got, n)
	}
	c.st.bytesLoaded.Add(int64(n))
	return nil
}

// storeJob is a loaded block waiting to be stored; it carries the flight's
// reference to the block's buffer.
type storeJob struct {
	e *entry
	b int64
	f *flight
}

// queueStore hands the loaded block of flight f to the store workers, or,
// when the queue is full (the disk falls behind the loads), drops it: the
// block is then simply not cached, and Stats.StoreDrops counts it. Either
// way the flight's reference and registration end with the store.
func (c *Cache) queueStore(e *entry, b int64, f *flight) {
	if c.storeInline {
		c.store(e, b, f.buf.b)
		c.settle(flightKey{e, b}, f)
		f.buf.unref()
		return
	}
	select {
	case c.storeQ <- storeJob{e, b, f}:
	default:
		c.st.storeDrops.Add(1)
		c.settle(flightKey{e, b}, f)
		f.buf.unref()
	}
}

// storeWorker stores queued blocks until the queue is closed.
func (c *Cache) storeWorker() {
	defer c.storeWG.Done()
	for j := range c.storeQ {
		if h := c.beforeStore; h != nil {
			h()
		}
		c.store(j.e, j.b, j.f.buf.b)
		c.settle(flightKey{j.e, j.b}, j.f)
		j.f.buf.unref()
	}
}

// store writes block b of e to the cache if there is room; otherwise, or if
// the write fails, it counts a bypass. It never fails.
func (c *Cache) store(e *entry, b int64, data []byte) {
	// Registered before the removed check; see removeEntryLocked.
	e.writers.Add(1)
	stored := false
	defer func() {
		e.writers.Add(-1)
		if !stored {
			c.bypass(e)
		}
	}()
	e.mu.RLock()
	removed, present := e.removed, e.present.get(b)
	npresent := e.count
	e.mu.RUnlock()
	if removed || present {
		stored = present // already there is not a bypass
		return
	}
	// Room for the block, its index growing, and a temporary copy of the
	// index while it is rewritten.
	need := roundUp(int64(len(data))) + 2*roundUp(indexSize(len(e.key.Path), len(e.key.Fingerprint), e.nblocks, npresent+1)) + pageSize
	if !c.reserve(need) {
		return
	}
	stored = c.storeReserved(e, b, data)
	c.unreserve(need)
	if !stored {
		return
	}
	_ = c.flushIndex(e, false)
	// The filesystem may have allocated more than reserved (extent blocks).
	c.trim()
}

// storeReserved writes the block once space is reserved; it reports whether
// the block is now in the cache.
func (c *Cache) storeReserved(e *entry, b int64, data []byte) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return false
	}
	if e.present.get(b) {
		return true
	}
	if err := c.openFileLocked(e); err != nil {
		return false
	}
	c.checkStatLocked(e)
	if _, err := c.writeAt(e.f, data, b*e.bs); err != nil {
		// ENOSPC, EDQUOT or an I/O error: give back what was written.
		_ = punchHole(e.f, b*e.bs, e.blockLen(b))
		c.recordStatLocked(e)
		return false
	}
	e.crc[b] = crc32.Checksum(data, castagnoli)
	e.present.set(b)
	e.verified.set(b)
	e.count++
	e.gen++
	c.lruMu.Lock()
	e.nodes[b] = c.lru.l.PushFront(blockRef{e, b})
	c.lruMu.Unlock()
	c.recordStatLocked(e)
	return true
}

// bypass counts a block that could not be stored, and forgets e if it holds
// nothing, so that a full disk does not accumulate empty entries.
func (c *Cache) bypass(e *entry) {
	c.st.bypasses.Add(1)
	c.mu.Lock()
	c.removeEntryLocked(e, true)
	c.mu.Unlock()
}

// Put stores data, the content of the file at off, in the cache, for example
// the blocks of a file just written and uploaded, so that it reads warm. off
// must be a multiple of the block size and data must cover whole blocks (the
// last one may end at size). Blocks already present are left alone. A full
// disk is not an error: the blocks are simply not cached.
func (c *Cache) Put(key Key, size, off int64, data []byte) error {
	if err := c.begin(); err != nil {
		return err
	}
	defer c.ops.Done()
	bs := c.opts.BlockSize
	end := off + int64(len(data))
	if size < 0 || off < 0 || off%bs != 0 || end > size || (int64(len(data))%bs != 0 && end != size) {
		return fmt.Errorf("%w: put %d bytes at %d of a %d-byte file with %d-byte blocks", ErrInvalidArgument, len(data), off, size, bs)
	}
	e := c.lookup(key, size, true)
	for pos := off; pos < end; pos += bs {
		b := pos / bs
		c.store(e, b, data[pos-off:pos-off+e.blockLen(b)])
	}
	c.closeIdleFiles()
	return nil
}
