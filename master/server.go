package master

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skyfs/skyfs/internal/secrets"
	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
	"github.com/skyfs/skyfs/ufs"
)

// Config is what a Server needs.
type Config struct {
	// Journal is the replicated namespace. Required.
	Journal Journal
	// Admin runs membership changes and snapshots; nil makes the Cluster
	// service answer only Status, for this node alone.
	Admin Admin
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// Now is the leader's clock; nil means time.Now.
	Now func() time.Time

	// RootUFS is the URI of the UFS backing "/", mounted by the first leader
	// that finds the root unmounted; empty leaves the root without a UFS.
	RootUFS string
	// RootOptions are the options of RootUFS (credentials among them).
	RootOptions map[string]string
	// RootSyncInterval is the sync interval of the root mount (0: never
	// reload a loaded directory on access).
	RootSyncInterval time.Duration
	// ListPageSize is the page size of UFS listings (0: ufs.DefaultPageSize).
	ListPageSize int
	// WrapUFS, when set, wraps every UFS the master opens for a mount's
	// metadata and side effects (to count its calls); uri is the mount's.
	WrapUFS func(fsys ufs.FileSystem, uri string) ufs.FileSystem

	// PeerDialOptions are how this master dials the others (Status asks
	// each for itself): transport credentials and the token; nil dials
	// without either.
	PeerDialOptions []grpc.DialOption
	// Sealer seals the secret options of UFS mounts before they are
	// journaled and opens them for MountAccess and the master's own UFS
	// (secrets.go); nil journals them as given.
	Sealer *secrets.Sealer
	// InsecureVendCredentials makes MountAccess answer callers that did
	// not authenticate, on a master without tokens or TLS. Without it such
	// a master hands out no UFS credentials at all (auth.go).
	InsecureVendCredentials bool
}

// Errors of the service that are not POSIX outcomes.
var (
	// ErrNoJournal is returned by New without a journal.
	ErrNoJournal = errors.New("master: no journal")
	// errNotServing says this node does not serve clients now.
	errNotServing = errors.New("master: not the serving leader")
)

// DefaultReadDirPage is the page size of a ReadDir that asks for none.
const DefaultReadDirPage = 1024

// Server is the master's gRPC service. It is safe for concurrent use.
type Server struct {
	j     Journal
	admin Admin
	log   *slog.Logger
	now   func() time.Time

	clockMu sync.Mutex
	lastNs  int64

	peersMu sync.Mutex
	peers   map[string]*grpc.ClientConn

	cfg    Config
	ufs    ufsTable  // opened UFSs by mount id (ufs_mounts.go)
	loads  loadGroup // directory loads in flight (sync.go)
	kick   chan struct{}
	bg     context.Context // ends on Close: bounds loads started for callers
	stopBg context.CancelFunc

	flightsMu sync.Mutex
	flights   map[requestID]*mutation // mutations in progress (mutateFlight)
	joined    atomic.Int64            // retries that waited for one of them

	deleg       delegations // directory delegations: recall streams (deleg.go)
	recallStats recallStats
}

// New returns a Server over cfg.Journal.
func New(cfg Config) (*Server, error) {
	if cfg.Journal == nil {
		return nil, ErrNoJournal
	}
	s := &Server{j: cfg.Journal, admin: cfg.Admin, log: cfg.Logger, now: cfg.Now, peers: make(map[string]*grpc.ClientConn), flights: make(map[requestID]*mutation), cfg: cfg}
	s.ufs.sealer = cfg.Sealer
	s.kick = make(chan struct{}, 1)
	s.deleg.init()
	s.ufs.wrap = cfg.WrapUFS
	s.bg, s.stopBg = context.WithCancel(context.Background())
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Register registers the Namespace, Mounts and Cluster services on g.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	pb.RegisterNamespaceServer(g, &nsServer{s: s})
	pb.RegisterMountsServer(g, &mountServer{s: s})
	pb.RegisterClusterServer(g, &clusterServer{s: s})
}

// Close releases the connections the server opened to other masters and the
// UFSs it opened, and stops loads in flight.
func (s *Server) Close() error {
	s.stopBg()
	s.ufs.closeAll()
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	var errs []error
	for addr, c := range s.peers {
		errs = append(errs, c.Close())
		delete(s.peers, addr)
	}
	return errors.Join(errs...)
}

