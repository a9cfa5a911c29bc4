package master

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// HolderMetadata is the gRPC metadata key in which a mount daemon with a
// session names it (its holder id, in decimal) on every call, so that the
// leader never recalls a delegation from the host that holds it.
const HolderMetadata = "skyfs-holder"

// recallPoll is how often a request waiting for a recalled delegation looks
// at the state again when no give-back through this server woke it.
const recallPoll = 20 * time.Millisecond

// renotify is how often a waiting request asks the holder again.
const renotify = 500 * time.Millisecond

// holderOf returns the session the caller named in HolderMetadata, or zero.
func holderOf(ctx context.Context) uint64 {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get(HolderMetadata) {
		if h, err := strconv.ParseUint(v, 10, 64); err == nil {
			return h
		}
	}
	return 0
}

// delegations is the leader's side of directory delegations: the recall
// streams of the sessions, and the lock that keeps a grant from slipping in
// between the moment a mutation finds its directories free and the moment
// its entry is proposed.
//
// Lock order: mu is taken after gate (Delegate holds gate while proposing
// and takes no mu); mu is a leaf.
type delegations struct {
	// gate is held shared by a mutation from its check of the directories
	// it names to its proposal, and exclusively by a Delegate proposal.
	gate sync.RWMutex

	mu      sync.Mutex
	streams map[uint64]chan uint64 // holder → directories to recall
	ended   chan struct{}          // closed and replaced when a delegation ends here
}

func (d *delegations) init() {
	d.streams = make(map[uint64]chan uint64)
	d.ended = make(chan struct{})
}

// endedCh returns the channel closed at the next end of a delegation.
func (d *delegations) endedCh() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ended
}

// signalEnded wakes the requests waiting for a recalled delegation.
func (d *delegations) signalEnded() {
	d.mu.Lock()
	close(d.ended)
	d.ended = make(chan struct{})
	d.mu.Unlock()
}

// notify asks holder, on its recall stream if it has one open here, to give
// dir back.
func (d *delegations) notify(holder uint64, dir meta.Ino) {
	d.mu.Lock()
	ch := d.streams[holder]
	d.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- dir:
	default: // the stream is behind; the waiter asks again at its next poll
	}
}

// delegatedError says a mutation names a directory delegated to another
// live session: the mutation waits for its recall and is built again.
type delegatedError struct{ dir meta.Ino }

func (e *delegatedError) Error() string {
	return "directory " + strconv.FormatUint(e.dir, 10) + " is delegated to another host"
}

// maxRecallRounds bounds how often one mutation waits for a recall before it
// gives up with EAGAIN (another host keeps taking the directory back).
const maxRecallRounds = 8

// mutateUFS is mutateFlight for a mutation whose directories may be delegated
// to another host: a directory the entry names that another live session
// holds is recalled first (settle), then the mutation is built again.
func (s *Server) mutateUFS(ctx context.Context, req *pb.RequestID, build func(tx meta.Txn, e *metapb.Entry) (sideEffect, error), finish ...func(*metapb.Entry)) (meta.Result, error) {
	holder := holderOf(ctx)
	for round := 0; ; round++ {
		var named []meta.Ino
		guarded := func(tx meta.Txn, e *metapb.Entry) (sideEffect, error) {
			e.Holder = holder
			side, err := build(tx, e)
			if err != nil {
				return side, err
			}
			named = entryDirs(tx, e)
			for _, dir := range named {
				if held, err := delegatedElsewhere(tx, dir, holder, s.now().UnixNano()); err != nil {
					return nil, err
				} else if held {
					return nil, &delegatedError{dir}
				}
			}
			return side, nil
		}
		s.deleg.gate.RLock()
		res, err := s.mutateFlight(ctx, req, guarded, finish...)
		s.deleg.gate.RUnlock()
		var de *delegatedError
		switch {
		case errors.As(err, &de):
			named = []meta.Ino{de.dir}
		case err == nil && res.Errno == meta.ErrnoDelegated && !res.Replayed:
		default:
			return res, err
		}
		if round == maxRecallRounds {
			return meta.Result{}, fail(syscall.EAGAIN, "a directory of the request is held by another host")
		}
		for _, dir := range named {
			if err := s.settle(ctx, dir, holder); err != nil {
				return meta.Result{}, err
			}
		}
	}
}

