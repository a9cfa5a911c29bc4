package client

import (
	"context"
	"iter"

	"google.golang.org/grpc"

	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// Lookup returns the attributes of name in directory parent.
func (c *Client) Lookup(ctx context.Context, parent uint64, name string) (*pb.Attr, error) {
	var resp *pb.LookupResponse
	err := c.call(ctx, "lookup", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).Lookup(ctx, &pb.LookupRequest{Parent: parent, Name: []byte(name)})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.Attr, errnoError(resp.Errno, resp.Message)
}

// GetAttr returns the attributes of an inode.
func (c *Client) GetAttr(ctx context.Context, ino uint64) (*pb.Attr, error) {
	var resp *pb.GetAttrResponse
	err := c.call(ctx, "getattr", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).GetAttr(ctx, &pb.GetAttrRequest{Ino: ino})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.Attr, errnoError(resp.Errno, resp.Message)
}

// Stat returns the attributes of the inode at an absolute path (symlinks are
// not followed).
func (c *Client) Stat(ctx context.Context, path string) (*pb.Attr, error) {
	var resp *pb.ResolvePathResponse
	err := c.call(ctx, "stat", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).ResolvePath(ctx, &pb.ResolvePathRequest{Path: path})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.Attr, errnoError(resp.Errno, resp.Message)
}

// ReadDir returns one page of a directory, named by req.Ino or req.Path.
func (c *Client) ReadDir(ctx context.Context, req *pb.ReadDirRequest) (*pb.ReadDirResponse, error) {
	var resp *pb.ReadDirResponse
	err := c.call(ctx, "readdir", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).ReadDir(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, errnoError(resp.Errno, resp.Message)
}

// List yields every entry of the directory at path, page by page (pages of
// limit entries, 0 for the master's default), with attributes when plus is
// set. It stops at the first error, which it yields.
func (c *Client) List(ctx context.Context, path string, limit uint32, plus bool) iter.Seq2[*pb.DirEntry, error] {
	return func(yield func(*pb.DirEntry, error) bool) {
		req := &pb.ReadDirRequest{Path: path, Limit: limit, Plus: plus}
		for {
			page, err := c.ReadDir(ctx, req)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, e := range page.Entries {
				if !yield(e, nil) {
					return
				}
			}
			if !page.More {
				return
			}
			// Later pages by inode: the listing follows the directory even if
			// it is renamed meanwhile.
			req = &pb.ReadDirRequest{Ino: page.Ino, Cursor: page.NextCursor, Limit: limit, Plus: plus}
		}
	}
}

// entryCall runs a mutation answered by an EntryResponse.
func (c *Client) entryCall(ctx context.Context, op string, fn func(context.Context, pb.NamespaceClient) (*pb.EntryResponse, error)) (*pb.EntryResponse, error) {
	var resp *pb.EntryResponse
	err := c.call(ctx, op, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = fn(ctx, pb.NewNamespaceClient(conn))
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, errnoError(resp.Errno, resp.Message)
}

// Mkdir creates a directory named by req.Parent and req.Name, or req.Path. The
// client sets req.Request.
func (c *Client) Mkdir(ctx context.Context, req *pb.MkdirRequest) (*pb.EntryResponse, error) {
	req.Request = c.newRequest()
	return c.entryCall(ctx, "mkdir", func(ctx context.Context, ns pb.NamespaceClient) (*pb.EntryResponse, error) {
		return ns.Mkdir(ctx, req)
	})
}

// Create creates an empty regular file. The client sets req.Request.
func (c *Client) Create(ctx context.Context, req *pb.CreateRequest) (*pb.EntryResponse, error) {
	req.Request = c.newRequest()
	return c.entryCall(ctx, "create", func(ctx context.Context, ns pb.NamespaceClient) (*pb.EntryResponse, error) {
		return ns.Create(ctx, req)
	})
}

// CompleteFile records a finished upload. The client sets req.Request.
func (c *Client) CompleteFile(ctx context.Context, req *pb.CompleteFileRequest) (*pb.EntryResponse, error) {
	req.Request = c.newRequest()
	return c.entryCall(ctx, "complete", func(ctx context.Context, ns pb.NamespaceClient) (*pb.EntryResponse, error) {
		return ns.CompleteFile(ctx, req)
	})
}

// Symlink creates a symbolic link. The client sets req.Request.
func (c *Client) Symlink(ctx context.Context, req *pb.SymlinkRequest) (*pb.EntryResponse, error) {
	req.Request = c.newRequest()
	return c.entryCall(ctx, "symlink", func(ctx context.Context, ns pb.NamespaceClient) (*pb.EntryResponse, error) {
		return ns.Symlink(ctx, req)
	})
}

// Mknod creates a special file. The client sets req.Request.
func (c *Client) Mknod(ctx context.Context, req *pb.MknodRequest) (*pb.EntryResponse, error) {
	req.Request = c.newRequest()
	return c.entryCall(ctx, "mknod", func(ctx context.Context, ns pb.NamespaceClient) (*pb.EntryResponse, error) {
		return ns.Mknod(ctx, req)
	})
}

// Link adds a hard link. The client sets req.Request.
func (c *Client) Link(ctx context.Context, req *pb.LinkRequest) (*pb.EntryResponse, error) {
	req.Request = c.newRequest()
	return c.entryCall(ctx, "link", func(ctx context.Context, ns pb.NamespaceClient) (*pb.EntryResponse, error) {
		return ns.Link(ctx, req)
	})
}

// SetAttr changes attributes. The client sets req.Request.
func (c *Client) SetAttr(ctx context.Context, req *pb.SetAttrRequest) (*pb.EntryResponse, error) {
	req.Request = c.newRequest()
	return c.entryCall(ctx, "setattr", func(ctx context.Context, ns pb.NamespaceClient) (*pb.EntryResponse, error) {
		return ns.SetAttr(ctx, req)
	})
}

// removeCall runs Unlink or Rmdir.
func (c *Client) removeCall(ctx context.Context, op string, fn func(context.Context, pb.NamespaceClient) (*pb.RemoveResponse, error)) (*pb.RemoveResponse, error) {
	var resp *pb.RemoveResponse
	err := c.call(ctx, op, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = fn(ctx, pb.NewNamespaceClient(conn))
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, errnoError(resp.Errno, resp.Message)
}

// Unlink removes a non-directory entry. The client sets req.Request.
func (c *Client) Unlink(ctx context.Context, req *pb.UnlinkRequest) (*pb.RemoveResponse, error) {
	req.Request = c.newRequest()
	return c.removeCall(ctx, "unlink", func(ctx context.Context, ns pb.NamespaceClient) (*pb.RemoveResponse, error) {
		return ns.Unlink(ctx, req)
	})
}

// Rmdir removes an empty directory. The client sets req.Request.
func (c *Client) Rmdir(ctx context.Context, req *pb.RmdirRequest) (*pb.RemoveResponse, error) {
	req.Request = c.newRequest()
	return c.removeCall(ctx, "rmdir", func(ctx context.Context, ns pb.NamespaceClient) (*pb.RemoveResponse, error) {
		return ns.Rmdir(ctx, req)
	})
}

// Rename moves an entry. The client sets req.Request.
func (c *Client) Rename(ctx context.Context, req *pb.RenameRequest) (*pb.RenameResponse, error) {
	req.Request = c.newRequest()
	var resp *pb.RenameResponse
	err := c.call(ctx, "rename", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).Rename(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, errnoError(resp.Errno, resp.Message)
}

// Readlink returns a symlink's target.
func (c *Client) Readlink(ctx context.Context, req *pb.ReadlinkRequest) ([]byte, error) {
	var resp *pb.ReadlinkResponse
	err := c.call(ctx, "readlink", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).Readlink(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.Target, errnoError(resp.Errno, resp.Message)
}

// GetXattr returns an extended attribute's value.
func (c *Client) GetXattr(ctx context.Context, req *pb.GetXattrRequest) ([]byte, error) {
	var resp *pb.GetXattrResponse
	err := c.call(ctx, "getxattr", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).GetXattr(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.Value, errnoError(resp.Errno, resp.Message)
}

// ListXattr returns the names of an inode's extended attributes.
func (c *Client) ListXattr(ctx context.Context, req *pb.ListXattrRequest) ([][]byte, error) {
	var resp *pb.ListXattrResponse
	err := c.call(ctx, "listxattr", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).ListXattr(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.Names, errnoError(resp.Errno, resp.Message)
}

// SetXattr sets an extended attribute. The client sets req.Request.
func (c *Client) SetXattr(ctx context.Context, req *pb.SetXattrRequest) error {
	req.Request = c.newRequest()
	var resp *pb.XattrResponse
	err := c.call(ctx, "setxattr", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).SetXattr(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	return errnoError(resp.Errno, resp.Message)
}

// RemoveXattr removes an extended attribute. The client sets req.Request.
func (c *Client) RemoveXattr(ctx context.Context, req *pb.RemoveXattrRequest) error {
	req.Request = c.newRequest()
	var resp *pb.XattrResponse
	err := c.call(ctx, "removexattr", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).RemoveXattr(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	return errnoError(resp.Errno, resp.Message)
}

// StatFS returns figures about the whole namespace.
func (c *Client) StatFS(ctx context.Context) (*pb.StatFSResponse, error) {
	var resp *pb.StatFSResponse
	err := c.call(ctx, "statfs", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).StatFS(ctx, &pb.StatFSRequest{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, errnoError(resp.Errno, resp.Message)
}

// Locate returns the mount holding an inode and the path of its UFS object
// relative to the mount's root.
func (c *Client) Locate(ctx context.Context, ino uint64) (*pb.LocateResponse, error) {
	var resp *pb.LocateResponse
	err := c.call(ctx, "locate", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).Locate(ctx, &pb.LocateRequest{Ino: ino})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, errnoError(resp.Errno, resp.Message)
}

// StatDir returns, in one call, the attributes of names in directory dir
// (an entry per name, in order, ENOENT in its errno when the directory does
// not hold it), the directory's own attributes and where it lives.
func (c *Client) StatDir(ctx context.Context, dir uint64, names [][]byte) (*pb.StatDirResponse, error) {
	var resp *pb.StatDirResponse
	err := c.call(ctx, "statdir", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).StatDir(ctx, &pb.StatDirRequest{Dir: dir, Names: names})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, errnoError(resp.Errno, resp.Message)
}
