package master

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	pb "github.com/skyfs/skyfs/proto/skyfspb"
	"github.com/skyfs/skyfs/ufs"
)

// objectStoreScheme is a UFS over a local directory that says what an object
// store says of itself: no hard links, no special files.
const objectStoreScheme = "objectstoretest"

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
	c.HardLinks, c.SpecialFiles = false, false
	return c
}

// TestMknod makes special files: they live in the master only, a sync keeps
// them, and a rename of one over a UFS file removes that file; a mount of
// an object store refuses them.
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
	r, err = mk("/o/fifo", pb.FileType_FIFO, 0)
	if err != nil || r.Errno != int32(syscall.EPERM) || !strings.Contains(r.Message, "special files") {
		t.Errorf("mkfifo under an object store: %v %v", r, err)
	}
	if got := e.list(t, "/o"); len(got) != 0 {
		t.Errorf("/o after a refused mkfifo = %v", got)
	}
	if ents, err := os.ReadDir(odir); err != nil || len(ents) != 0 {
		t.Errorf("object store after a refused mkfifo: %v %v", ents, err)
	}
}
