package cache

import (
	"container/list"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// entry is one cached file: (key, size) and its data and index files.
type entry struct {
	c       *Cache
	id      string
	key     Key
	size    int64
	bs      int64
	nblocks int64

	// Guarded by flushMu.
	flushMu    sync.Mutex
	flushedGen uint64
	idxAlloc   int64 // allocated bytes of the index file, part of Cache.used

	// atime is the last access (unix nanoseconds); metaDirty says that atime
	// or verified state changed since the index was written.
	atime     atomic.Int64
	metaDirty atomic.Bool
	// writers counts stores in progress; an entry emptied by eviction is not
	// removed under them.
	writers atomic.Int32
	// gone mirrors removed for readers that must not wait for mu, which a
	// store holds while it writes a block.
	gone atomic.Bool

	// Guarded by mu.
	mu        sync.RWMutex
	f         *os.File // data file, opened lazily
	hasFile   bool     // the data file exists on disk
	present   bitset
	verified  bitset
	crc       []uint32
	nodes     []*list.Element // each present block's element in Cache.lru
	count     int64           // present blocks
	stat      fileStat        // data file stat at the last verification or own write
	dataAlloc int64           // allocated bytes of the data file, part of Cache.used
	gen       uint64          // bumped on every change to present blocks
	pins      int             // Passthrough handles outstanding
	ro        *roFile         // read-only descriptor kept for passthrough, while f is open
	removed   bool
	fileElem  *list.Element // element in Cache.openFiles while f is open; guarded by lruMu
}

func newEntry(c *Cache, id string, key Key, size int64) *entry {
	bs := c.opts.BlockSize
	n := (size + bs - 1) / bs
	e := &entry{
		c:        c,
		id:       id,
		key:      key,
		size:     size,
		bs:       bs,
		nblocks:  n,
		present:  newBitset(n),
		verified: newBitset(n),
		crc:      make([]uint32, n),
		nodes:    make([]*list.Element, n),
	}
	e.atime.Store(time.Now().UnixNano())
	return e
}

// blockLen is the length of block b; only the last block may be short.
func (e *entry) blockLen(b int64) int64 {
	return min(e.bs, e.size-b*e.bs)
}

// openFileLocked opens (creating if needed) the data file. e.mu must be held
// for writing.
func (c *Cache) openFileLocked(e *entry) error {
	if e.f != nil {
		return nil
	}
	flags := os.O_RDWR | os.O_CREATE
	created := !e.hasFile
	if created {
		// Whatever a lost entry left under this name is not ours to serve.
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(c.dataPath(e.id), flags, 0o600)
	if err != nil {
		return fmt.Errorf("cache: open data file: %w", err)
	}
	st, err := statFile(f)
	if err != nil {
		f.Close()
		return err
	}
	if created || st.size != e.size {
		if err := f.Truncate(e.size); err != nil {
			f.Close()
			return fmt.Errorf("cache: size data file: %w", err)
		}
	}
	e.f = f
	e.hasFile = true
	if created {
		c.recordStatLocked(e)
	} else {
		c.checkStatLocked(e)
	}
	c.lruMu.Lock()
	e.fileElem = c.openFiles.l.PushFront(e)
	c.nOpen.Store(int64(c.openFiles.l.Len()))
	c.lruMu.Unlock()
	if created {
		c.refreshDirUsage()
	}
	return nil
}

// closeFileLocked closes the data file. e.mu must be held for writing.
func (c *Cache) closeFileLocked(e *entry) {
	if e.f == nil {
		return
	}
	e.f.Close()
	e.f = nil
	e.dropROLocked()
	c.lruMu.Lock()
	if e.fileElem != nil {
		c.openFiles.l.Remove(e.fileElem)
		e.fileElem = nil
		c.nOpen.Store(int64(c.openFiles.l.Len()))
	}
	c.lruMu.Unlock()
}

// closeIdleFiles closes the least recently used data files while more than
// Options.MaxOpenFiles are open. It must be called with no entry.mu held.
func (c *Cache) closeIdleFiles() {
	for tries := 0; tries < 8 && c.nOpen.Load() > int64(c.opts.MaxOpenFiles); tries++ {
		c.lruMu.Lock()
		if c.openFiles.l.Len() <= c.opts.MaxOpenFiles {
			c.lruMu.Unlock()
			return
		}
		el := c.openFiles.l.Back()
		e := el.Value.(*entry)
		c.openFiles.l.MoveToFront(el)
		c.lruMu.Unlock()
		if !e.mu.TryLock() {
			continue
		}
		c.closeFileLocked(e)
		e.mu.Unlock()
	}
}

// recordStatLocked records the data file's current stat after the cache
// changed the file itself, and accounts its allocation.
func (c *Cache) recordStatLocked(e *entry) {
	st, err := statFile(e.f)
	if err != nil {
		return
	}
	e.stat = st
	c.used.Add(st.alloc - e.dataAlloc)
	e.dataAlloc = st.alloc
}

// checkStatLocked compares the data file's stat with the one recorded at the
// last verification; if anything moved, the file was changed behind the
// cache's back and every block must be verified again. e.mu must be held for
// writing and e.f open.
func (c *Cache) checkStatLocked(e *entry) {
	st, err := statFile(e.f)
	if err != nil {
		e.verified.clearAll()
		return
	}
	if st.same(e.stat) {
		return
	}
	e.verified.clearAll()
	e.metaDirty.Store(true)
	if st.size != e.size {
		_ = e.f.Truncate(e.size)
	}
	c.recordStatLocked(e)
}

// dropBlockLocked makes block b absent: punches it out of the data file and
// removes it from the LRU. e.mu must be held for writing and e.f open.
func (c *Cache) dropBlockLocked(e *entry, b int64) {
	if !e.present.get(b) {
		return
	}
	c.checkStatLocked(e)
	// Under a pinned file the kernel may be reading: leave the bytes, which
	// a later store overwrites with the right ones, rather than punch zeros.
	if !c.noPunch.Load() && e.pins == 0 {
		if err := punchHole(e.f, b*e.bs, e.blockLen(b)); err != nil && isNotSupported(err) {
			c.noPunch.Store(true)
		}
	}
	e.present.clear(b)
	e.verified.clear(b)
	c.hot.drop(e, b) // a block is hot only while it is stored or on its way
	e.crc[b] = 0
	e.count--
	e.gen++
	if el := e.nodes[b]; el != nil {
		c.lruMu.Lock()
		c.lru.l.Remove(el)
		c.lruMu.Unlock()
		e.nodes[b] = nil
	}
	c.recordStatLocked(e)
}

// removeEntryLocked deletes e from the map and its files from disk. With
// onlyIfEmpty it does nothing unless e has no present block and no pin. It
// reports whether it removed e, with the blocks e held and the bytes freed
// (a pinned data file is freed at its last Release instead). c.mu must be
// held.
func (c *Cache) removeEntryLocked(e *entry, onlyIfEmpty bool) (removed bool, blocks, freed int64) {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed || (onlyIfEmpty && (e.count > 0 || e.pins > 0 || e.writers.Load() > 0)) {
		return false, 0, 0
	}
	if c.entries[e.id] == e {
		delete(c.entries, e.id)
	}
	e.removed = true
	e.gone.Store(true)
	c.hot.forget(e)
	c.parts.forget(e)
	c.lruMu.Lock()
	for b, el := range e.nodes {
		if el != nil {
			c.lru.l.Remove(el)
			e.nodes[b] = nil
		}
	}
	c.lruMu.Unlock()
	c.closeFileLocked(e)
	if e.hasFile {
		os.Remove(c.dataPath(e.id))
	}
	os.Remove(c.idxPath(e.id))
	freed = e.idxAlloc
	e.idxAlloc = 0
	if e.pins == 0 {
		// A pinned data file stays allocated until its last Release.
		freed += e.dataAlloc
		e.dataAlloc = 0
	}
	c.used.Add(-freed)
	return true, e.count, freed
}

// touch marks block element el (may be nil) and e's open file as recently used.
func (c *Cache) touch(e *entry, el *list.Element) {
	e.atime.Store(time.Now().UnixNano())
	e.metaDirty.Store(true)
	c.lruMu.Lock()
	if el != nil {
		c.lru.l.MoveToFront(el)
	}
	if e.fileElem != nil {
		c.openFiles.l.MoveToFront(e.fileElem)
	}
	c.lruMu.Unlock()
}

// blockRef is the value of an element of Cache.lru.
type blockRef struct {
	e *entry
	b int64
}

// blockLRU orders present blocks, most recently used at the front.
type blockLRU struct{ l *list.List }

func (l *blockLRU) init() { l.l = list.New() }

// fileList orders entries with an open data file, most recently used first.
type fileList struct{ l *list.List }

func (l *fileList) init() { l.l = list.New() }

// bitset is a fixed-size set of block numbers.
type bitset []uint64

func newBitset(n int64) bitset    { return make(bitset, (n+63)/64) }
func (s bitset) get(i int64) bool { return s[i/64]&(1<<(i%64)) != 0 }
func (s bitset) set(i int64)      { s[i/64] |= 1 << (i % 64) }
func (s bitset) clear(i int64)    { s[i/64] &^= 1 << (i % 64) }
func (s bitset) clearAll()        { clear(s) }
func (s bitset) clone() bitset    { return append(bitset(nil), s...) }

// count returns how many of the first n bits are set.
func (s bitset) count(n int64) int64 {
	var c int64
	for i := int64(0); i < n; i++ {
		if s.get(i) {
			c++
		}
	}
	return c
}

// putBits writes s into dst, bit i in byte i/8, least significant bit first.
func putBits(dst []byte, s bitset) {
	for i := range dst {
		dst[i] = byte(s[i/8] >> (8 * (i % 8)))
	}
}
