package master

import (
	"context"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	pb "github.com/skyfs/skyfs/proto/skyfspb"
	"github.com/skyfs/skyfs/ufs"
)

// objectStoreScheme is a UFS over a local directory that says what an object
// store says of itself (no hard links) and counts the calls that change it
// in objectStoreChanges.
const objectStoreScheme = "objectstoretest"

// objectStoreChanges counts the calls made to objectstoretest UFSes that
// change them.
var objectStoreChanges atomic.Int64

func init() {
	ufs.Register(objectStoreScheme, func(ctx context.Context, u *url.URL, opts ufs.Options) (ufs.FileSystem, error) {
		fsys, err := ufs.Open(ctx, "file://"+u.Path, nil)
		if err != nil {
			return nil, err
		}
		return objectStoreFS{fsys}, nil
	})
}

type objectStoreFS struct{ ufs.FileSystem }

func (f objectStoreFS) Capabilities() ufs.Capabilities {
	c := f.FileSystem.Capabilities()
	c.HardLinks = false
	return c
}

func (f objectStoreFS) Put(ctx context.Context, p string, r io.Reader, size int64) (ufs.Fingerprint, error) {
	objectStoreChanges.Add(1)
	return f.FileSystem.Put(ctx, p, r, size)
}

func (f objectStoreFS) Create(ctx context.Context, p string) (ufs.Writer, error) {
	objectStoreChanges.Add(1)
	return f.FileSystem.Create(ctx, p)
}

func (f objectStoreFS) Delete(ctx context.Context, p string) error {
	objectStoreChanges.Add(1)
	return f.FileSystem.Delete(ctx, p)
}

func (f objectStoreFS) Rename(ctx context.Context, src, dst string) error {
	objectStoreChanges.Add(1)
	return f.FileSystem.Rename(ctx, src, dst)
}

func (f objectStoreFS) Copy(ctx context.Context, src, dst string) (ufs.Fingerprint, error) {
	objectStoreChanges.Add(1)
	return f.FileSystem.Copy(ctx, src, dst)
}

func (f objectStoreFS) Mkdir(ctx context.Context, p string) error {
	objectStoreChanges.Add(1)
	return f.FileSystem.Mkdir(ctx, p)
}