// clock returns the time for a new entry: the leader's clock, never earlier than
// the previous entry this server built.
func (s *Server) clock() int64 {
	now := s.now().UnixNano()
	s.clockMu.Lock()
	defer s.clockMu.Unlock()
	if now <= s.lastNs {
		now = s.lastNs + 1
	}
	s.lastNs = now
	return now
}

// posixError is a POSIX outcome the master decided before proposing anything,
// with a one-line explanation.
type posixError struct {
	errno syscall.Errno
	msg   string
}

func (e *posixError) Error() string { return e.msg + ": " + e.errno.Error() }

func (e *posixError) Unwrap() error { return e.errno }

func fail(en syscall.Errno, format string, args ...any) error {
	return &posixError{errno: en, msg: fmt.Sprintf(format, args...)}
}

// journalError is a failure of the journal: the request may be retried on the
// leader.
type journalError struct{ err error }

func (e *journalError) Error() string { return "journal: " + e.err.Error() }

func (e *journalError) Unwrap() error { return e.err }

// outcome splits err into the errno and message of a response, or a gRPC error
// for what is not a POSIX outcome.
func (s *Server) outcome(err error) (int32, string, error) {
	if err == nil {
		return 0, "", nil
	}
	var pe *posixError
	if errors.As(err, &pe) {
		return int32(pe.errno), pe.msg, nil
	}
	if en, ok := meta.Errno(err); ok {
		return int32(en), "", nil
	}
	return 0, "", s.rpcError(err)
}

// rpcError turns a failure that is not a POSIX outcome into a gRPC status.
func (s *Server) rpcError(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	var je *journalError
	if errors.Is(err, errNotServing) || errors.As(err, &je) {
		return s.notLeader(err)
	}
	s.log.Error("request failed", "err", err)
	return status.Error(codes.Internal, err.Error())
}

// notLeader is the Unavailable status that sends a client to the leader.
func (s *Server) notLeader(cause error) error {
	id, addr := s.leaderHint(cause)
	st := status.New(codes.Unavailable, "not leader: "+cause.Error())
	if d, err := st.WithDetails(&pb.NotLeader{LeaderId: id, LeaderRpcAddr: addr}); err == nil {
		st = d
	}
	return st.Err()
}

// read runs fn in a view of the namespace after the read barrier.
func (s *Server) read(ctx context.Context, fn func(meta.Txn) error) error {
	if !s.j.Serving() {
		return errNotServing
	}
	if err := s.j.ReadBarrier(ctx); err != nil {
		return &journalError{err}
	}
	return s.j.View(fn)
}

// resolve runs fn in a view of the namespace without a barrier: for resolving
// the inodes a mutation names.
func (s *Server) resolve(fn func(meta.Txn) error) error {
	if !s.j.Serving() {
		return errNotServing
	}
	return s.j.View(fn)
}

// attrOf returns the current attributes of ino for the answer to a replayed
// request, whose remembered outcome holds no attributes; nil when it is gone.
func (s *Server) attrOf(res meta.Result) *pb.Attr {
	if res.Attr != nil {
		return attrPB(res.Attr)
	}
	if res.Errno != 0 || res.Ino == 0 {
		return nil
	}
	var a *meta.Attr
	if err := s.j.View(func(tx meta.Txn) error {
		var err error
		a, err = meta.GetAttr(tx, res.Ino)
		return err
	}); err != nil {
		return nil
	}
	return attrPB(a)
}

// mutate resolves what a mutation names with build, in a view of the local
// state, and proposes the entry build filled in. The finish functions run once
// the entry's time is decided.
func (s *Server) mutate(ctx context.Context, req *pb.RequestID, build func(tx meta.Txn, e *metapb.Entry) error, finish ...func(*metapb.Entry)) (meta.Result, error) {
	return s.mutateUFS(ctx, req, func(tx meta.Txn, e *metapb.Entry) (sideEffect, error) {
		return nil, build(tx, e)
	}, finish...)
}

// sideEffect is the UFS part of a mutation. It runs on the leader after the
// entry is built and before it is proposed, once the lease is confirmed; an
// error (a posixError made by ufsFail) fails the mutation, which then changes
// no metadata.
type sideEffect func(ctx context.Context) error

