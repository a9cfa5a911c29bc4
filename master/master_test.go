package master

import (
	"bytes"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skyfs/skyfs/meta"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

func mustOK(t *testing.T, what string, errno int32, msg string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if errno != 0 {
		t.Fatalf("%s: %v (%s)", what, syscall.Errno(errno), msg)
	}
}

func TestNamespaceByPath(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	caller := &pb.Caller{Uid: 1000, Gid: 100}

	r, err := e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Caller: caller, Path: "/a", Mode: 0o40755})
	mustOK(t, "mkdir", r.GetErrno(), r.GetMessage(), err)
	if a := r.Attr; a.Type != pb.FileType_DIRECTORY || a.Mode != 0o755 || a.Uid != 1000 || a.Gid != 100 || a.CtimeNs != e.now.Load() {
		t.Errorf("mkdir attr = %+v", a)
	}
	if en := e.j.lastEntry(); en.Version != meta.EntryVersion || en.TimeNs != e.now.Load() || en.Request.Client != 7 {
		t.Errorf("entry = %+v", en)
	}
	for i := range 25 {
		c, err := e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Caller: caller, Path: fmt.Sprintf("/a/f%02d", i), Mode: 0o644})
		mustOK(t, "create", c.GetErrno(), c.GetMessage(), err)
		// The directory's attributes after the create come with it.
		if d := c.DirAttr; d == nil || d.Ino != r.Attr.Ino || d.MtimeNs != c.Attr.CtimeNs || d.Nlink != 2 {
			t.Fatalf("create: dir attr = %+v", d)
		}
	}
	// Pages of 10 with a cursor, then readdirplus.
	var names []string
	var cursor []byte
	for {
		p, err := e.ns.ReadDir(ctx, &pb.ReadDirRequest{Path: "/a", Cursor: cursor, Limit: 10})
		mustOK(t, "readdir", p.GetErrno(), p.GetMessage(), err)
		for _, d := range p.Entries {
			names = append(names, string(d.Name))
			if d.Attr != nil {
				t.Errorf("readdir without plus returned attributes")
			}
		}
		if !p.More {
			break
		}
		cursor = p.NextCursor
	}
	if len(names) != 25 || names[0] != "f00" || names[24] != "f24" {
		t.Fatalf("listing = %v", names)
	}
	p, err := e.ns.ReadDir(ctx, &pb.ReadDirRequest{Path: "/a", Plus: true})
	mustOK(t, "readdirplus", p.GetErrno(), p.GetMessage(), err)
	if len(p.Entries) != 25 || p.Entries[3].Attr == nil || p.Entries[3].Attr.Mode != 0o644 {
		t.Fatalf("readdirplus = %v", p.Entries[:1])
	}

	st, err := e.ns.ResolvePath(ctx, &pb.ResolvePathRequest{Path: "/a/f03"})
	mustOK(t, "stat", st.GetErrno(), st.GetMessage(), err)
	lk, err := e.ns.Lookup(ctx, &pb.LookupRequest{Parent: r.Attr.Ino, Name: []byte("f03")})
	mustOK(t, "lookup", lk.GetErrno(), lk.GetMessage(), err)
	if lk.Attr.Ino != st.Attr.Ino {
		t.Errorf("lookup ino %d, resolve ino %d", lk.Attr.Ino, st.Attr.Ino)
	}

	rn, err := e.ns.Rename(ctx, &pb.RenameRequest{Request: e.req(), OldPath: "/a/f03", NewPath: "/b"})
	mustOK(t, "rename", rn.GetErrno(), rn.GetMessage(), err)
	rn, err = e.ns.Rename(ctx, &pb.RenameRequest{Request: e.req(), OldPath: "/a/f04", NewPath: "/b", Flags: meta.RenameNoReplace})
	if err != nil || syscall.Errno(rn.Errno) != syscall.EEXIST {
		t.Errorf("rename noreplace onto existing = %v, %v", rn, err)
	}
	rm, err := e.ns.Rmdir(ctx, &pb.RmdirRequest{Request: e.req(), Path: "/a"})
	if err != nil || syscall.Errno(rm.Errno) != syscall.ENOTEMPTY {
		t.Errorf("rmdir non-empty = %v, %v", rm, err)
	}
	rm, err = e.ns.Unlink(ctx, &pb.UnlinkRequest{Request: e.req(), Path: "/b"})
	mustOK(t, "unlink", rm.GetErrno(), rm.GetMessage(), err)
	if len(rm.Removed) != 1 || rm.Removed[0] != st.Attr.Ino {
		t.Errorf("unlink removed %v, want [%d]", rm.Removed, st.Attr.Ino)
	}
	if d := rm.DirAttr; d == nil || d.Ino != uint64(meta.RootIno) || d.Type != pb.FileType_DIRECTORY {
		t.Errorf("unlink: dir attr = %+v", d)
	}

	sl, err := e.ns.Symlink(ctx, &pb.SymlinkRequest{Request: e.req(), Path: "/s", Target: []byte("a/f05")})
	mustOK(t, "symlink", sl.GetErrno(), sl.GetMessage(), err)
	rl, err := e.ns.Readlink(ctx, &pb.ReadlinkRequest{Path: "/s"})
	mustOK(t, "readlink", rl.GetErrno(), rl.GetMessage(), err)
	if string(rl.Target) != "a/f05" {
		t.Errorf("readlink = %q", rl.Target)
	}
	rl, err = e.ns.Readlink(ctx, &pb.ReadlinkRequest{Path: "/a"})
	if err != nil || syscall.Errno(rl.Errno) != syscall.EINVAL {
		t.Errorf("readlink of a directory = %v, %v", rl, err)
	}
	ln, err := e.ns.Link(ctx, &pb.LinkRequest{Request: e.req(), Path: "/a/f05", NewPath: "/hard"})
	mustOK(t, "link", ln.GetErrno(), ln.GetMessage(), err)
	if ln.Attr.Nlink != 2 {
		t.Errorf("nlink after link = %d", ln.Attr.Nlink)
	}

	x, err := e.ns.SetXattr(ctx, &pb.SetXattrRequest{Request: e.req(), Path: "/hard", Name: []byte("user.k"), Value: []byte("v")})
	mustOK(t, "setxattr", x.GetErrno(), x.GetMessage(), err)
	gx, err := e.ns.GetXattr(ctx, &pb.GetXattrRequest{Path: "/a/f05", Name: []byte("user.k")})
	mustOK(t, "getxattr", gx.GetErrno(), gx.GetMessage(), err)
	lx, err := e.ns.ListXattr(ctx, &pb.ListXattrRequest{Ino: ln.Attr.Ino})
	mustOK(t, "listxattr", lx.GetErrno(), lx.GetMessage(), err)
	if string(gx.Value) != "v" || len(lx.Names) != 1 {
		t.Errorf("xattrs: value %q names %q", gx.Value, lx.Names)
	}
	x, err = e.ns.RemoveXattr(ctx, &pb.RemoveXattrRequest{Request: e.req(), Ino: ln.Attr.Ino, Name: []byte("user.k")})
	mustOK(t, "removexattr", x.GetErrno(), x.GetMessage(), err)
	gx, err = e.ns.GetXattr(ctx, &pb.GetXattrRequest{Path: "/a/f05", Name: []byte("user.k")})
	if err != nil || syscall.Errno(gx.Errno) != syscall.ENODATA {
		t.Errorf("getxattr after remove = %v, %v", gx, err)
	}

	e.now.Add(1e9)
	sa, err := e.ns.SetAttr(ctx, &pb.SetAttrRequest{Request: e.req(), Path: "/hard", Valid: meta.SetAttrMtime | meta.SetAttrSize, MtimeNow: true, Size: 99})
	mustOK(t, "setattr", sa.GetErrno(), sa.GetMessage(), err)
	if sa.Attr.MtimeNs != e.now.Load() || sa.Attr.Size != 99 {
		t.Errorf("setattr mtime %d size %d, want %d 99", sa.Attr.MtimeNs, sa.Attr.Size, e.now.Load())
	}
	cf, err := e.ns.CompleteFile(ctx, &pb.CompleteFileRequest{Request: e.req(), Ino: sa.Attr.Ino, Size: 5, Ufs: &pb.Fingerprint{Size: 5, Etag: "e"}})
	mustOK(t, "complete", cf.GetErrno(), cf.GetMessage(), err)
	if cf.Attr.Size != 5 || cf.Attr.Ufs.GetEtag() != "e" || cf.Attr.Pending || cf.Attr.MtimeNs < sa.Attr.MtimeNs {
		t.Errorf("complete attr = %+v", cf.Attr)
	}
	// The writer's modification time, recorded by the same call.
	const written = 1_700_000_000_123_456_789
	cf, err = e.ns.CompleteFile(ctx, &pb.CompleteFileRequest{Request: e.req(), Ino: sa.Attr.Ino, Size: 6, Ufs: &pb.Fingerprint{Size: 6, Etag: "f"}, MtimeNs: written})
	mustOK(t, "complete with mtime", cf.GetErrno(), cf.GetMessage(), err)
	if cf.Attr.MtimeNs != written || cf.Attr.CtimeNs < sa.Attr.MtimeNs || cf.Attr.Size != 6 {
		t.Errorf("complete with mtime: attr = %+v", cf.Attr)
	}

	fs, err := e.ns.StatFS(ctx, &pb.StatFSRequest{})
	mustOK(t, "statfs", fs.GetErrno(), fs.GetMessage(), err)
	if fs.Inodes != 1+1+24+1 { // root, /a, 24 files, symlink
		t.Errorf("statfs inodes = %d", fs.Inodes)
	}
}

