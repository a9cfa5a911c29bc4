package master

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/skyfs/skyfs/meta"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
	"github.com/skyfs/skyfs/ufs"
	_ "github.com/skyfs/skyfs/ufs/local" // file:// mounts
)

// writeTree creates files (content = name) and directories (names ending in
// "/") under root.
func writeTree(t *testing.T, root string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(root, n)
		if strings.HasSuffix(n, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// mount mounts a fresh local directory holding names at path.
func (e *env) mount(t *testing.T, path string, readOnly bool, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, names...)
	r, err := e.mt.AddMount(ctxT(t), &pb.AddMountRequest{
		Request: e.req(), Path: path, Uri: "file://" + dir, ReadOnly: readOnly,
		Options: map[string]string{OptUID: "1000", OptGID: "100"},
	})
	mustOK(t, "add mount", r.GetErrno(), r.GetMessage(), err)
	return dir
}

// list returns the names in a directory, through the master.
func (e *env) list(t *testing.T, path string) []string {
	t.Helper()
	var names []string
	var cursor []byte
	for {
		p, err := e.ns.ReadDir(ctxT(t), &pb.ReadDirRequest{Path: path, Cursor: cursor, Limit: 7})
		mustOK(t, "readdir "+path, p.GetErrno(), p.GetMessage(), err)
		for _, d := range p.Entries {
			names = append(names, string(d.Name))
		}
		if !p.More {
			return names
		}
		cursor = p.NextCursor
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func TestUFSLazyLoad(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.mount(t, "/w", false, "a.txt", "b/c.txt", "b/d/", "e/f/g.txt")
	before := e.j.proposals.Load()
	if got := fmt.Sprint(e.list(t, "/w")); got != "[a.txt b e]" {
		t.Errorf("/w = %s", got)
	}
	// The path resolves through directories loaded on the way.
	st, err := e.ns.ResolvePath(ctx, &pb.ResolvePathRequest{Path: "/w/e/f/g.txt"})
	mustOK(t, "stat", st.GetErrno(), st.GetMessage(), err)
	if a := st.Attr; a.Size != uint64(len("e/f/g.txt")) || a.Mode != 0o644 || a.Uid != 1000 || a.Gid != 100 || a.Ufs == nil || a.Pending {
		t.Errorf("loaded file = %+v", a)
	}
	b, err := e.ns.ResolvePath(ctx, &pb.ResolvePathRequest{Path: "/w/b"})
	mustOK(t, "stat b", b.GetErrno(), b.GetMessage(), err)
	if b.Attr.Mode != 0o755 || b.Attr.Type != pb.FileType_DIRECTORY {
		t.Errorf("loaded dir = %+v", b.Attr)
	}
	lk, err := e.ns.Lookup(ctx, &pb.LookupRequest{Parent: b.Attr.Ino, Name: []byte("d")})
	mustOK(t, "lookup", lk.GetErrno(), lk.GetMessage(), err)
	// A second listing loads nothing.
	n := e.j.proposals.Load()
	e.list(t, "/w")
	e.list(t, "/w/b")
	if e.j.proposals.Load() != n {
		t.Errorf("listing a loaded directory proposed %d entries", e.j.proposals.Load()-n)
	}
	if n == before {
		t.Errorf("nothing was loaded")
	}
	// Missing names are ENOENT after a load.
	if r, err := e.ns.ResolvePath(ctx, &pb.ResolvePathRequest{Path: "/w/b/nope"}); err != nil || r.Errno != int32(syscall.ENOENT) {
		t.Errorf("missing name: %v %v", r, err)
	}
}

func TestUFSConcurrentLoadsCoalesce(t *testing.T) {
	e := newEnv(t)
	names := make([]string, 50)
	for i := range names {
		names[i] = fmt.Sprintf("f%03d", i)
	}
	e.mount(t, "/w", false, names...)
	before := e.j.proposals.Load()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got := len(e.list(t, "/w")); got != 50 {
				t.Errorf("listed %d names", got)
			}
		})
	}
	wg.Wait()
	if n := e.j.proposals.Load() - before; n != 1 {
		t.Errorf("8 concurrent listings proposed %d LoadDir entries, want 1", n)
	}
}