// mutationTimeout bounds a mutation once its UFS side effect has begun: from
// there it runs to its end whatever becomes of the call that started it (a
// copy of a large object for a rename takes minutes), so that the UFS and
// the namespace never part because a client gave up between the two.
const mutationTimeout = 15 * time.Minute

// mutation is a mutation in progress on this master, which retries of its
// request id join instead of running it again.
type mutation struct {
	done chan struct{}
	res  meta.Result
	err  error
}

// requestID is a mutation's request id as a map key.
type requestID struct{ client, seq uint64 }

// mutateFlight is mutate for a mutation that may have a UFS side effect:
// build returns it (nil for none). mutateUFS (deleg.go) calls it, once more
// after each recall of a delegated directory the mutation names.
//
// A retried request must not plan its side effect again: the UFS may already
// show the first attempt's effect (a renamed object is no longer at its old
// name) while the entry is not yet applied. So a request already applied is
// answered with its remembered outcome before anything is planned, a retry
// of a request still in progress here waits for that one's outcome, and a
// mutation whose caller goes away still finishes (mutationTimeout).
func (s *Server) mutateFlight(ctx context.Context, req *pb.RequestID, build func(tx meta.Txn, e *metapb.Entry) (sideEffect, error), finish ...func(*metapb.Entry)) (meta.Result, error) {
	if req == nil || req.Client == 0 {
		return meta.Result{}, status.Error(codes.InvalidArgument, "mutation without a request id (client id must be non-zero)")
	}
	id := requestID{req.Client, req.Seq}
	s.flightsMu.Lock()
	for {
		f, ok := s.flights[id]
		if !ok {
			break
		}
		s.flightsMu.Unlock()
		s.joined.Add(1)
		select {
		case <-f.done:
		case <-ctx.Done():
			return meta.Result{}, ctx.Err()
		}
		// The first caller's own cancellation is not this one's outcome:
		// run the request here (it is answered from the journal if it was
		// applied meanwhile).
		if !errors.Is(f.err, context.Canceled) && !errors.Is(f.err, context.DeadlineExceeded) {
			return f.res, f.err
		}
		s.flightsMu.Lock()
	}
	f := &mutation{done: make(chan struct{})}
	s.flights[id] = f
	s.flightsMu.Unlock()
	defer func() {
		s.flightsMu.Lock()
		delete(s.flights, id)
		s.flightsMu.Unlock()
		close(f.done)
	}()
	f.res, f.err = s.mutateOnce(ctx, req, build, finish)
	return f.res, f.err
}

// mutateOnce is one run of a mutation (see mutateFlight).
func (s *Server) mutateOnce(ctx context.Context, req *pb.RequestID, build func(tx meta.Txn, e *metapb.Entry) (sideEffect, error), finish []func(*metapb.Entry)) (meta.Result, error) {
	e := &metapb.Entry{
		Version: meta.EntryVersion,
		Request: &metapb.RequestID{Client: req.Client, Seq: req.Seq},
	}
	var side sideEffect
	var done *meta.Result
	if err := s.resolve(func(tx meta.Txn) error {
		res, ok, err := meta.Replayed(tx, req.Client, req.Seq)
		if err != nil {
			return err
		}
		if ok {
			done = &res
			return nil
		}
		side, err = build(tx, e)
		return err
	}); err != nil {
		return meta.Result{}, err
	}
	if done != nil {
		return *done, nil
	}
	if side != nil {
		if err := s.j.CheckLease(ctx); err != nil {
			return meta.Result{}, &journalError{err}
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), mutationTimeout)
		defer cancel()
		if err := side(ctx); err != nil {
			return meta.Result{}, err
		}
	}
	e.TimeNs = s.clock()
	for _, f := range finish {
		f(e)
	}
	res, err := s.j.Propose(ctx, e)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return meta.Result{}, err
		}
		return meta.Result{}, &journalError{err}
	}
	return res, nil
}

// propose proposes an entry of the master's own (a load, a purge, the root
// mount), without a request id.
func (s *Server) propose(ctx context.Context, e *metapb.Entry) (meta.Result, error) {
	if !s.j.Serving() {
		return meta.Result{}, errNotServing
	}
	e.Version, e.TimeNs = meta.EntryVersion, s.clock()
	res, err := s.j.Propose(ctx, e)
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		err = &journalError{err}
	}
	return res, err
}
