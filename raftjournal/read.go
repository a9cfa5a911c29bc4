package raftjournal

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// round is one VerifyLeader round shared by every caller that joined it.
type round struct {
	done   chan struct{} // closed when the fields below are final
	start  time.Time     // before the round's heartbeats were sent
	term   uint64        // raft's term at start
	commit uint64        // raft's commit index at start
	err    error
}

// verifier runs VerifyLeader rounds one at a time. A caller joins the round
// that has not started yet (creating it if needed): a round already in flight
// may have sent its heartbeats before the caller arrived, so it proves nothing
// about the caller's read. When a round ends, the next one starts with every
// caller that joined meanwhile.
type verifier struct {
	n       *Node
	mu      sync.Mutex // guards running and next
	running bool       // a round is in flight
	next    *round     // the round callers join now; started after the current
	count   atomic.Uint64
}

func (v *verifier) join() *round {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.next == nil {
		v.next = &round{done: make(chan struct{})}
	}
	r := v.next
	if !v.running {
		v.running, v.next = true, nil
		go v.run(r)
	}
	return r
}

func (v *verifier) run(r *round) {
	for r != nil {
		v.verify(r)
		close(r.done)
		v.mu.Lock()
		r, v.next = v.next, nil
		v.running = r != nil
		v.mu.Unlock()
	}
}

func (v *verifier) verify(r *round) {
	rf := v.n.raft
	v.count.Add(1)
	r.start = time.Now()
	r.term = rf.CurrentTerm()
	r.commit = rf.CommitIndex()
	r.err = rf.VerifyLeader().Error()
	if r.err == nil && rf.CurrentTerm() != r.term {
		r.err = raft.ErrLeadershipLost
	}
	if r.err == nil {
		v.n.renewLease(r.start, r.term)
	}
}

// verifyRounds is the number of VerifyLeader rounds run since Open.
func (n *Node) verifyRounds() uint64 { return n.rounds.count.Load() }

// await joins the next VerifyLeader round and waits for it.
func (n *Node) await(ctx context.Context) (*round, error) {
	r := n.rounds.join()
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("raftjournal: %w", ctx.Err())
	case <-n.done:
		return nil, ErrClosed
	}
	if r.err != nil {
		return nil, n.waitErr(r.err)
	}
	n.mu.Lock()
	ok := n.serving && n.servingTerm == r.term
	n.mu.Unlock()
	if !ok {
		return nil, n.notLeader(nil)
	}
	return r, nil
}

// ReadBarrier makes the next View on this node linearizable. It fails with
// ErrNotLeader when this node does not serve.
//
// While this node holds a valid lease (see CheckLease) it answers at once:
// every write acknowledged before the call began was applied on this node
// first (a leader acknowledges only what its own store applied, and serves
// only after applying everything its predecessors committed), and no other
// node can have acknowledged a write within the lease. The lease is kept fresh
// by committed proposals and by a background VerifyLeader round whenever half
// of it has run out, so a busy or idle leader alike reads from memory.
//
// Without a valid lease, or with Config.StrictReads, the caller waits for a
// round of heartbeats acknowledged by a quorum and sent after the call began,
// and for the store to apply every entry committed when that round began.
// Concurrent callers share rounds: a caller waits for the round after the one
// in flight, never for more.
func (n *Node) ReadBarrier(ctx context.Context) error {
	if !n.Serving() {
		return n.notLeader(nil)
	}
	if !n.cfg.StrictReads && n.leaseValid() {
		return nil
	}
	r, err := n.await(ctx)
	if err != nil {
		return err
	}
	// A leader serves only after its own record, proposed in its term, was
	// applied; every entry after it is one the FSM sees (raft hides only its
	// own no-op and barrier entries), so the store's applied index reaches the
	// commit index.
	if !n.fsm.waitApplied(ctx.Done(), r.commit) {
		return fmt.Errorf("raftjournal: waiting for index %d to be applied: %w", r.commit, ctx.Err())
	}
	return nil
}

// keepLease renews the lease of a serving leader with a VerifyLeader round
// whenever more than half of it has run out, until Close. Off with
// StrictReads, which then leaves the lease to CheckLease's own rounds.
func (n *Node) keepLease() {
	defer n.wg.Done()
	if n.cfg.StrictReads {
		return
	}
	t := time.NewTicker(n.lease / 4)
	defer t.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-t.C:
		}
		n.mu.Lock()
		stale := n.serving && !n.transferring && time.Since(n.leaseStart) > n.lease/2
		n.mu.Unlock()
		if stale {
			n.rounds.join()
		}
	}
}

// CheckLease returns nil only if this node serves as leader and a quorum
// acknowledged it, by heartbeats sent less than LeaderLeaseTimeout ago. Call it
// right before a side effect outside the journal (a UFS write); a deposed
// leader gets a *NotLeaderError.
//
// Why a quorum contact at time t makes this node the only leader until
// t + LeaderLeaseTimeout: a follower that accepted our heartbeat at t' ≥ t has
// us as its known leader and, in hashicorp/raft, refuses votes and pre-votes
// to any other candidate until it has heard nothing from us for at least
// HeartbeatTimeout ≥ LeaderLeaseTimeout. Every quorum that could elect another
// leader contains such a follower or this node, which would have to step down
// first (and then Serving is false). A follower that crashed and restarted
// has forgotten its leader; Open waits LeaderLeaseTimeout before it starts raft
// on existing state, so it cannot vote within a lease it helped confirm. A
// leadership transfer lets the target collect votes at once; this node stops
// serving, and so fails CheckLease, before it starts one. This relies on
// clocks that advance at nearly the same rate on every master (the margin is
// HeartbeatTimeout - LeaderLeaseTimeout, half the heartbeat timeout by
// default), not on synchronized clocks; time is measured with the monotonic
// clock. Raft itself
// also steps down a leader that has not heard from a quorum within
// LeaderLeaseTimeout.
//
// A lease confirmed less than LeaderLeaseTimeout ago answers at once;
// otherwise the call joins a VerifyLeader round (shared with ReadBarrier).
func (n *Node) CheckLease(ctx context.Context) error {
	if !n.Serving() {
		return n.notLeader(nil)
	}
	if n.leaseValid() {
		return nil
	}
	if _, err := n.await(ctx); err != nil {
		return err
	}
	if n.leaseValid() {
		return nil
	}
	return n.notLeader(ErrLeaseExpired)
}

func (n *Node) renewLease(start time.Time, term uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.serving && n.servingTerm == term && start.After(n.leaseStart) {
		n.leaseStart, n.leaseTerm = start, term
	}
}

func (n *Node) leaseValid() bool {
	n.mu.Lock()
	ok := n.serving && !n.transferring && !n.leaseStart.IsZero() &&
		n.leaseTerm == n.servingTerm && time.Since(n.leaseStart) < n.lease
	term := n.leaseTerm
	n.mu.Unlock()
	return ok && n.raft.State() == raft.Leader && n.raft.CurrentTerm() == term
}
