package master

import (
	"context"
	"syscall"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

const setAttrAll = meta.SetAttrMode | meta.SetAttrUID | meta.SetAttrGID | meta.SetAttrSize | meta.SetAttrAtime | meta.SetAttrMtime

// SetAttr changes an inode's attributes. atime_now and mtime_now take the
// leader's clock, decided here so that every master records the same time.
func (n *nsServer) SetAttr(ctx context.Context, req *pb.SetAttrRequest) (*pb.EntryResponse, error) {
	return n.s.entryResponse(n.s.mutate(ctx, req.Request, func(tx meta.Txn, e *metapb.Entry) error {
		switch {
		case req.Valid == 0:
			return fail(syscall.EINVAL, "no attribute to change")
		case req.Valid&^setAttrAll != 0:
			return fail(syscall.EINVAL, "unknown attribute bits %#x", req.Valid&^setAttrAll)
		case req.Valid&meta.SetAttrSize != 0 && req.Size > meta.MaxFileSize:
			return fail(syscall.EFBIG, "size %d is larger than %d", req.Size, uint64(meta.MaxFileSize))
		}
		ino := req.Ino
		if req.Path != "" {
			a, err := inodeOf(tx, 0, req.Path)
			if err != nil {
				return err
			}
			ino = a.Ino
		}
		if err := checkWritable(tx, ino); err != nil {
			return err
		}
		op := &metapb.SetAttr{
			Ino: ino, Valid: req.Valid, Mode: req.Mode & 0o7777, Uid: req.Uid, Gid: req.Gid,
			Size: req.Size, AtimeNs: req.AtimeNs, MtimeNs: req.MtimeNs, Ufs: fingerprintMeta(req.Ufs),
			Caller: callerMeta(req.Caller), AtimeNow: req.AtimeNow, MtimeNow: req.MtimeNow,
		}
		e.Op = &metapb.Entry_SetAttr{SetAttr: op}
		return nil
	}, func(e *metapb.Entry) {
		op := e.GetSetAttr()
		if req.AtimeNow {
			op.AtimeNs = e.TimeNs
		}
		if req.MtimeNow {
			op.MtimeNs = e.TimeNs
		}
	}))
}

func (s *Server) xattrResponse(res meta.Result, err error) (*pb.XattrResponse, error) {
	en, msg, err := s.outcome(err)
	if err != nil {
		return nil, err
	}
	if en != 0 {
		return &pb.XattrResponse{Errno: en, Message: msg}, nil
	}
	return &pb.XattrResponse{Errno: int32(res.Errno), Replayed: res.Replayed}, nil
}

// SetXattr sets an extended attribute.
func (n *nsServer) SetXattr(ctx context.Context, req *pb.SetXattrRequest) (*pb.XattrResponse, error) {
	return n.s.xattrResponse(n.s.mutate(ctx, req.Request, func(tx meta.Txn, e *metapb.Entry) error {
		if err := checkXattrName(req.Name); err != nil {
			return err
		}
		switch {
		case len(req.Value) > meta.MaxXattrValueLen:
			return fail(syscall.E2BIG, "attribute value of %d bytes is larger than %d", len(req.Value), meta.MaxXattrValueLen)
		case req.Flags&^(meta.XattrCreate|meta.XattrReplace) != 0 || req.Flags == meta.XattrCreate|meta.XattrReplace:
			return fail(syscall.EINVAL, "bad xattr flags %#x", req.Flags)
		}
		a, err := inodeOf(tx, req.Ino, req.Path)
		if err != nil {
			return err
		}
		if err := checkWritable(tx, a.Ino); err != nil {
			return err
		}
		e.Op = &metapb.Entry_SetXattr{SetXattr: &metapb.SetXattr{Ino: a.Ino, Name: req.Name, Value: req.Value, Flags: req.Flags}}
		return nil
	}))
}

// RemoveXattr removes an extended attribute.
func (n *nsServer) RemoveXattr(ctx context.Context, req *pb.RemoveXattrRequest) (*pb.XattrResponse, error) {
	return n.s.xattrResponse(n.s.mutate(ctx, req.Request, func(tx meta.Txn, e *metapb.Entry) error {
		if err := checkXattrName(req.Name); err != nil {
			return err
		}
		a, err := inodeOf(tx, req.Ino, req.Path)
		if err != nil {
			return err
		}
		if err := checkWritable(tx, a.Ino); err != nil {
			return err
		}
		e.Op = &metapb.Entry_RemoveXattr{RemoveXattr: &metapb.RemoveXattr{Ino: a.Ino, Name: req.Name}}
		return nil
	}))
}
