// Package cache is the mount daemon's local block cache.
//
// It owns one directory on local disk. Every cached UFS file is an entry with
// two files in that directory: a sparse data file (NAME.data) with the apparent
// size of the UFS file, filled in fixed-size blocks (4 MiB by default), and an
// index file (NAME.idx) that records the entry's identity, which blocks are
// present, a CRC-32C per present block, the data file's stat at verification
// time, and the entry's last access time. NAME is derived from the entry's
// identity: the Key (mount id, UFS path, fingerprint) and the file size. A file
// whose fingerprint changed is therefore a different entry; the old one is
// never served again under the new key and ages out of the LRU (or goes at once
// through Invalidate or InvalidatePath).
//
// The package imports nothing from this module. A miss calls the Loader the
// caller passes in; the cache never talks to a UFS or to the master itself.
//
// What the cache must never do:
//
//   - serve bytes it has not verified. Bytes a loader just returned (a miss,
//     or one of the Options.HotBlocks loaded last) are served from memory.
//     A block read from its data file is checked against its CRC before it
//     is first served, unless the cache wrote it in this run or
//     verified it before a clean Close, and the data file's size, mtime,
//     ctime and inode have not moved since (the stat is recorded at each
//     verification and after each of the cache's own writes, and compared on
//     every read). A bad block is dropped, counted in Stats.CorruptBlocks and
//     loaded again. Verified state survives a restart only after a clean
//     Close (a marker file written after syncfs); after a crash every block
//     is verified again before it is served. A change that leaves the stat
//     untouched (bit rot, or a write within one timestamp tick on kernels
//     without fine-grained timestamps) is caught only when the block is
//     verified again, after a restart that was not clean.
//   - fail a read because of the local disk. When a block cannot be stored
//     (ENOSPC, EDQUOT, any write error, or no room because everything left is
//     pinned) the read is served from the loaded bytes and Stats.Bypasses is
//     counted.
//   - let the directory's allocated size exceed Options.Capacity. Usage is
//     accounted from st_blocks of every file in the directory (and of the
//     directory itself), not apparent sizes; space is reserved before a write
//     and least recently used blocks are evicted (punched out of their data
//     file with fallocate(FALLOC_FL_PUNCH_HOLE)) to make room. An entry whose
//     last block goes is deleted.
//   - punch holes in a file handed out by OpenComplete. Such an entry is
//     pinned until Passthrough.Release; eviction skips it, and Invalidate
//     unlinks it (the open file keeps the old, complete data) instead.
//
// Concurrent misses on one block make one loader call (per-block single
// flight). A Reader tracks sequential access for one open handle and starts a
// bounded number of background loads of the following blocks.
//
// Loaded blocks live in buffers of a pool (blockBuf), shared by reference
// between the load, the hot blocks, the store queue and the reads that serve
// them: Reader.Read hands them out without copying, and a buffer goes back to
// the pool when its last holder lets go. A loaded block is written to its
// cache file off the reader's path, by store workers fed through a bounded
// queue (Options.StoreQueue); a block that finds the queue full is not
// cached (Stats.StoreDrops), so a disk that falls behind never slows a read.
// Until its store is done or dropped the block's load stays registered, so
// nobody loads it again meanwhile.
//
// Decisions worth knowing:
//
//   - The LRU is per block, in memory. Only each entry's last access time is
//     persisted (with the next index write); after a restart blocks are
//     ordered by their entry's access time.
//   - An index is rewritten (to a temporary file, then renamed) after every
//     change to its blocks, without fsync: after a crash it may lag the data
//     file, which only loses blocks, or name blocks that never reached the
//     disk, which verification catches. Close syncs everything.
//   - A full disk does not make the cache evict: it bypasses. Set Capacity
//     below the free space of the filesystem to cache well.
//   - The passthrough opens of an entry share one read-only descriptor of
//     its data file, which the entry keeps between them while the data file
//     stays open (roFile): opening a wholly cached file again costs one
//     fstat of it, which still shows any change made to the data file since
//     its blocks were verified. Its reference count is guarded by entry.mu.
//
// Lock order (a lock may be taken while holding those above it, never the
// reverse):
//
//	Reader.mu      one Reader's sequential-access state
//	Cache.evictMu  serialises eviction and space reservation
//	Cache.mu       the entry map and the closed flag
//	entry.flushMu  serialises index writes and removal of one entry
//	entry.mu       the entry's block state, data file and stat
//	Cache.lruMu    the block LRU and the open-file list (leaf)
//	Cache.flightMu the in-flight loads (leaf)
//	hotBlocks.mu   the blocks loaded last (leaf)
//	partials.mu    the blocks loaded in part (then partial.mu; neither is
//	               held while calling into the rest of the cache)
//
// Two entry.mu are never held at once except through TryLock.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// DefaultBlockSize is the block size used when Options.BlockSize is zero.
const DefaultBlockSize = 4 << 20

