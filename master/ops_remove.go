package master

import (
	"context"
	"syscall"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

func (s *Server) removeResponse(res meta.Result, err error) (*pb.RemoveResponse, error) {
	en, msg, err := s.outcome(err)
	if err != nil {
		return nil, err
	}
	if en != 0 {
		return &pb.RemoveResponse{Errno: en, Message: msg}, nil
	}
	return &pb.RemoveResponse{Errno: int32(res.Errno), Ino: res.Ino, Removed: res.Removed, Replayed: res.Replayed, DirAttr: attrPB(res.Dir)}, nil
}

// Unlink removes a directory entry that is not a directory; under a mount,
// its UFS object first.
func (n *nsServer) Unlink(ctx context.Context, req *pb.UnlinkRequest) (*pb.RemoveResponse, error) {
	ref := entryRef{parent: req.Parent, name: req.Name, path: req.Path}
	if err := n.s.preloadParent(ctx, ref); err != nil {
		return n.s.removeResponse(meta.Result{}, err)
	}
	return n.s.removeResponse(n.s.mutateUFS(ctx, req.Request, func(tx meta.Txn, e *metapb.Entry) (sideEffect, error) {
		parent, name, err := locate(tx, ref, fail(syscall.EISDIR, "/ is a directory"))
		if err != nil {
			return nil, err
		}
		e.Op = &metapb.Entry_Unlink{Unlink: &metapb.Unlink{Parent: parent, Name: name}}
		return n.s.unlinkSide(tx, parent, name)
	}))
}

// Rmdir removes an empty directory; under a mount, its UFS directory first,
// once its listing is loaded (a directory empty here but not in the UFS is
// ENOTEMPTY).
func (n *nsServer) Rmdir(ctx context.Context, req *pb.RmdirRequest) (*pb.RemoveResponse, error) {
	ref := entryRef{parent: req.Parent, name: req.Name, path: req.Path}
	if err := n.s.preloadChild(ctx, ref); err != nil {
		return n.s.removeResponse(meta.Result{}, err)
	}
	return n.s.removeResponse(n.s.mutateUFS(ctx, req.Request, func(tx meta.Txn, e *metapb.Entry) (sideEffect, error) {
		parent, name, err := locate(tx, ref, fail(syscall.EBUSY, "cannot remove /"))
		if err != nil {
			return nil, err
		}
		e.Op = &metapb.Entry_Rmdir{Rmdir: &metapb.Rmdir{Parent: parent, Name: name}}
		return n.s.rmdirSide(tx, parent, name)
	}))
}

// Rename moves a directory entry, with renameat2 flags; under a mount, the UFS
// file or directory first (a directory recursively).
func (n *nsServer) Rename(ctx context.Context, req *pb.RenameRequest) (*pb.RenameResponse, error) {
	from := entryRef{parent: req.OldParent, name: req.OldName, path: req.OldPath}
	to := entryRef{parent: req.NewParent, name: req.NewName, path: req.NewPath}
	err := n.s.preloadParent(ctx, from)
	if err == nil {
		err = n.s.preloadChild(ctx, to)
	}
	var res meta.Result
	if err == nil {
		res, err = n.s.mutateUFS(ctx, req.Request, func(tx meta.Txn, e *metapb.Entry) (sideEffect, error) {
			if req.Flags&^(meta.RenameNoReplace|meta.RenameExchange) != 0 {
				return nil, fail(syscall.EINVAL, "unknown rename flags %#x", req.Flags)
			}
			if req.Flags == meta.RenameNoReplace|meta.RenameExchange {
				return nil, fail(syscall.EINVAL, "RENAME_NOREPLACE and RENAME_EXCHANGE together")
			}
			op, on, err := locate(tx, from, fail(syscall.EBUSY, "cannot rename /"))
			if err != nil {
				return nil, err
			}
			np, nn, err := locate(tx, to, fail(syscall.EBUSY, "cannot rename onto /"))
			if err != nil {
				return nil, err
			}
			r := &metapb.Rename{OldParent: op, OldName: on, NewParent: np, NewName: nn, Flags: req.Flags}
			e.Op = &metapb.Entry_Rename{Rename: r}
			return n.s.renameSide(tx, r)
		})
	}
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	if en != 0 {
		return &pb.RenameResponse{Errno: en, Message: msg}, nil
	}
	return &pb.RenameResponse{Errno: int32(res.Errno), Ino: res.Ino, Removed: res.Removed, Replayed: res.Replayed}, nil
}
