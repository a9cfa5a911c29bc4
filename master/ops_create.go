package master

import (
	"context"
	"syscall"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// entryResponse answers a mutation that creates or changes one inode.
func (s *Server) entryResponse(res meta.Result, err error) (*pb.EntryResponse, error) {
	en, msg, err := s.outcome(err)
	if err != nil {
		return nil, err
	}
	if en != 0 {
		return &pb.EntryResponse{Errno: en, Message: msg}, nil
	}
	if res.Errno != 0 {
		return &pb.EntryResponse{Errno: int32(res.Errno), Replayed: res.Replayed}, nil
	}
	return &pb.EntryResponse{Attr: s.attrOf(res), Ino: res.Ino, Replayed: res.Replayed, DirAttr: attrPB(res.Dir)}, nil
}

// Mkdir creates a directory; under a mount, its UFS directory (an S3 marker
// object) first.
func (n *nsServer) Mkdir(ctx context.Context, req *pb.MkdirRequest) (*pb.EntryResponse, error) {
	uid, gid := callerOf(req.Caller)
	ref := entryRef{parent: req.Parent, name: req.Name, path: req.Path}
	if err := n.s.preloadParent(ctx, ref); err != nil {
		return n.s.entryResponse(meta.Result{}, err)
	}
	return n.s.entryResponse(n.s.mutateUFS(ctx, req.Request, func(tx meta.Txn, e *metapb.Entry) (sideEffect, error) {
		parent, name, err := locate(tx, ref, fail(syscall.EEXIST, "/ exists"))
		if err != nil {
			return nil, err
		}
		op := &metapb.Mkdir{Parent: parent, Name: name, Mode: req.Mode & 0o7777, Uid: uid, Gid: gid}
		e.Op = &metapb.Entry_Mkdir{Mkdir: op}
		return n.s.mkdirSide(tx, op)
	}))
}

// Create creates an empty regular file. Under a mount the file is pending: the
// mount daemon uploads it on close and then calls CompleteFile; a name whose
// UFS path the UFS cannot take is ENAMETOOLONG at once. Asked to, it answers
// where the file lives.
func (n *nsServer) Create(ctx context.Context, req *pb.CreateRequest) (*pb.EntryResponse, error) {
	uid, gid := callerOf(req.Caller)
	ref := entryRef{parent: req.Parent, name: req.Name, path: req.Path}
	if err := n.s.preloadParent(ctx, ref); err != nil {
		return n.s.entryResponse(meta.Result{}, err)
	}
	resp, err := n.s.entryResponse(n.s.mutateUFS(ctx, req.Request, func(tx meta.Txn, e *metapb.Entry) (sideEffect, error) {
		parent, name, err := locate(tx, ref, fail(syscall.EEXIST, "/ exists"))
		if err != nil {
			return nil, err
		}
		op := &metapb.CreateFile{Parent: parent, Name: name, Mode: req.Mode & 0o7777, Uid: uid, Gid: gid}
		e.Op = &metapb.Entry_CreateFile{CreateFile: op}
		m, rel, err := under(tx, parent)
		if m == nil || err != nil {
			return nil, err
		}
		op.Persist = metapb.PersistState_PENDING
		return n.s.createSideIn(tx, m, rel, parent, name)
	}))
	if err == nil && req.WantLocation && resp.Errno == 0 && resp.Ino != 0 {
		resp.Location = n.s.locationOf(resp.Ino)
	}
	return resp, err
}

// locationOf answers Locate for ino from this node's state, without a read
// barrier: for the inode a mutation just created here. nil when it is gone.
func (s *Server) locationOf(ino uint64) *pb.LocateResponse {
	var loc *pb.LocateResponse
	_ = s.j.View(func(tx meta.Txn) error {
		mt, rel, err := meta.MountOf(tx, ino)
		if err != nil {
			return err
		}
		loc = locateResponse(mt, rel)
		return nil
	})
	return loc
}

// Symlink creates a symbolic link. It lives in the namespace only; under a
// mount its name's UFS path must still fit the UFS (createSide).
func (n *nsServer) Symlink(ctx context.Context, req *pb.SymlinkRequest) (*pb.EntryResponse, error) {
	uid, gid := callerOf(req.Caller)
	ref := entryRef{parent: req.Parent, name: req.Name, path: req.Path}
	return n.s.entryResponse(n.s.mutateUFS(ctx, req.Request, func(tx meta.Txn, e *metapb.Entry) (sideEffect, error) {
		if err := checkTarget(req.Target); err != nil {
			return nil, err
		}
		parent, name, err := locate(tx, ref, fail(syscall.EEXIST, "/ exists"))
		if err != nil {
			return nil, err
		}
		e.Op = &metapb.Entry_Symlink{Symlink: &metapb.Symlink{
			Parent: parent, Name: name, Target: req.Target, Uid: uid, Gid: gid,
		}}
		return n.s.createSide(tx, parent, name)
	}))
}

// Mknod creates a special file: a FIFO, a socket, or a character or block
// device. It lives in the namespace only, as a symlink does, under every kind
// of UFS: nothing of it is written to the UFS, a sync keeps it (an object of
// its name in the UFS stays hidden behind it), and its rename or removal
// makes no UFS call.
func (n *nsServer) Mknod(ctx context.Context, req *pb.MknodRequest) (*pb.EntryResponse, error) {
	uid, gid := callerOf(req.Caller)
	ref := entryRef{parent: req.Parent, name: req.Name, path: req.Path}
	if err := n.s.preloadParent(ctx, ref); err != nil {
		return n.s.entryResponse(meta.Result{}, err)
	}
	return n.s.entryResponse(n.s.mutateUFS(ctx, req.Request, func(tx meta.Txn, e *metapb.Entry) (sideEffect, error) {
		if !meta.FileType(req.Type).Special() {
			return nil, fail(syscall.EINVAL, "mknod of type %v: not a special file", req.Type)
		}
		parent, name, err := locate(tx, ref, fail(syscall.EEXIST, "/ exists"))
		if err != nil {
			return nil, err
		}
		op := &metapb.Mknod{
			Parent: parent, Name: name, Type: metapb.FileType(req.Type),
			Mode: req.Mode & 0o7777, Uid: uid, Gid: gid, Rdev: req.Rdev,
		}
		e.Op = &metapb.Entry_Mknod{Mknod: op}
		return n.s.mknodSide(tx, op)
	}))
}

// Link adds a hard link to an existing inode. Under a mount whose UFS has no
// hard links (an object store) it is EPERM.
func (n *nsServer) Link(ctx context.Context, req *pb.LinkRequest) (*pb.EntryResponse, error) {
	ref := entryRef{parent: req.NewParent, name: req.NewName, path: req.NewPath}
	if err := n.s.preloadParent(ctx, ref); err != nil {
		return n.s.entryResponse(meta.Result{}, err)
	}
	return n.s.entryResponse(n.s.mutateUFS(ctx, req.Request, func(tx meta.Txn, e *metapb.Entry) (sideEffect, error) {
		ino := req.Ino
		if req.Path != "" {
			a, err := inodeOf(tx, 0, req.Path)
			if err != nil {
				return nil, err
			}
			ino = a.Ino
		}
		parent, name, err := locate(tx, ref, fail(syscall.EEXIST, "/ exists"))
		if err != nil {
			return nil, err
		}
		op := &metapb.Link{Ino: ino, NewParent: parent, NewName: name}
		e.Op = &metapb.Entry_Link{Link: op}
		return n.s.linkSide(tx, op)
	}))
}

// CompleteFile records a finished upload: size, UFS fingerprint and, when
// given, the modification time.
func (n *nsServer) CompleteFile(ctx context.Context, req *pb.CompleteFileRequest) (*pb.EntryResponse, error) {
	return n.s.entryResponse(n.s.mutate(ctx, req.Request, func(_ meta.Txn, e *metapb.Entry) error {
		if req.Size > meta.MaxFileSize {
			return fail(syscall.EFBIG, "size %d is larger than %d", req.Size, uint64(meta.MaxFileSize))
		}
		if req.Ufs != nil && req.Ufs.Size < 0 {
			return fail(syscall.EINVAL, "negative UFS size %d", req.Ufs.Size)
		}
		e.Op = &metapb.Entry_CompleteFile{CompleteFile: &metapb.CompleteFile{
			Ino: req.Ino, Size: req.Size, Ufs: fingerprintMeta(req.Ufs), MtimeNs: req.MtimeNs,
		}}
		return nil
	}))
}

func checkTarget(t []byte) error {
	switch {
	case len(t) == 0:
		return fail(syscall.ENOENT, "empty symlink target")
	case len(t) > meta.MaxSymlinkLen:
		return fail(syscall.ENAMETOOLONG, "symlink target of %d bytes is longer than %d", len(t), meta.MaxSymlinkLen)
	}
	for _, c := range t {
		if c == 0 {
			return fail(syscall.EINVAL, "symlink target contains a NUL byte")
		}
	}
	return nil
}