func TestReplayedRequest(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	id := e.req()
	first, err := e.ns.Create(ctx, &pb.CreateRequest{Request: id, Path: "/f", Mode: 0o644})
	mustOK(t, "create", first.GetErrno(), first.GetMessage(), err)
	again, err := e.ns.Create(ctx, &pb.CreateRequest{Request: id, Path: "/f", Mode: 0o644})
	mustOK(t, "retried create", again.GetErrno(), again.GetMessage(), err)
	if !again.Replayed || again.Attr.GetIno() != first.Attr.Ino || again.Ino != first.Attr.Ino {
		t.Errorf("retry = %+v, want replayed ino %d", again, first.Attr.Ino)
	}
	other, err := e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Path: "/f", Mode: 0o644})
	if err != nil || syscall.Errno(other.Errno) != syscall.EEXIST || other.Replayed {
		t.Errorf("new create of the same name = %v, %v", other, err)
	}
}

// TestBadInput checks that bad requests get a clear errno and message and
// propose nothing.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	long := strings.Repeat("x", 256)
	type answer interface {
		GetErrno() int32
		GetMessage() string
	}
	tests := []struct {
		name  string
		call  func() (answer, error)
		errno syscall.Errno
		msg   string
	}{
		{"relative path", func() (answer, error) {
			return e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "a/b"})
		}, syscall.EINVAL, "not absolute"},
		{"dot-dot", func() (answer, error) {
			return e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Path: "/x/../y"})
		}, syscall.EINVAL, `".." component`},
		{"dot", func() (answer, error) {
			return e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Path: "/./y"})
		}, syscall.EINVAL, `"." component`},
		{"NUL in path", func() (answer, error) {
			return e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Path: "/a\x00b"})
		}, syscall.EINVAL, "NUL"},
		{"NUL in name", func() (answer, error) {
			return e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Parent: meta.RootIno, Name: []byte("a\x00")})
		}, syscall.EINVAL, "NUL"},
		{"slash in name", func() (answer, error) {
			return e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Parent: meta.RootIno, Name: []byte("a/b")})
		}, syscall.EINVAL, "contains '/'"},
		{"long name", func() (answer, error) {
			return e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Parent: meta.RootIno, Name: []byte(long)})
		}, syscall.ENAMETOOLONG, "256 bytes"},
		{"long path component", func() (answer, error) {
			return e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Path: "/" + long})
		}, syscall.ENAMETOOLONG, "256 bytes"},
		{"long path", func() (answer, error) {
			return e.ns.ResolvePath(ctx, &pb.ResolvePathRequest{Path: strings.Repeat("/abcdefgh", 600)})
		}, syscall.ENAMETOOLONG, "longer than 4095"},
		{"long lookup name", func() (answer, error) {
			return e.ns.Lookup(ctx, &pb.LookupRequest{Parent: meta.RootIno, Name: []byte(long)})
		}, syscall.ENAMETOOLONG, "256 bytes"},
		{"empty name", func() (answer, error) {
			return e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Parent: meta.RootIno})
		}, syscall.EINVAL, "empty name"},
		{"no target", func() (answer, error) {
			return e.ns.Rmdir(ctx, &pb.RmdirRequest{Request: e.req()})
		}, syscall.EINVAL, "neither"},
		{"rmdir root", func() (answer, error) {
			return e.ns.Rmdir(ctx, &pb.RmdirRequest{Request: e.req(), Path: "/"})
		}, syscall.EBUSY, "cannot remove /"},
		{"mkdir root", func() (answer, error) {
			return e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "//"})
		}, syscall.EEXIST, "/ exists"},
		{"huge page", func() (answer, error) {
			return e.ns.ReadDir(ctx, &pb.ReadDirRequest{Path: "/", Limit: 1 << 30})
		}, syscall.EINVAL, "page size"},
		{"bad cursor", func() (answer, error) {
			return e.ns.ReadDir(ctx, &pb.ReadDirRequest{Path: "/", Cursor: []byte("a/b")})
		}, syscall.EINVAL, "contains '/'"},
		{"missing parent", func() (answer, error) {
			return e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Path: "/nope/f"})
		}, syscall.ENOENT, ""},
		{"rename flags", func() (answer, error) {
			return e.ns.Rename(ctx, &pb.RenameRequest{Request: e.req(), OldPath: "/a", NewPath: "/b", Flags: 8})
		}, syscall.EINVAL, "rename flags"},
		{"setattr nothing", func() (answer, error) {
			return e.ns.SetAttr(ctx, &pb.SetAttrRequest{Request: e.req(), Path: "/"})
		}, syscall.EINVAL, "no attribute"},
		{"setattr huge size", func() (answer, error) {
			return e.ns.SetAttr(ctx, &pb.SetAttrRequest{Request: e.req(), Path: "/", Valid: meta.SetAttrSize, Size: 1 << 63})
		}, syscall.EFBIG, "larger than"},
		{"xattr empty name", func() (answer, error) {
			return e.ns.SetXattr(ctx, &pb.SetXattrRequest{Request: e.req(), Path: "/"})
		}, syscall.ERANGE, "empty attribute name"},
		{"xattr value too big", func() (answer, error) {
			return e.ns.SetXattr(ctx, &pb.SetXattrRequest{Request: e.req(), Path: "/", Name: []byte("user.a"), Value: make([]byte, meta.MaxXattrValueLen+1)})
		}, syscall.E2BIG, "larger than"},
		{"symlink NUL target", func() (answer, error) {
			return e.ns.Symlink(ctx, &pb.SymlinkRequest{Request: e.req(), Path: "/s", Target: []byte("a\x00")})
		}, syscall.EINVAL, "NUL"},
		{"unknown mount id", func() (answer, error) {
			return e.mt.RemoveMount(ctx, &pb.RemoveMountRequest{Request: e.req(), Id: 99})
		}, syscall.ENOENT, "no mount with id 99"},
		{"get unknown mount", func() (answer, error) {
			return e.mt.GetMount(ctx, &pb.GetMountRequest{Id: 99})
		}, syscall.ENOENT, "no mount with id 99"},
		{"remove mount at a plain path", func() (answer, error) {
			return e.mt.RemoveMount(ctx, &pb.RemoveMountRequest{Request: e.req(), Path: "/data"})
		}, syscall.EINVAL, "no mount at /data"},
		{"mount without scheme", func() (answer, error) {
			return e.mt.AddMount(ctx, &pb.AddMountRequest{Request: e.req(), Path: "/m", Uri: "bucket/prefix"})
		}, syscall.EINVAL, "no scheme"},
		{"mount with dot-dot", func() (answer, error) {
			return e.mt.AddMount(ctx, &pb.AddMountRequest{Request: e.req(), Path: "/m/..", Uri: "file:///tmp"})
		}, syscall.EINVAL, `".."`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.j.proposals.Load()
			r, err := tc.call()
			if err != nil {
				t.Fatalf("rpc error %v", err)
			}
			if got := syscall.Errno(r.GetErrno()); got != tc.errno {
				t.Errorf("errno = %v (%s), want %v", got, r.GetMessage(), tc.errno)
			}
			if !strings.Contains(r.GetMessage(), tc.msg) {
				t.Errorf("message = %q, want it to mention %q", r.GetMessage(), tc.msg)
			}
			if n := e.j.proposals.Load() - before; n != 0 {
				t.Errorf("%d entries proposed", n)
			}
		})
	}
	var count uint64
	e.j.View(func(tx meta.Txn) (err error) {
		count, err = meta.InodeCount(tx)
		return err
	})
	if count != 1 {
		t.Errorf("inode count = %d after bad requests, want 1", count)
	}
	// A mutation without a request id is a protocol error.
	_, err := e.ns.Mkdir(ctx, &pb.MkdirRequest{Path: "/a"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("mkdir without request id: %v", err)
	}
}