// entryDirs returns the directories whose names an entry changes, and the
// directory it removes or may replace.
func entryDirs(tx meta.Txn, e *metapb.Entry) []meta.Ino {
	child := func(parent meta.Ino, name []byte) []meta.Ino {
		if a, ok := childOf(tx, parent, name); ok && a.Type == meta.TypeDirectory {
			return []meta.Ino{a.Ino}
		}
		return nil
	}
	switch op := e.Op.(type) {
	case *metapb.Entry_Mkdir:
		return []meta.Ino{op.Mkdir.Parent}
	case *metapb.Entry_CreateFile:
		return []meta.Ino{op.CreateFile.Parent}
	case *metapb.Entry_Symlink:
		return []meta.Ino{op.Symlink.Parent}
	case *metapb.Entry_Mknod:
		return []meta.Ino{op.Mknod.Parent}
	case *metapb.Entry_Link:
		return []meta.Ino{op.Link.NewParent}
	case *metapb.Entry_Unlink:
		return []meta.Ino{op.Unlink.Parent}
	case *metapb.Entry_Rmdir:
		return append([]meta.Ino{op.Rmdir.Parent}, child(op.Rmdir.Parent, op.Rmdir.Name)...)
	case *metapb.Entry_Rename:
		r := op.Rename
		return append([]meta.Ino{r.OldParent, r.NewParent}, child(r.NewParent, r.NewName)...)
	case *metapb.Entry_LoadDir:
		return []meta.Ino{op.LoadDir.Dir}
	}
	return nil
}

// delegatedElsewhere reports whether dir is delegated to a session other
// than holder that is live at now.
func delegatedElsewhere(tx meta.Txn, dir meta.Ino, holder uint64, now int64) (bool, error) {
	d, ok, err := meta.DelegationOf(tx, dir)
	if err != nil || !ok || (holder != 0 && d.Holder == holder) {
		return false, err
	}
	sess, ok, err := meta.SessionOf(tx, d.Holder)
	if err != nil || !ok {
		return false, err
	}
	return sess.Live(now), nil
}

// settleRead recalls the delegation of dir, when another live session holds
// it, before a read of the directory (a lookup or a listing) by the caller.
func (s *Server) settleRead(ctx context.Context, dir meta.Ino) error {
	if dir == 0 {
		return nil
	}
	holder := holderOf(ctx)
	var held bool
	if err := s.resolve(func(tx meta.Txn) (err error) {
		held, err = delegatedElsewhere(tx, dir, holder, s.now().UnixNano())
		return err
	}); err != nil || !held {
		return err
	}
	return s.settle(ctx, dir, holder)
}

// settleReadOf is settleRead for a directory given by inode or path.
func (s *Server) settleReadOf(ctx context.Context, ino uint64, path string) error {
	if ino == 0 && path != "" {
		if err := s.resolve(func(tx meta.Txn) error {
			a, err := inodeOf(tx, 0, path)
			if err == nil {
				ino = a.Ino
			}
			return err
		}); err != nil {
			if _, ok := meta.Errno(err); ok {
				return nil // the read answers it
			}
			var pe *posixError
			if errors.As(err, &pe) {
				return nil
			}
			return err
		}
	}
	return s.settleRead(ctx, ino)
}

