package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

func TestRestartKeepsIndex(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{})
	size := int64(5*testBS + 3)
	src := newSource(40, int(size))
	key := Key{MountID: 3, Path: "/keep", Fingerprint: "v7"}
	readAll(t, c, key, src, 10000)
	// A second, partly cached file: only its cached block survives.
	src2 := newSource(41, 4*testBS)
	key2 := Key{Path: "/half"}
	if err := c.Put(key2, 4*testBS, 2*testBS, src2.data[2*testBS:3*testBS]); err != nil {
		t.Fatal(err)
	}
	closeCache(t, c)

	c = openCache(t, dir, Options{})
	defer closeCache(t, c)
	src.reset()
	readAll(t, c, key, src, 10000)
	if got := src.total(); got != 0 {
		t.Fatalf("%d loader calls after restart, want 0", got)
	}
	p, ok, err := c.OpenComplete(key, size)
	if err != nil || !ok {
		t.Fatalf("OpenComplete after a clean restart: ok=%v err=%v", ok, err)
	}
	checkFile(t, p, src.data)
	p.Release()
	readAll(t, c, key2, src2, testBS)
	if got := src2.offsets(); !reflect.DeepEqual(got, []int64{0, testBS, 3 * testBS}) {
		t.Fatalf("second file loaded %v, want blocks 0, 1, 3", got)
	}
	if st := c.Stats(); st.Entries != 2 || st.Used > 12*testBS || st.Used < 9*testBS {
		t.Fatalf("stats after restart: %+v", st)
	}
}

// Damaged index files are treated as absent, never as data.
func TestCorruptIndexOnRestart(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{})
	size := int64(3 * testBS)
	keys := []Key{{Path: "/truncated"}, {Path: "/garbage"}, {Path: "/bitflip"}, {Path: "/nodata"}, {Path: "/intact"}}
	srcs := make([]*source, len(keys))
	for i, k := range keys {
		srcs[i] = newSource(uint64(50+i), int(size))
		readAll(t, c, k, srcs[i], testBS)
	}
	closeCache(t, c)

	idx := func(k Key) string { return filepath.Join(dir, entryID(k, size)+idxSuffix) }
	raw, err := os.ReadFile(idx(keys[0]))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(idx(keys[0]), raw[:len(raw)/2], 0o600)
	os.WriteFile(idx(keys[1]), []byte("not an index at all"), 0o600)
	raw2, _ := os.ReadFile(idx(keys[2]))
	raw2[len(raw2)/2] ^= 0x10
	os.WriteFile(idx(keys[2]), raw2, 0o600)
	os.Remove(filepath.Join(dir, entryID(keys[3], size)+dataSuffix))
	os.WriteFile(filepath.Join(dir, "leftover"+idxSuffix+tmpSuffix), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(dir, "orphan"+dataSuffix), []byte("x"), 0o600)

	c = openCache(t, dir, Options{})
	defer closeCache(t, c)
	for i, k := range keys {
		srcs[i].reset()
		readAll(t, c, k, srcs[i], testBS)
		want := 3
		if k.Path == "/intact" {
			want = 0
		}
		if got := srcs[i].total(); got != want {
			t.Errorf("%s: %d loads after restart, want %d", k.Path, got, want)
		}
	}
	for _, name := range []string{"leftover" + idxSuffix + tmpSuffix, "orphan" + dataSuffix} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s not cleaned up", name)
		}
	}
}

// A different block size makes old entries useless; they are dropped.
func TestBlockSizeChange(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{})
	src := newSource(60, 2*testBS)
	key := Key{Path: "/bs"}
	readAll(t, c, key, src, testBS)
	closeCache(t, c)
	c = openCache(t, dir, Options{BlockSize: 2 * testBS})
	defer closeCache(t, c)
	if st := c.Stats(); st.Entries != 0 {
		t.Fatalf("%d entries survived a block size change", st.Entries)
	}
	src.reset()
	readAll(t, c, key, src, testBS)
	if src.total() != 1 {
		t.Fatalf("%d loads, want 1", src.total())
	}
}