func TestUFSLoadBatches(t *testing.T) {
	e := newEnv(t)
	e.srv.cfg.ListPageSize = 500
	dir := e.mount(t, "/w", false)
	const n = meta.MaxLoadBatch + 10
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := e.j.proposals.Load()
	if got := len(e.list(t, "/w")); got != n {
		t.Errorf("listed %d names, want %d", got, n)
	}
	if p := e.j.proposals.Load() - before; p != 2 {
		t.Errorf("%d LoadDir entries, want 2", p)
	}
}

func TestUFSSideEffects(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	dir := e.mount(t, "/w", false, "old.txt", "full/x", "empty/")
	mk, err := e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "/w/new", Mode: 0o750})
	mustOK(t, "mkdir", mk.GetErrno(), mk.GetMessage(), err)
	if fi, err := os.Stat(filepath.Join(dir, "new")); err != nil || !fi.IsDir() {
		t.Errorf("mkdir left no UFS directory: %v", err)
	}
	cr, err := e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Path: "/w/new/p", Mode: 0o600, WantLocation: true})
	mustOK(t, "create", cr.GetErrno(), cr.GetMessage(), err)
	if !cr.Attr.Pending || exists(filepath.Join(dir, "new/p")) {
		t.Errorf("create: pending=%v, object exists=%v", cr.Attr.Pending, exists(filepath.Join(dir, "new/p")))
	}
	// The answer says where the file lives, as Locate does.
	loc, err := e.ns.Locate(ctx, &pb.LocateRequest{Ino: cr.Ino})
	mustOK(t, "locate", loc.GetErrno(), loc.GetMessage(), err)
	if cr.Location == nil || cr.Location.UfsPath != "new/p" || cr.Location.MountId != loc.MountId || cr.Location.MountId == 0 {
		t.Errorf("create answered location %v; Locate answers %v", cr.Location, loc)
	}
	// Not asked, it is not answered.
	cq, err := e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Path: "/w/new/q", Mode: 0o600})
	mustOK(t, "create without location", cq.GetErrno(), cq.GetMessage(), err)
	if cq.Location != nil {
		t.Errorf("create not asked for a location answered %v", cq.Location)
	}
	// A pending file has no object: unlink only drops the name.
	un, err := e.ns.Unlink(ctx, &pb.UnlinkRequest{Request: e.req(), Path: "/w/new/p"})
	mustOK(t, "unlink pending", un.GetErrno(), un.GetMessage(), err)

	mv, err := e.ns.Rename(ctx, &pb.RenameRequest{Request: e.req(), OldPath: "/w/old.txt", NewPath: "/w/new/moved.txt"})
	mustOK(t, "rename file", mv.GetErrno(), mv.GetMessage(), err)
	if exists(filepath.Join(dir, "old.txt")) || !exists(filepath.Join(dir, "new/moved.txt")) {
		t.Errorf("rename did not move the UFS file")
	}
	mv, err = e.ns.Rename(ctx, &pb.RenameRequest{Request: e.req(), OldPath: "/w/full", NewPath: "/w/full2"})
	mustOK(t, "rename dir", mv.GetErrno(), mv.GetMessage(), err)
	if !exists(filepath.Join(dir, "full2/x")) || exists(filepath.Join(dir, "full")) {
		t.Errorf("rename did not move the UFS directory")
	}
	if got := fmt.Sprint(e.list(t, "/w/full2")); got != "[x]" {
		t.Errorf("/w/full2 = %s", got)
	}
	un, err = e.ns.Unlink(ctx, &pb.UnlinkRequest{Request: e.req(), Path: "/w/new/moved.txt"})
	mustOK(t, "unlink", un.GetErrno(), un.GetMessage(), err)
	if exists(filepath.Join(dir, "new/moved.txt")) {
		t.Errorf("unlink left the UFS file")
	}
	rd, err := e.ns.Rmdir(ctx, &pb.RmdirRequest{Request: e.req(), Path: "/w/empty"})
	mustOK(t, "rmdir", rd.GetErrno(), rd.GetMessage(), err)
	if exists(filepath.Join(dir, "empty")) {
		t.Errorf("rmdir left the UFS directory")
	}
	// Symlinks and xattrs live in the master only.
	sl, err := e.ns.Symlink(ctx, &pb.SymlinkRequest{Request: e.req(), Path: "/w/link", Target: []byte("full2/x")})
	mustOK(t, "symlink", sl.GetErrno(), sl.GetMessage(), err)
	if exists(filepath.Join(dir, "link")) {
		t.Errorf("symlink reached the UFS")
	}
}

