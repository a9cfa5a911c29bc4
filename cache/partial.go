package cache

import (
	"container/list"
	"context"
	"fmt"
	"sync"
)

// partPage is the unit in which a random reader's ranges are loaded: a
// read asks for its bytes rounded out to whole pages of the block, and no
// more.
const partPage = 4096

// maxPartials bounds the blocks held partly loaded in memory.
const maxPartials = 16

// partials are blocks that random readers loaded in part: each read of a
// reader that is not streaming loads only the pages it needs (missing
// ones; pages loaded by one read serve the next), into a buffer of the
// block's size. A block whose pages have all been loaded this way is
// complete: it joins the hot blocks and is queued to be stored like a
// loaded block, so a file read in scattered ranges that end up covering it
// is still cached whole, and no byte was fetched twice. The least recently
// created partial block beyond maxPartials is forgotten (its pages were
// served; only the chance to cache it is lost).
type partials struct {
	mu sync.Mutex // guards m and l (leaf, taken before partial.mu)
	m  map[flightKey]*partial
	l  list.List // of *partial, newest at the front
}

// partial is one partly loaded block. bb holds a reference for the
// partials map while the block is in it.
type partial struct {
	k       flightKey
	bb      *blockBuf
	el      *list.Element // in partials.l while in the map
	mu      sync.Mutex    // guards filled and loading
	cond    sync.Cond     // signalled when loading pages settle
	filled  bitset        // pages loaded
	loading bitset        // pages some read is loading
	npages  int64
}

func (ps *partials) init() { ps.m = make(map[flightKey]*partial); ps.l.Init() }

// get returns block b of e's partial block, creating it, and a reference
// to its buffer for the caller.
func (c *Cache) getPartial(e *entry, b int64) (*partial, *blockBuf) {
	ps := &c.parts
	k := flightKey{e, b}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p, ok := ps.m[k]; ok {
		return p, p.bb.ref()
	}
	n := e.blockLen(b)
	np := (n + partPage - 1) / partPage
	p := &partial{k: k, bb: c.getBlock(n), filled: newBitset(np), loading: newBitset(np), npages: np}
	p.cond.L = &p.mu
	p.el = ps.l.PushFront(p)
	ps.m[k] = p
	for ps.l.Len() > maxPartials {
		ps.removeLocked(ps.l.Back().Value.(*partial))
	}
	return p, p.bb.ref()
}

// hasPartial reports whether block b of e is partly loaded.
func (c *Cache) hasPartial(e *entry, b int64) bool {
	c.parts.mu.Lock()
	defer c.parts.mu.Unlock()
	_, ok := c.parts.m[flightKey{e, b}]
	return ok
}

// removeLocked takes p out of the map, dropping the map's reference.
func (ps *partials) removeLocked(p *partial) {
	if ps.m[p.k] != p {
		return
	}
	delete(ps.m, p.k)
	ps.l.Remove(p.el)
	p.bb.unref()
}

// forget drops every partial block of e (its content changed or it went).
func (ps *partials) forget(e *entry) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for el := ps.l.Front(); el != nil; {
		next := el.Next()
		if p := el.Value.(*partial); p.k.e == e {
			ps.removeLocked(p)
		}
		el = next
	}
}

// readPartial serves n bytes at bOff of block b of e from its partial
// block, loading the pages among them that no read loaded yet. It returns
// the block's buffer with a reference for the caller.
func (c *Cache) readPartial(ctx context.Context, e *entry, b, bOff int64, n int, load Loader) (*blockBuf, error) {
	p, bb := c.getPartial(e, b)
	lo, hi := bOff/partPage, (bOff+int64(n)+partPage-1)/partPage
	blen := int64(len(bb.b))
	p.mu.Lock()
	for {
		// The first run of pages that nobody has or is loading.
		from, to := int64(-1), int64(-1)
		waiting := false
		for i := lo; i < hi; i++ {
			free := !p.filled.get(i) && !p.loading.get(i)
			waiting = waiting || p.loading.get(i)
			if free && from < 0 {
				from = i
			}
			if !free && from >= 0 && to < 0 {
				to = i
			}
		}
		if from >= 0 && to < 0 {
			to = hi
		}
		if from < 0 {
			if !waiting {
				break // every page is there
			}
			p.cond.Wait()
			continue
		}
		for i := from; i < to; i++ {
			p.loading.set(i)
		}
		p.mu.Unlock()
		start, end := from*partPage, min(to*partPage, blen)
		c.st.loaderCalls.Add(1)
		got, err := load(ctx, b*e.bs+start, bb.b[start:end])
		if err == nil && int64(got) < end-start {
			err = fmt.Errorf("%w: %q at %d: got %d of %d bytes", ErrShortLoad, e.key.Path, b*e.bs+start, got, end-start)
		}
		p.mu.Lock()
		for i := from; i < to; i++ {
			p.loading.clear(i)
			if err == nil {
				p.filled.set(i)
			}
		}
		p.cond.Broadcast()
		if err != nil {
			p.mu.Unlock()
			bb.unref()
			return nil, fmt.Errorf("cache: load %q block %d: %w", e.key.Path, b, err)
		}
		c.st.bytesLoaded.Add(end - start)
	}
	complete := p.filled.count(p.npages) == p.npages
	p.mu.Unlock()
	if complete {
		c.promotePartial(p)
	}
	return bb, nil
}

// promotePartial makes a complete partial block a loaded block: hot, and
// queued to be stored, unless a load of the whole block is under way.
func (c *Cache) promotePartial(p *partial) {
	ps := &c.parts
	ps.mu.Lock()
	if ps.m[p.k] != p {
		ps.mu.Unlock()
		return // promoted or forgotten already
	}
	bb := p.bb.ref()
	ps.removeLocked(p)
	ps.mu.Unlock()
	e, b := p.k.e, p.k.b
	c.flightMu.Lock()
	if _, ok := c.flights[p.k]; ok {
		c.flightMu.Unlock()
		bb.unref()
		return
	}
	f := &flight{done: make(chan struct{}), settled: make(chan struct{}), buf: bb}
	close(f.done)
	c.flights[p.k] = f
	c.flightMu.Unlock()
	c.hot.put(e, b, bb)
	c.queueStore(e, b, f)
}
