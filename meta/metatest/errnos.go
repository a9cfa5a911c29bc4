package metatest

import (
	"strings"
	"syscall"
	"testing"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
)

// fixture is a small tree every errno case starts from:
//
//	/d/f  /d/sub/g  /e (empty)  /f2  /s -> f2  /m (mount, holding /m/x)
type fixture struct {
	*H
	d, f, sub, g, e, f2, s, m, mx meta.Ino
}

func newFixture(t testing.TB, open func(testing.TB) meta.Store) *fixture {
	h := NewH(t, open(t))
	fx := &fixture{H: h}
	fx.d = h.Mkdir(meta.RootIno, "d")
	fx.f = h.Create(fx.d, "f")
	fx.sub = h.Mkdir(fx.d, "sub")
	fx.g = h.Create(fx.sub, "g")
	fx.e = h.Mkdir(meta.RootIno, "e")
	fx.f2 = h.Create(meta.RootIno, "f2")
	fx.s = h.Must(&metapb.Symlink{Parent: meta.RootIno, Name: []byte("s"), Target: []byte("f2")}).Ino
	fx.m = h.Must(&metapb.AddMount{Path: "/m", Uri: "file:///srv/m"}).Ino
	fx.mx = h.Create(fx.m, "x")
	return fx
}

func name(n int) []byte { return []byte(strings.Repeat("n", n)) }

