package client

import (
	"context"
	"errors"
	"io"
	"syscall"
	"time"

	"google.golang.org/grpc"

	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// HolderMetadata is the gRPC metadata key that names the caller's session on
// every call (the master's HolderMetadata), so that the leader never recalls
// a delegation from the host that holds it.
const HolderMetadata = "skyfs-holder"

// SetHolder makes every later call of c name session holder (zero: none).
func (c *Client) SetHolder(holder uint64) { c.holder.Store(holder) }

// OpenSession opens session holder with the given lease, or renews it. It
// returns when the lease began at the latest in this host's clock (before
// the request was sent): the holder counts its lease from there.
func (c *Client) OpenSession(ctx context.Context, holder uint64, lease time.Duration) (time.Time, error) {
	req := &pb.OpenSessionRequest{Request: c.newRequest(), Holder: holder, LeaseNs: int64(lease)}
	var resp *pb.SessionResponse
	var sent time.Time
	err := c.call(ctx, "open session", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		sent = time.Now()
		resp, err = pb.NewNamespaceClient(conn).OpenSession(ctx, req)
		return err
	})
	if err != nil {
		return time.Time{}, err
	}
	return sent, errnoError(resp.Errno, resp.Message)
}

// EndSession ends session holder: its delegations and unspent inode ranges
// go.
func (c *Client) EndSession(ctx context.Context, holder uint64) error {
	req := &pb.EndSessionRequest{Request: c.newRequest(), Holder: holder}
	var resp *pb.SessionResponse
	err := c.call(ctx, "end session", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).EndSession(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	return errnoError(resp.Errno, resp.Message)
}

// GrantRange asks for count fresh inode numbers for session holder and
// returns the range [start, end). A grant whose answer was lost to a
// failover is not repeated (its numbers stay unused): it asks again.
func (c *Client) GrantRange(ctx context.Context, holder uint64, count uint32) (start, end uint64, err error) {
	for {
		req := &pb.GrantRangeRequest{Request: c.newRequest(), Holder: holder, Count: count}
		var resp *pb.GrantRangeResponse
		err := c.call(ctx, "grant range", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
			resp, err = pb.NewNamespaceClient(conn).GrantRange(ctx, req)
			return err
		})
		if err != nil {
			return 0, 0, err
		}
		if syscall.Errno(resp.Errno) == syscall.EALREADY {
			continue
		}
		return resp.Start, resp.End, errnoError(resp.Errno, resp.Message)
	}
}

// Delegate asks for the delegation of directory dir to session holder.
func (c *Client) Delegate(ctx context.Context, holder, dir uint64) error {
	req := &pb.DelegateRequest{Request: c.newRequest(), Holder: holder, Dir: dir}
	var resp *pb.DelegateResponse
	err := c.call(ctx, "delegate", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).Delegate(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	return errnoError(resp.Errno, resp.Message)
}

// Undelegate gives the delegation of dir back.
func (c *Client) Undelegate(ctx context.Context, holder, dir uint64) error {
	req := &pb.UndelegateRequest{Request: c.newRequest(), Holder: holder, Dir: dir}
	var resp *pb.DelegateResponse
	err := c.call(ctx, "undelegate", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).Undelegate(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	return errnoError(resp.Errno, resp.Message)
}

// NewRequest returns the id of a new mutation of c, for the operations of a
// Flush.
func (c *Client) NewRequest() *pb.RequestID { return c.newRequest() }

// Flush journals a holder's pending operations as one entry. Each operation
// carries its own request id, so a flush retried across a failover is
// applied once. A refusal of the whole flush is an error (an *Error);
// otherwise the response holds one outcome per operation. The attempt is
// bounded by ctx only: the leader may do UFS work for it.
func (c *Client) Flush(ctx context.Context, holder uint64, ops []*pb.FlushOp) (*pb.FlushResponse, error) {
	req := &pb.FlushRequest{Holder: holder, Ops: ops}
	var resp *pb.FlushResponse
	err := c.callFor(ctx, "flush", 0, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = pb.NewNamespaceClient(conn).Flush(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, errnoError(resp.Errno, resp.Message)
}

// Recalls keeps the recall stream of session holder open on the leader,
// opened again after a failover, and calls recall with each directory the
// leader asks back (a directory may be asked more than once), until ctx
// ends. A stream cut for any reason (a failover, the retry budget of one
// opening) is opened again after a short pause.
func (c *Client) Recalls(ctx context.Context, holder uint64, recall func(dir uint64)) error {
	if holder == 0 {
		return errors.New("client: recalls: no session (holder id must be non-zero)")
	}
	for ctx.Err() == nil {
		err := c.callFor(ctx, "recalls", 0, func(ctx context.Context, conn *grpc.ClientConn) error {
			stream, err := pb.NewNamespaceClient(conn).Recalls(ctx, &pb.RecallsRequest{Holder: holder})
			if err != nil {
				return err
			}
			for {
				n, err := stream.Recv()
				if err != nil {
					return err
				}
				recall(n.Dir)
			}
		})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			c.log.Debug("client: recall stream cut, opening it again", "err", err)
		}
		select {
		case <-time.After(c.cfg.MinBackoff):
		case <-ctx.Done():
		}
	}
	return nil
}