func TestNotLeader(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.j.serving.Store(false)
	calls := map[string]func() error{
		"create": func() error {
			_, err := e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Path: "/f"})
			return err
		},
		"stat": func() error {
			_, err := e.ns.ResolvePath(ctx, &pb.ResolvePathRequest{Path: "/"})
			return err
		},
		"readdir": func() error {
			_, err := e.ns.ReadDir(ctx, &pb.ReadDirRequest{Ino: meta.RootIno})
			return err
		},
		"list mounts": func() error {
			_, err := e.mt.ListMounts(ctx, &pb.ListMountsRequest{})
			return err
		},
		"checkpoint": func() error {
			_, err := e.cl.Checkpoint(ctx, &pb.CheckpointRequest{})
			return err
		},
	}
	for name, call := range calls {
		err := call()
		st := status.Convert(err)
		if st.Code() != codes.Unavailable {
			t.Errorf("%s: %v, want Unavailable", name, err)
			continue
		}
		var hint *pb.NotLeader
		for _, d := range st.Details() {
			if nl, ok := d.(*pb.NotLeader); ok {
				hint = nl
			}
		}
		if hint == nil || hint.LeaderRpcAddr != "127.0.0.1:7701" || hint.LeaderId != "m2" {
			t.Errorf("%s: leader hint %v", name, hint)
		}
	}
	if e.j.proposals.Load() != 0 {
		t.Errorf("a follower proposed entries")
	}
	// Status is answered by followers too.
	if _, err := e.cl.Status(ctx, &pb.StatusRequest{Local: true}); err != nil {
		t.Errorf("status on a follower: %v", err)
	}
}

