package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// File names inside the cache directory.
const (
	dataSuffix = ".data"
	idxSuffix  = ".idx"
	tmpSuffix  = ".tmp"
	lockName   = "LOCK"
	cleanName  = "CLEAN"
)

// The index file format, little endian:
//
//	magic     [8]byte "SKYFSIX1"
//	mountID   u64
//	path      u32 length, bytes
//	fprint    u32 length, bytes
//	size      i64  file size
//	blockSize i64
//	atime     i64  last access, unix ns
//	stat      u64 ino, i64 size, i64 mtime ns, i64 ctime ns  (data file at verification)
//	nblocks   u64  must be ceil(size/blockSize)
//	present   ceil(nblocks/8) bytes, bit i of byte i/8 LSB first
//	verified  ceil(nblocks/8) bytes, a subset of present
//	crc       u32 per present block, in block order
//	check     u32  CRC-32C of everything before it
//
// Unused bits of the bitmaps are zero, so a valid index has exactly one
// encoding. The file is written to NAME.idx.tmp and renamed over NAME.idx.
const (
	indexMagic    = "SKYFSIX1"
	maxIndexStr   = 1 << 16
	indexFixedLen = 8 + 8 + 4 + 4 + 8 + 8 + 8 + 8*4 + 8 + 4
)

// errBadIndex is wrapped by every index decoding error.
var errBadIndex = errors.New("cache: bad index file")

// indexRecord is the decoded content of an index file.
type indexRecord struct {
	key       Key
	size      int64
	blockSize int64
	atime     int64
	stat      fileStat // alloc is not persisted
	nblocks   int64
	present   bitset
	verified  bitset
	crc       []uint32 // one per block; zero for absent blocks
}

// indexSize is the encoded size of an index with the given shape.
func indexSize(pathLen, fpLen int, nblocks, npresent int64) int64 {
	return indexFixedLen + int64(pathLen+fpLen) + 2*((nblocks+7)/8) + 4*npresent
}

func encodeIndex(r *indexRecord) []byte {
	npresent := r.present.count(r.nblocks)
	buf := make([]byte, 0, indexSize(len(r.key.Path), len(r.key.Fingerprint), r.nblocks, npresent))
	le := binary.LittleEndian
	buf = append(buf, indexMagic...)
	buf = le.AppendUint64(buf, r.key.MountID)
	buf = le.AppendUint32(buf, uint32(len(r.key.Path)))
	buf = append(buf, r.key.Path...)
	buf = le.AppendUint32(buf, uint32(len(r.key.Fingerprint)))
	buf = append(buf, r.key.Fingerprint...)
	buf = le.AppendUint64(buf, uint64(r.size))
	buf = le.AppendUint64(buf, uint64(r.blockSize))
	buf = le.AppendUint64(buf, uint64(r.atime))
	buf = le.AppendUint64(buf, r.stat.ino)
	buf = le.AppendUint64(buf, uint64(r.stat.size))
	buf = le.AppendUint64(buf, uint64(r.stat.mtime))
	buf = le.AppendUint64(buf, uint64(r.stat.ctime))
	buf = le.AppendUint64(buf, uint64(r.nblocks))
	nb := (r.nblocks + 7) / 8
	start := len(buf)
	buf = append(buf, make([]byte, 2*nb)...)
	putBits(buf[start:start+int(nb)], r.present)
	putBits(buf[start+int(nb):], r.verified)
	for b := int64(0); b < r.nblocks; b++ {
		if r.present.get(b) {
			buf = le.AppendUint32(buf, r.crc[b])
		}
	}
	return le.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
}