// TestMknod makes special files: they live in the master only, a sync keeps
// them, and a rename of one over a UFS file removes that file. Under a mount
// of an object store they are made, renamed and removed without a UFS call,
// and a sync neither removes them nor lets an object of the same name
// replace one.
func TestMknod(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	dir := e.mount(t, "/w", false, "old.txt")
	mk := func(path string, typ pb.FileType, rdev uint32) (*pb.EntryResponse, error) {
		return e.ns.Mknod(ctx, &pb.MknodRequest{
			Request: e.req(), Caller: &pb.Caller{Uid: 5, Gid: 6}, Path: path, Type: typ, Mode: 0o640, Rdev: rdev,
		})
	}

	r, err := mk("/w/dev", pb.FileType_CHAR_DEVICE, 0x0103)
	mustOK(t, "mknod char", r.GetErrno(), r.GetMessage(), err)
	if a := r.Attr; a.Type != pb.FileType_CHAR_DEVICE || a.Rdev != 0x0103 || a.Mode != 0o640 || a.Uid != 5 || a.Gid != 6 || r.DirAttr == nil {
		t.Errorf("mknod char: %+v (dir %v)", a, r.DirAttr)
	}
	r, err = mk("/w/fifo", pb.FileType_FIFO, 0)
	mustOK(t, "mkfifo", r.GetErrno(), r.GetMessage(), err)
	for _, n := range []string{"dev", "fifo"} {
		if exists(filepath.Join(dir, n)) {
			t.Errorf("special file %s reached the UFS", n)
		}
	}
	e.sync(t, "/w", false)
	if got := strings.Join(e.list(t, "/w"), ","); got != "dev,fifo,old.txt" {
		t.Errorf("/w after sync = %s", got)
	}
	r, err = mk("/w/fifo", pb.FileType_SOCKET, 0)
	if err != nil || r.Errno != int32(syscall.EEXIST) {
		t.Errorf("mknod over an existing name: %v %v", r, err)
	}

	mv, err := e.ns.Rename(ctx, &pb.RenameRequest{Request: e.req(), OldPath: "/w/fifo", NewPath: "/w/old.txt"})
	mustOK(t, "rename fifo over a file", mv.GetErrno(), mv.GetMessage(), err)
	if exists(filepath.Join(dir, "old.txt")) {
		t.Errorf("the file a fifo replaced is still in the UFS")
	}
	st, err := e.ns.ResolvePath(ctx, &pb.ResolvePathRequest{Path: "/w/old.txt"})
	mustOK(t, "stat", st.GetErrno(), st.GetMessage(), err)
	if st.Attr.Type != pb.FileType_FIFO {
		t.Errorf("/w/old.txt is a %v, want the fifo", st.Attr.Type)
	}

	for _, typ := range []pb.FileType{pb.FileType_REGULAR, pb.FileType_DIRECTORY, pb.FileType_SYMLINK} {
		r, err = mk("/w/x", typ, 0)
		if err != nil || r.Errno != int32(syscall.EINVAL) {
			t.Errorf("mknod of a %v: %v %v", typ, r, err)
		}
	}

	odir := t.TempDir()
	am, err := e.mt.AddMount(ctx, &pb.AddMountRequest{Request: e.req(), Path: "/o", Uri: objectStoreScheme + "://" + odir})
	mustOK(t, "add mount", am.GetErrno(), am.GetMessage(), err)
	e.list(t, "/o")
	changes := objectStoreChanges.Load()
	for _, c := range []struct {
		name string
		typ  pb.FileType
	}{{"fifo", pb.FileType_FIFO}, {"sock", pb.FileType_SOCKET}, {"blk", pb.FileType_BLOCK_DEVICE}} {
		r, err = mk("/o/"+c.name, c.typ, 0x0801)
		mustOK(t, "mknod under an object store", r.GetErrno(), r.GetMessage(), err)
		if r.Attr.Type != c.typ {
			t.Errorf("/o/%s is a %v, want a %v", c.name, r.Attr.Type, c.typ)
		}
	}
	mv, err = e.ns.Rename(ctx, &pb.RenameRequest{Request: e.req(), OldPath: "/o/fifo", NewPath: "/o/fifo2"})
	mustOK(t, "rename fifo", mv.GetErrno(), mv.GetMessage(), err)
	un, err := e.ns.Unlink(ctx, &pb.UnlinkRequest{Request: e.req(), Path: "/o/blk"})
	mustOK(t, "unlink device", un.GetErrno(), un.GetMessage(), err)
	if n := objectStoreChanges.Load() - changes; n != 0 {
		t.Errorf("making, renaming and removing special files made %d calls that change the object store", n)
	}
	if ents, err := os.ReadDir(odir); err != nil || len(ents) != 0 {
		t.Errorf("object store after special files: %v %v", ents, err)
	}
	// An object put under a special file's name stays hidden behind it; the
	// sync reports no change for it.
	if err := os.WriteFile(filepath.Join(odir, "sock"), []byte("object"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p := e.sync(t, "/o", false); p.Added != 0 || p.Removed != 0 || p.Updated != 0 {
		t.Errorf("sync of /o with special files: %+v", p)
	}
	if got := strings.Join(e.list(t, "/o"), ","); got != "fifo2,sock" {
		t.Errorf("/o after sync = %s", got)
	}
	st, err = e.ns.ResolvePath(ctx, &pb.ResolvePathRequest{Path: "/o/sock"})
	mustOK(t, "stat", st.GetErrno(), st.GetMessage(), err)
	if st.Attr.Type != pb.FileType_SOCKET {
		t.Errorf("/o/sock is a %v after a sync, want the socket", st.Attr.Type)
	}
	// Removing the socket leaves the object, which the next sync shows.
	un, err = e.ns.Unlink(ctx, &pb.UnlinkRequest{Request: e.req(), Path: "/o/sock"})
	mustOK(t, "unlink socket", un.GetErrno(), un.GetMessage(), err)
	if !exists(filepath.Join(odir, "sock")) {
		t.Errorf("unlink of a socket removed the object of its name")
	}
	if p := e.sync(t, "/o", false); p.Added != 1 {
		t.Errorf("sync after the socket went: %+v", p)
	}
	st, err = e.ns.ResolvePath(ctx, &pb.ResolvePathRequest{Path: "/o/sock"})
	mustOK(t, "stat", st.GetErrno(), st.GetMessage(), err)
	if st.Attr.Type != pb.FileType_REGULAR || st.Attr.Size != 6 {
		t.Errorf("/o/sock after the socket went and a sync: %v", st.Attr)
	}
}
