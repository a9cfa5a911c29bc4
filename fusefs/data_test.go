package fusefs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skyfs/skyfs/cache"
	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/ufs"
)

// testBlock is the cache block size of the data tests: small, so that files
// of a few blocks stay small.
const testBlock = 64 << 10

// checkFile checks that path on the mount and the UFS copy hold want.
func (e *env) checkFile(name string, want []byte) {
	e.t.Helper()
	for _, direct := range []bool{false, true} {
		if got := readFile(e.t, e.path(name), direct); !bytes.Equal(got, want) {
			e.t.Fatalf("%s (direct %v): read %d bytes, want %d (first difference at %d)", name, direct, len(got), len(want), firstDiff(got, want))
		}
	}
	got, err := os.ReadFile(filepath.Join(e.ufs, name))
	if err != nil {
		e.t.Fatalf("UFS copy of %s: %v", name, err)
	}
	if !bytes.Equal(got, want) {
		e.t.Fatalf("UFS copy of %s: %d bytes, want %d (first difference at %d)", name, len(got), len(want), firstDiff(got, want))
	}
	st, err := os.Stat(e.path(name))
	if err != nil {
		e.t.Fatal(err)
	}
	if st.Size() != int64(len(want)) {
		e.t.Fatalf("%s: size %d, want %d", name, st.Size(), len(want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestRoundTripSizes(t *testing.T) {
	e := newEnvCache(t, Options{}, cache.Options{Capacity: 1 << 30, BlockSize: testBlock})
	sizes := []int{0, 1, 4095, 4096, 4097,
		testBlock - 1, testBlock, testBlock + 1, 3*testBlock - 1, 3 * testBlock, 3*testBlock + 1,
		1<<20 - 1, 1 << 20, 1<<20 + 1, 5<<20 + 12345}
	for _, streaming := range []bool{true, false} {
		for i, size := range sizes {
			name := fmt.Sprintf("f-%v-%d", streaming, size)
			data := randomBytes(uint64(i), size)
			if streaming {
				if err := os.WriteFile(e.path(name), data, 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				// Written backwards in 100000-byte pieces: staged, then
				// uploaded on close.
				f, err := os.Create(e.path(name))
				if err != nil {
					t.Fatal(err)
				}
				for end := size; end > 0; end -= 100000 {
					start := max(0, end-100000)
					if _, err := f.WriteAt(data[start:end], int64(start)); err != nil {
						t.Fatal(err)
					}
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
			}
			e.checkFile(name, data)
			// Again, warm.
			e.checkFile(name, data)
		}
	}
}

func TestRandomWrites(t *testing.T) {
	e := newEnvCache(t, Options{}, cache.Options{Capacity: 1 << 30, BlockSize: testBlock})
	r := rand.New(rand.NewPCG(1, 2))
	for round, initial := range []int{0, 3*testBlock + 17} {
		name := fmt.Sprintf("r%d", round)
		want := randomBytes(uint64(round+10), initial)
		if err := os.WriteFile(e.path(name), want, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(e.path(name), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		for range 200 {
			off := r.IntN(5 * testBlock)
			n := 1 + r.IntN(20000)
			p := randomBytes(r.Uint64(), n)
			if _, err := f.WriteAt(p, int64(off)); err != nil {
				t.Fatal(err)
			}
			if off+n > len(want) {
				want = append(want, make([]byte, off+n-len(want))...)
			}
			copy(want[off:], p)
			// Reads through the same descriptor see the writes.
			if r.IntN(10) == 0 {
				got := make([]byte, n)
				if _, err := f.ReadAt(got, int64(off)); err != nil || !bytes.Equal(got, p) {
					t.Fatalf("read back through the writer: %v", err)
				}
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		e.checkFile(name, want)
	}
}

func TestAppendAndMiddleWrites(t *testing.T) {
	e := newEnvCache(t, Options{}, cache.Options{Capacity: 1 << 30, BlockSize: testBlock})
	want := randomBytes(3, 5*testBlock+99)
	if err := os.WriteFile(e.path("f"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	// Append through O_APPEND, twice.
	for i := range 2 {
		f, err := os.OpenFile(e.path("f"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		more := randomBytes(uint64(40+i), testBlock+i)
		if _, err := f.Write(more); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		want = append(want, more...)
		e.checkFile("f", want)
	}
	// Overwrite a range in the middle without O_TRUNC.
	f, err := os.OpenFile(e.path("f"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	patch := bytes.Repeat([]byte("middle"), 1000)
	if _, err := f.WriteAt(patch, 2*testBlock-5); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	copy(want[2*testBlock-5:], patch)
	e.checkFile("f", want)
}

func TestTruncate(t *testing.T) {
	e := newEnvCache(t, Options{}, cache.Options{Capacity: 1 << 30, BlockSize: testBlock})
	data := randomBytes(5, 4*testBlock)
	if err := os.WriteFile(e.path("f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	steps := []int64{3*testBlock + 5, 100, 0, 2*testBlock + 1}
	want := data
	for _, size := range steps {
		if err := os.Truncate(e.path("f"), size); err != nil {
			t.Fatal(err)
		}
		if size <= int64(len(want)) {
			want = want[:size]
		} else {
			want = append(want, make([]byte, size-int64(len(want)))...)
		}
		e.checkFile("f", want)
	}
	// ftruncate through a descriptor, then a write past the end.
	f, err := os.OpenFile(e.path("f"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(10); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("end"), 20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want = append(append(append([]byte{}, want[:10]...), make([]byte, 10)...), "end"...)
	e.checkFile("f", want)
	// O_TRUNC rewrite.
	if err := os.WriteFile(e.path("f"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.checkFile("f", []byte("new"))
}

// TestCorruptCacheBlock flips a byte of a cached block behind the cache's
// back: the next read still returns the right bytes.
func TestCorruptCacheBlock(t *testing.T) {
	e := newEnvCache(t, Options{}, cache.Options{Capacity: 1 << 30, BlockSize: testBlock})
	data := randomBytes(6, 4*testBlock)
	if err := os.WriteFile(e.path("f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	e.checkFile("f", data) // loads every block into the cache
	if err := e.c.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(e.dir, "*.data"))
	if err != nil || len(files) != 1 {
		t.Fatalf("cache files: %v %v", files, err)
	}
	cf, err := os.OpenFile(files[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(2*testBlock + 77)
	b := []byte{data[off] ^ 0xff}
	if _, err := cf.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	cf.Close()
	e.checkFile("f", data)
	if got := e.c.Stats().CorruptBlocks; got == 0 {
		t.Fatalf("the flipped block was not noticed")
	}
}

// TestUploadFailure makes uploads fail: close and fsync report EIO, the
// master does not record the content, and nothing is silently lost.
func TestUploadFailure(t *testing.T) {
	e := newEnvCache(t, Options{}, cache.Options{Capacity: 1 << 30, BlockSize: testBlock})
	ffs := &failFS{}
	e.ns.wrapFS(1, func(f ufs.FileSystem) ufs.FileSystem { ffs.FileSystem = f; return ffs })
	ffs.fail.Store(true)
	for _, streaming := range []bool{true, false} {
		name := fmt.Sprintf("f-%v", streaming)
		f, err := os.Create(e.path(name))
		if err != nil {
			t.Fatal(err)
		}
		data := randomBytes(7, 3*testBlock)
		if streaming {
			_, err = f.Write(data)
		} else {
			_, err = f.WriteAt(data, 1000)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); !errors.Is(err, syscall.EIO) {
			t.Fatalf("close with a failing upload: %v, want EIO", err)
		}
		if _, err := os.Stat(filepath.Join(e.ufs, name)); !os.IsNotExist(err) {
			t.Fatalf("UFS has %s after a failed upload: %v", name, err)
		}
	}

	// fsync fails, then succeeds once the UFS is back; close succeeds.
	f, err := os.Create(e.path("g"))
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(8, 2*testBlock+3)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("fsync with a failing upload: %v, want EIO", err)
	}
	ffs.fail.Store(false)
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync after recovery: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	e.checkFile("g", data)
	if !strings.Contains(e.logBuf.String(), "injected upload failure") {
		t.Errorf("the failure was not logged:\n%s", e.logBuf.String())
	}
}

// TestCloseToOpen changes a file as another host would (new UFS object,
// CompleteFile with the master); an open on this host that begins an
// attribute timeout after the change reads it, and with StrictOpen the next
// open does.
func TestCloseToOpen(t *testing.T) {
	// The kernel keeps the name for longer than the attributes: the open
	// reaches the mount without a lookup, which would fetch them.
	const ttl = 200 * time.Millisecond
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprintf("strict=%v", strict), func(t *testing.T) {
			testCloseToOpen(t, Options{AttrTimeout: ttl, EntryTimeout: time.Hour, StrictOpen: strict})
		})
	}
}

func testCloseToOpen(t *testing.T, opts Options) {
	e := newEnvCache(t, opts, cache.Options{Capacity: 1 << 30, BlockSize: testBlock})
	old := randomBytes(9, 2*testBlock)
	if err := os.WriteFile(e.path("f"), old, 0o644); err != nil {
		t.Fatal(err)
	}
	e.checkFile("f", old)
	ctx := context.Background()
	a, err := e.ns.Lookup(ctx, meta.RootIno, "f")
	if err != nil {
		t.Fatal(err)
	}
	loc, err := e.ns.Location(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	newer := randomBytes(10, 2*testBlock) // same size: only the fingerprint tells
	fp, err := loc.FS.Put(ctx, loc.Path, bytes.NewReader(newer), int64(len(newer)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ns.CompleteFile(ctx, a.Ino, uint64(len(newer)), meta.Fingerprint{Size: fp.Size, ETag: fp.ETag, MtimeNs: fp.ModTime.UnixNano()}, 0); err != nil {
		t.Fatal(err)
	}
	if !opts.StrictOpen {
		// The promise: attributes held here are seen until they are an
		// attribute timeout old, and they were asked for before the change.
		time.Sleep(opts.AttrTimeout)
	}
	if got := readFile(t, e.path("f"), false); !bytes.Equal(got, newer) {
		t.Fatalf("after a change elsewhere: read the old content")
	}
}

// TestPassthrough reads a wholly cached file: the open is passthrough and
// the reads do not reach the daemon.
func TestPassthrough(t *testing.T) {
	e := newEnvCache(t, Options{}, cache.Options{Capacity: 1 << 30, BlockSize: testBlock})
	if !e.m.passthrough.Load() {
		t.Skip("the kernel does not offer FUSE passthrough")
	}
	data := randomBytes(11, 5*testBlock+3)
	if err := os.WriteFile(e.path("f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	e.checkFile("f", data) // cold reads fill the cache
	// The cache completes the file a little after the reads return (the
	// last blocks may still be in flight, or a read-ahead was dropped when
	// its handle closed): open until the open is passthrough, reading past
	// the kernel's pages in between so that missing blocks are fetched.
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.waitIdle()
		before, reads := e.m.passthroughs.Load(), e.m.reads.Load()
		got := readFile(t, e.path("f"), false)
		if !bytes.Equal(got, data) {
			t.Fatal("read: wrong content")
		}
		if e.m.passthroughs.Load() != before {
			if n := e.m.reads.Load() - reads; n != 0 {
				t.Fatalf("%d reads reached the daemon through a passthrough open", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the open was not passthrough")
		}
		time.Sleep(10 * time.Millisecond)
		readFile(t, e.path("f"), true)
	}
	// A writer while a passthrough reader is open: direct I/O, no EIO.
	r, err := os.Open(e.path("f"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := os.OpenFile(e.path("f"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatalf("open for writing next to a passthrough reader: %v", err)
	}
	if _, err := w.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	e.checkFile("f", append(data, "tail"...))
}

func TestRenameFlags(t *testing.T) {
	e := newEnv(t, Options{})
	for _, n := range []string{"a", "b"} {
		if err := os.WriteFile(e.path(n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := unix.Renameat2(unix.AT_FDCWD, e.path("a"), unix.AT_FDCWD, e.path("b"), unix.RENAME_NOREPLACE)
	if !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("RENAME_NOREPLACE over an existing file: %v", err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, e.path("a"), unix.AT_FDCWD, e.path("b"), unix.RENAME_EXCHANGE); err != nil {
		t.Fatalf("RENAME_EXCHANGE: %v", err)
	}
	e.checkFile("a", []byte("b"))
	e.checkFile("b", []byte("a"))
	if err := unix.Renameat2(unix.AT_FDCWD, e.path("a"), unix.AT_FDCWD, e.path("c"), unix.RENAME_NOREPLACE); err != nil {
		t.Fatal(err)
	}
	e.checkFile("c", []byte("b"))
}

func TestReadOnly(t *testing.T) {
	e := newEnv(t, Options{ReadOnly: true})
	if err := os.WriteFile(e.path("f"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("create on a read-only mount: %v", err)
	}
	// A read-only UFS mount inside a writable namespace.
	e2 := newEnv(t, Options{})
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.MkdirAll(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ro, "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	e2.ns.addMount("/ro", ro, true)
	// The fake does not load listings from the UFS: record the file.
	ctx := context.Background()
	dir, err := e2.ns.Lookup(ctx, meta.RootIno, "ro")
	if err != nil {
		t.Fatal(err)
	}
	e2.ns.readOnlyFile(t, dir.Ino, "x", ro)
	if got, err := os.ReadFile(e2.path("ro/x")); err != nil || string(got) != "x" {
		t.Fatalf("read under a read-only UFS mount: %q %v", got, err)
	}
	if _, err := os.OpenFile(e2.path("ro/x"), os.O_WRONLY, 0); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("open for writing under a read-only UFS mount: %v", err)
	}
	if err := os.Mkdir(e2.path("ro/d"), 0o755); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("mkdir under a read-only UFS mount: %v", err)
	}
}

// noLinks is a FileSystem that cannot make hard links, as an object store.
type noLinks struct{ ufs.FileSystem }

func (n noLinks) Capabilities() ufs.Capabilities {
	c := n.FileSystem.Capabilities()
	c.HardLinks = false
	return c
}

func TestLinkOnObjectStore(t *testing.T) {
	e := newEnv(t, Options{})
	e.ns.wrapFS(1, func(f ufs.FileSystem) ufs.FileSystem { return noLinks{f} })
	if err := os.WriteFile(e.path("a"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(e.path("a"), e.path("b")); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("link on an object store: %v, want EPERM", err)
	}
}

// TestUnlinkDropsCache: the cached content of an unlinked file leaves the
// cache; a file with another open keeps it until the LRU takes it.
func TestUnlinkDropsCache(t *testing.T) {
	e := newEnvCache(t, Options{}, cache.Options{Capacity: 1 << 30, BlockSize: testBlock})
	data := randomBytes(8, 3*testBlock)
	for _, name := range []string{"gone", "kept"} {
		if err := os.WriteFile(e.path(name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		e.checkFile(name, data) // loads every block into the cache
	}
	e.waitIdle()
	cached := func() int {
		files, err := filepath.Glob(filepath.Join(e.dir, "*.data"))
		if err != nil {
			t.Fatal(err)
		}
		return len(files)
	}
	if n := cached(); n != 2 {
		t.Fatalf("%d cache files, want 2", n)
	}
	open, err := os.Open(e.path("kept"))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	for _, name := range []string{"gone", "kept"} {
		if err := os.Remove(e.path(name)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for cached() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d cache files after the unlinks, want 1 (the open file's)", cached())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The open file still reads its content.
	got := make([]byte, len(data))
	if _, err := open.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("reading the unlinked open file: %v", err)
	}
}