func TestUFSErrorsChangeNothing(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	dir := e.mount(t, "/w", false, "a/x", "f")
	e.list(t, "/w")
	e.list(t, "/w/a")
	// The UFS changed behind the master's back.
	writeTree(t, dir, "a/y", "taken/")
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	type answer interface {
		GetErrno() int32
		GetMessage() string
	}
	tests := []struct {
		name  string
		call  func() (answer, error)
		errno syscall.Errno
	}{
		{"mkdir over a UFS directory", func() (answer, error) {
			return e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "/w/taken", Mode: 0o755})
		}, syscall.EEXIST},
		{"mkdir over a UFS file", func() (answer, error) {
			return e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "/w/file", Mode: 0o755})
		}, syscall.EEXIST},
		{"rename onto a UFS directory", func() (answer, error) {
			return e.ns.Rename(ctx, &pb.RenameRequest{Request: e.req(), OldPath: "/w/f", NewPath: "/w/taken"})
		}, syscall.EISDIR},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.j.proposals.Load()
			r, err := tc.call()
			if err != nil {
				t.Fatal(err)
			}
			if got := syscall.Errno(r.GetErrno()); got != tc.errno {
				t.Errorf("errno = %v (%s), want %v", got, r.GetMessage(), tc.errno)
			}
			if n := e.j.proposals.Load() - before; n != 0 {
				t.Errorf("%d entries proposed", n)
			}
		})
	}
	// rmdir of a directory empty in the namespace but not in the UFS.
	if _, err := e.ns.Unlink(ctx, &pb.UnlinkRequest{Request: e.req(), Path: "/w/a/x"}); err != nil {
		t.Fatal(err)
	}
	rd, err := e.ns.Rmdir(ctx, &pb.RmdirRequest{Request: e.req(), Path: "/w/a"})
	if err != nil || syscall.Errno(rd.Errno) != syscall.ENOTEMPTY {
		t.Errorf("rmdir of a directory with an unknown UFS child: %v %v", rd, err)
	}
	if !exists(filepath.Join(dir, "a/y")) {
		t.Errorf("rmdir touched the UFS")
	}
	// A deposed leader touches no UFS.
	e.j.noLease.Store(true)
	mk, err := e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "/w/late", Mode: 0o755})
	if err == nil && mk.Errno == 0 {
		t.Errorf("mkdir without a lease succeeded")
	}
	e.j.noLease.Store(false)
	if exists(filepath.Join(dir, "late")) {
		t.Errorf("mkdir without a lease reached the UFS")
	}
}