// decodeIndex parses an index file. Any inconsistency is an error wrapping
// errBadIndex; it never panics and allocates in proportion to len(data).
func decodeIndex(data []byte) (*indexRecord, error) {
	bad := func(what string) (*indexRecord, error) {
		return nil, fmt.Errorf("%w: %s", errBadIndex, what)
	}
	if len(data) < indexFixedLen {
		return bad("short")
	}
	if string(data[:8]) != indexMagic {
		return bad("magic")
	}
	le := binary.LittleEndian
	body := data[:len(data)-4]
	if crc32.Checksum(body, castagnoli) != le.Uint32(data[len(data)-4:]) {
		return bad("checksum")
	}
	d := decoder{b: body[8:]}
	r := &indexRecord{}
	r.key.MountID = d.u64()
	r.key.Path = d.str()
	r.key.Fingerprint = d.str()
	r.size = int64(d.u64())
	r.blockSize = int64(d.u64())
	r.atime = int64(d.u64())
	r.stat.ino = d.u64()
	r.stat.size = int64(d.u64())
	r.stat.mtime = int64(d.u64())
	r.stat.ctime = int64(d.u64())
	n := d.u64()
	if d.err {
		return bad("truncated header")
	}
	if r.size < 0 || r.size > 1<<62 || r.blockSize < pageSize || r.blockSize > 1<<30 || r.blockSize%pageSize != 0 {
		return bad("size or block size")
	}
	r.nblocks = (r.size + r.blockSize - 1) / r.blockSize
	if n != uint64(r.nblocks) {
		return bad("block count")
	}
	nb := (r.nblocks + 7) / 8
	if int64(len(d.b)) < 2*nb {
		return bad("truncated bitmaps")
	}
	r.present = readBits(d.bytes(int(nb)), r.nblocks)
	r.verified = readBits(d.bytes(int(nb)), r.nblocks)
	if r.present == nil || r.verified == nil {
		return bad("bits past the last block")
	}
	npresent := r.present.count(r.nblocks)
	if int64(len(d.b)) != 4*npresent {
		return bad("checksum table length")
	}
	r.crc = make([]uint32, r.nblocks)
	for b := int64(0); b < r.nblocks; b++ {
		if r.present.get(b) {
			r.crc[b] = d.u32()
		} else if r.verified.get(b) {
			return bad("verified block not present")
		}
	}
	return r, nil
}

// readBits decodes n bits; nil if a bit at or past n is set.
func readBits(p []byte, n int64) bitset {
	s := newBitset(n)
	for i, v := range p {
		for j := 0; j < 8; j++ {
			if v&(1<<j) == 0 {
				continue
			}
			bit := int64(i)*8 + int64(j)
			if bit >= n {
				return nil
			}
			s.set(bit)
		}
	}
	return s
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) bytes(n int) []byte {
	if d.err || n < 0 || len(d.b) < n {
		d.err = true
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u64() uint64 {
	p := d.bytes(8)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(p)
}

func (d *decoder) u32() uint32 {
	p := d.bytes(4)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(p)
}

func (d *decoder) str() string {
	n := d.u32()
	if n > maxIndexStr {
		d.err = true
		return ""
	}
	return string(d.bytes(int(n)))
}

// recordLocked snapshots e for its index. e.mu must be held.
func (e *entry) recordLocked() *indexRecord {
	return &indexRecord{
		key:       e.key,
		size:      e.size,
		blockSize: e.bs,
		atime:     e.atime.Load(),
		stat:      e.stat,
		nblocks:   e.nblocks,
		present:   e.present.clone(),
		verified:  e.verified.clone(),
		crc:       append([]uint32(nil), e.crc...),
	}
}

// flushIndex writes e's index if it changed since the last write (or always
// with force, when e has a data file). The write is atomic (rename) but not
// synced: after a crash an index may lag its data file, which only makes
// blocks absent, or name blocks whose data did not reach the disk, which
// verification catches.
func (c *Cache) flushIndex(e *entry, force bool) error {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	e.mu.Lock()
	if e.removed || !e.hasFile || (!force && e.gen == e.flushedGen && !e.metaDirty.Load()) {
		e.mu.Unlock()
		return nil
	}
	e.metaDirty.Store(false)
	rec := e.recordLocked()
	gen := e.gen
	e.mu.Unlock()

	path := c.idxPath(e.id)
	alloc, err := writeFileAtomic(path, encodeIndex(rec))
	if err != nil {
		e.metaDirty.Store(true)
		return err
	}
	e.flushedGen = gen
	if e.idxAlloc == 0 {
		defer c.refreshDirUsage()
	}
	c.used.Add(alloc - e.idxAlloc)
	e.idxAlloc = alloc
	return nil
}

// writeFileAtomic writes data to path through a temporary file and a rename
// and returns the allocated size of the new file.
func writeFileAtomic(path string, data []byte) (int64, error) {
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("cache: write index: %w", err)
	}
	_, err = f.Write(data)
	var st fileStat
	if err == nil {
		st, err = statFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("cache: write index: %w", err)
	}
	return st.alloc, nil
}

// load reads the directory at Open: it loads every valid entry, deletes
// leftovers (temporary files, data without index, unusable indexes) and
// accounts the space of everything else.
func (c *Cache) load() error {
	clean := false
	if err := os.Remove(filepath.Join(c.dir, cleanName)); err == nil {
		clean = true
		// From now on a crash must not be taken for a clean shutdown.
		if err := syncDir(c.dir); err != nil {
			return err
		}
	} else if !os.IsNotExist(err) {
		return fmt.Errorf("cache: remove clean marker: %w", err)
	}
	des, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("cache: read directory: %w", err)
	}
	datas := make(map[string]bool)
	var idxs []string
	for _, de := range des {
		name := de.Name()
		switch {
		case strings.HasSuffix(name, tmpSuffix):
			os.Remove(filepath.Join(c.dir, name))
		case strings.HasSuffix(name, dataSuffix):
			datas[strings.TrimSuffix(name, dataSuffix)] = true
		case strings.HasSuffix(name, idxSuffix):
			idxs = append(idxs, strings.TrimSuffix(name, idxSuffix))
		case name == lockName:
		default:
			// Not ours: never delete it, but it takes space in the directory.
			if st, err := statPath(filepath.Join(c.dir, name)); err == nil {
				c.used.Add(st.alloc)
			}
		}
	}
	var loaded []*entry
	for _, id := range idxs {
		e := c.loadEntry(id, datas[id], clean)
		delete(datas, id)
		if e == nil {
			os.Remove(c.idxPath(id))
			os.Remove(c.dataPath(id))
			continue
		}
		loaded = append(loaded, e)
	}
	for id := range datas {
		os.Remove(c.dataPath(id))
	}
	// Least recently used entries go to the back of the LRU; within an entry,
	// lower blocks are taken as older.
	sort.Slice(loaded, func(i, j int) bool { return loaded[i].atime.Load() < loaded[j].atime.Load() })
	for _, e := range loaded {
		c.entries[e.id] = e
		for b := int64(0); b < e.nblocks; b++ {
			if e.present.get(b) {
				e.nodes[b] = c.lru.l.PushFront(blockRef{e, b})
			}
		}
	}
	c.refreshDirUsage()
	return nil
}