func TestMounts(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	uri := "file://" + t.TempDir()
	am, err := e.mt.AddMount(ctx, &pb.AddMountRequest{
		Request: e.req(), Path: "/warehouse", Uri: uri,
		Options: map[string]string{"s3.secretAccessKey": "hunter2", "s3.region": "eu"},
	})
	mustOK(t, "add mount", am.GetErrno(), am.GetMessage(), err)
	if am.Mount.Id == 0 || am.Mount.Path != "/warehouse" || am.Mount.Options["s3.secretAccessKey"] == "hunter2" {
		t.Errorf("mount = %+v", am.Mount)
	}
	ls, err := e.mt.ListMounts(ctx, &pb.ListMountsRequest{})
	mustOK(t, "list", ls.GetErrno(), ls.GetMessage(), err)
	if len(ls.Mounts) != 1 || ls.Mounts[0].Options["s3.region"] != "eu" || bytes.Contains([]byte(ls.String()), []byte("hunter2")) {
		t.Errorf("list = %v", ls)
	}
	gm, err := e.mt.GetMount(ctx, &pb.GetMountRequest{Id: am.Mount.Id})
	mustOK(t, "get", gm.GetErrno(), gm.GetMessage(), err)

	// A mount daemon gets the credentials; Locate maps inodes to UFS paths.
	ma, err := e.mt.MountAccess(ctx, &pb.MountAccessRequest{Id: am.Mount.Id})
	mustOK(t, "access", ma.GetErrno(), ma.GetMessage(), err)
	if ma.Mount.Options["s3.secretAccessKey"] != "hunter2" || ma.Mount.Uri != uri {
		t.Errorf("mount access = %+v", ma.Mount)
	}
	if ma, err := e.mt.MountAccess(ctx, &pb.MountAccessRequest{Id: 999}); err != nil || ma.Errno != int32(syscall.ENOENT) || ma.Mount != nil {
		t.Errorf("access to a missing mount: %v %v", ma, err)
	}
	dir, err := e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "/warehouse/a", Mode: 0o755})
	mustOK(t, "mkdir", dir.GetErrno(), dir.GetMessage(), err)
	f, err := e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Path: "/warehouse/a/f.parquet", Mode: 0o644})
	mustOK(t, "create", f.GetErrno(), f.GetMessage(), err)
	loc, err := e.ns.Locate(ctx, &pb.LocateRequest{Ino: f.Attr.Ino})
	mustOK(t, "locate", loc.GetErrno(), loc.GetMessage(), err)
	if loc.MountId != am.Mount.Id || loc.UfsPath != "a/f.parquet" {
		t.Errorf("locate = %+v", loc)
	}
	if loc, err := e.ns.Locate(ctx, &pb.LocateRequest{Ino: 1 << 40}); err != nil || loc.Errno != int32(syscall.ENOENT) {
		t.Errorf("locate a missing inode: %v %v", loc, err)
	}
	un, err := e.ns.Unlink(ctx, &pb.UnlinkRequest{Request: e.req(), Path: "/warehouse/a/f.parquet"})
	mustOK(t, "unlink", un.GetErrno(), un.GetMessage(), err)
	rd, err := e.ns.Rmdir(ctx, &pb.RmdirRequest{Request: e.req(), Path: "/warehouse/a"})
	mustOK(t, "rmdir", rd.GetErrno(), rd.GetMessage(), err)
	rm, err := e.mt.RemoveMount(ctx, &pb.RemoveMountRequest{Request: e.req(), Id: am.Mount.Id})
	mustOK(t, "remove", rm.GetErrno(), rm.GetMessage(), err)
	ls, err = e.mt.ListMounts(ctx, &pb.ListMountsRequest{})
	mustOK(t, "list", ls.GetErrno(), ls.GetMessage(), err)
	if len(ls.Mounts) != 0 {
		t.Errorf("mounts after remove: %v", ls.Mounts)
	}
}

