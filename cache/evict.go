package cache

// Eviction keeps the bytes allocated under the cache directory within
// Options.Capacity. A writer reserves the space it may allocate before it
// writes (reserve), evicting least recently used blocks until the reservation
// fits; the real allocation, read back with fstat, replaces the reservation
// afterwards, and trim evicts again if the filesystem allocated more than
// reserved. Blocks of pinned entries (handed out by OpenComplete) are never
// evicted: they are moved to the front of the LRU instead.

// reserve sets aside n bytes for a write, evicting as needed. It reports
// false when the space cannot be found; nothing is reserved then.
func (c *Cache) reserve(n int64) bool {
	c.evictMu.Lock()
	ok, dirty := c.evictUntil(n)
	if ok {
		c.reserved.Add(n)
	}
	c.evictMu.Unlock()
	c.flushEvicted(dirty)
	return ok
}

// unreserve gives back a reservation made by reserve.
func (c *Cache) unreserve(n int64) {
	c.reserved.Add(-n)
}

// trim evicts until usage is within capacity.
func (c *Cache) trim() {
	c.evictMu.Lock()
	_, dirty := c.evictUntil(0)
	c.evictMu.Unlock()
	c.flushEvicted(dirty)
}

// evictUntil evicts blocks until used+reserved+n fits the capacity. It
// returns whether it does, and the entries whose index must be rewritten.
// c.evictMu must be held.
func (c *Cache) evictUntil(n int64) (bool, map[*entry]bool) {
	return c.evictTo(c.opts.Capacity, n)
}

// evictTo is evictUntil with limit in place of the capacity.
func (c *Cache) evictTo(limit, n int64) (bool, map[*entry]bool) {
	var dirty map[*entry]bool
	skipped := 0
	for c.used.Load()+c.reserved.Load()+n > limit {
		e, evicted, more := c.evictOne()
		if !more {
			return false, dirty
		}
		if !evicted {
			// Pinned: it went to the front. Give up after a full lap.
			skipped++
			c.lruMu.Lock()
			lap := c.lru.l.Len()
			c.lruMu.Unlock()
			if skipped > lap {
				return false, dirty
			}
			continue
		}
		if dirty == nil {
			dirty = make(map[*entry]bool)
		}
		dirty[e] = true
	}
	return true, dirty
}

// evictOne evicts the least recently used block. more is false when the LRU
// is empty; evicted is false when the block belonged to a pinned entry.
func (c *Cache) evictOne() (e *entry, evicted, more bool) {
	for {
		c.lruMu.Lock()
		el := c.lru.l.Back()
		if el == nil {
			c.lruMu.Unlock()
			return nil, false, false
		}
		ref := el.Value.(blockRef)
		c.lruMu.Unlock()
		e = ref.e

		e.mu.Lock()
		if e.removed || e.nodes[ref.b] != el {
			// Raced with removal; the element is gone or going.
			e.mu.Unlock()
			c.lruMu.Lock()
			c.lru.l.Remove(el)
			c.lruMu.Unlock()
			continue
		}
		if e.pins > 0 {
			c.lruMu.Lock()
			c.lru.l.MoveToFront(el)
			c.lruMu.Unlock()
			e.mu.Unlock()
			return e, false, true
		}
		if c.noPunch.Load() {
			// Without hole punching only whole files can be freed.
			e.mu.Unlock()
			c.evictEntry(e)
			return e, true, true
		}
		if err := c.openFileLocked(e); err != nil {
			e.mu.Unlock()
			c.evictEntry(e)
			return e, true, true
		}
		c.dropBlockLocked(e, ref.b)
		empty := e.count == 0
		e.mu.Unlock()
		c.st.evictions.Add(1)
		if empty {
			c.mu.Lock()
			c.removeEntryLocked(e, true)
			c.mu.Unlock()
			c.refreshDirUsage()
		}
		return e, true, true
	}
}

// evictEntry removes a whole entry, counting its blocks as evictions.
func (c *Cache) evictEntry(e *entry) {
	e.mu.RLock()
	n := e.count
	e.mu.RUnlock()
	c.mu.Lock()
	c.removeEntryLocked(e, false)
	c.mu.Unlock()
	c.st.evictions.Add(uint64(n))
	c.refreshDirUsage()
}

// flushEvicted rewrites the indexes of entries that lost blocks.
func (c *Cache) flushEvicted(dirty map[*entry]bool) {
	for e := range dirty {
		_ = c.flushIndex(e, false)
	}
}
