package raftjournal

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/journalpb"
)

// opTimeout bounds raft's enqueue of a membership change when ctx has no
// deadline.
const opTimeout = 30 * time.Second

func timeoutOf(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return opTimeout
}

// AddVoter adds a master to the cluster as a voter (or updates its address):
// it records the master's RPC address in the journal, then changes the raft
// configuration. The new master, opened with no Peers, catches up by snapshot
// install and then the log. Only the serving leader may do this.
func (n *Node) AddVoter(ctx context.Context, p Peer) error {
	if p.ID == "" || p.RaftAddr == "" {
		return errors.New("raftjournal: AddVoter needs an ID and a Raft address")
	}
	if !n.Serving() {
		return n.notLeader(nil)
	}
	if _, err := n.applyCommand(ctx, setMember(p)); err != nil {
		return fmt.Errorf("raftjournal: record member %s: %w", p.ID, err)
	}
	f := n.raft.AddVoter(raft.ServerID(p.ID), raft.ServerAddress(p.RaftAddr), 0, timeoutOf(ctx))
	if err := n.wait(ctx, f); err != nil {
		return fmt.Errorf("raftjournal: add voter %s: %w", p.ID, err)
	}
	return nil
}

// RemoveServer removes a master from the cluster and then forgets its record.
// Removing the leader itself is allowed: it steps down once the change
// commits. Only the serving leader may do this.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if !n.Serving() {
		return n.notLeader(nil)
	}
	f := n.raft.RemoveServer(raft.ServerID(id), 0, timeoutOf(ctx))
	if err := n.wait(ctx, f); err != nil {
		return fmt.Errorf("raftjournal: remove server %s: %w", id, err)
	}
	if id == n.cfg.NodeID {
		return nil
	}
	c := &journalpb.Command{Op: &journalpb.Command_RemoveMember{RemoveMember: id}}
	if _, err := n.applyCommand(ctx, c); err != nil {
		return fmt.Errorf("raftjournal: forget member %s: %w", id, err)
	}
	return nil
}

// TransferLeadership hands leadership to the master id, or to the most
// up-to-date follower when id is empty. This node stops serving when the
// transfer begins; if the transfer fails it serves again. Only the serving
// leader may do this.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if !n.Serving() {
		return n.notLeader(nil)
	}
	var f raft.Future
	if id == "" {
		n.setTransferring(true)
		f = n.raft.LeadershipTransfer()
	} else {
		cf := n.raft.GetConfiguration()
		if err := cf.Error(); err != nil {
			return fmt.Errorf("raftjournal: %w", err)
		}
		var addr raft.ServerAddress
		for _, s := range cf.Configuration().Servers {
			if string(s.ID) == id {
				addr = s.Address
			}
		}
		if addr == "" {
			return fmt.Errorf("raftjournal: transfer leadership: %q is not a member", id)
		}
		n.setTransferring(true)
		f = n.raft.LeadershipTransferToServer(raft.ServerID(id), addr)
	}
	err := n.wait(ctx, f)
	n.setTransferring(false)
	if err != nil {
		return fmt.Errorf("raftjournal: transfer leadership: %w", err)
	}
	return nil
}

func (n *Node) setTransferring(on bool) {
	n.mu.Lock()
	changed := n.serving && n.transferring != on
	n.transferring = on
	if on {
		n.leaseStart = time.Time{}
	}
	if changed {
		select {
		case <-n.changes:
		default:
		}
		n.changes <- !on
	}
	n.mu.Unlock()
}

// Checkpoint forces a snapshot of the state machine on this node (any node,
// leader or not) and truncates its log up to TrailingLogs before it. It
// returns the index the snapshot covers; when nothing new was applied since
// the last snapshot, that snapshot's index.
func (n *Node) Checkpoint(ctx context.Context) (uint64, error) {
	f := n.raft.Snapshot()
	err := n.wait(ctx, f)
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		list, lerr := n.snaps.List()
		if lerr != nil || len(list) == 0 {
			return 0, fmt.Errorf("raftjournal: checkpoint: %w", err)
		}
		return list[0].Index, nil
	}
	if err != nil {
		return 0, fmt.Errorf("raftjournal: checkpoint: %w", err)
	}
	m, rc, err := f.Open()
	if err != nil {
		return 0, fmt.Errorf("raftjournal: checkpoint: %w", err)
	}
	rc.Close()
	return m.Index, nil
}

// Member is one master in Status.
type Member struct {
	ID, RaftAddr, RPCAddr string
	// Suffrage is "voter", "nonvoter" or "staging".
	Suffrage string
}

// Status is a snapshot of this node's view of the cluster.
type Status struct {
	// ID is this node's ID; Role is "leader", "follower", "candidate" or
	// "shutdown" as raft sees it; Serving is Node.Serving.
	ID      string
	Role    string
	Serving bool
	Term    uint64
	// LastLogIndex is the newest entry in the log; CommitIndex the newest
	// known committed; AppliedIndex the newest the store holds;
	// LastSnapshotIndex the newest snapshot's.
	LastLogIndex, CommitIndex, AppliedIndex, LastSnapshotIndex uint64
	// LeaderID and LeaderRPCAddr name the leader as this node knows it.
	LeaderID, LeaderRPCAddr string
	// Members is the latest raft configuration, with the journal's RPC
	// addresses.
	Members []Member
}

// Status returns this node's view of the cluster.
func (n *Node) Status() Status {
	st := Status{
		ID:           n.cfg.NodeID,
		Role:         roleName(n.raft.State()),
		Serving:      n.Serving(),
		Term:         n.raft.CurrentTerm(),
		LastLogIndex: n.raft.LastIndex(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.fsm.applied.Load(),
	}
	st.LastSnapshotIndex, _ = strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
	st.LeaderID, st.LeaderRPCAddr = n.Leader()
	var members map[string]*journalpb.Member
	_ = n.View(func(tx meta.Txn) (err error) {
		members, err = readMembers(tx)
		return err
	})
	if cf := n.raft.GetConfiguration(); cf.Error() == nil {
		for _, s := range cf.Configuration().Servers {
			m := Member{ID: string(s.ID), RaftAddr: string(s.Address), Suffrage: suffrageName(s.Suffrage)}
			if rec := members[m.ID]; rec != nil {
				m.RPCAddr = rec.RpcAddr
			} else {
				m.RPCAddr = n.rpcAddr(m.ID)
			}
			st.Members = append(st.Members, m)
		}
	}
	return st
}

func roleName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	}
	return "shutdown"
}

func suffrageName(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return "voter"
	case raft.Nonvoter:
		return "nonvoter"
	}
	return "staging"
}
