package cache

import (
	"fmt"
	"os"
	"sync"
)

// A Passthrough is a read-only open file on a wholly cached, verified entry,
// for the FUSE layer to hand to the kernel (FUSE passthrough). The entry is
// pinned until Release: eviction leaves it alone, and Invalidate unlinks it
// without touching its content, so the file keeps reading the complete data
// it was verified with.
type Passthrough struct {
	c    *Cache
	e    *entry
	f    *os.File
	once sync.Once
}

// File returns the open cache file. It stays valid until Release.
func (p *Passthrough) File() *os.File { return p.f }

// Release closes the file and unpins the entry. Calling it again does
// nothing.
func (p *Passthrough) Release() error {
	var err error
	p.once.Do(func() {
		err = p.f.Close()
		e := p.e
		e.mu.Lock()
		e.pins--
		if e.removed && e.pins == 0 {
			p.c.used.Add(-e.dataAlloc)
			e.dataAlloc = 0
		}
		e.mu.Unlock()
		p.c.touchAll(e)
		if err != nil {
			err = fmt.Errorf("cache: release passthrough file: %w", err)
		}
	})
	return err
}

// OpenComplete returns the cache file of (key, size) for passthrough reads if
// every block is present and verified. Blocks not verified since the file was
// last known unchanged (after a restart that was not clean, or once its size,
// mtime, ctime or inode moved) are verified first; a bad block is dropped
// and counted, and OpenComplete then reports false. ok is false, with a nil
// error, whenever the file is not wholly cached; the caller then reads
// through ReadAt. The caller must Release the returned Passthrough.
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
	for attempt := 0; attempt < 3; attempt++ {
		if !c.verifyAll(e) {
			return nil, false, nil
		}
		p, ok, err := c.pin(e)
		if ok || err != nil {
			if ok {
				c.st.passthrus.Add(1)
				c.touchAll(e)
			}
			return p, ok, err
		}
	}
	return nil, false, nil
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

// pin opens the data file read-only and pins e, if e is still whole,
// verified and unchanged. ok false with a nil error means "verify again".
func (c *Cache) pin(e *entry) (*Passthrough, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed || e.count != e.nblocks || e.f == nil {
		return nil, false, nil
	}
	c.checkStatLocked(e)
	for b := int64(0); b < e.nblocks; b++ {
		if !e.verified.get(b) {
			return nil, false, nil
		}
	}
	f, err := os.Open(c.dataPath(e.id))
	if err != nil {
		return nil, false, fmt.Errorf("cache: open for passthrough: %w", err)
	}
	st, err := statFile(f)
	if err != nil || !st.same(e.stat) {
		// Replaced between the check and the open.
		f.Close()
		return nil, false, err
	}
	e.pins++
	return &Passthrough{c: c, e: e, f: f}, true, nil
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
