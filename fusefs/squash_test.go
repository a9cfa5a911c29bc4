package fusefs

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/skyfs/skyfs/meta"
)

func TestSquashPermits(t *testing.T) {
	attr := func(uid, gid, mode uint32) *fuse.AttrOut {
		var a fuse.AttrOut
		a.Uid, a.Gid, a.Mode = uid, gid, mode
		return &a
	}
	for _, tc := range []struct {
		a    *fuse.AttrOut
		want uint32
		ok   bool
	}{
		{attr(1000, 1000, 0o600), mayRead, false},
		{attr(1000, 1000, 0o604), mayRead, true},
		{attr(1000, 1000, 0o604), mayWrite, false},
		{attr(SquashUID, 0, 0o600), mayRead | mayWrite, true},
		{attr(SquashUID, 0, 0o077), mayRead, false}, // the owner's bits decide
		{attr(0, SquashGID, 0o050), mayRead | mayExec, true},
		{attr(0, 0, 0o755), mayWrite | mayExec, false},
		{attr(0, 0, 0o777), mayWrite | mayExec, true},
	} {
		if got := permits(tc.a, tc.want).Ok(); got != tc.ok {
			t.Errorf("uid %d gid %d mode %o want %o: %v", tc.a.Uid, tc.a.Gid, tc.a.Mode, tc.want, got)
		}
	}
	for flags, want := range map[uint32]uint32{
		syscall.O_RDONLY: mayRead, syscall.O_WRONLY: mayWrite, syscall.O_RDWR: mayRead | mayWrite,
		syscall.O_RDONLY | syscall.O_TRUNC: mayRead | mayWrite,
	} {
		if got := openAccess(flags); got != want {
			t.Errorf("openAccess(%#o) = %o, want %o", flags, got, want)
		}
	}
	h := &fuse.InHeader{}
	h.Caller.Uid, h.Caller.Gid = 0, 0
	if !squash(h) || h.Caller.Uid != SquashUID || h.Caller.Gid != SquashGID {
		t.Errorf("root not squashed: %+v", h.Caller)
	}
	h.Caller.Uid, h.Caller.Gid = 1000, 0
	if squash(h) || h.Caller.Uid != 1000 || h.Caller.Gid != 0 {
		t.Errorf("uid 1000 squashed: %+v", h.Caller)
	}
}

// Every method squashFS overrides is one of fuse.RawFileSystem's: a
// misspelt name would silently not check anything.
var _ interface {
	Lookup(<-chan struct{}, *fuse.InHeader, string, *fuse.EntryOut) fuse.Status
	Access(<-chan struct{}, *fuse.AccessIn) fuse.Status
	Open(<-chan struct{}, *fuse.OpenIn, *fuse.OpenOut) fuse.Status
	OpenDir(<-chan struct{}, *fuse.OpenIn, *fuse.OpenOut) fuse.Status
	GetXAttr(<-chan struct{}, *fuse.InHeader, string, []byte) (uint32, fuse.Status)
	ListXAttr(<-chan struct{}, *fuse.InHeader, []byte) (uint32, fuse.Status)
	SetXAttr(<-chan struct{}, *fuse.SetXAttrIn, string, []byte) fuse.Status
	RemoveXAttr(<-chan struct{}, *fuse.InHeader, string) fuse.Status
} = (fuse.RawFileSystem)(nil)

// TestSquashSticky removes names in a sticky directory of another user as a
// squashed root: only what nobody owns may go or be replaced, as the kernel
// wants of anyone but root (which it lets through).
func TestSquashSticky(t *testing.T) {
	e := newEnv(t, Options{RootSquash: true})
	ctx := t.Context()
	other := Caller{UID: 1000, GID: 1000}
	d, err := e.ns.Mkdir(ctx, meta.RootIno, "tmp", 0o1777, other)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"theirs", "theirs2"} {
		if _, err := e.ns.Create(ctx, d.Attr.Ino, name, 0o666, other); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.ns.Mkdir(ctx, d.Attr.Ino, "theirdir", 0o777, other); err != nil {
		t.Fatal(err)
	}
	mine := e.path("tmp/mine")
	if err := os.WriteFile(mine, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"unlink":         os.Remove(e.path("tmp/theirs")),
		"rmdir":          syscall.Rmdir(e.path("tmp/theirdir")),
		"rename away":    os.Rename(e.path("tmp/theirs"), e.path("tmp/moved")),
		"rename over":    os.Rename(mine, e.path("tmp/theirs2")),
		"rename missing": os.Rename(e.path("tmp/nothere"), e.path("tmp/x")),
	} {
		want := error(syscall.EPERM)
		if what == "rename missing" {
			want = syscall.ENOENT
		}
		if !errors.Is(err, want) {
			t.Errorf("%s in another's sticky directory: %v, want %v", what, err, want)
		}
	}
	if err := os.Rename(mine, e.path("tmp/mine2")); err != nil {
		t.Errorf("rename of nobody's own file: %v", err)
	}
	if err := os.Remove(e.path("tmp/mine2")); err != nil {
		t.Errorf("unlink of nobody's own file: %v", err)
	}
	for _, name := range []string{"theirs", "theirs2", "theirdir"} {
		if _, err := os.Lstat(e.path("tmp/" + name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
