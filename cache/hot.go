package cache

import (
	"container/list"
	"sync"
)

// hotBlocks keeps the blocks loaded most recently in memory. A sequential
// reader reads each block in many requests, most of them after read-ahead
// has loaded and stored it; copying those requests from the loaded bytes
// costs less than reading them back from the data file, and they never wait
// for the store. Bytes served from here are the loader's, like those of a
// bypass, so they need no verification. Eviction is in load order: a block
// is hot because it was just loaded, not because it is read often (the
// kernel's page cache keeps what is read often). Each hot block holds a
// reference to its buffer (blockBuf).
type hotBlocks struct {
	max int // blocks kept; 0 disables

	mu sync.RWMutex // guards m and l (leaf)
	m  map[flightKey]*list.Element
	l  list.List // of *hotBlock, newest at the front
}

type hotBlock struct {
	k  flightKey
	bb *blockBuf
}

func (h *hotBlocks) init(max int) {
	h.max = max
	h.m = make(map[flightKey]*list.Element)
	h.l.Init()
}

// put keeps bb, block b of e as the loader returned it, dropping the
// oldest block beyond max. It takes a reference of its own on bb.
func (h *hotBlocks) put(e *entry, b int64, bb *blockBuf) {
	if h.max <= 0 {
		return
	}
	k := flightKey{e, b}
	h.mu.Lock()
	defer h.mu.Unlock()
	if el, ok := h.m[k]; ok {
		h.l.MoveToFront(el)
		return
	}
	h.m[k] = h.l.PushFront(&hotBlock{k: k, bb: bb.ref()})
	for h.l.Len() > h.max {
		h.removeLocked(h.l.Back())
	}
}

// removeLocked forgets the block at el. h.mu must be held.
func (h *hotBlocks) removeLocked(el *list.Element) {
	hb := h.l.Remove(el).(*hotBlock)
	delete(h.m, hb.k)
	hb.bb.unref()
}

// get returns block b of e with a reference for the caller if it is hot,
// else nil.
func (h *hotBlocks) get(e *entry, b int64) *blockBuf {
	if h.max <= 0 {
		return nil
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	el, ok := h.m[flightKey{e, b}]
	if !ok {
		return nil
	}
	return el.Value.(*hotBlock).bb.ref()
}

// drop forgets block b of e.
func (h *hotBlocks) drop(e *entry, b int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if el, ok := h.m[flightKey{e, b}]; ok {
		h.removeLocked(el)
	}
}

// forget drops every hot block of e (its content changed or it went).
func (h *hotBlocks) forget(e *entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for el := h.l.Front(); el != nil; {
		next := el.Next()
		if el.Value.(*hotBlock).k.e == e {
			h.removeLocked(el)
		}
		el = next
	}
}
