package master

import (
	"context"
	"syscall"

	"github.com/skyfs/skyfs/meta"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// nsServer is the Namespace service.
type nsServer struct {
	pb.UnimplementedNamespaceServer
	s *Server
}

// Lookup returns the attributes of one directory entry.
func (n *nsServer) Lookup(ctx context.Context, req *pb.LookupRequest) (*pb.LookupResponse, error) {
	var a *meta.Attr
	err := checkName(req.Name)
	if err == nil {
		err = n.s.settleRead(ctx, req.Parent)
	}
	if err == nil {
		_, err = n.s.ensureLoaded(ctx, req.Parent, false)
		err = loadErr(err)
	}
	if err == nil {
		err = n.s.read(ctx, func(tx meta.Txn) (err error) {
			a, err = meta.Lookup(tx, req.Parent, req.Name)
			return err
		})
	}
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	return &pb.LookupResponse{Errno: en, Message: msg, Attr: attrPB(a)}, nil
}

// GetAttr returns the attributes of an inode.
func (n *nsServer) GetAttr(ctx context.Context, req *pb.GetAttrRequest) (*pb.GetAttrResponse, error) {
	var a *meta.Attr
	err := n.s.read(ctx, func(tx meta.Txn) (err error) {
		a, err = meta.GetAttr(tx, req.Ino)
		return err
	})
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	return &pb.GetAttrResponse{Errno: en, Message: msg, Attr: attrPB(a)}, nil
}

// ResolvePath returns the attributes of the inode at a path.
func (n *nsServer) ResolvePath(ctx context.Context, req *pb.ResolvePathRequest) (*pb.ResolvePathResponse, error) {
	var a *meta.Attr
	comps, err := splitPath(req.Path)
	fresh := false
	if err == nil {
		err = n.s.read(ctx, func(tx meta.Txn) (err error) {
			a, fresh, err = n.s.walkFresh(tx, comps, false)
			return err
		})
	}
	if err == nil && !fresh {
		err = n.s.preloadPath(ctx, comps, false)
		if err == nil {
			err = n.s.read(ctx, func(tx meta.Txn) (err error) {
				a, err = walk(tx, comps)
				return err
			})
		}
	}
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	return &pb.ResolvePathResponse{Errno: en, Message: msg, Attr: attrPB(a)}, nil
}

// ReadDir returns one page of a directory.
func (n *nsServer) ReadDir(ctx context.Context, req *pb.ReadDirRequest) (*pb.ReadDirResponse, error) {
	resp := new(pb.ReadDirResponse)
	limit := int(req.Limit)
	var err error
	switch {
	case req.Limit == 0:
		limit = DefaultReadDirPage
	case req.Limit > meta.MaxReadDirPage:
		err = fail(syscall.EINVAL, "page size %d is larger than %d", req.Limit, meta.MaxReadDirPage)
	}
	if err == nil && len(req.Cursor) > 0 {
		err = checkName(req.Cursor)
	}
	if err == nil {
		err = n.s.settleReadOf(ctx, req.Ino, req.Path)
	}
	if err == nil {
		err = n.s.preloadInode(ctx, req.Ino, req.Path)
	}
	if err == nil {
		err = n.s.read(ctx, func(tx meta.Txn) error {
			dir, err := inodeOf(tx, req.Ino, req.Path)
			if err != nil {
				return err
			}
			var cursor []byte
			if len(req.Cursor) > 0 {
				cursor = req.Cursor
			}
			ents, more, err := meta.ReadDir(tx, dir.Ino, cursor, limit, req.Plus)
			if err != nil {
				return err
			}
			resp.Ino, resp.More = dir.Ino, more
			resp.Entries = make([]*pb.DirEntry, len(ents))
			for i, e := range ents {
				resp.Entries[i] = dirEntryPB(e)
			}
			if len(ents) > 0 {
				resp.NextCursor = ents[len(ents)-1].Name
			}
			return nil
		})
	}
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	if en != 0 {
		return &pb.ReadDirResponse{Errno: en, Message: msg}, nil
	}
	return resp, nil
}

// StatDir returns, in one read, the attributes of some names of one
// directory, the directory's own, and where it lives in its UFS: a mount
// daemon revalidates with it every file it holds of a directory at once,
// instead of asking for each file's attributes and location apart. A name
// the directory does not hold is answered ENOENT in its entry; any other
// failure fails the call.
func (n *nsServer) StatDir(ctx context.Context, req *pb.StatDirRequest) (*pb.StatDirResponse, error) {
	resp := new(pb.StatDirResponse)
	var err error
	if len(req.Names) > meta.MaxReadDirPage {
		err = fail(syscall.EINVAL, "%d names are more than %d", len(req.Names), meta.MaxReadDirPage)
	}
	for _, name := range req.Names {
		if err != nil {
			break
		}
		err = checkName(name)
	}
	if err == nil {
		err = n.s.settleRead(ctx, req.Dir)
	}
	if err == nil {
		_, err = n.s.ensureLoaded(ctx, req.Dir, false)
		err = loadErr(err)
	}
	if err == nil {
		err = n.s.read(ctx, func(tx meta.Txn) error {
			dir, err := meta.GetAttr(tx, req.Dir)
			if err != nil {
				return err
			}
			if dir.Type != meta.TypeDirectory {
				return fail(syscall.ENOTDIR, "inode %d is not a directory", req.Dir)
			}
			mt, rel, err := meta.MountOf(tx, req.Dir)
			if err != nil {
				return err
			}
			loc := locateResponse(mt, rel)
			resp.DirAttr, resp.MountId, resp.UfsPath, resp.ReadOnly = attrPB(dir), loc.MountId, loc.UfsPath, loc.ReadOnly
			resp.Entries = make([]*pb.StatDirEntry, len(req.Names))
			for i, name := range req.Names {
				a, err := meta.Lookup(tx, req.Dir, name)
				if en, ok := meta.Errno(err); ok && en == syscall.ENOENT {
					resp.Entries[i] = &pb.StatDirEntry{Errno: int32(en)}
					continue
				}
				if err != nil {
					return err
				}
				resp.Entries[i] = &pb.StatDirEntry{Attr: attrPB(a)}
			}
			return nil
		})
	}
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	if en != 0 {
		return &pb.StatDirResponse{Errno: en, Message: msg}, nil
	}
	return resp, nil
}

// Readlink returns a symlink's target.
func (n *nsServer) Readlink(ctx context.Context, req *pb.ReadlinkRequest) (*pb.ReadlinkResponse, error) {
	var target []byte
	err := n.s.read(ctx, func(tx meta.Txn) error {
		a, err := inodeOf(tx, req.Ino, req.Path)
		if err != nil {
			return err
		}
		if a.Type != meta.TypeSymlink {
			return fail(syscall.EINVAL, "inode %d is not a symlink", a.Ino)
		}
		target = a.Target
		return nil
	})
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	return &pb.ReadlinkResponse{Errno: en, Message: msg, Target: target}, nil
}

// GetXattr returns the value of an extended attribute.
func (n *nsServer) GetXattr(ctx context.Context, req *pb.GetXattrRequest) (*pb.GetXattrResponse, error) {
	var value []byte
	err := checkXattrName(req.Name)
	if err == nil {
		err = n.s.read(ctx, func(tx meta.Txn) error {
			a, err := inodeOf(tx, req.Ino, req.Path)
			if err != nil {
				return err
			}
			value, err = meta.GetXattr(tx, a.Ino, req.Name)
			return err
		})
	}
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	return &pb.GetXattrResponse{Errno: en, Message: msg, Value: value}, nil
}

// ListXattr returns the names of an inode's extended attributes.
func (n *nsServer) ListXattr(ctx context.Context, req *pb.ListXattrRequest) (*pb.ListXattrResponse, error) {
	var names [][]byte
	err := n.s.read(ctx, func(tx meta.Txn) error {
		a, err := inodeOf(tx, req.Ino, req.Path)
		if err != nil {
			return err
		}
		names, err = meta.ListXattr(tx, a.Ino)
		return err
	})
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	return &pb.ListXattrResponse{Errno: en, Message: msg, Names: names}, nil
}

// StatFS returns figures about the whole namespace.
func (n *nsServer) StatFS(ctx context.Context, _ *pb.StatFSRequest) (*pb.StatFSResponse, error) {
	resp := &pb.StatFSResponse{BlockSize: 4096, MaxNameLen: meta.MaxNameLen}
	err := n.s.read(ctx, func(tx meta.Txn) error {
		count, err := meta.InodeCount(tx)
		if err != nil {
			return err
		}
		mounts, err := meta.ListMounts(tx)
		if err != nil {
			return err
		}
		resp.Inodes, resp.Mounts = count, uint64(len(mounts))
		return nil
	})
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	if en != 0 {
		return &pb.StatFSResponse{Errno: en, Message: msg}, nil
	}
	return resp, nil
}

func checkXattrName(name []byte) error {
	switch {
	case len(name) == 0:
		return fail(syscall.ERANGE, "empty attribute name")
	case len(name) > meta.MaxXattrNameLen:
		return fail(syscall.ERANGE, "attribute name of %d bytes is longer than %d", len(name), meta.MaxXattrNameLen)
	}
	for _, c := range name {
		if c == 0 {
			return fail(syscall.EINVAL, "attribute name contains a NUL byte")
		}
	}
	return nil
}

// Locate names the mount holding an inode and the path of its UFS object.
func (n *nsServer) Locate(ctx context.Context, req *pb.LocateRequest) (*pb.LocateResponse, error) {
	var mt *meta.Mount
	var rel string
	err := n.s.read(ctx, func(tx meta.Txn) (err error) {
		mt, rel, err = meta.MountOf(tx, req.Ino)
		return err
	})
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	resp := locateResponse(mt, rel)
	resp.Errno, resp.Message = en, msg
	return resp, nil
}

// locateResponse says that a file lives at rel in mount mt (nil: in none).
func locateResponse(mt *meta.Mount, rel string) *pb.LocateResponse {
	resp := &pb.LocateResponse{UfsPath: rel}
	if mt != nil {
		resp.MountId, resp.ReadOnly = mt.ID, mt.ReadOnly
	}
	return resp
}