func TestUFSReadOnlyMount(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	dir := e.mount(t, "/ro", true, "a", "d/")
	e.list(t, "/ro")
	type answer interface{ GetErrno() int32 }
	tests := []struct {
		name string
		call func() (answer, error)
	}{
		{"mkdir", func() (answer, error) {
			return e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "/ro/x", Mode: 0o755})
		}},
		{"create", func() (answer, error) {
			return e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Path: "/ro/x", Mode: 0o644})
		}},
		{"unlink", func() (answer, error) {
			return e.ns.Unlink(ctx, &pb.UnlinkRequest{Request: e.req(), Path: "/ro/a"})
		}},
		{"rmdir", func() (answer, error) {
			return e.ns.Rmdir(ctx, &pb.RmdirRequest{Request: e.req(), Path: "/ro/d"})
		}},
		{"rename", func() (answer, error) {
			return e.ns.Rename(ctx, &pb.RenameRequest{Request: e.req(), OldPath: "/ro/a", NewPath: "/ro/b"})
		}},
		{"symlink", func() (answer, error) {
			return e.ns.Symlink(ctx, &pb.SymlinkRequest{Request: e.req(), Path: "/ro/l", Target: []byte("a")})
		}},
		{"setattr", func() (answer, error) {
			return e.ns.SetAttr(ctx, &pb.SetAttrRequest{Request: e.req(), Path: "/ro/a", Valid: meta.SetAttrMode, Mode: 0o600})
		}},
		{"setxattr", func() (answer, error) {
			return e.ns.SetXattr(ctx, &pb.SetXattrRequest{Request: e.req(), Path: "/ro/a", Name: []byte("user.x"), Value: []byte("1")})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.call()
			if err != nil || syscall.Errno(r.GetErrno()) != syscall.EROFS {
				t.Errorf("got %v %v, want EROFS", r, err)
			}
		})
	}
	if !exists(filepath.Join(dir, "a")) || !exists(filepath.Join(dir, "d")) {
		t.Errorf("a read-only mount's UFS changed")
	}
}

// syncStream collects the messages of a Sync call made in-process.
type syncStream struct {
	grpc.ServerStream
	ctx  context.Context
	msgs []*pb.SyncProgress
}

func (s *syncStream) Context() context.Context      { return s.ctx }
func (s *syncStream) Send(p *pb.SyncProgress) error { s.msgs = append(s.msgs, p); return nil }
func (s *syncStream) SetHeader(metadata.MD) error   { return nil }

func (e *env) sync(t *testing.T, path string, recursive bool) *pb.SyncProgress {
	t.Helper()
	st := &syncStream{ctx: ctxT(t)}
	if err := (&mountServer{s: e.srv}).Sync(&pb.SyncRequest{Path: path, Recursive: recursive}, st); err != nil {
		t.Fatalf("sync: %v", err)
	}
	last := st.msgs[len(st.msgs)-1]
	if !last.Done {
		t.Fatalf("sync ended without a final message: %v", st.msgs)
	}
	return last
}

func TestUFSSync(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	dir := e.mount(t, "/w", false, "keep", "gone", "over", "sub/deep")
	e.list(t, "/w")
	e.list(t, "/w/sub")
	old, err := e.ns.ResolvePath(ctx, &pb.ResolvePathRequest{Path: "/w/over"})
	mustOK(t, "stat", old.GetErrno(), old.GetMessage(), err)

	// Changes made directly in the UFS.
	os.Remove(filepath.Join(dir, "gone"))
	if err := os.WriteFile(filepath.Join(dir, "over"), []byte("a longer content"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, "new", "newdir/inner", "sub/deeper")
	if got := fmt.Sprint(e.list(t, "/w")); got != "[gone keep over sub]" {
		t.Errorf("before sync /w = %s", got)
	}
	p := e.sync(t, "/w", true)
	if p.Errno != 0 || p.Added < 3 || p.Removed < 1 || p.Updated < 1 || p.Directories < 3 {
		t.Errorf("sync totals = %+v", p)
	}
	if got := fmt.Sprint(e.list(t, "/w")); got != "[keep new newdir over sub]" {
		t.Errorf("after sync /w = %s", got)
	}
	if got := fmt.Sprint(e.list(t, "/w/sub")); got != "[deep deeper]" {
		t.Errorf("after sync /w/sub = %s", got)
	}
	nw, err := e.ns.ResolvePath(ctx, &pb.ResolvePathRequest{Path: "/w/over"})
	mustOK(t, "stat", nw.GetErrno(), nw.GetMessage(), err)
	if nw.Attr.Size != uint64(len("a longer content")) || nw.Attr.Ufs.GetSize() == old.Attr.Ufs.GetSize() {
		t.Errorf("overwritten file: %+v (was %+v)", nw.Attr, old.Attr)
	}
	// Outside a mount there is nothing to sync.
	mk, _ := e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "/plain", Mode: 0o755})
	mustOK(t, "mkdir", mk.GetErrno(), mk.GetMessage(), nil)
	if p := e.sync(t, "/plain", false); p.Errno != int32(syscall.EINVAL) {
		t.Errorf("sync outside a mount: %+v", p)
	}
}

