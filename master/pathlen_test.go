package master

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	pb "github.com/skyfs/skyfs/proto/skyfspb"
	"github.com/skyfs/skyfs/ufs"
)

// shortPathScheme is a UFS over a local directory that takes paths of at
// most shortPathMax bytes, as S3 takes keys of at most 1,024.
const (
	shortPathScheme = "shortpathtest"
	shortPathMax    = 40
)

func init() {
	ufs.Register(shortPathScheme, func(ctx context.Context, u *url.URL, opts ufs.Options) (ufs.FileSystem, error) {
		fsys, err := ufs.Open(ctx, "file://"+u.Path, nil)
		if err != nil {
			return nil, err
		}
		return shortPathFS{fsys}, nil
	})
}

type shortPathFS struct{ ufs.FileSystem }

func (f shortPathFS) Capabilities() ufs.Capabilities {
	c := f.FileSystem.Capabilities()
	c.MaxPathBytes = shortPathMax
	return c
}

func (f shortPathFS) Link(ctx context.Context, src, dst string) error {
	return f.FileSystem.(ufs.Linker).Link(ctx, src, dst)
}

// TestPathTooLongForUFS: under a mount whose UFS takes paths of at most
// MaxPathBytes bytes, every way of making a name whose UFS path is longer
// (create, mkdir, symlink, mknod, rename, link) is ENAMETOOLONG and changes
// nothing, in the namespace and in the UFS; a path of exactly the limit is
// made. The first call on a fresh mount (its UFS not opened yet) is checked
// as well as later ones.
func TestPathTooLongForUFS(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	dir := t.TempDir()
	writeTree(t, dir, "x")
	am, err := e.mt.AddMount(ctx, &pb.AddMountRequest{Request: e.req(), Path: "/sp", Uri: shortPathScheme + "://" + dir})
	mustOK(t, "add mount", am.GetErrno(), am.GetMessage(), err)

	d := strings.Repeat("d", 20) // the UFS path "ddd…/" leaves 19 bytes for a name
	fits, long := "/sp/"+d+"/"+strings.Repeat("f", 19), "/sp/"+d+"/"+strings.Repeat("f", 20)
	tooLong := func(what string, errno int32, msg string, err error) {
		t.Helper()
		if err != nil || errno != int32(syscall.ENAMETOOLONG) || !strings.Contains(msg, "at most 40 bytes") {
			t.Errorf("%s: errno %d %q %v, want ENAMETOOLONG", what, errno, msg, err)
		}
	}
	// First call on the mount: its UFS is opened by the check.
	r, err := e.ns.Symlink(ctx, &pb.SymlinkRequest{Request: e.req(), Path: "/sp/" + strings.Repeat("s", 41), Target: []byte("x")})
	tooLong("symlink, first call", r.GetErrno(), r.GetMessage(), err)

	r, err = e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "/sp/" + d, Mode: 0o755})
	mustOK(t, "mkdir", r.GetErrno(), r.GetMessage(), err)
	r, err = e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Path: fits, Mode: 0o644})
	mustOK(t, "create at the limit", r.GetErrno(), r.GetMessage(), err)
	st, err := e.ns.ResolvePath(ctx, &pb.ResolvePathRequest{Path: "/sp/x"})
	mustOK(t, "stat", st.GetErrno(), st.GetMessage(), err)
	r, err = e.ns.Link(ctx, &pb.LinkRequest{Request: e.req(), Ino: st.Attr.Ino, NewPath: "/sp/" + strings.Repeat("x", 40)})
	mustOK(t, "link at the limit", r.GetErrno(), r.GetMessage(), err)
	r, err = e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "/sp/" + d + "/" + strings.Repeat("g", 19), Mode: 0o755})
	mustOK(t, "mkdir at the limit", r.GetErrno(), r.GetMessage(), err)
	if !exists(filepath.Join(dir, d, strings.Repeat("g", 19))) {
		t.Errorf("directory at the limit not in the UFS")
	}
	before := e.list(t, "/sp/"+d)
	ufsBefore, _ := os.ReadDir(filepath.Join(dir, d))

	r, err = e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Path: long, Mode: 0o644})
	tooLong("create", r.GetErrno(), r.GetMessage(), err)
	r, err = e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: long, Mode: 0o755})
	tooLong("mkdir", r.GetErrno(), r.GetMessage(), err)
	r, err = e.ns.Symlink(ctx, &pb.SymlinkRequest{Request: e.req(), Path: long, Target: []byte("x")})
	tooLong("symlink", r.GetErrno(), r.GetMessage(), err)
	r, err = e.ns.Mknod(ctx, &pb.MknodRequest{Request: e.req(), Path: long, Type: pb.FileType_FIFO, Mode: 0o644})
	tooLong("mknod", r.GetErrno(), r.GetMessage(), err)
	r, err = e.ns.Link(ctx, &pb.LinkRequest{Request: e.req(), Ino: st.Attr.Ino, NewPath: long})
	tooLong("link", r.GetErrno(), r.GetMessage(), err)
	mv, err := e.ns.Rename(ctx, &pb.RenameRequest{Request: e.req(), OldPath: fits, NewPath: long})
	tooLong("rename", mv.GetErrno(), mv.GetMessage(), err)

	if got := e.list(t, "/sp/"+d); !slices.Equal(got, before) {
		t.Errorf("namespace after refusals: %v, was %v", got, before)
	}
	if got, _ := os.ReadDir(filepath.Join(dir, d)); len(got) != len(ufsBefore) {
		t.Errorf("UFS after refusals: %d entries, was %d", len(got), len(ufsBefore))
	}
	// Outside the mount the UFS's limit does not apply.
	r, err = e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "/" + strings.Repeat("n", 200), Mode: 0o755})
	mustOK(t, "mkdir outside the mount", r.GetErrno(), r.GetMessage(), err)
}