// loadEntry loads one entry from its index; nil means the entry is unusable
// and its files must go.
func (c *Cache) loadEntry(id string, hasData, clean bool) *entry {
	if !hasData {
		return nil
	}
	raw, err := os.ReadFile(c.idxPath(id))
	if err != nil {
		return nil
	}
	rec, err := decodeIndex(raw)
	if err != nil || rec.blockSize != c.opts.BlockSize || entryID(rec.key, rec.size) != id {
		return nil
	}
	ist, err := statPath(c.idxPath(id))
	if err != nil {
		return nil
	}
	f, err := os.OpenFile(c.dataPath(id), os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	st, err := statFile(f)
	if err != nil || st.size != rec.size {
		return nil
	}
	e := newEntry(c, id, rec.key, rec.size)
	e.hasFile = true
	e.present = rec.present
	e.crc = rec.crc
	e.count = rec.present.count(rec.nblocks)
	e.atime.Store(rec.atime)
	e.gen = 1
	if clean && st.same(rec.stat) {
		// Verified before a clean shutdown and untouched since.
		e.verified = rec.verified
		e.flushedGen = 1
	}
	// After a crash the data file may hold blocks the index never recorded;
	// punch them out so the space is not lost.
	var want int64
	for b := int64(0); b < e.nblocks; b++ {
		if e.present.get(b) {
			want += roundUp(e.blockLen(b))
		}
	}
	if st.alloc > want+64<<10 {
		for b := int64(0); b < e.nblocks; b++ {
			if !e.present.get(b) {
				_ = punchHole(f, b*e.bs, e.blockLen(b))
			}
		}
		if st2, err := statFile(f); err == nil {
			st = st2
		}
	}
	e.stat = st
	e.dataAlloc = st.alloc
	e.idxAlloc = ist.alloc
	c.used.Add(st.alloc + ist.alloc)
	if e.count == 0 {
		c.used.Add(-st.alloc - ist.alloc)
		return nil
	}
	return e
}

// writeCleanMarker records a clean shutdown; it must be the last write.
func writeCleanMarker(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, cleanName), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("cache: write clean marker: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cache: write clean marker: %w", err)
	}
	return syncDir(dir)
}

// roundUp rounds n up to a whole number of pages.
func roundUp(n int64) int64 { return (n + pageSize - 1) / pageSize * pageSize }

// now is the clock for access times.
func now() int64 { return time.Now().UnixNano() }