// Defaults for the other Options fields.
const (
	DefaultReadAheadBlocks    = 16
	DefaultMaxBackgroundLoads = 16
	DefaultMaxOpenFiles       = 256
	DefaultStoreQueue         = 8
)

// storeWorkers is how many goroutines write queued blocks to cache files.
const storeWorkers = 2

// Errors returned by the cache.
var (
	// ErrClosed is returned by operations on a closed Cache.
	ErrClosed = errors.New("cache: closed")
	// ErrLocked is returned by Open when another process uses the directory.
	ErrLocked = errors.New("cache: directory in use by another process")
	// ErrInvalidOptions is returned by Open for unusable Options.
	ErrInvalidOptions = errors.New("cache: invalid options")
	// ErrInvalidArgument is returned for a negative size or offset, or an
	// unaligned Put.
	ErrInvalidArgument = errors.New("cache: invalid argument")
	// ErrShortLoad is returned when a Loader returns fewer bytes than asked
	// for (the UFS file is shorter than the size the caller gave).
	ErrShortLoad = errors.New("cache: loader returned fewer bytes than requested")
)

// Key identifies cached content. Fingerprint is opaque to the cache; the caller
// encodes in it whatever changes when the UFS content changes (etag or
// version, size, mtime).
type Key struct {
	MountID     uint64
	Path        string
	Fingerprint string
}

// A Loader fills dst with the bytes at off of the UFS file and returns how
// many it read: len(dst), unless the file is shorter (the cache then fails
// the read with ErrShortLoad). The cache asks for whole blocks (the last
// one may be short), into buffers of its pool. A Loader may be called
// concurrently and after the read that supplied it has returned
// (read-ahead), and must not retain dst.
type Loader func(ctx context.Context, off int64, dst []byte) (int, error)

// Options configure a Cache. Capacity is required; zero fields take defaults.
type Options struct {
	// Capacity bounds the bytes allocated on disk under the cache directory.
	Capacity int64
	// BlockSize is the unit of caching; a multiple of 4096. Entries written
	// with another block size are discarded on Open.
	BlockSize int64
	// ReadAheadBlocks is how many blocks past a sequential reader's position
	// are loaded in the background; negative disables read-ahead. Zero is
	// DefaultReadAheadBlocks, or fewer in a cache smaller than four times
	// that window.
	ReadAheadBlocks int
	// MaxBackgroundLoads bounds the concurrent read-ahead loads of the cache.
	MaxBackgroundLoads int
	// MaxOpenFiles bounds the data files the cache keeps open (files handed
	// out by OpenComplete are not counted). Each may also keep the read-only
	// descriptor its passthrough opens share, so the cache holds up to twice
	// as many descriptors, besides those of Passthroughs not yet released.
	MaxOpenFiles int
	// HotBlocks is how many of the blocks loaded last stay in memory, so that
	// the reads they were loaded for copy them from there instead of reading
	// back what was just stored. Zero is ReadAheadBlocks+4; negative keeps
	// none. Memory: HotBlocks × BlockSize at most.
	HotBlocks int
	// StoreQueue is how many loaded blocks may wait to be written to their
	// cache files. A block loaded while the queue is full is not stored
	// (Stats.StoreDrops): a read is never slowed by a disk that falls
	// behind. Zero is DefaultStoreQueue. Memory: StoreQueue × BlockSize at
	// most.
	StoreQueue int
}

