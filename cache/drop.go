package cache

import (
	"context"
	"fmt"
)

// Emptying the cache on request (an operator's "drop the cache", or "shrink
// it to SIZE") and waiting for the blocks being loaded to be stored. Both
// are safe with readers running: a reader of a dropped entry finds it
// removed and loads its blocks again (into a new entry), a file handed out
// by OpenComplete keeps its content until released, and a block whose load
// was in progress may be stored after the drop returns.

// DropResult says what Drop or Shrink removed.
type DropResult struct {
	// Entries is the number of files removed from the cache (Shrink
	// removes an entry whose last block it evicts).
	Entries int
	// Blocks is the number of blocks removed.
	Blocks int64
	// Used is the cache's usage afterwards, in bytes.
	Used int64
}

// DropMatching removes every entry whose key match accepts, whatever its
// size: every cached file of a mount, or of a directory in it. The entry map
// is locked for one entry at a time, so readers of other files are not
// stalled by a large drop.
func (c *Cache) DropMatching(match func(Key) bool) (DropResult, error) {
	if err := c.begin(); err != nil {
		return DropResult{}, err
	}
	defer c.ops.Done()
	c.mu.Lock()
	var victims []*entry
	for _, e := range c.entries {
		if match(e.key) {
			victims = append(victims, e)
		}
	}
	c.mu.Unlock()
	var res DropResult
	for _, e := range victims {
		c.mu.Lock()
		removed, blocks, _ := c.removeEntryLocked(e, false)
		c.mu.Unlock()
		if removed {
			res.Entries++
			res.Blocks += blocks
		}
	}
	if res.Entries > 0 {
		c.refreshDirUsage()
	}
	res.Used = c.used.Load()
	return res, nil
}

// Shrink evicts least recently used blocks until the cache uses at most
// target bytes, or holds no block (the directory itself takes some space).
// The capacity is unchanged: the cache grows again as files are read. It
// reports ok false when blocks of files handed out by OpenComplete (which
// are not evicted) keep usage above target.
func (c *Cache) Shrink(target int64) (res DropResult, ok bool, err error) {
	if target < 0 {
		return DropResult{}, false, fmt.Errorf("%w: shrink to %d bytes", ErrInvalidArgument, target)
	}
	if err := c.begin(); err != nil {
		return DropResult{}, false, err
	}
	defer c.ops.Done()
	c.mu.Lock()
	entriesBefore := len(c.entries)
	c.mu.Unlock()
	evictionsBefore := c.st.evictions.Load()
	c.evictMu.Lock()
	ok, dirty := c.evictTo(target, 0)
	if !ok {
		c.lruMu.Lock()
		ok = c.lru.l.Len() == 0
		c.lruMu.Unlock()
	}
	c.evictMu.Unlock()
	c.flushEvicted(dirty)
	c.mu.Lock()
	entriesAfter := len(c.entries)
	c.mu.Unlock()
	// Counted from the cache's figures: loads running meanwhile may add to
	// them, so the result is what the caller sees, not an exact account.
	res = DropResult{
		Entries: max(0, entriesBefore-entriesAfter),
		Blocks:  int64(c.st.evictions.Load() - evictionsBefore),
		Used:    c.used.Load(),
	}
	return res, ok, nil
}

// Settle waits until every block load in progress when it is called has
// finished: its block stored in the cache (or not, for a load that failed
// or a block that could not be stored). A reader is handed a block before it
// is stored, so the cache's figures lag the reads that fill it; after the
// reads of a whole file return, Settle returns once every block they loaded
// is counted. It returns the error of ctx if ctx ends first.
func (c *Cache) Settle(ctx context.Context) error {
	if err := c.begin(); err != nil {
		return err
	}
	defer c.ops.Done()
	c.flightMu.Lock()
	waits := make([]chan struct{}, 0, len(c.flights))
	for _, f := range c.flights {
		waits = append(waits, f.settled)
	}
	c.flightMu.Unlock()
	for _, ch := range waits {
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("cache: wait for loads to be stored: %w", ctx.Err())
		}
	}
	return nil
}
