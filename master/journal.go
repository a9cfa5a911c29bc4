package master

import (
	"context"
	"errors"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
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
}

// ErrNotLeader may be wrapped by a journal's errors to say this node does not
// lead; errors with a NotLeader() bool method that returns true count too.
var ErrNotLeader = errors.New("master: not leader")

func isNotLeader(err error) bool {
	if errors.Is(err, ErrNotLeader) {
		return true
	}
	var nl interface{ NotLeader() bool }
	return errors.As(err, &nl) && nl.NotLeader()
}