func testErrnos(t *testing.T, open func(testing.TB) meta.Store) {
	const missing = 1 << 40
	cases := []struct {
		name  string
		op    func(fx *fixture) any
		errno syscall.Errno
	}{
		// mkdir
		{"mkdir ok", func(fx *fixture) any { return &metapb.Mkdir{Parent: fx.d, Name: []byte("new")} }, 0},
		{"mkdir 255", func(fx *fixture) any { return &metapb.Mkdir{Parent: fx.d, Name: name(255)} }, 0},
		{"mkdir exists", func(fx *fixture) any { return &metapb.Mkdir{Parent: fx.d, Name: []byte("f")} }, syscall.EEXIST},
		{"mkdir no parent", func(fx *fixture) any { return &metapb.Mkdir{Parent: missing, Name: []byte("a")} }, syscall.ENOENT},
		{"mkdir parent file", func(fx *fixture) any { return &metapb.Mkdir{Parent: fx.f, Name: []byte("a")} }, syscall.ENOTDIR},
		{"mkdir empty", func(fx *fixture) any { return &metapb.Mkdir{Parent: fx.d, Name: nil} }, syscall.EINVAL},
		{"mkdir dot", func(fx *fixture) any { return &metapb.Mkdir{Parent: fx.d, Name: []byte(".")} }, syscall.EINVAL},
		{"mkdir dotdot", func(fx *fixture) any { return &metapb.Mkdir{Parent: fx.d, Name: []byte("..")} }, syscall.EINVAL},
		{"mkdir slash", func(fx *fixture) any { return &metapb.Mkdir{Parent: fx.d, Name: []byte("a/b")} }, syscall.EINVAL},
		{"mkdir nul", func(fx *fixture) any { return &metapb.Mkdir{Parent: fx.d, Name: []byte("a\x00")} }, syscall.EINVAL},
		{"mkdir 256", func(fx *fixture) any { return &metapb.Mkdir{Parent: fx.d, Name: name(256)} }, syscall.ENAMETOOLONG},
		// create
		{"create ok", func(fx *fixture) any { return &metapb.CreateFile{Parent: fx.e, Name: []byte("n")} }, 0},
		{"create exists", func(fx *fixture) any { return &metapb.CreateFile{Parent: fx.d, Name: []byte("sub")} }, syscall.EEXIST},
		{"create no parent", func(fx *fixture) any { return &metapb.CreateFile{Parent: missing, Name: []byte("a")} }, syscall.ENOENT},
		{"create parent symlink", func(fx *fixture) any { return &metapb.CreateFile{Parent: fx.s, Name: []byte("a")} }, syscall.ENOTDIR},
		{"create bad size", func(fx *fixture) any {
			return &metapb.CreateFile{Parent: fx.e, Name: []byte("a"), Ufs: &metapb.Fingerprint{Size: -1}}
		}, syscall.EINVAL},
		{"create 256", func(fx *fixture) any { return &metapb.CreateFile{Parent: fx.e, Name: name(256)} }, syscall.ENAMETOOLONG},
		// complete
		{"complete ok", func(fx *fixture) any { return &metapb.CompleteFile{Ino: fx.f, Size: 10} }, 0},
		{"complete missing", func(fx *fixture) any { return &metapb.CompleteFile{Ino: missing} }, syscall.ENOENT},
		{"complete dir", func(fx *fixture) any { return &metapb.CompleteFile{Ino: fx.d} }, syscall.EISDIR},
		{"complete symlink", func(fx *fixture) any { return &metapb.CompleteFile{Ino: fx.s} }, syscall.EINVAL},
		{"complete too big", func(fx *fixture) any { return &metapb.CompleteFile{Ino: fx.f, Size: 1 << 63} }, syscall.EFBIG},
		// unlink
		{"unlink ok", func(fx *fixture) any { return &metapb.Unlink{Parent: fx.d, Name: []byte("f")} }, 0},
		{"unlink symlink", func(fx *fixture) any { return &metapb.Unlink{Parent: meta.RootIno, Name: []byte("s")} }, 0},
		{"unlink missing", func(fx *fixture) any { return &metapb.Unlink{Parent: fx.d, Name: []byte("zz")} }, syscall.ENOENT},
		{"unlink dir", func(fx *fixture) any { return &metapb.Unlink{Parent: fx.d, Name: []byte("sub")} }, syscall.EISDIR},
		{"unlink parent file", func(fx *fixture) any { return &metapb.Unlink{Parent: fx.f, Name: []byte("a")} }, syscall.ENOTDIR},
		{"unlink bad name", func(fx *fixture) any { return &metapb.Unlink{Parent: fx.d, Name: []byte("..")} }, syscall.EINVAL},
		// rmdir
		{"rmdir ok", func(fx *fixture) any { return &metapb.Rmdir{Parent: meta.RootIno, Name: []byte("e")} }, 0},
		{"rmdir not empty", func(fx *fixture) any { return &metapb.Rmdir{Parent: meta.RootIno, Name: []byte("d")} }, syscall.ENOTEMPTY},
		{"rmdir file", func(fx *fixture) any { return &metapb.Rmdir{Parent: meta.RootIno, Name: []byte("f2")} }, syscall.ENOTDIR},
		{"rmdir missing", func(fx *fixture) any { return &metapb.Rmdir{Parent: meta.RootIno, Name: []byte("zz")} }, syscall.ENOENT},
		{"rmdir mount", func(fx *fixture) any { return &metapb.Rmdir{Parent: meta.RootIno, Name: []byte("m")} }, syscall.EBUSY},
		{"rmdir 256", func(fx *fixture) any { return &metapb.Rmdir{Parent: meta.RootIno, Name: name(256)} }, syscall.ENAMETOOLONG},
		// rename
		{"rename ok", func(fx *fixture) any { return ren(fx.d, "f", fx.e, "f") }, 0},
		{"rename over file", func(fx *fixture) any { return ren(fx.d, "f", meta.RootIno, "f2") }, 0},
		{"rename dir over empty dir", func(fx *fixture) any { return ren(fx.d, "sub", meta.RootIno, "e") }, 0},
		{"rename exchange", func(fx *fixture) any { return renf(fx.d, "sub", meta.RootIno, "f2", meta.RenameExchange) }, 0},
		{"rename same inode", func(fx *fixture) any { return ren(fx.d, "f", fx.d, "f") }, 0},
		{"rename missing", func(fx *fixture) any { return ren(fx.d, "zz", fx.d, "y") }, syscall.ENOENT},
		{"rename both flags", func(fx *fixture) any { return renf(fx.d, "f", fx.d, "y", 3) }, syscall.EINVAL},
		{"rename whiteout", func(fx *fixture) any { return renf(fx.d, "f", fx.d, "y", 4) }, syscall.EINVAL},
		{"rename noreplace", func(fx *fixture) any { return renf(fx.d, "f", meta.RootIno, "f2", meta.RenameNoReplace) }, syscall.EEXIST},
		{"rename exchange missing", func(fx *fixture) any { return renf(fx.d, "f", fx.d, "y", meta.RenameExchange) }, syscall.ENOENT},
		{"rename into self", func(fx *fixture) any { return ren(meta.RootIno, "d", fx.sub, "d") }, syscall.EINVAL},
		{"rename onto self", func(fx *fixture) any { return ren(meta.RootIno, "d", fx.d, "x") }, syscall.EINVAL},
		{"rename exchange into self", func(fx *fixture) any { return renf(fx.sub, "g", meta.RootIno, "d", meta.RenameExchange) }, syscall.EINVAL},
		{"rename dir onto file", func(fx *fixture) any { return ren(meta.RootIno, "e", meta.RootIno, "f2") }, syscall.ENOTDIR},
		{"rename file onto dir", func(fx *fixture) any { return ren(meta.RootIno, "f2", meta.RootIno, "e") }, syscall.EISDIR},
		{"rename onto non-empty", func(fx *fixture) any { return ren(meta.RootIno, "e", meta.RootIno, "d") }, syscall.ENOTEMPTY},
		{"rename onto ancestor", func(fx *fixture) any { return ren(fx.sub, "g", meta.RootIno, "d") }, syscall.EISDIR},
		{"rename mount point", func(fx *fixture) any { return ren(meta.RootIno, "m", meta.RootIno, "m2") }, syscall.EBUSY},
		{"rename onto mount point", func(fx *fixture) any { return ren(meta.RootIno, "e", meta.RootIno, "m") }, syscall.EBUSY},
		{"rename across mounts", func(fx *fixture) any { return ren(meta.RootIno, "f2", fx.m, "f2") }, syscall.EXDEV},
		{"rename out of mount", func(fx *fixture) any { return ren(fx.m, "x", meta.RootIno, "x") }, syscall.EXDEV},
		{"rename 256", func(fx *fixture) any { return ren(fx.d, "f", fx.d, string(name(256))) }, syscall.ENAMETOOLONG},
		{"rename dest parent missing", func(fx *fixture) any { return ren(fx.d, "f", missing, "f") }, syscall.ENOENT},
		{"rename dest parent file", func(fx *fixture) any { return ren(fx.d, "f", fx.f2, "f") }, syscall.ENOTDIR},
		{"rename src parent file", func(fx *fixture) any { return ren(fx.f2, "f", fx.d, "f") }, syscall.ENOTDIR},
		// setattr
		{"setattr chmod", func(fx *fixture) any { return &metapb.SetAttr{Ino: fx.f, Valid: meta.SetAttrMode, Mode: 0o600} }, 0},
		{"setattr truncate", func(fx *fixture) any { return &metapb.SetAttr{Ino: fx.f, Valid: meta.SetAttrSize, Size: 100} }, 0},
		{"setattr nothing", func(fx *fixture) any { return &metapb.SetAttr{Ino: fx.f} }, syscall.EINVAL},
		{"setattr unknown bit", func(fx *fixture) any { return &metapb.SetAttr{Ino: fx.f, Valid: 1 << 10} }, syscall.EINVAL},
		{"setattr size dir", func(fx *fixture) any { return &metapb.SetAttr{Ino: fx.d, Valid: meta.SetAttrSize} }, syscall.EISDIR},
		{"setattr size symlink", func(fx *fixture) any { return &metapb.SetAttr{Ino: fx.s, Valid: meta.SetAttrSize} }, syscall.EINVAL},
		{"setattr size huge", func(fx *fixture) any { return &metapb.SetAttr{Ino: fx.f, Valid: meta.SetAttrSize, Size: 1 << 63} }, syscall.EFBIG},
		{"setattr missing", func(fx *fixture) any { return &metapb.SetAttr{Ino: missing, Valid: meta.SetAttrUID} }, syscall.ENOENT},
		// symlink
		{"symlink ok", func(fx *fixture) any { return sym(fx.d, "l", "../f2") }, 0},
		{"symlink empty target", func(fx *fixture) any { return sym(fx.d, "l", "") }, syscall.ENOENT},
		{"symlink long target", func(fx *fixture) any { return sym(fx.d, "l", strings.Repeat("a", 4096)) }, syscall.ENAMETOOLONG},
		{"symlink nul target", func(fx *fixture) any { return sym(fx.d, "l", "a\x00b") }, syscall.EINVAL},
		{"symlink exists", func(fx *fixture) any { return sym(fx.d, "f", "x") }, syscall.EEXIST},
		// mknod
		{"mknod fifo", func(fx *fixture) any { return mknod(fx.d, "p", metapb.FileType_FIFO, 0) }, 0},
		{"mknod socket", func(fx *fixture) any { return mknod(fx.d, "p", metapb.FileType_SOCKET, 0) }, 0},
		{"mknod char", func(fx *fixture) any { return mknod(fx.d, "p", metapb.FileType_CHAR_DEVICE, 0x102) }, 0},
		{"mknod block", func(fx *fixture) any { return mknod(fx.d, "p", metapb.FileType_BLOCK_DEVICE, 0x102) }, 0},
		{"mknod regular", func(fx *fixture) any { return mknod(fx.d, "p", metapb.FileType_REGULAR, 0) }, syscall.EINVAL},
		{"mknod dir", func(fx *fixture) any { return mknod(fx.d, "p", metapb.FileType_DIRECTORY, 0) }, syscall.EINVAL},
		{"mknod symlink", func(fx *fixture) any { return mknod(fx.d, "p", metapb.FileType_SYMLINK, 0) }, syscall.EINVAL},
		{"mknod no type", func(fx *fixture) any { return mknod(fx.d, "p", metapb.FileType_FILE_TYPE_UNSPECIFIED, 0) }, syscall.EINVAL},
		{"mknod unknown type", func(fx *fixture) any { return mknod(fx.d, "p", 99, 0) }, syscall.EINVAL},
		{"mknod exists", func(fx *fixture) any { return mknod(fx.d, "f", metapb.FileType_FIFO, 0) }, syscall.EEXIST},
		{"mknod no parent", func(fx *fixture) any { return mknod(missing, "p", metapb.FileType_FIFO, 0) }, syscall.ENOENT},
		{"mknod parent file", func(fx *fixture) any { return mknod(fx.f, "p", metapb.FileType_FIFO, 0) }, syscall.ENOTDIR},
		{"mknod 256", func(fx *fixture) any { return mknod(fx.d, string(name(256)), metapb.FileType_FIFO, 0) }, syscall.ENAMETOOLONG},
		// link
		{"link ok", func(fx *fixture) any { return &metapb.Link{Ino: fx.f, NewParent: fx.e, NewName: []byte("h")} }, 0},
		{"link dir", func(fx *fixture) any { return &metapb.Link{Ino: fx.sub, NewParent: fx.e, NewName: []byte("h")} }, syscall.EPERM},
		{"link missing", func(fx *fixture) any { return &metapb.Link{Ino: missing, NewParent: fx.e, NewName: []byte("h")} }, syscall.ENOENT},
		{"link exists", func(fx *fixture) any { return &metapb.Link{Ino: fx.f, NewParent: fx.d, NewName: []byte("sub")} }, syscall.EEXIST},
		{"link across mounts", func(fx *fixture) any { return &metapb.Link{Ino: fx.f, NewParent: fx.m, NewName: []byte("h")} }, syscall.EXDEV},
		{"link bad name", func(fx *fixture) any { return &metapb.Link{Ino: fx.f, NewParent: fx.e, NewName: []byte("a/b")} }, syscall.EINVAL},
		// xattrs
		{"setxattr ok", func(fx *fixture) any { return xset(fx.f, "user.a", "v", 0) }, 0},
		{"setxattr empty name", func(fx *fixture) any { return xset(fx.f, "", "v", 0) }, syscall.ERANGE},
		{"setxattr long name", func(fx *fixture) any { return xset(fx.f, string(name(256)), "v", 0) }, syscall.ERANGE},
		{"setxattr big value", func(fx *fixture) any { return xset(fx.f, "user.a", strings.Repeat("v", 65537), 0) }, syscall.E2BIG},
		{"setxattr both flags", func(fx *fixture) any { return xset(fx.f, "user.a", "v", 3) }, syscall.EINVAL},
		{"setxattr replace missing", func(fx *fixture) any { return xset(fx.f, "user.a", "v", meta.XattrReplace) }, syscall.ENODATA},
		{"setxattr create existing", func(fx *fixture) any { return xset(fx.g, "user.x", "v", meta.XattrCreate) }, syscall.EEXIST},
		{"setxattr missing inode", func(fx *fixture) any { return xset(missing, "user.a", "v", 0) }, syscall.ENOENT},
		{"removexattr ok", func(fx *fixture) any { return &metapb.RemoveXattr{Ino: fx.g, Name: []byte("user.x")} }, 0},
		{"removexattr missing", func(fx *fixture) any { return &metapb.RemoveXattr{Ino: fx.f, Name: []byte("user.x")} }, syscall.ENODATA},
		// mounts
		{"mount new path", func(fx *fixture) any { return &metapb.AddMount{Path: "/d/new", Uri: "s3://b/p"} }, 0},
		{"mount empty dir", func(fx *fixture) any { return &metapb.AddMount{Path: "/e", Uri: "s3://b/p"} }, 0},
		{"mount root", func(fx *fixture) any { return &metapb.AddMount{Path: "/", Uri: "file:///r"} }, syscall.ENOTEMPTY},
		{"mount relative", func(fx *fixture) any { return &metapb.AddMount{Path: "d/x", Uri: "s3://b"} }, syscall.EINVAL},
		{"mount dotdot", func(fx *fixture) any { return &metapb.AddMount{Path: "/d/../x", Uri: "s3://b"} }, syscall.EINVAL},
		{"mount no uri", func(fx *fixture) any { return &metapb.AddMount{Path: "/x"} }, syscall.EINVAL},
		{"mount negative interval", func(fx *fixture) any { return &metapb.AddMount{Path: "/x", Uri: "s3://b", SyncIntervalNs: -1} }, syscall.EINVAL},
		{"mount not empty", func(fx *fixture) any { return &metapb.AddMount{Path: "/d", Uri: "s3://b"} }, syscall.ENOTEMPTY},
		{"mount file", func(fx *fixture) any { return &metapb.AddMount{Path: "/f2", Uri: "s3://b"} }, syscall.ENOTDIR},
		{"mount twice", func(fx *fixture) any { return &metapb.AddMount{Path: "/m", Uri: "s3://b"} }, syscall.EBUSY},
		{"mount no parent", func(fx *fixture) any { return &metapb.AddMount{Path: "/zz/x", Uri: "s3://b"} }, syscall.ENOENT},
		{"mount under file", func(fx *fixture) any { return &metapb.AddMount{Path: "/f2/x", Uri: "s3://b"} }, syscall.ENOTDIR},
		{"mount long path", func(fx *fixture) any { return &metapb.AddMount{Path: "/" + strings.Repeat("a/", 2048), Uri: "s3://b"} }, syscall.ENAMETOOLONG},
		{"unmount ok", func(fx *fixture) any { return &metapb.RemoveMount{Path: "/m"} }, 0},
		{"unmount not mount", func(fx *fixture) any { return &metapb.RemoveMount{Path: "/d"} }, syscall.EINVAL},
		{"unmount missing", func(fx *fixture) any { return &metapb.RemoveMount{Path: "/zz"} }, syscall.ENOENT},
		{"unmount root", func(fx *fixture) any { return &metapb.RemoveMount{Path: "/"} }, syscall.EINVAL},
		// load
		{"load ok", func(fx *fixture) any { return load(fx.m, true, true, 0, child("y", metapb.FileType_REGULAR)) }, 0},
		{"load missing", func(fx *fixture) any { return load(missing, true, true, 0) }, syscall.ENOENT},
		{"load file", func(fx *fixture) any { return load(fx.f, true, true, 0) }, syscall.ENOTDIR},
		{"load stale", func(fx *fixture) any { return load(fx.m, false, true, 7) }, syscall.ESTALE},
		{"load bad name", func(fx *fixture) any { return load(fx.m, true, true, 0, child("..", metapb.FileType_REGULAR)) }, syscall.EINVAL},
		{"load fifo", func(fx *fixture) any { return load(fx.m, true, true, 0, child("p", metapb.FileType_FIFO)) }, syscall.EINVAL},
		{"load symlink", func(fx *fixture) any { return load(fx.m, true, true, 0, child("l", metapb.FileType_SYMLINK)) }, syscall.EINVAL},
		{"load too many", func(fx *fixture) any {
			l := load(fx.m, true, true, 0)
			for range meta.MaxLoadBatch + 1 {
				l.Children = append(l.Children, child("c", metapb.FileType_REGULAR))
			}
			return l
		}, syscall.E2BIG},
		// purge
		{"purge nothing", func(fx *fixture) any { return &metapb.Purge{Max: 10} }, 0},
		{"purge zero", func(fx *fixture) any { return &metapb.Purge{} }, syscall.EINVAL},
		{"purge huge", func(fx *fixture) any { return &metapb.Purge{Max: meta.MaxPurge + 1} }, syscall.EINVAL},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fx := newFixture(t, open)
			fx.Must(xset(fx.g, "user.x", "1", 0))
			fx.Expect(c.errno, c.op(fx))
			checkInvariants(t, fx.S)
		})
	}
}

