package master

import (
	"context"
	"errors"
	"syscall"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// Flush journals operations a mount daemon did locally in its delegated
// directories, as one Batch entry.
//
// The UFS side of each operation (a directory marker, the deletion of an
// unlinked file's object, a rename) is planned in order on the state the
// operations before it leave (meta.Scratch), and done on the leader before
// the entry is proposed, one after the other; the first that fails ends the
// flush there: the operations before it are journaled, it answers its
// error, and those after it ECANCELED (the holder drops what it held of the
// directory). A file's object is written by the holder before its
// completion is flushed, so the namespace never records as complete a file
// whose object is not in the UFS.
func (n *nsServer) Flush(ctx context.Context, req *pb.FlushRequest) (*pb.FlushResponse, error) {
	resp, err := n.s.flush(ctx, req)
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	if en != 0 {
		return &pb.FlushResponse{Errno: en, Message: msg}, nil
	}
	return resp, nil
}

func (s *Server) flush(ctx context.Context, req *pb.FlushRequest) (*pb.FlushResponse, error) {
	switch {
	case req.Holder == 0:
		return nil, fail(syscall.EINVAL, "flush: no session (holder id must be non-zero)")
	case len(req.Ops) == 0 || len(req.Ops) > meta.MaxBatchOps:
		return nil, fail(syscall.EINVAL, "flush of %d operations: want 1 to %d", len(req.Ops), meta.MaxBatchOps)
	}
	ops := make([]*metapb.BatchOp, len(req.Ops))
	for i, fo := range req.Ops {
		op, err := flushOp(fo)
		if err != nil {
			var pe *posixError
			if errors.As(err, &pe) {
				return nil, fail(pe.errno, "flush operation %d: %s", i, pe.msg)
			}
			return nil, err
		}
		ops[i] = op
	}
	sides := make([]sideEffect, len(ops))
	stop, stopErr := len(ops), error(nil)
	err := s.resolve(func(tx meta.Txn) error {
		sc := meta.Scratch(tx)
		now := s.now().UnixNano()
		for i, op := range ops {
			one := &metapb.Entry{Version: meta.EntryVersion, TimeNs: now, Holder: req.Holder,
				Op: &metapb.Entry_Batch{Batch: &metapb.Batch{Ops: []*metapb.BatchOp{op}}}}
			res, err := meta.Apply(meta.Scratch(sc), one)
			if err != nil {
				return err
			}
			if res.Errno != 0 {
				return sessionFail(res.Errno, req.Holder, "flush")
			}
			if r := res.Ops[0]; !r.Replayed && r.Errno == 0 {
				side, err := s.planFlushOp(sc, op)
				if err != nil {
					var pe *posixError
					if !errors.As(err, &pe) {
						return err
					}
					stop, stopErr = i, err
					return nil
				}
				sides[i] = side
			}
			if _, err := meta.Apply(sc, one); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	leased := false
	for i := range stop {
		if sides[i] == nil {
			continue
		}
		if !leased {
			if err := s.j.CheckLease(ctx); err != nil {
				return nil, &journalError{err}
			}
			leased = true
		}
		if err := sides[i](ctx); err != nil {
			stop, stopErr = i, err
			break
		}
	}
	resp := &pb.FlushResponse{Results: make([]*pb.EntryResponse, len(ops))}
	if stop > 0 {
		e := &metapb.Entry{Version: meta.EntryVersion, Holder: req.Holder,
			Op: &metapb.Entry_Batch{Batch: &metapb.Batch{Ops: ops[:stop]}}}
		e.TimeNs = s.clock()
		res, err := s.j.Propose(ctx, e)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil, err
			}
			return nil, &journalError{err}
		}
		if res.Errno != 0 {
			return nil, sessionFail(res.Errno, req.Holder, "flush")
		}
		for i, r := range res.Ops {
			resp.Results[i] = &pb.EntryResponse{Errno: int32(r.Errno), Ino: r.Ino, Replayed: r.Replayed, DirAttr: attrPB(r.Dir)}
			if r.Errno == 0 {
				resp.Results[i].Attr = s.attrOf(r)
			}
		}
	}
	if stop < len(ops) {
		en, msg, err := s.outcome(stopErr)
		if err != nil {
			en, msg = int32(syscall.EIO), err.Error()
		}
		resp.Results[stop] = &pb.EntryResponse{Errno: en, Message: msg}
		for i := stop + 1; i < len(ops); i++ {
			resp.Results[i] = &pb.EntryResponse{Errno: int32(syscall.ECANCELED), Message: "not applied: an operation before it failed"}
		}
	}
	return resp, nil
}

// flushOp checks one operation of a flush and turns it into its journal
// form.
func flushOp(fo *pb.FlushOp) (*metapb.BatchOp, error) {
	reqID := func(r *pb.RequestID) (*metapb.RequestID, error) {
		if r == nil || r.Client == 0 {
			return nil, fail(syscall.EINVAL, "no request id (client id must be non-zero)")
		}
		return &metapb.RequestID{Client: r.Client, Seq: r.Seq}, nil
	}
	named := func(parent uint64, name []byte, path string) error {
		switch {
		case path != "":
			return fail(syscall.EINVAL, "names go by parent and name, not by path")
		case parent == 0:
			return fail(syscall.EINVAL, "no parent inode")
		}
		return checkName(name)
	}
	out := new(metapb.BatchOp)
	var err error
	switch op := fo.Op.(type) {
	case *pb.FlushOp_Create:
		r := op.Create
		if out.Request, err = reqID(r.Request); err != nil {
			return nil, err
		}
		if err := named(r.Parent, r.Name, r.Path); err != nil {
			return nil, err
		}
		uid, gid := callerOf(r.Caller)
		out.Op = &metapb.BatchOp_CreateFile{CreateFile: &metapb.CreateFile{
			Parent: r.Parent, Name: r.Name, Mode: r.Mode & 0o7777, Uid: uid, Gid: gid, Ino: fo.Ino}}
	case *pb.FlushOp_Mkdir:
		r := op.Mkdir
		if out.Request, err = reqID(r.Request); err != nil {
			return nil, err
		}
		if err := named(r.Parent, r.Name, r.Path); err != nil {
			return nil, err
		}
		uid, gid := callerOf(r.Caller)
		out.Op = &metapb.BatchOp_Mkdir{Mkdir: &metapb.Mkdir{
			Parent: r.Parent, Name: r.Name, Mode: r.Mode & 0o7777, Uid: uid, Gid: gid, Ino: fo.Ino}}
	case *pb.FlushOp_Unlink:
		r := op.Unlink
		if out.Request, err = reqID(r.Request); err != nil {
			return nil, err
		}
		if err := named(r.Parent, r.Name, r.Path); err != nil {
			return nil, err
		}
		out.Op = &metapb.BatchOp_Unlink{Unlink: &metapb.Unlink{Parent: r.Parent, Name: r.Name}}
	case *pb.FlushOp_Rename:
		r := op.Rename
		if out.Request, err = reqID(r.Request); err != nil {
			return nil, err
		}
		if err := named(r.OldParent, r.OldName, r.OldPath); err != nil {
			return nil, err
		}
		if err := named(r.NewParent, r.NewName, r.NewPath); err != nil {
			return nil, err
		}
		out.Op = &metapb.BatchOp_Rename{Rename: &metapb.Rename{
			OldParent: r.OldParent, OldName: r.OldName, NewParent: r.NewParent, NewName: r.NewName, Flags: r.Flags}}
	case *pb.FlushOp_Complete:
		r := op.Complete
		if out.Request, err = reqID(r.Request); err != nil {
			return nil, err
		}
		switch {
		case r.Size > meta.MaxFileSize:
			return nil, fail(syscall.EFBIG, "size %d is larger than %d", r.Size, uint64(meta.MaxFileSize))
		case r.Ufs != nil && r.Ufs.Size < 0:
			return nil, fail(syscall.EINVAL, "negative UFS size %d", r.Ufs.Size)
		}
		out.Op = &metapb.BatchOp_CompleteFile{CompleteFile: &metapb.CompleteFile{
			Ino: r.Ino, Size: r.Size, Ufs: fingerprintMeta(r.Ufs), MtimeNs: r.MtimeNs}}
	default:
		return nil, fail(syscall.EINVAL, "operation of no known kind")
	}
	if fo.Ino != 0 {
		if _, ok := fo.Op.(*pb.FlushOp_Create); !ok {
			if _, ok := fo.Op.(*pb.FlushOp_Mkdir); !ok {
				return nil, fail(syscall.EINVAL, "an inode number comes only with a create or mkdir")
			}
		}
	}
	return out, nil
}

// planFlushOp plans the UFS side of one operation of a flush on the state
// tx holds, and marks what it creates under a mount as pending or
// persisted, as Create and Mkdir do.
func (s *Server) planFlushOp(tx meta.Txn, op *metapb.BatchOp) (sideEffect, error) {
	switch o := op.Op.(type) {
	case *metapb.BatchOp_CreateFile:
		m, _, err := under(tx, o.CreateFile.Parent)
		if err != nil || m == nil {
			return nil, err
		}
		if err := writable(m); err != nil {
			return nil, err
		}
		o.CreateFile.Persist = metapb.PersistState_PENDING
		return nil, nil
	case *metapb.BatchOp_Mkdir:
		return s.mkdirSide(tx, o.Mkdir)
	case *metapb.BatchOp_Unlink:
		return s.unlinkSide(tx, o.Unlink.Parent, o.Unlink.Name)
	case *metapb.BatchOp_Rename:
		return s.renameSide(tx, o.Rename)
	}
	return nil, nil
}
