package cache

import (
	"fmt"
	"io"
	"sync"

	"golang.org/x/sys/unix"
)

// A Passthrough is a read-only open file on a wholly cached, verified entry,
// for the FUSE layer to hand to the kernel (FUSE passthrough). The entry is
// pinned until Release: eviction leaves it alone, and Invalidate unlinks it
// without touching its content, so the file keeps reading the complete data
// it was verified with.
//
// The descriptor is shared: the Passthroughs of one entry, and the entry
// itself between them for as long as its data file stays open (roFile), so
// that opening a file again costs one fstat rather than an open, stats and a
// close.
type Passthrough struct {
	c    *Cache
	e    *entry
	ro   *roFile
	fd   int
	once sync.Once
}

// roFile is a read-only descriptor of an entry's data file. Its references
// are the entry's own (while entry.ro names it) and one per Passthrough;
// refs is guarded by the entry's mu, and the descriptor is closed when it
// reaches zero. The entry drops its reference whenever it closes its data
// file (closeFileLocked: idle files past Options.MaxOpenFiles, removal,
// Close), so kept descriptors are bounded as the open data files are, one
// each, besides those of Passthroughs not yet released.
type roFile struct {
	fd   int
	refs int
}

// unrefLocked drops one reference to r, closing the descriptor at the
// last. The entry's mu is held for writing.
func (r *roFile) unrefLocked() {
	r.refs--
	if r.refs == 0 {
		_ = unix.Close(r.fd)
		r.fd = -1
	}
}

// dropROLocked drops the entry's reference to its read-only descriptor.
// e.mu is held for writing.
func (e *entry) dropROLocked() {
	if e.ro != nil {
		e.ro.unrefLocked()
		e.ro = nil
	}
}

// Fd returns the descriptor of the cache file, open for reading. It stays
// valid until Release.
func (p *Passthrough) Fd() int { return p.fd }

// ReadAt reads from the cache file as io.ReaderAt does.
func (p *Passthrough) ReadAt(b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Pread(p.fd, b[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("cache: read passthrough file: %w", err)
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

// Release drops the handle's descriptor (closed once nothing shares it) and
// unpins the entry. Calling it again does nothing. It reports no error: a
// read-only descriptor has nothing to lose at close.
func (p *Passthrough) Release() error {
	p.once.Do(func() {
		e := p.e
		e.mu.Lock()
		p.ro.unrefLocked()
		e.pins--
		if e.removed && e.pins == 0 {
			p.c.used.Add(-e.dataAlloc)
			e.dataAlloc = 0
		}
		e.mu.Unlock()
		p.c.touchAll(e)
	})
	return nil
}

// OpenComplete returns the cache file of (key, size) for passthrough reads if
// every block is present and verified. Blocks not verified since the file was
// last known unchanged (after a restart that was not clean, or once its size,
// mtime, ctime or inode moved) are verified first; a bad block is dropped
// and counted, and OpenComplete then reports false. ok is false, with a nil
// error, whenever the file is not wholly cached; the caller then reads
// through ReadAt. The caller must Release the returned Passthrough.
//
// A file opened before, whose descriptor the entry kept, costs one fstat of
// that descriptor: it shows any change made to the data file since its
// blocks were verified.
func (c *Cache) OpenComplete(key Key, size int64) (p *Passthrough, ok bool, err error) {
	if err := c.begin(); err != nil {
		return nil, false, err
	}
	defer c.ops.Done()
	if size < 0 {
		return nil, false, fmt.Errorf("%w: size %d", ErrInvalidArgument, size)
	}
	e := c.lookup(key, size, size == 0)
	if e == nil {
		return nil, false, nil
	}
	// Every block verified and the file unchanged since: nothing to verify.
	p, ok, err = c.pin(e)
	for attempt := 0; !ok && err == nil && attempt < 3; attempt++ {
		if !c.verifyAll(e) {
			return nil, false, nil
		}
		p, ok, err = c.pin(e)
	}
	if !ok || err != nil {
		return nil, false, err
	}
	c.st.passthrus.Add(1)
	c.touchAll(e)
	// A scan that only opens wholly cached files never reads through the
	// cache, which is where idle data files are otherwise closed: keep them
	// (and the descriptors kept with them) within Options.MaxOpenFiles here.
	c.closeIdleFiles()
	return p, true, nil
}

// verifyAll verifies every block of e that needs it, one block per lock hold
// so that readers of other blocks are not stalled. It reports false if a
// block is absent or bad (bad blocks are dropped).
func (c *Cache) verifyAll(e *entry) bool {
	for b := int64(0); b < e.nblocks || b == 0; b++ {
		e.mu.Lock()
		if e.removed || (e.nblocks > 0 && !e.present.get(b)) {
			e.mu.Unlock()
			return false
		}
		if err := c.openFileLocked(e); err != nil {
			e.mu.Unlock()
			return false
		}
		c.checkStatLocked(e)
		if e.nblocks == 0 || e.verified.get(b) {
			e.mu.Unlock()
			continue
		}
		if !c.verifyBlockLocked(e, b, nil, 0) {
			c.st.corrupt.Add(1)
			c.dropBlockLocked(e, b)
			e.mu.Unlock()
			_ = c.flushIndex(e, false)
			return false
		}
		e.mu.Unlock()
	}
	return true
}

// pin pins e and returns a Passthrough on its read-only descriptor (the
// one the entry kept, else one opened now), if e is whole, every block is
// verified and the descriptor's file is the one verified, unchanged (its
// stat is e.stat). ok false with a nil error means "verify again".
func (c *Cache) pin(e *entry) (*Passthrough, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed || e.count != e.nblocks || e.f == nil {
		return nil, false, nil
	}
	for b := int64(0); b < e.nblocks; b++ {
		if !e.verified.get(b) {
			return nil, false, nil
		}
	}
	if ro := e.ro; ro != nil {
		st, err := statFd(ro.fd)
		if err != nil || !st.same(e.stat) {
			// Changed since it was verified: verify again, and open anew.
			e.dropROLocked()
			return nil, false, nil
		}
	} else {
		fd, err := openReadOnly(c.dataPath(e.id))
		if err != nil {
			return nil, false, fmt.Errorf("cache: open for passthrough: %w", err)
		}
		st, err := statFd(fd)
		if err != nil || !st.same(e.stat) {
			// Replaced or changed since it was verified.
			_ = unix.Close(fd)
			return nil, false, err
		}
		e.ro = &roFile{fd: fd, refs: 1}
	}
	e.ro.refs++
	e.pins++
	return &Passthrough{c: c, e: e, ro: e.ro, fd: e.ro.fd}, true, nil
}

// touchAll moves every block of e to the front of the LRU: reads through a
// passthrough file do not pass through the cache.
func (c *Cache) touchAll(e *entry) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	e.atime.Store(now())
	e.metaDirty.Store(true)
	c.lruMu.Lock()
	defer c.lruMu.Unlock()
	for _, el := range e.nodes {
		if el != nil {
			c.lru.l.MoveToFront(el)
		}
	}
}
