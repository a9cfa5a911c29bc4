package master

import (
	"context"
	"errors"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
	"github.com/skyfs/skyfs/raftjournal"
)

// Journal is the replicated namespace as the master uses it: raftjournal.Node
// implements it.
type Journal interface {
	// Propose commits e and returns its outcome once it is applied here. An error
	// means the entry may or may not have committed; a retry with the same
	// request id settles it.
	Propose(ctx context.Context, e *metapb.Entry) (meta.Result, error)
	// ReadBarrier returns once this node has confirmed its leadership and applied
	// every committed entry.
	ReadBarrier(ctx context.Context) error
	// View runs fn in a read-only transaction of the local state.
	View(fn func(meta.Txn) error) error
	// Serving reports whether this node leads and has applied its predecessor's
	// entries, so that it may answer clients.
	Serving() bool
	// Leader returns the leader this node knows of, if any.
	Leader() (id, rpcAddr string)
	// CheckLease returns nil only while this node leads and a quorum has
	// confirmed it within the lease: the condition for a UFS side effect.
	CheckLease(ctx context.Context) error
}

// Admin runs the journal's membership changes and snapshots, and reports this
// node's view of the cluster.
type Admin interface {
	AddVoter(ctx context.Context, p raftjournal.Peer) error
	RemoveServer(ctx context.Context, id string) error
	TransferLeadership(ctx context.Context, id string) error
	Checkpoint(ctx context.Context) (uint64, error)
	Status() raftjournal.Status
}

var (
	_ Journal = (*raftjournal.Node)(nil)
	_ Admin   = (*raftjournal.Node)(nil)
)

// isNotLeader reports whether a journal error says this node does not lead.
func isNotLeader(err error) bool { return errors.Is(err, raftjournal.ErrNotLeader) }

// leaderHint returns the leader named by a journal error, or the leader this
// node knows of.
func (s *Server) leaderHint(err error) (id, rpcAddr string) {
	var nl *raftjournal.NotLeaderError
	if errors.As(err, &nl) {
		return nl.LeaderID, nl.LeaderRPCAddr
	}
	return s.j.Leader()
}