func TestCluster(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	st, err := e.cl.Status(ctx, &pb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 1 || st.Members[0].Role != "leader" || st.Members[0].Term != 3 || st.LeaderId != "m1" {
		t.Errorf("status = %v", st)
	}
	if _, err := e.cl.AddMember(ctx, &pb.AddMemberRequest{Id: "m4", RaftAddr: "127.0.0.1:1", RpcAddr: "bad"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("add with a bad address: %v", err)
	}
	// The new member does not answer: it shows as unreachable.
	if _, err := e.cl.AddMember(ctx, &pb.AddMemberRequest{Id: "m4", RaftAddr: "127.0.0.1:1", RpcAddr: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	st, err = e.cl.Status(ctx, &pb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 2 || st.Members[1].Role != "unreachable" || st.Members[1].Error == "" {
		t.Errorf("status with a dead member = %v", st)
	}
	if _, err := e.cl.RemoveMember(ctx, &pb.RemoveMemberRequest{Id: "nobody"}); status.Code(err) != codes.NotFound {
		t.Errorf("remove unknown member: %v", err)
	}
	if _, err := e.cl.TransferLeader(ctx, &pb.TransferLeaderRequest{Id: "m4"}); err != nil {
		t.Error(err)
	}
	cp, err := e.cl.Checkpoint(ctx, &pb.CheckpointRequest{})
	if err != nil || cp.Index != 42 {
		t.Errorf("checkpoint = %v, %v", cp, err)
	}
	want := []string{"add m4", "transfer m4", "checkpoint"}
	if fmt.Sprint(e.admin.calls) != fmt.Sprint(want) {
		t.Errorf("admin calls %v, want %v", e.admin.calls, want)
	}
}