func ren(op meta.Ino, on string, np meta.Ino, nn string) *metapb.Rename {
	return renf(op, on, np, nn, 0)
}

func renf(op meta.Ino, on string, np meta.Ino, nn string, flags uint32) *metapb.Rename {
	return &metapb.Rename{OldParent: op, OldName: []byte(on), NewParent: np, NewName: []byte(nn), Flags: flags}
}

func sym(parent meta.Ino, name, target string) *metapb.Symlink {
	return &metapb.Symlink{Parent: parent, Name: []byte(name), Target: []byte(target)}
}

func mknod(parent meta.Ino, name string, typ metapb.FileType, rdev uint32) *metapb.Mknod {
	return &metapb.Mknod{Parent: parent, Name: []byte(name), Type: typ, Mode: 0o640, Rdev: rdev}
}

func xset(ino meta.Ino, name, value string, flags uint32) *metapb.SetXattr {
	return &metapb.SetXattr{Ino: ino, Name: []byte(name), Value: []byte(value), Flags: flags}
}

func load(dir meta.Ino, begin, end bool, gen uint64, children ...*metapb.LoadedChild) *metapb.LoadDir {
	return &metapb.LoadDir{Dir: dir, Begin: begin, End: end, Gen: gen, Children: children}
}

func child(name string, typ metapb.FileType) *metapb.LoadedChild {
	return &metapb.LoadedChild{Name: []byte(name), Type: typ, Mode: 0o644, Ufs: &metapb.Fingerprint{Size: 3, Etag: "e-" + name}}
}
