package fusefs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/skyfs/skyfs/cache"
	"github.com/skyfs/skyfs/meta"
)

// heldFiles writes count files of a few bytes in each of dirs through the
// mount and returns their paths under the mount, by directory.
func heldFiles(t *testing.T, e *env, dirs []string, count int) [][]string {
	t.Helper()
	var paths [][]string
	for _, d := range dirs {
		if err := os.Mkdir(e.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
		var ps []string
		for i := range count {
			p := fmt.Sprintf("%s/f%03d", d, i)
			if err := os.WriteFile(e.path(p), []byte(p), 0o644); err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		paths = append(paths, ps)
	}
	return paths
}

// openStat opens the file at p under the mount for reading, fstats it and
// reads it, checking its content is its name.
func openStat(t *testing.T, e *env, p string) {
	t.Helper()
	f, err := os.Open(e.path(p))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Size != int64(len(p)) {
		t.Fatalf("fstat %s: size %d, %v", p, st.Size, err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil || buf.String() != p {
		t.Fatalf("read %s: %q, %v", p, buf.String(), err)
	}
}

// statDirCalls returns the StatDir calls and the other reads of the
// namespace made so far.
func statDirCalls(e *env) (statDirs, others int64) {
	sd := e.ns.statDirs.Load()
	return sd, e.ns.reads() - sd
}

// TestHeldOpen checks that once a directory has been revalidated, opening
// and fstatting its files calls nothing in the namespace while their
// attributes are younger than the attribute timeout, and that the first
// open of a file written here costs one StatDir for all its siblings.
func TestHeldOpen(t *testing.T) {
	e := newEnvCache(t, Options{AttrTimeout: time.Hour, EntryTimeout: time.Hour}, cache.Options{Capacity: 1 << 30, BlockSize: testBlock})
	paths := heldFiles(t, e, []string{"d"}, 20)[0]
	sd0, other0 := statDirCalls(e)
	for _, p := range paths {
		openStat(t, e, p)
	}
	sd, other := statDirCalls(e)
	if sd-sd0 != 1 || other != other0 {
		t.Fatalf("first opens of 20 files written here: %d StatDir and %d other calls, want 1 and 0", sd-sd0, other-other0)
	}
	held := e.m.heldOpens.Load()
	for range 3 {
		for _, p := range paths {
			openStat(t, e, p)
		}
	}
	if sd2, other2 := statDirCalls(e); sd2 != sd || other2 != other {
		t.Fatalf("opens of held files: %d StatDir and %d other calls, want none", sd2-sd, other2-other)
	}
	if n := e.m.heldOpens.Load() - held; n != 3*int64(len(paths)) {
		t.Fatalf("%d opens answered from held attributes, want %d", n, 3*len(paths))
	}
}

// TestRevalidateByDirectory checks that once the attribute timeout has
// passed, the opens of the files of two directories cost one StatDir per
// directory, naming every file the kernel knows there, and no call per
// file.
func TestRevalidateByDirectory(t *testing.T) {
	const files = 30
	e := newEnvCache(t, Options{AttrTimeout: time.Hour, EntryTimeout: time.Hour}, cache.Options{Capacity: 1 << 30, BlockSize: testBlock})
	byDir := heldFiles(t, e, []string{"d1", "d2"}, files)
	for _, ps := range byDir {
		for _, p := range ps {
			openStat(t, e, p)
		}
	}
	for round := range 2 {
		// The mount's clock moves past the attribute timeout; the kernel's
		// (an hour of real time) does not, so the opens reach the mount.
		e.m.skew.Add(int64(2 * time.Hour))
		sd0, other0 := statDirCalls(e)
		names0 := e.ns.statNames.Load()
		for _, ps := range byDir {
			for _, p := range ps {
				openStat(t, e, p)
			}
		}
		sd, other := statDirCalls(e)
		if sd-sd0 != 2 || other != other0 {
			t.Fatalf("round %d: opens of %d files in 2 directories: %d StatDir and %d other calls, want 2 and 0", round, 2*files, sd-sd0, other-other0)
		}
		if n := e.ns.statNames.Load() - names0; n != 2*files {
			t.Fatalf("round %d: the StatDir calls named %d files, want %d", round, n, 2*files)
		}
	}
}

// TestLocalChangeEndsHolding checks that a change made through the mount is
// seen at once: a file rewritten here is read with its new content
// straight away, and an unlink here ends the holding of the attributes of
// the other names of the file (its link count).
func TestLocalChangeEndsHolding(t *testing.T) {
	e := newEnvCache(t, Options{AttrTimeout: time.Hour, EntryTimeout: time.Hour}, cache.Options{Capacity: 1 << 30, BlockSize: testBlock})
	p := heldFiles(t, e, []string{"d"}, 1)[0][0]
	openStat(t, e, p)
	newer := []byte("rewritten on this host")
	if err := os.WriteFile(e.path(p), newer, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, e.path(p), false); !bytes.Equal(got, newer) {
		t.Fatalf("after a rewrite here: read %q", got)
	}

	if err := os.Link(e.path(p), e.path("d/other")); err != nil {
		if err == syscall.EPERM || os.IsPermission(err) {
			t.Skip("the UFS does not make hard links")
		}
		t.Fatal(err)
	}
	openStat2 := func() syscall.Stat_t {
		f, err := os.Open(e.path("d/other"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := openStat2(); st.Nlink != 2 {
		t.Fatalf("link count with two names: %d", st.Nlink)
	}
	if err := os.Remove(e.path(p)); err != nil {
		t.Fatal(err)
	}
	if st := openStat2(); st.Nlink != 1 {
		t.Fatalf("link count after an unlink here: %d, want 1", st.Nlink)
	}
}

// TestHeldLookup checks that a name the kernel forgot is found again from
// the node it named, without a call, while the master's word for the name
// is younger than the timeouts, and that once it is older the lookup asks
// the master again.
func TestHeldLookup(t *testing.T) {
	e := newEnvCache(t, Options{AttrTimeout: time.Hour, EntryTimeout: time.Hour}, cache.Options{Capacity: 1 << 30, BlockSize: testBlock})
	paths := heldFiles(t, e, []string{"d"}, 10)[0]
	var dir syscall.Stat_t
	if err := syscall.Stat(e.path("d"), &dir); err != nil {
		t.Fatal(err)
	}
	// Open descriptors keep the kernel's inodes (and so the nodes) while
	// their names are dropped.
	for _, p := range paths {
		f, err := os.Open(e.path(p))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	lookupAll := func() {
		t.Helper()
		for _, p := range paths {
			if st := e.srv.EntryNotify(dir.Ino, p[len("d/"):]); !st.Ok() {
				t.Fatalf("entry notify %s: %v", p, st)
			}
		}
		for _, p := range paths {
			var st syscall.Stat_t
			if err := syscall.Stat(e.path(p), &st); err != nil || st.Size != int64(len(p)) {
				t.Fatalf("stat %s: size %d, %v", p, st.Size, err)
			}
		}
	}
	sd0, other0 := statDirCalls(e)
	held0 := e.m.heldLookups.Load()
	lookupAll()
	if sd, other := statDirCalls(e); sd != sd0 || other != other0 {
		t.Fatalf("lookups of held names: %d StatDir and %d other calls, want none", sd-sd0, other-other0)
	}
	if n := e.m.heldLookups.Load() - held0; n != int64(len(paths)) {
		t.Fatalf("%d lookups answered from held names, want %d", n, len(paths))
	}
	e.m.skew.Add(int64(2 * time.Hour))
	lookups0 := e.ns.lookups.Load()
	lookupAll()
	if n := e.ns.lookups.Load() - lookups0; n == 0 {
		t.Fatal("lookups of names held for longer than the timeouts did not reach the master")
	}
}

// TestRevalidateOnce checks that opens of several files of one directory
// whose attributes expired together make one StatDir: those that find one
// under way wait for it.
func TestRevalidateOnce(t *testing.T) {
	const files = 8
	e := newEnvCache(t, Options{AttrTimeout: time.Hour, EntryTimeout: time.Hour}, cache.Options{Capacity: 1 << 30, BlockSize: testBlock})
	paths := heldFiles(t, e, []string{"d"}, files)[0]
	for _, p := range paths {
		openStat(t, e, p)
	}
	e.m.skew.Add(int64(2 * time.Hour))
	gate := make(chan struct{})
	e.ns.statDirGate.Store(&gate)
	sd0, waits0 := e.ns.statDirs.Load(), e.m.revalidationWaits.Load()
	errs := make(chan error, files)
	for _, p := range paths {
		go func() {
			f, err := os.Open(e.path(p))
			if err == nil {
				err = f.Close()
			}
			errs <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.ns.statDirs.Load()-sd0 < 1 || e.m.revalidationWaits.Load()-waits0 < files-1 {
		if time.Now().After(deadline) {
			close(gate)
			t.Fatalf("after 10s: %d StatDir calls, %d opens waiting for one; want 1 and %d",
				e.ns.statDirs.Load()-sd0, e.m.revalidationWaits.Load()-waits0, files-1)
		}
		time.Sleep(time.Millisecond) // polling interval
	}
	close(gate)
	for range files {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := e.ns.statDirs.Load() - sd0; n != 1 {
		t.Fatalf("%d StatDir calls for %d opens in one directory, want 1", n, files)
	}
}

// TestReadOnlyCloseNoFlush checks that closing a descriptor opened for
// reading sends the mount no FLUSH, and that closing one opened for
// writing still does (and uploads).
func TestReadOnlyCloseNoFlush(t *testing.T) {
	l := &opLog{}
	e := newEnv(t, Options{Observe: l.observe})
	p := heldFiles(t, e, []string{"d"}, 1)[0][0]
	flushes, _ := l.get(OpFlush)
	for range 3 {
		openStat(t, e, p)
	}
	if n, _ := l.get(OpFlush); n != flushes {
		t.Fatalf("%d FLUSH requests for 3 closes of read-only descriptors, want none", n-flushes)
	}
	e.checkFile(p, []byte(p))
	if err := os.WriteFile(e.path(p), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, _ := l.get(OpFlush); n == flushes {
		t.Fatal("no FLUSH for the close of a descriptor that wrote")
	}
	e.checkFile(p, []byte("new"))
}

// TestRenamedElsewhere renames and removes files behind the mount's back,
// as another host would, while this host holds their locations: a read of
// blocks the cache does not hold finds the renamed file where the master
// says it lives now, and a read of the removed one fails with ESTALE.
func TestRenamedElsewhere(t *testing.T) {
	e := newEnvCache(t, Options{AttrTimeout: time.Hour, EntryTimeout: time.Hour}, cache.Options{Capacity: 1 << 30, BlockSize: testBlock})
	if err := os.Mkdir(e.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(11, 3*testBlock+5)
	for _, name := range []string{"d/moved", "d/gone"} {
		if err := os.WriteFile(e.path(name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		e.checkFile(name, data) // the mount holds its attributes and location
	}
	e.waitIdle()
	if _, err := e.c.DropMatching(func(cache.Key) bool { return true }); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d, err := e.ns.Lookup(ctx, meta.RootIno, "d")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ns.Rename(ctx, d.Ino, "moved", meta.RootIno, "there", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ns.Unlink(ctx, d.Ino, "gone"); err != nil {
		t.Fatal(err)
	}
	held := e.m.heldOpens.Load()
	if got := readFile(t, e.path("d/moved"), true); !bytes.Equal(got, data) {
		t.Fatalf("file renamed elsewhere: read %d bytes, want %d (first difference at %d)", len(got), len(data), firstDiff(got, data))
	}
	if e.m.heldOpens.Load() == held || e.m.relocations.Load() != 1 {
		t.Fatalf("the open was not held (%d held opens) or the read did not relocate (%d relocations)", e.m.heldOpens.Load()-held, e.m.relocations.Load())
	}
	// The location the read found is held for the next opens.
	if got := readFile(t, e.path("d/moved"), true); !bytes.Equal(got, data) || e.m.relocations.Load() != 1 {
		t.Fatalf("reopened: read %d bytes, %d relocations", len(got), e.m.relocations.Load())
	}
	f, err := os.OpenFile(e.path("d/gone"), os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, testBlock)
	if _, err := f.ReadAt(buf, 0); !errors.Is(err, syscall.ESTALE) {
		t.Fatalf("read of a file removed elsewhere: %v, want ESTALE", err)
	}
}