func sampleRecord() *indexRecord {
	r := &indexRecord{
		key:       Key{MountID: 42, Path: "/a/b.parquet", Fingerprint: "etag=abc;size=100000;mtime=5"},
		size:      100000,
		blockSize: 16384,
		atime:     123456789,
		stat:      fileStat{ino: 7, size: 100000, mtime: 11, ctime: 12},
	}
	r.nblocks = (r.size + r.blockSize - 1) / r.blockSize
	r.present = newBitset(r.nblocks)
	r.verified = newBitset(r.nblocks)
	r.crc = make([]uint32, r.nblocks)
	for _, b := range []int64{0, 2, 6} {
		r.present.set(b)
		r.crc[b] = uint32(0xdead0000 + b)
	}
	r.verified.set(2)
	return r
}

func TestIndexRoundTrip(t *testing.T) {
	r := sampleRecord()
	enc := encodeIndex(r)
	got, err := decodeIndex(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("decoded %+v, want %+v", got, r)
	}
	// Every truncation and every single-bit flip is rejected.
	for i := 0; i < len(enc); i++ {
		if _, err := decodeIndex(enc[:i]); !errors.Is(err, errBadIndex) {
			t.Fatalf("truncated to %d: err = %v", i, err)
		}
		for bit := 0; bit < 8; bit++ {
			bad := bytes.Clone(enc)
			bad[i] ^= 1 << bit
			if _, err := decodeIndex(bad); err == nil {
				t.Fatalf("flip of byte %d bit %d accepted", i, bit)
			}
		}
	}
}

func FuzzDecodeIndex(f *testing.F) {
	f.Add(encodeIndex(sampleRecord()))
	empty := &indexRecord{key: Key{Path: "/e"}, blockSize: 4096}
	f.Add(encodeIndex(empty))
	f.Add([]byte(indexMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
		// The same bytes with a valid trailer, so that the fuzzer explores
		// the parser behind the checksum.
		if len(data) >= 4 {
			body := bytes.Clone(data[:len(data)-4])
			checkDecode(t, binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, castagnoli)))
		}
	})
}

func checkDecode(t *testing.T, data []byte) {
	r, err := decodeIndex(data)
	if err != nil {
		if !errors.Is(err, errBadIndex) {
			t.Fatalf("error %v does not wrap errBadIndex", err)
		}
		return
	}
	// A valid index has exactly one encoding.
	if enc := encodeIndex(r); !bytes.Equal(enc, data) {
		t.Fatalf("re-encoding differs:\n%x\n%x", enc, data)
	}
	if int64(len(r.crc)) != r.nblocks || r.present.count(r.nblocks) > r.nblocks {
		t.Fatal("inconsistent record")
	}
}

// A process that dies without Close leaves a cache the next process can
// open: the lock goes with the process, cached blocks are kept, and every
// one is verified again before it is served.
func TestRestartAfterProcessDeath(t *testing.T) {
	if dir := os.Getenv("SKYFS_CACHE_CRASH_DIR"); dir != "" {
		c, err := Open(dir, Options{Capacity: 1 << 30, BlockSize: testBS})
		if err != nil {
			os.Exit(2)
		}
		src := newSource(80, 4*testBS)
		readAll(t, c, Key{Path: "/died"}, src, testBS)
		if err := c.Settle(context.Background()); err != nil {
			os.Exit(3)
		}
		os.Exit(0) // no Close
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRestartAfterProcessDeath$")
	cmd.Env = append(os.Environ(), "SKYFS_CACHE_CRASH_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	c := openCache(t, dir, Options{})
	defer closeCache(t, c)
	e := c.lookup(Key{Path: "/died"}, 4*testBS, false)
	if e == nil || e.count != 4 {
		t.Fatal("cached blocks lost")
	}
	if n := e.verified.count(e.nblocks); n != 0 {
		t.Fatalf("%d blocks trusted as verified after a crash", n)
	}
	src := newSource(80, 4*testBS)
	readAll(t, c, Key{Path: "/died"}, src, testBS)
	if st := c.Stats(); src.total() != 0 || st.Hits != 4 || st.CorruptBlocks != 0 {
		t.Fatalf("%d loads after the crash, stats %+v", src.total(), st)
	}
	if n := e.verified.count(e.nblocks); n != 4 {
		t.Fatalf("%d blocks verified by reading, want 4", n)
	}
}
