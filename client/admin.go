package client

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc"

	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// MountCallTimeout bounds one attempt of AddMount, which waits for the master
// to reach the UFS.
const MountCallTimeout = 60 * time.Second

// AddMount adds a UFS mount once the master reached the UFS with the given
// options. The client sets req.Request.
func (c *Client) AddMount(ctx context.Context, req *pb.AddMountRequest) (*pb.Mount, error) {
	req.Request = c.newRequest()
	var resp *pb.AddMountResponse
	err := c.callFor(ctx, "mount", MountCallTimeout, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewMountsClient(conn).AddMount(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.Mount, errnoError(resp.Errno, resp.Message)
}

// RemoveMount removes a mount by id, or by path when id is zero.
func (c *Client) RemoveMount(ctx context.Context, id uint64, path string) error {
	req := &pb.RemoveMountRequest{Request: c.newRequest(), Id: id, Path: path}
	var resp *pb.RemoveMountResponse
	err := c.call(ctx, "unmount", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewMountsClient(conn).RemoveMount(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	return errnoError(resp.Errno, resp.Message)
}

// GetMount returns one mount by id.
func (c *Client) GetMount(ctx context.Context, id uint64) (*pb.Mount, error) {
	var resp *pb.GetMountResponse
	err := c.call(ctx, "get mount", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewMountsClient(conn).GetMount(ctx, &pb.GetMountRequest{Id: id})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.Mount, errnoError(resp.Errno, resp.Message)
}

// ListMounts returns the mount table, secrets redacted.
func (c *Client) ListMounts(ctx context.Context) ([]*pb.Mount, error) {
	var resp *pb.ListMountsResponse
	err := c.call(ctx, "list mounts", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewMountsClient(conn).ListMounts(ctx, &pb.ListMountsRequest{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.Mounts, errnoError(resp.Errno, resp.Message)
}

// Status asks the leader (or, while there is none, any master that answers)
// for the status of every member.
func (c *Client) Status(ctx context.Context) (*pb.StatusResponse, error) {
	var resp *pb.StatusResponse
	err := c.call(ctx, "status", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewClusterClient(conn).Status(ctx, &pb.StatusRequest{})
		return err
	})
	return resp, err
}

// MemberStatus asks the master at addr about itself only, once, without
// retries or redirects.
func (c *Client) MemberStatus(ctx context.Context, addr string) (*pb.Member, error) {
	c.mu.Lock()
	conn, err := c.connLocked(addr)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	resp, err := pb.NewClusterClient(conn).Status(ctx, &pb.StatusRequest{Local: true})
	if err != nil {
		return nil, err
	}
	if len(resp.Members) != 1 {
		return &pb.Member{}, nil
	}
	return resp.Members[0], nil
}

// AddMember adds a master to the cluster as a voter.
func (c *Client) AddMember(ctx context.Context, id, raftAddr, rpcAddr string) error {
	return c.call(ctx, "add member", func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := pb.NewClusterClient(conn).AddMember(ctx, &pb.AddMemberRequest{Id: id, RaftAddr: raftAddr, RpcAddr: rpcAddr})
		return err
	})
}

// RemoveMember removes a master from the cluster.
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	return c.call(ctx, "remove member", func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := pb.NewClusterClient(conn).RemoveMember(ctx, &pb.RemoveMemberRequest{Id: id})
		return err
	})
}

// TransferLeader hands leadership to the master id (any when empty) and
// returns the leader the old one reports afterwards.
func (c *Client) TransferLeader(ctx context.Context, id string) (string, error) {
	var resp *pb.TransferLeaderResponse
	err := c.call(ctx, "transfer leader", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewClusterClient(conn).TransferLeader(ctx, &pb.TransferLeaderRequest{Id: id})
		return err
	})
	if err != nil {
		return "", err
	}
	c.redirect(c.Leader(), "") // leadership moved: find it afresh
	return resp.LeaderId, nil
}

// Checkpoint forces a snapshot of the journal on the leader and returns the
// index it covers.
func (c *Client) Checkpoint(ctx context.Context) (uint64, error) {
	var resp *pb.CheckpointResponse
	err := c.call(ctx, "checkpoint", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewClusterClient(conn).Checkpoint(ctx, &pb.CheckpointRequest{})
		return err
	})
	if err != nil {
		return 0, err
	}
	return resp.Index, nil
}

// MountAccess returns a mount with its credentials. Only mount daemons call it;
// the result must stay in memory.
func (c *Client) MountAccess(ctx context.Context, id uint64) (*pb.Mount, error) {
	var resp *pb.MountAccessResponse
	err := c.call(ctx, "mount access", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewMountsClient(conn).MountAccess(ctx, &pb.MountAccessRequest{Id: id})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.Mount, errnoError(resp.Errno, resp.Message)
}

// Sync reloads the metadata of path (a directory under a mount, or a file's
// directory) from its UFS, with recursive the whole subtree, calling progress
// with every report the leader streams. It returns the final report; a failed
// sync is an error (an *Error for a POSIX outcome). The stream is bounded by
// ctx only; a stream cut by a change of leader is started again.
func (c *Client) Sync(ctx context.Context, path string, recursive bool, progress func(*pb.SyncProgress)) (*pb.SyncProgress, error) {
	var last *pb.SyncProgress
	err := c.callFor(ctx, "sync", 0, func(ctx context.Context, conn *grpc.ClientConn) error {
		stream, err := pb.NewMountsClient(conn).Sync(ctx, &pb.SyncRequest{Path: path, Recursive: recursive})
		if err != nil {
			return err
		}
		for {
			p, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				if last == nil || !last.Done {
					return errors.New("client: sync: stream ended without a result")
				}
				return nil
			}
			if err != nil {
				return err
			}
			last = p
			if progress != nil && !p.Done {
				progress(p)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return last, errnoError(last.Errno, last.Message)
}
