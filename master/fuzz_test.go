package master

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skyfs/skyfs/meta"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
	"github.com/skyfs/skyfs/raftjournal"
)

// fuzzServer is a master over a fake journal holding /d (a directory) and
// /d/f (a file), handlers called directly.
func fuzzServer(t *testing.T) (*Server, *fakeJournal, *fakeAdmin) {
	j := newFakeJournal()
	adm := &fakeAdmin{status: raftjournal.Status{ID: "m1", Role: "leader", Serving: true, LeaderID: "m1",
		Members: []raftjournal.Member{{ID: "m1", RaftAddr: "127.0.0.1:1", RPCAddr: "127.0.0.1:2", Suffrage: "voter"}}}}
	s, err := New(Config{Journal: j, Admin: adm})
	if err != nil {
		t.Fatal(err)
	}
	ns := &nsServer{s: s}
	ctx := context.Background()
	d, err := ns.Mkdir(ctx, &pb.MkdirRequest{Request: &pb.RequestID{Client: 1, Seq: 1}, Parent: meta.RootIno, Name: []byte("d"), Mode: 0o755})
	if err != nil || d.Errno != 0 {
		t.Fatalf("mkdir /d: %v %v", err, d)
	}
	f, err := ns.Create(ctx, &pb.CreateRequest{Request: &pb.RequestID{Client: 1, Seq: 2}, Parent: d.Attr.Ino, Name: []byte("f"), Mode: 0o644})
	if err != nil || f.Errno != 0 {
		t.Fatalf("create /d/f: %v %v", err, f)
	}
	return s, j, adm
}