func TestUFSSyncInterval(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	writeTree(t, dir, "a")
	r, err := e.mt.AddMount(ctxT(t), &pb.AddMountRequest{
		Request: e.req(), Path: "/w", Uri: "file://" + dir, SyncIntervalNs: int64(time.Minute),
	})
	mustOK(t, "add mount", r.GetErrno(), r.GetMessage(), err)
	e.list(t, "/w")
	writeTree(t, dir, "b")
	if got := fmt.Sprint(e.list(t, "/w")); got != "[a]" {
		t.Errorf("within the interval /w = %s", got)
	}
	e.now.Add(int64(2 * time.Minute))
	if got := fmt.Sprint(e.list(t, "/w")); got != "[a b]" {
		t.Errorf("after the interval /w = %s", got)
	}
}

// TestUFSSyncIntervalByPath checks that a mutation naming a path reloads the
// directories along it that are due, and only those.
func TestUFSSyncIntervalByPath(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	dir := t.TempDir()
	writeTree(t, dir, "x/old")
	r, err := e.mt.AddMount(ctx, &pb.AddMountRequest{
		Request: e.req(), Path: "/w", Uri: "file://" + dir, SyncIntervalNs: int64(time.Minute),
	})
	mustOK(t, "add mount", r.GetErrno(), r.GetMessage(), err)
	create := func(path string) syscall.Errno {
		t.Helper()
		c, err := e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Path: path, Mode: 0o644})
		if err != nil {
			t.Fatal(err)
		}
		return syscall.Errno(c.Errno)
	}
	// The first create loads /w and /w/x on its way.
	if en := create("/w/x/old"); en != syscall.EEXIST {
		t.Fatalf("create over a UFS file: %v", en)
	}
	writeTree(t, dir, "x/new")
	if en := create("/w/x/new"); en != 0 {
		t.Fatalf("within the interval the UFS change is not seen yet: %v", en)
	}
	writeTree(t, dir, "x/later")
	e.now.Add(int64(2 * time.Minute))
	if en := create("/w/x/later"); en != syscall.EEXIST {
		t.Fatalf("after the interval a create must see the UFS's new file: %v", en)
	}
}