// settle returns once directory dir is not delegated to a live session
// other than holder: it journals a recall, asks the holder on its stream,
// and waits for the holder to flush and give the delegation back; a holder
// that does not within its lease loses it (the leader ends it).
func (s *Server) settle(ctx context.Context, dir meta.Ino, holder uint64) error {
	start := time.Now()
	defer func() { s.recallStats.add(time.Since(start)) }()
	var notified time.Time
	for {
		var d meta.Delegation
		var sess meta.Session
		var held, live bool
		if err := s.resolve(func(tx meta.Txn) (err error) {
			if d, held, err = meta.DelegationOf(tx, dir); err != nil || !held {
				return err
			}
			sess, live, err = meta.SessionOf(tx, d.Holder)
			return err
		}); err != nil {
			return err
		}
		now := s.now().UnixNano()
		switch {
		case !held || (holder != 0 && d.Holder == holder):
			return nil
		case !live || !sess.Live(now) || (d.RecalledNs != 0 && now >= d.RecalledNs+sess.LeaseNs):
			res, err := s.propose(ctx, &metapb.Entry{Op: &metapb.Entry_Undelegate{Undelegate: &metapb.Undelegate{Holder: d.Holder, Dir: dir}}})
			if err != nil {
				return err
			}
			if res.Errno == 0 {
				s.log.Warn("delegation revoked: its holder did not give it back within its lease", "dir", dir, "holder", d.Holder)
				s.deleg.signalEnded()
			}
			continue
		case d.RecalledNs == 0:
			if _, err := s.propose(ctx, &metapb.Entry{Op: &metapb.Entry_Recall{Recall: &metapb.Recall{Dir: dir}}}); err != nil {
				return err
			}
			continue
		}
		ended := s.deleg.endedCh()
		if time.Since(notified) >= renotify {
			// Asked again now and then, in case a notice was lost with a
			// stream; a holder ignores a recall of what it no longer holds.
			s.deleg.notify(d.Holder, dir)
			notified = time.Now()
		}
		wait := min(recallPoll, time.Duration(d.RecalledNs+sess.LeaseNs-now))
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ended:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// recallStats counts recalls and the time requests waited for them.
type recallStats struct {
	mu    sync.Mutex
	count int64
	total time.Duration
	worst time.Duration
}

func (r *recallStats) add(d time.Duration) {
	r.mu.Lock()
	r.count++
	r.total += d
	r.worst = max(r.worst, d)
	r.mu.Unlock()
}

// RecallStats returns how many requests waited for a delegation to be given
// back on this server, the total and the longest wait.
func (s *Server) RecallStats() (count int64, total, worst time.Duration) {
	s.recallStats.mu.Lock()
	defer s.recallStats.mu.Unlock()
	return s.recallStats.count, s.recallStats.total, s.recallStats.worst
}

// sessionFail explains the refusals of a session's entries.
func sessionFail(en syscall.Errno, holder uint64, what string) error {
	switch en {
	case meta.ErrnoStaleLease:
		return fail(en, "session %x is unknown or its lease ran out", holder)
	case meta.ErrnoNotHeld:
		return fail(en, "%s: a directory is not delegated to session %x", what, holder)
	case meta.ErrnoNotGranted:
		return fail(en, "%s: an inode number is not an unspent number of a range granted to session %x", what, holder)
	case syscall.EBUSY:
		return fail(en, "%s: held by another session, or being recalled", what)
	}
	return fail(en, "%s", what)
}

// sessionMutation proposes a session entry that holder asks for and turns
// a refusal into an explained errno.
func (s *Server) sessionMutation(ctx context.Context, req *pb.RequestID, holder uint64, what string, op func(e *metapb.Entry)) (meta.Result, error) {
	if holder == 0 {
		return meta.Result{}, fail(syscall.EINVAL, "%s: no session (holder id must be non-zero)", what)
	}
	res, err := s.mutateFlight(ctx, req, func(_ meta.Txn, e *metapb.Entry) (sideEffect, error) {
		e.Holder = holder
		op(e)
		return nil, nil
	})
	if err == nil && res.Errno != 0 {
		return meta.Result{}, sessionFail(res.Errno, holder, what)
	}
	return res, err
}

// OpenSession opens or renews a mount daemon's session.
func (n *nsServer) OpenSession(ctx context.Context, req *pb.OpenSessionRequest) (*pb.SessionResponse, error) {
	if req.LeaseNs <= 0 || req.LeaseNs > meta.MaxLease {
		en, msg, err := n.s.outcome(fail(syscall.EINVAL, "lease of %v: want one in (0, %v]", time.Duration(req.LeaseNs), time.Duration(meta.MaxLease)))
		return &pb.SessionResponse{Errno: en, Message: msg}, err
	}
	res, err := n.s.sessionMutation(ctx, req.Request, req.Holder, "open session", func(e *metapb.Entry) {
		e.Op = &metapb.Entry_OpenSession{OpenSession: &metapb.OpenSession{Holder: req.Holder, LeaseNs: req.LeaseNs}}
	})
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	if en == 0 && res.Replayed {
		// A retry: the lease was renewed by the first attempt, at a time
		// this answer no longer knows; the holder renews again soon.
		res.Expires = 0
	}
	return &pb.SessionResponse{Errno: en, Message: msg, ExpiresNs: res.Expires}, nil
}

// EndSession ends the caller's session: its delegations and unspent inode
// ranges go.
func (n *nsServer) EndSession(ctx context.Context, req *pb.EndSessionRequest) (*pb.SessionResponse, error) {
	_, err := n.s.sessionMutation(ctx, req.Request, req.Holder, "end session", func(e *metapb.Entry) {
		e.Op = &metapb.Entry_EndSession{EndSession: &metapb.EndSession{Holder: req.Holder}}
	})
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	if en == 0 {
		n.s.deleg.signalEnded()
	}
	return &pb.SessionResponse{Errno: en, Message: msg}, nil
}

// GrantRange grants the caller's session fresh inode numbers.
func (n *nsServer) GrantRange(ctx context.Context, req *pb.GrantRangeRequest) (*pb.GrantRangeResponse, error) {
	var res meta.Result
	var err error
	if req.Count == 0 || req.Count > meta.MaxRangeCount {
		err = fail(syscall.EINVAL, "range of %d numbers: want 1 to %d", req.Count, meta.MaxRangeCount)
	} else {
		res, err = n.s.sessionMutation(ctx, req.Request, req.Holder, "grant range", func(e *metapb.Entry) {
			e.Op = &metapb.Entry_GrantRange{GrantRange: &metapb.GrantRange{Holder: req.Holder, Count: req.Count}}
		})
	}
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	if en == 0 && res.Replayed {
		return &pb.GrantRangeResponse{Errno: int32(syscall.EALREADY), Message: "range already granted to this request; its numbers are not repeated: ask again"}, nil
	}
	return &pb.GrantRangeResponse{Errno: en, Message: msg, Start: res.Ino, End: res.Until}, nil
}

// Delegate delegates a directory to the caller's session when no other live
// session holds it.
func (n *nsServer) Delegate(ctx context.Context, req *pb.DelegateRequest) (*pb.DelegateResponse, error) {
	n.s.deleg.gate.Lock()
	res, err := n.s.sessionMutation(ctx, req.Request, req.Holder, "delegate directory "+strconv.FormatUint(req.Dir, 10), func(e *metapb.Entry) {
		e.Op = &metapb.Entry_Delegate{Delegate: &metapb.Delegate{Holder: req.Holder, Dir: req.Dir}}
	})
	n.s.deleg.gate.Unlock()
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	return &pb.DelegateResponse{Errno: en, Message: msg, ExpiresNs: res.Expires}, nil
}

// Undelegate gives a delegation back.
func (n *nsServer) Undelegate(ctx context.Context, req *pb.UndelegateRequest) (*pb.DelegateResponse, error) {
	_, err := n.s.sessionMutation(ctx, req.Request, req.Holder, "give back directory "+strconv.FormatUint(req.Dir, 10), func(e *metapb.Entry) {
		e.Op = &metapb.Entry_Undelegate{Undelegate: &metapb.Undelegate{Holder: req.Holder, Dir: req.Dir}}
	})
	en, msg, err := n.s.outcome(err)
	if err != nil {
		return nil, err
	}
	if en == 0 {
		n.s.deleg.signalEnded()
	}
	return &pb.DelegateResponse{Errno: en, Message: msg}, nil
}

// Recalls streams the recalls of the caller's delegations: first those
// recalled before (by this leader or an earlier one), then each new one.
func (n *nsServer) Recalls(req *pb.RecallsRequest, stream pb.Namespace_RecallsServer) error {
	if req.Holder == 0 {
		return n.s.rpcError(fail(syscall.EINVAL, "recalls: no session (holder id must be non-zero)"))
	}
	ctx := stream.Context()
	if !n.s.j.Serving() {
		return n.s.rpcError(errNotServing)
	}
	ch := make(chan uint64, 64)
	d := &n.s.deleg
	d.mu.Lock()
	d.streams[req.Holder] = ch
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if d.streams[req.Holder] == ch {
			delete(d.streams, req.Holder)
		}
		d.mu.Unlock()
	}()
	var pending []meta.Ino
	err := n.s.read(ctx, func(tx meta.Txn) error {
		dirs, err := meta.DelegatedTo(tx, req.Holder)
		for _, dir := range dirs {
			if dl, ok, err := meta.DelegationOf(tx, dir); err != nil {
				return err
			} else if ok && dl.RecalledNs != 0 {
				pending = append(pending, dir)
			}
		}
		return err
	})
	if err != nil {
		return n.s.rpcError(err)
	}
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	for _, dir := range pending {
		if err := stream.Send(&pb.RecallNotice{Dir: dir}); err != nil {
			return err
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case dir := <-ch:
			if err := stream.Send(&pb.RecallNotice{Dir: dir}); err != nil {
				return err
			}
		case <-tick.C:
			if !n.s.j.Serving() {
				return n.s.rpcError(errNotServing) // the holder finds the new leader
			}
		case <-ctx.Done():
			return nil
		}
	}
}