// digest hashes the namespace without the tables of remembered request
// outcomes (a refused mutation that reached the state machine is
// remembered, so that its retry gets the same answer).
func digest(t *testing.T, j *fakeJournal) [32]byte {
	h := sha256.New()
	err := j.store.View(func(tx meta.Txn) error {
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			if len(k) > 0 && (k[0] == 'r' || k[0] == 'e') {
				return true, nil
			}
			h.Write(k)
			h.Write([]byte{0})
			h.Write(v)
			h.Write([]byte{0})
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// FuzzRequests sends one request of any method with fuzzed paths, names,
// inode numbers, sizes, modes and page sizes to a master: no input may panic
// it or fail it with an internal error, and a request that is refused —
// an errno or an error status — changes nothing.
func FuzzRequests(f *testing.F) {
	long := strings.Repeat("n", 256)
	for _, s := range []struct {
		op     uint8
		path   string
		name   string
		ino    uint64
		size   uint64
		limit  uint32
		mode   uint32
		signed int64
	}{
		{0, "/d", "f", 1, 0, 0, 0o644, 0},
		{2, "/d/../d", "..", 2, 0, 0, 0, 0},
		{4, "/d/x\x00y", "a\x00b", 1, 0, 0, 0o777, 0},
		{4, "/" + long, long, 1, 0, 0, 0o755, 0},
		{5, "//d//f", "/", 2, 1 << 63, 0, 0o100644, -1},
		{3, "/d", "", 2, 0, 1<<32 - 1, 0, 0},
		{8, "/d/f", "f", 2, 0, 7, 0, 0},
		{9, "/d/f", "f", 3, 1<<64 - 1, 0xffffffff, 0o7777, -1 << 63},
		{12, "/d/f", "user.x", 3, 0, 0, 0, 0},
		{14, "/d/f", "f", 3, 1<<64 - 1, 0, 0, -5},
		{16, "relative/path", "k", 0, 0, 0, 0, -1},
		{16, "/m", "s3.secretAccessKey", 0, 0, 0, 0, -1 << 40},
		{17, "/", "", 0, 0, 0, 0, 0},
		{18, "", "", 1<<64 - 1, 0, 0, 0, 0},
		{6, "/d/f/..", ".", 2, 0, 0, 0, 0},
		{10, "/d/l", "l", 2, 0, 0, 0, 0},
		{11, "/d/f", "h", 3, 0, 0, 0, 0},
		{20, "", "", 1<<64 - 1, 0, 0, 0, 0},
		{22, "", "", 0, 0, 0, 0, 0},
		{23, "127.0.0.1:0", "m2", 0, 0, 0, 0, 0},
		{23, "0.0.0.0:99999", "m=2,", 0, 0, 0, 0, 0},
		{24, "", "m9", 0, 0, 0, 0, 0},
		{25, "m\x00", "", 0, 0, 0, 0, 0},
		{26, "/d/p", "p", 2, 0, 4, 0o640, 0x103},
		{26, "/d/f", "f", 2, 0, 1, 0o644, 0},
	} {
		f.Add(s.op, s.path, []byte(s.name), s.ino, s.size, s.limit, s.mode, s.signed)
	}
	f.Fuzz(func(t *testing.T, op uint8, path string, name []byte, ino, size uint64, limit, mode uint32, signed int64) {
		s, j, adm := fuzzServer(t)
		defer s.Close()
		ns, mt, cl := &nsServer{s: s}, &mountServer{s: s}, &clusterServer{s: s}
		ctx := context.Background()
		req := &pb.RequestID{Client: 2, Seq: 1}
		before := digest(t, j)
		var errno int32
		var err error
		const nOps = 27
		switch op % nOps {
		case 0:
			var r *pb.LookupResponse
			r, err = ns.Lookup(ctx, &pb.LookupRequest{Parent: ino, Name: name})
			errno = r.GetErrno()
		case 1:
			var r *pb.GetAttrResponse
			r, err = ns.GetAttr(ctx, &pb.GetAttrRequest{Ino: ino})
			errno = r.GetErrno()
		case 2:
			var r *pb.ResolvePathResponse
			r, err = ns.ResolvePath(ctx, &pb.ResolvePathRequest{Path: path})
			errno = r.GetErrno()
		case 3:
			var r *pb.ReadDirResponse
			r, err = ns.ReadDir(ctx, &pb.ReadDirRequest{Ino: ino, Path: path, Cursor: name, Limit: limit, Plus: mode&1 == 1})
			errno = r.GetErrno()
			if uint32(len(r.GetEntries())) > max(limit, DefaultReadDirPage) && err == nil {
				t.Errorf("ReadDir returned %d entries for limit %d", len(r.GetEntries()), limit)
			}
		case 4:
			var r *pb.EntryResponse
			r, err = ns.Mkdir(ctx, &pb.MkdirRequest{Request: req, Caller: &pb.Caller{Uid: limit, Gid: mode}, Parent: ino, Name: name, Path: path, Mode: mode})
			errno = r.GetErrno()
		case 5:
			var r *pb.EntryResponse
			r, err = ns.Create(ctx, &pb.CreateRequest{Request: req, Parent: ino, Name: name, Path: path, Mode: mode})
			errno = r.GetErrno()
		case 6:
			var r *pb.RemoveResponse
			r, err = ns.Unlink(ctx, &pb.UnlinkRequest{Request: req, Parent: ino, Name: name, Path: path})
			errno = r.GetErrno()
		case 7:
			var r *pb.RemoveResponse
			r, err = ns.Rmdir(ctx, &pb.RmdirRequest{Request: req, Parent: ino, Name: name, Path: path})
			errno = r.GetErrno()
		case 8:
			var r *pb.RenameResponse
			r, err = ns.Rename(ctx, &pb.RenameRequest{Request: req, OldParent: ino, OldName: name, OldPath: path,
				NewParent: size, NewName: []byte(path), NewPath: string(name), Flags: limit})
			errno = r.GetErrno()
		case 9:
			var r *pb.EntryResponse
			r, err = ns.SetAttr(ctx, &pb.SetAttrRequest{Request: req, Ino: ino, Path: path, Valid: limit, Mode: mode,
				Uid: mode, Gid: limit, Size: size, AtimeNs: signed, MtimeNs: -signed})
			errno = r.GetErrno()
		case 10:
			var r *pb.EntryResponse
			r, err = ns.Symlink(ctx, &pb.SymlinkRequest{Request: req, Parent: ino, Name: name, Path: path, Target: []byte(path)})
			errno = r.GetErrno()
		case 11:
			var r *pb.EntryResponse
			r, err = ns.Link(ctx, &pb.LinkRequest{Request: req, Ino: ino, Path: path, NewParent: size, NewName: name, NewPath: path})
			errno = r.GetErrno()
		case 12:
			var r *pb.XattrResponse
			r, err = ns.SetXattr(ctx, &pb.SetXattrRequest{Request: req, Ino: ino, Path: path, Name: name, Value: []byte(path), Flags: limit})
			errno = r.GetErrno()
		case 13:
			var r *pb.GetXattrResponse
			r, err = ns.GetXattr(ctx, &pb.GetXattrRequest{Ino: ino, Path: path, Name: name})
			errno = r.GetErrno()
			if err == nil && errno == 0 {
				var l *pb.ListXattrResponse
				l, err = ns.ListXattr(ctx, &pb.ListXattrRequest{Ino: ino, Path: path})
				errno = l.GetErrno()
			}
		case 14:
			var r *pb.EntryResponse
			r, err = ns.CompleteFile(ctx, &pb.CompleteFileRequest{Request: req, Ino: ino, Size: size, Ufs: &pb.Fingerprint{Size: signed, Etag: string(name)}})
			errno = r.GetErrno()
		case 15:
			var r *pb.XattrResponse
			r, err = ns.RemoveXattr(ctx, &pb.RemoveXattrRequest{Request: req, Ino: ino, Path: path, Name: name})
			errno = r.GetErrno()
		case 16:
			var r *pb.AddMountResponse
			r, err = mt.AddMount(ctx, &pb.AddMountRequest{Request: req, Path: path, Uri: "nosuch://" + string(name),
				Options: map[string]string{string(name): path}, SyncIntervalNs: signed})
			errno = r.GetErrno()
		case 17:
			var r *pb.RemoveMountResponse
			r, err = mt.RemoveMount(ctx, &pb.RemoveMountRequest{Request: req, Id: ino, Path: path})
			errno = r.GetErrno()
		case 18:
			var r *pb.MountAccessResponse
			r, err = mt.MountAccess(asMount(ctx), &pb.MountAccessRequest{Id: ino})
			errno = r.GetErrno()
		case 19:
			var r *pb.ReadlinkResponse
			r, err = ns.Readlink(ctx, &pb.ReadlinkRequest{Ino: ino, Path: path})
			errno = r.GetErrno()
		case 20:
			var r *pb.LocateResponse
			r, err = ns.Locate(ctx, &pb.LocateRequest{Ino: ino})
			errno = r.GetErrno()
		case 21:
			var r *pb.StatFSResponse
			r, err = ns.StatFS(ctx, &pb.StatFSRequest{})
			errno = r.GetErrno()
		case 22:
			var r *pb.GetMountResponse
			r, err = mt.GetMount(ctx, &pb.GetMountRequest{Id: ino})
			errno = r.GetErrno()
		case 23:
			_, err = cl.AddMember(ctx, &pb.AddMemberRequest{Id: string(name), RaftAddr: path, RpcAddr: string(name) + path})
		case 24:
			_, err = cl.RemoveMember(ctx, &pb.RemoveMemberRequest{Id: string(name)})
		case 25:
			_, err = cl.TransferLeader(ctx, &pb.TransferLeaderRequest{Id: path})
		case 26:
			var r *pb.EntryResponse
			r, err = ns.Mknod(ctx, &pb.MknodRequest{Request: req, Caller: &pb.Caller{Uid: mode, Gid: limit}, Parent: ino, Name: name, Path: path,
				Type: pb.FileType(limit), Mode: mode, Rdev: uint32(signed)})
			errno = r.GetErrno()
		}
		if err != nil && op%nOps >= 23 && op%nOps <= 25 {
			adm.mu.Lock()
			calls := len(adm.calls)
			adm.mu.Unlock()
			if calls != 0 {
				t.Fatalf("op %d: refused (%v) but the membership was changed", op%nOps, err)
			}
		}
		if err != nil {
			if c := status.Code(err); c == codes.Internal || c == codes.Unknown {
				t.Fatalf("op %d: an unclear failure: %v", op%nOps, err)
			}
		}
		if (err != nil || errno != 0) && digest(t, j) != before {
			t.Fatalf("op %d: refused (errno %d, err %v) but the namespace changed", op%nOps, errno, err)
		}
	})
}