// Stats are cumulative counters since Open, plus the current usage.
type Stats struct {
	Hits           uint64 // block reads served from the cache
	HotHits        uint64 // of Hits, those served from the blocks loaded last (HotBlocks)
	Misses         uint64 // block reads that needed a loader
	BytesFromCache int64  // bytes returned from the cache (files and hot blocks)
	BytesLoaded    int64  // bytes returned by loaders, read-ahead included
	LoaderCalls    uint64 // loader invocations
	ReadAheads     uint64 // background block loads started
	Evictions      uint64 // blocks evicted to make room
	CorruptBlocks  uint64 // blocks that failed verification and were dropped
	Bypasses       uint64 // loaded blocks that could not be stored
	StoreDrops     uint64 // loaded blocks not stored because the store queue was full
	Passthroughs   uint64 // files handed out by OpenComplete
	Used           int64  // bytes allocated under the directory, as accounted
	Capacity       int64
	Entries        int   // entries known to the cache
	Blocks         int64 // blocks present in the cache files
	BlockSize      int64
}

type counters struct {
	hits, hotHits, misses, loaderCalls      atomic.Uint64
	readAheads                              atomic.Uint64
	evictions, corrupt, bypasses, passthrus atomic.Uint64
	storeDrops                              atomic.Uint64
	bytesFromCache, bytesLoaded             atomic.Int64
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Cache is a local block cache rooted at one directory. It is safe for
// concurrent use.
type Cache struct {
	dir  string
	opts Options
	lock *os.File // holds the flock on the directory

	evictMu  sync.Mutex
	reserved atomic.Int64 // bytes reserved for writes in progress; under evictMu for increase
	used     atomic.Int64 // accounted allocated bytes under dir
	dirBytes atomic.Int64 // allocated bytes of the directory itself (part of used)

	mu      sync.Mutex
	entries map[string]*entry
	closed  bool

	lruMu     sync.Mutex
	lru       blockLRU
	openFiles fileList
	nOpen     atomic.Int64 // openFiles.l.Len(), readable without lruMu

	flightMu      sync.Mutex
	flights       map[flightKey]*flight
	flightWaiters atomic.Int64 // callers waiting for another's load (for tests)

	noPunch atomic.Bool // the filesystem refused FALLOC_FL_PUNCH_HOLE

	ops      sync.WaitGroup // public operations in progress
	bg       sync.WaitGroup // background loads in progress
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bgSem    chan struct{}

	hot   hotBlocks
	parts partials
	bufs  sync.Pool // *[]byte of BlockSize
	st    counters

	storeQ  chan storeJob // loaded blocks to store (queueStore, storeWorker)
	storeWG sync.WaitGroup

	// beforeStore, when set, runs before each queued store; tests use it
	// to make the disk slow. storeInline makes the reader that loaded a
	// block store it before returning, without the queue (tests written
	// for that order).
	beforeStore func()
	storeInline bool

	// writeAt writes block data to a data file; tests replace it to inject
	// failures.
	writeAt func(f *os.File, p []byte, off int64) (int, error)
}

// Open opens (creating it if needed) the cache rooted at dir and loads the
// index of every entry found there. Entries whose index is missing, truncated
// or corrupt are deleted. Only one process may use dir at a time.
func Open(dir string, opts Options) (*Cache, error) {
	if opts.BlockSize == 0 {
		opts.BlockSize = DefaultBlockSize
	}
	if opts.ReadAheadBlocks == 0 {
		// The default window, within a quarter of a small cache: blocks
		// read ahead must not evict each other before they are read.
		opts.ReadAheadBlocks = int(max(1, min(DefaultReadAheadBlocks, opts.Capacity/4/opts.BlockSize)))
	}
	if opts.MaxBackgroundLoads <= 0 {
		opts.MaxBackgroundLoads = DefaultMaxBackgroundLoads
	}
	if opts.MaxOpenFiles <= 0 {
		opts.MaxOpenFiles = DefaultMaxOpenFiles
	}
	if opts.HotBlocks == 0 {
		opts.HotBlocks = max(0, opts.ReadAheadBlocks) + 4
	}
	if opts.StoreQueue <= 0 {
		opts.StoreQueue = DefaultStoreQueue
	}
	if opts.Capacity <= 0 {
		return nil, fmt.Errorf("%w: capacity %d", ErrInvalidOptions, opts.Capacity)
	}
	if opts.BlockSize < pageSize || opts.BlockSize%pageSize != 0 || opts.BlockSize > 1<<30 {
		return nil, fmt.Errorf("%w: block size %d is not a multiple of %d up to 1 GiB", ErrInvalidOptions, opts.BlockSize, pageSize)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: create directory: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, err
	}
	c := &Cache{
		dir:     dir,
		opts:    opts,
		lock:    lock,
		entries: make(map[string]*entry),
		flights: make(map[flightKey]*flight),
		bgSem:   make(chan struct{}, opts.MaxBackgroundLoads),
		storeQ:  make(chan storeJob, opts.StoreQueue),
		writeAt: func(f *os.File, p []byte, off int64) (int, error) { return f.WriteAt(p, off) },
	}
	c.lru.init()
	c.openFiles.init()
	c.hot.init(opts.HotBlocks)
	c.parts.init()
	bs := opts.BlockSize
	c.bufs.New = func() any { b := make([]byte, bs); return &b }
	c.bgCtx, c.bgCancel = context.WithCancel(context.Background())
	if err := c.load(); err != nil {
		c.bgCancel()
		lock.Close()
		return nil, err
	}
	for range storeWorkers {
		c.storeWG.Add(1)
		go c.storeWorker()
	}
	// A capacity lowered since the last run takes effect now.
	c.trim()
	return c, nil
}

// Close stops background loads, waits for operations in progress, writes
// every index, syncs the filesystem and records a clean shutdown so that the
// verified state of blocks survives to the next Open. Files handed out by
// OpenComplete stay valid; releasing them after Close is harmless.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.bgCancel()
	c.ops.Wait()
	c.bg.Wait()
	// Nothing queues a store any more: store what is queued.
	close(c.storeQ)
	c.storeWG.Wait()

	c.mu.Lock()
	entries := make([]*entry, 0, len(c.entries))
	for _, e := range c.entries {
		entries = append(entries, e)
	}
	c.mu.Unlock()

	var errs []error
	for _, e := range entries {
		e.mu.Lock()
		if e.f != nil && !e.removed {
			c.checkStatLocked(e)
		}
		e.mu.Unlock()
		if err := c.flushIndex(e, true); err != nil {
			errs = append(errs, err)
		}
	}
	if err := syncFS(c.dir); err != nil {
		errs = append(errs, err)
	}
	for _, e := range entries {
		e.mu.Lock()
		if e.f != nil {
			e.f.Close()
			e.f = nil
		}
		e.dropROLocked()
		e.mu.Unlock()
	}
	if len(errs) == 0 {
		// Only a shutdown that wrote and synced everything may vouch for the
		// verified state recorded in the indexes.
		if err := writeCleanMarker(c.dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("cache: release directory lock: %w", err))
	}
	return errors.Join(errs...)
}