func TestUFSAddMountChecks(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name  string
		uri   string
		errno syscall.Errno
	}{
		{"missing directory", "file://" + missing, syscall.ENOENT},
		{"unknown scheme", "gopher://x/y", syscall.EINVAL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.mt.AddMount(ctx, &pb.AddMountRequest{
				Request: e.req(), Path: "/m", Uri: tc.uri, Options: map[string]string{"x.secretKey": "hunter2hunter2"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if syscall.Errno(r.Errno) != tc.errno || strings.Contains(r.Message, "hunter2") || strings.Contains(r.Message, "\n") {
				t.Errorf("got %v %q", syscall.Errno(r.Errno), r.Message)
			}
			if e.j.proposals.Load() != 0 {
				t.Errorf("a refused mount was journaled")
			}
		})
	}
}

func TestUFSUnmountPurges(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	var names []string
	for i := range 30 {
		names = append(names, fmt.Sprintf("d%d/f%d", i%3, i))
	}
	dir := e.mount(t, "/w", false, names...)
	e.sync(t, "/w", true)
	count := func() uint64 {
		s, err := e.ns.StatFS(ctx, &pb.StatFSRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return s.Inodes
	}
	if c := count(); c < 30 {
		t.Fatalf("%d inodes after the load", c)
	}
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	go e.srv.Run(runCtx)
	rm, err := e.mt.RemoveMount(ctx, &pb.RemoveMountRequest{Request: e.req(), Path: "/w"})
	mustOK(t, "unmount", rm.GetErrno(), rm.GetMessage(), err)
	deadline := time.Now().Add(10 * time.Second)
	for count() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d inodes left after the unmount", count())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The UFS keeps its data.
	var left []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	sort.Strings(left)
	if len(left) != 30 {
		t.Errorf("UFS files after unmount: %d", len(left))
	}
}

func TestUFSRootMount(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	writeTree(t, dir, "hello")
	e.srv.cfg.RootUFS = "file://" + dir
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	go e.srv.Run(runCtx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ls, err := e.mt.ListMounts(ctxT(t), &pb.ListMountsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ls.Mounts) == 1 && ls.Mounts[0].Path == "/" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("root not mounted: %v", ls)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := fmt.Sprint(e.list(t, "/")); got != "[hello]" {
		t.Errorf("/ = %s", got)
	}
	// Another leader finds the root mounted and proposes nothing.
	n := e.j.proposals.Load()
	if !e.srv.mountRoot(context.Background()) || e.j.proposals.Load() != n {
		t.Errorf("a second root mount was proposed")
	}
}

// A stat by path whose directories are all loaded reads the namespace once:
// the walk that finds nothing to load is the answer. The last name is not
// loaded, so it need not be a directory; a name a loaded directory does not
// hold is ENOENT from that one read. A directory not loaded yet is loaded
// first, and its names then answer.
func TestStatLoadedPath(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.mount(t, "/w", false, "a/f", "b/g")
	e.list(t, "/w")
	e.list(t, "/w/a")
	for _, c := range []struct {
		path  string
		errno syscall.Errno
	}{{"/w/a/f", 0}, {"/w/a", 0}, {"/w", 0}, {"/w/a/nope", syscall.ENOENT}, {"/w/nope/f", syscall.ENOENT}, {"/w/a/f/x", syscall.ENOTDIR}} {
		before := e.j.views.Load()
		r, err := e.ns.ResolvePath(ctx, &pb.ResolvePathRequest{Path: c.path})
		if err != nil || syscall.Errno(r.Errno) != c.errno {
			t.Fatalf("stat %s: %v, errno %d, want %d", c.path, err, r.GetErrno(), c.errno)
		}
		if n := e.j.views.Load() - before; n != 1 {
			t.Errorf("stat %s: %d reads of the namespace, want 1", c.path, n)
		}
	}
	loads := e.j.proposals.Load()
	r, err := e.ns.ResolvePath(ctx, &pb.ResolvePathRequest{Path: "/w/b/g"})
	mustOK(t, "stat /w/b/g", r.GetErrno(), r.GetMessage(), err)
	if r.Attr.Type != pb.FileType_REGULAR || e.j.proposals.Load() == loads {
		t.Errorf("stat /w/b/g through a directory not loaded: %v after %d proposals", r.Attr, e.j.proposals.Load()-loads)
	}
}

// listGate holds every listing page after the first until released.
type listGate struct {
	ufs.FileSystem
	release chan struct{}
}

func (g *listGate) List(ctx context.Context, dir string, o ufs.ListOptions) (ufs.Page, error) {
	if o.Cursor != "" {
		select {
		case <-g.release:
		case <-ctx.Done():
			return ufs.Page{}, ctx.Err()
		}
	}
	return g.FileSystem.List(ctx, dir, o)
}

// chanStream passes the messages of a Sync call made in-process to a channel.
type chanStream struct {
	grpc.ServerStream
	ctx  context.Context
	msgs chan *pb.SyncProgress
}

func (s *chanStream) Context() context.Context      { return s.ctx }
func (s *chanStream) Send(p *pb.SyncProgress) error { s.msgs <- p; return nil }
func (s *chanStream) SetHeader(metadata.MD) error   { return nil }

// A sync reports progress while one directory loads, not only between
// directories: the entries listed so far of a directory whose listing is
// held after its first page, and then the totals once it is released.
func TestSyncProgressWithinADirectory(t *testing.T) {
	g := &listGate{release: make(chan struct{})}
	e := newEnvWith(t, func(c *Config) {
		c.ListPageSize = 5
		c.WrapUFS = func(fsys ufs.FileSystem, _ string) ufs.FileSystem {
			g.FileSystem = fsys
			return g
		}
	})
	var names []string
	for i := range 12 {
		names = append(names, fmt.Sprintf("f%02d", i))
	}
	e.mount(t, "/w", false, names...)
	st := &chanStream{ctx: ctxT(t), msgs: make(chan *pb.SyncProgress, 64)}
	errc := make(chan error, 1)
	go func() { errc <- (&mountServer{s: e.srv}).Sync(&pb.SyncRequest{Path: "/w"}, st) }()
	deadline := time.After(20 * time.Second)
	released := false
	for {
		select {
		case p := <-st.msgs:
			switch {
			case !p.Done && !released:
				if p.Entries != 5 || p.Directories != 0 {
					t.Fatalf("progress while the first page is loaded: %v, want 5 entries of a directory not done", p)
				}
				released = true
				close(g.release)
			case p.Done:
				if !released || p.Errno != 0 || p.Entries != 12 || p.Directories != 1 || p.Added != 12 {
					t.Fatalf("sync ended with %v (progress seen: %v), want 12 entries added in 1 directory after progress", p, released)
				}
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				return
			}
		case <-deadline:
			t.Fatal("no progress while the directory's listing was held")
		}
	}
}

// failLater fails every listing page after the first.
type failLater struct{ ufs.FileSystem }

func (f failLater) List(ctx context.Context, dir string, o ufs.ListOptions) (ufs.Page, error) {
	if o.Cursor != "" {
		return ufs.Page{}, fmt.Errorf("listing broke: %w", syscall.EIO)
	}
	return f.FileSystem.List(ctx, dir, o)
}

// A listing that fails after its first page (listed ahead while the first is
// journaled) fails the load, which leaves the directory unloaded; once the
// UFS lists again, the load finishes with every name.
func TestLoadFailsOnALaterPage(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	e := newEnvWith(t, func(c *Config) {
		c.ListPageSize = 4
		c.WrapUFS = func(fsys ufs.FileSystem, _ string) ufs.FileSystem {
			return switchUFS{fsys, &broken}
		}
	})
	var names []string
	for i := range 10 {
		names = append(names, fmt.Sprintf("f%02d", i))
	}
	e.mount(t, "/w", false, names...)
	r, err := e.ns.ReadDir(ctxT(t), &pb.ReadDirRequest{Path: "/w"})
	if err != nil || r.Errno == 0 {
		t.Fatalf("readdir over a listing that breaks: %v %v, want an errno", r, err)
	}
	var loaded bool
	e.j.View(func(tx meta.Txn) error {
		a, err := meta.Resolve(tx, "/w")
		loaded = err == nil && a.Loaded
		return nil
	})
	if loaded {
		t.Errorf("/w is marked loaded after a listing that failed")
	}
	broken.Store(false)
	if got := e.list(t, "/w"); fmt.Sprint(got) != fmt.Sprint(names) {
		t.Errorf("/w = %v, want %v", got, names)
	}
}

// switchUFS fails the pages after the first while broken is set.
type switchUFS struct {
	ufs.FileSystem
	broken *atomic.Bool
}

func (s switchUFS) List(ctx context.Context, dir string, o ufs.ListOptions) (ufs.Page, error) {
	if s.broken.Load() {
		return failLater{s.FileSystem}.List(ctx, dir, o)
	}
	return s.FileSystem.List(ctx, dir, o)
}
