package master

import (
	"syscall"
	"testing"

	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// TestStatDir: one call answers the attributes of the names asked for (ENOENT
// in the entry of a name the directory does not hold), the directory's own
// and where it lives; a bad request changes nothing and says why.
func TestStatDir(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	am, err := e.mt.AddMount(ctx, &pb.AddMountRequest{Request: e.req(), Path: "/w", Uri: "file://" + t.TempDir()})
	mustOK(t, "add mount", am.GetErrno(), am.GetMessage(), err)
	dir, err := e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "/w/d", Mode: 0o755})
	mustOK(t, "mkdir", dir.GetErrno(), dir.GetMessage(), err)
	var inos []uint64
	for _, p := range []string{"/w/d/a", "/w/d/b"} {
		f, err := e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Path: p, Mode: 0o644})
		mustOK(t, "create", f.GetErrno(), f.GetMessage(), err)
		inos = append(inos, f.Attr.Ino)
	}

	resp, err := e.ns.StatDir(ctx, &pb.StatDirRequest{Dir: dir.Attr.Ino, Names: [][]byte{[]byte("b"), []byte("gone"), []byte("a")}})
	mustOK(t, "stat dir", resp.GetErrno(), resp.GetMessage(), err)
	if resp.DirAttr.GetIno() != dir.Attr.Ino || resp.MountId != am.Mount.Id || resp.UfsPath != "d" || resp.ReadOnly {
		t.Errorf("directory: attr %v, mount %d, path %q, read-only %v", resp.DirAttr, resp.MountId, resp.UfsPath, resp.ReadOnly)
	}
	if len(resp.Entries) != 3 ||
		resp.Entries[0].Errno != 0 || resp.Entries[0].Attr.GetIno() != inos[1] ||
		resp.Entries[1].Errno != int32(syscall.ENOENT) || resp.Entries[1].Attr != nil ||
		resp.Entries[2].Errno != 0 || resp.Entries[2].Attr.GetIno() != inos[0] {
		t.Errorf("entries = %v", resp.Entries)
	}

	for _, tc := range []struct {
		what  string
		req   *pb.StatDirRequest
		errno syscall.Errno
	}{
		{"a file", &pb.StatDirRequest{Dir: inos[0], Names: [][]byte{[]byte("x")}}, syscall.ENOTDIR},
		{"a missing directory", &pb.StatDirRequest{Dir: 1 << 40}, syscall.ENOENT},
		{"a bad name", &pb.StatDirRequest{Dir: dir.Attr.Ino, Names: [][]byte{[]byte("..")}}, syscall.EINVAL},
		{"too many names", &pb.StatDirRequest{Dir: dir.Attr.Ino, Names: make([][]byte, 10001)}, syscall.EINVAL},
	} {
		resp, err := e.ns.StatDir(ctx, tc.req)
		if err != nil || resp.Errno != int32(tc.errno) || resp.Message == "" && tc.errno == syscall.EINVAL || len(resp.Entries) != 0 {
			t.Errorf("stat dir of %s: %v, %v; want errno %d", tc.what, resp, err, tc.errno)
		}
	}
}