// Stats returns the counters and current usage.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	n := len(c.entries)
	c.mu.Unlock()
	c.lruMu.Lock()
	blocks := c.lru.l.Len() // one element per present block
	c.lruMu.Unlock()
	return Stats{
		Hits:           c.st.hits.Load(),
		HotHits:        c.st.hotHits.Load(),
		Misses:         c.st.misses.Load(),
		BytesFromCache: c.st.bytesFromCache.Load(),
		BytesLoaded:    c.st.bytesLoaded.Load(),
		LoaderCalls:    c.st.loaderCalls.Load(),
		ReadAheads:     c.st.readAheads.Load(),
		Evictions:      c.st.evictions.Load(),
		CorruptBlocks:  c.st.corrupt.Load(),
		Bypasses:       c.st.bypasses.Load(),
		StoreDrops:     c.st.storeDrops.Load(),
		Passthroughs:   c.st.passthrus.Load(),
		Used:           c.used.Load(),
		Capacity:       c.opts.Capacity,
		Entries:        n,
		Blocks:         int64(blocks),
		BlockSize:      c.opts.BlockSize,
	}
}

// Invalidate removes every entry cached under key, whatever its size. Files
// handed out by OpenComplete keep their (old) content until released.
func (c *Cache) Invalidate(key Key) error {
	return c.removeMatching(func(k Key) bool { return k == key })
}

// Drop removes the entry of one content, key at size, if the cache has it:
// the content of a file that was unlinked. Unlike Invalidate it does not
// scan the cache. Files handed out by OpenComplete keep their content until
// released.
func (c *Cache) Drop(key Key, size int64) error {
	if err := c.begin(); err != nil {
		return err
	}
	defer c.ops.Done()
	id := entryID(key, size)
	c.mu.Lock()
	e := c.entries[id]
	if e != nil {
		c.removeEntryLocked(e, false)
	}
	c.mu.Unlock()
	if e != nil {
		c.refreshDirUsage()
	}
	return nil
}

// InvalidatePath removes every entry of the UFS path under mountID, whatever
// its fingerprint. Use it when a file is unlinked, renamed or rewritten.
func (c *Cache) InvalidatePath(mountID uint64, path string) error {
	return c.removeMatching(func(k Key) bool { return k.MountID == mountID && k.Path == path })
}

func (c *Cache) removeMatching(match func(Key) bool) error {
	if err := c.begin(); err != nil {
		return err
	}
	defer c.ops.Done()
	c.mu.Lock()
	for _, e := range c.entries {
		if match(e.key) {
			c.removeEntryLocked(e, false)
		}
	}
	c.mu.Unlock()
	c.refreshDirUsage()
	return nil
}

// begin registers a public operation; the caller must call c.ops.Done.
func (c *Cache) begin() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.ops.Add(1)
	return nil
}

// entryID names the files of an entry: a hash of its identity.
func entryID(key Key, size int64) string {
	h := sha256.New()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], key.MountID)
	h.Write(b[:])
	binary.LittleEndian.PutUint64(b[:], uint64(len(key.Path)))
	h.Write(b[:])
	h.Write([]byte(key.Path))
	binary.LittleEndian.PutUint64(b[:], uint64(len(key.Fingerprint)))
	h.Write(b[:])
	h.Write([]byte(key.Fingerprint))
	binary.LittleEndian.PutUint64(b[:], uint64(size))
	h.Write(b[:])
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// lookup returns the entry for (key, size), creating an empty one when create
// is set. It returns nil when there is none and create is false.
func (c *Cache) lookup(key Key, size int64, create bool) *entry {
	id := entryID(key, size)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e == nil && create {
		e = newEntry(c, id, key, size)
		c.entries[id] = e
	}
	return e
}

func (c *Cache) dataPath(id string) string { return filepath.Join(c.dir, id+dataSuffix) }
func (c *Cache) idxPath(id string) string  { return filepath.Join(c.dir, id+idxSuffix) }

// refreshDirUsage re-reads the allocation of the directory itself, which grows
// as entries are created.
func (c *Cache) refreshDirUsage() {
	st, err := statPath(c.dir)
	if err != nil {
		return
	}
	old := c.dirBytes.Swap(st.alloc)
	c.used.Add(st.alloc - old)
}
