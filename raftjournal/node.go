package raftjournal

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/meta/badgerstore"
	"github.com/skyfs/skyfs/proto/journalpb"
	"github.com/skyfs/skyfs/proto/metapb"
)

// Errors of the journal.
var (
	// ErrNotLeader is returned by operations that only the serving leader may
	// perform. The error is a *NotLeaderError naming the leader when one is
	// known; errors.Is(err, ErrNotLeader) holds for it.
	ErrNotLeader = errors.New("raftjournal: not the leader")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("raftjournal: node closed")
	// ErrLeaseExpired is returned by CheckLease when this node is leader but
	// could not confirm, within the lease, that a quorum still follows it. It
	// wraps ErrNotLeader: the caller must act as if it were not the leader.
	ErrLeaseExpired = fmt.Errorf("%w: leadership lease not confirmed", ErrNotLeader)
)

// NotLeaderError says this node does not serve and names the leader, when this
// node knows one (empty fields otherwise).
type NotLeaderError struct {
	LeaderID, LeaderRPCAddr string
	// Err is the underlying cause (from raft, or ErrLeaseExpired), or nil.
	Err error
}

func (e *NotLeaderError) Error() string {
	msg := "raftjournal: not the leader"
	switch {
	case e.LeaderID != "":
		msg += fmt.Sprintf("; leader is %s at %s", e.LeaderID, e.LeaderRPCAddr)
	default:
		msg += "; no leader known"
	}
	if e.Err != nil {
		msg += " (" + e.Err.Error() + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// Unwrap returns the underlying cause.
func (e *NotLeaderError) Unwrap() error { return e.Err }

// Peer is one master of the cluster.
type Peer struct {
	// ID is the master's Raft server ID; stable across restarts.
	ID string
	// RaftAddr is host:port of its Raft transport.
	RaftAddr string
	// RPCAddr is host:port of its client gRPC service.
	RPCAddr string
}

// Config configures a Node. Zero values take the defaults named below.
type Config struct {
	// NodeID is this master's Raft server ID.
	NodeID string
	// Dir holds raft.db (log and stable store), snapshots/ and meta/ (Badger).
	Dir string
	// RaftAddr is host:port the Raft transport listens on and advertises; it
	// must be reachable by the other masters (not 0.0.0.0).
	RaftAddr string
	// RPCAddr is host:port of this master's client service, recorded in the
	// journal so that followers can tell clients where the leader is.
	RPCAddr string
	// Peers is the initial cluster, this node included. It is used to bootstrap
	// a node that has no Raft state yet, and as a fallback to find a member's
	// RPC address before the journal has recorded it. Empty: do not bootstrap
	// (a node that joins through AddVoter). A master added later must be
	// opened with no Peers: bootstrapping it would give it a first log entry
	// that conflicts with the cluster's.
	Peers []Peer

	// SnapshotThreshold is how many log entries since the last snapshot trigger
	// a new one (default 8192); SnapshotInterval is how often that is checked
	// (default 2m); TrailingLogs is how many entries stay in the log after a
	// snapshot, for followers slightly behind (default 10240).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64

	// HeartbeatTimeout (default 500ms), ElectionTimeout (default 500ms) and
	// LeaderLeaseTimeout (default 250ms) are raft's timers; the defaults elect
	// a new leader on a LAN well within 2 s of a leader's death.
	// LeaderLeaseTimeout is also the lease of CheckLease and must not exceed
	// HeartbeatTimeout.
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
	// StrictReads makes every ReadBarrier wait for a VerifyLeader round of its
	// own instead of answering from a valid lease (see ReadBarrier).
	StrictReads bool

	// Logger receives the journal's log, and raft's own through a filter
	// (default slog.Default()).
	Logger *slog.Logger
	// RaftLogLevel is the lowest level of raft's own messages passed to Logger:
	// "error", "warn" (default), "info", "debug" or "trace".
	RaftLogLevel string
	// OnApply, when set, is called after every batch of committed log
	// entries is applied, on raft's state machine goroutine: it must be
	// quick (record a metric) and must not call into the Node.
	OnApply func(ApplyStats)

	// TLS, when set, runs the Raft transport over mutual TLS (tls.go): its
	// Certificates are this node's, ClientCAs verify the peers that dial in
	// and RootCAs the peers it dials (both the cluster CA).
	TLS *tls.Config

	// StoreOptions tune the Badger store under Dir/meta.
	StoreOptions badgerstore.Options

	// store, when set (tests), is used instead of opening Badger.
	store meta.Store
	// tuning, when set (benchmarks), replaces ourTuning.
	tuning *tuning
	// wrapLog, when set (benchmarks), wraps the log store.
	wrapLog func(raft.LogStore) raft.LogStore
}

// Defaults of Config and the tuned raft settings (see tuning.go).
const (
	defaultHeartbeat = 500 * time.Millisecond
	defaultElection  = 500 * time.Millisecond
	defaultLease     = 250 * time.Millisecond
	snapshotsRetain  = 2
	transportPool    = 4
	transportTimeout = 10 * time.Second
)

// Node is one master's journal: a raft node whose state machine is the
// namespace in a meta.Store.
type Node struct {
	cfg    Config
	log    *slog.Logger
	store  meta.Store
	fsm    *fsm
	raft   *raft.Raft
	logs   *raftboltdb.BoltStore
	snaps  *raft.FileSnapshotStore
	trans  *raft.NetworkTransport
	rtrans raft.Transport // trans as raft uses it (see tuning.transport)
	lease  time.Duration

	notifyCh chan bool     // raft's leadership notifications
	done     chan struct{} // closed by Close
	wg       sync.WaitGroup
	closing  sync.Once

	mu           sync.Mutex // guards the fields below; never held across raft calls
	serving      bool       // promoted: Barrier done and own record applied
	servingTerm  uint64     // the term serving belongs to
	transferring bool       // a leadership transfer is under way
	gen          uint64     // leadership generation; a promotion is for one
	changes      chan bool  // LeaderChanges; capacity 1, latest value wins
	leaseStart   time.Time  // start of the last VerifyLeader round that succeeded
	leaseTerm    uint64     // the term of leaseStart

	rounds verifier // coalesced VerifyLeader rounds (read.go)
	waves  waves    // proposals grouped into waves (waves.go)

	storeMu     sync.RWMutex // held shared by View, exclusively by Close
	storeClosed bool
}

// Open opens (or creates) a master's journal in cfg.Dir, restores a
// half-finished snapshot restore, bootstraps a new cluster from cfg.Peers if
// there is no Raft state yet, and starts raft. The node serves once it is
// elected leader and has applied everything committed before.
func Open(cfg Config) (*Node, error) {
	if cfg.NodeID == "" || cfg.Dir == "" || cfg.RaftAddr == "" {
		return nil, errors.New("raftjournal: NodeID, Dir and RaftAddr are required")
	}
	if len(cfg.Peers) > 0 && !slices.ContainsFunc(cfg.Peers, func(p Peer) bool { return p.ID == cfg.NodeID }) {
		return nil, fmt.Errorf("raftjournal: this node (%s) is not among Peers", cfg.NodeID)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout = defaultHeartbeat
	}
	if cfg.ElectionTimeout == 0 {
		cfg.ElectionTimeout = defaultElection
	}
	if cfg.LeaderLeaseTimeout == 0 {
		cfg.LeaderLeaseTimeout = min(defaultLease, cfg.HeartbeatTimeout)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("raftjournal: %w", err)
	}
	n := &Node{
		cfg:      cfg,
		log:      cfg.Logger.With("node", cfg.NodeID),
		lease:    cfg.LeaderLeaseTimeout,
		notifyCh: make(chan bool, 16),
		done:     make(chan struct{}),
		changes:  make(chan bool, 1),
	}
	n.rounds.n = n
	if err := n.open(); err != nil {
		n.closeStores()
		return nil, err
	}
	n.wg.Add(2)
	go n.watchLeadership()
	go n.keepLease()
	return n, nil
}

func (n *Node) open() error {
	cfg := n.cfg
	hl := newHCLogger(n.log, cfg.RaftLogLevel)
	n.store = cfg.store
	if n.store == nil {
		s, err := badgerstore.Open(filepath.Join(cfg.Dir, "meta"), cfg.StoreOptions)
		if err != nil {
			return fmt.Errorf("raftjournal: %w", err)
		}
		n.store = s
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, snapshotsRetain, hl)
	if err != nil {
		return fmt.Errorf("raftjournal: snapshot store: %w", err)
	}
	n.snaps = snaps
	if err := n.finishRestore(); err != nil {
		return err
	}
	if n.fsm, err = newFSM(n.store, n.log); err != nil {
		return err
	}
	n.fsm.marker = n.restoreMarker()
	n.fsm.onApply = cfg.OnApply
	tune := ourTuning
	if cfg.tuning != nil {
		tune = *cfg.tuning
	}
	bopts := &bbolt.Options{Timeout: time.Second}
	tune.bolt(bopts)
	n.logs, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db"), BoltOptions: bopts})
	if err != nil {
		return fmt.Errorf("raftjournal: open raft log: %w", err)
	}
	var base raft.LogStore = n.logs
	if cfg.wrapLog != nil {
		base = cfg.wrapLog(base)
	}
	logStore, err := tune.logStore(base)
	if err != nil {
		return fmt.Errorf("raftjournal: log cache: %w", err)
	}
	addr, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
	if err != nil {
		return fmt.Errorf("raftjournal: raft address: %w", err)
	}
	if cfg.TLS != nil {
		n.trans, err = newTLSTransport(cfg.RaftAddr, addr, cfg.TLS, hl)
	} else {
		n.trans, err = raft.NewTCPTransportWithLogger(cfg.RaftAddr, addr, transportPool, transportTimeout, hl)
	}
	if err != nil {
		return fmt.Errorf("raftjournal: raft transport: %w", err)
	}
	n.rtrans = tune.transport(n.trans)
	n.waves = waves{n: n, max: tune.maxWaves}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hl
	rc.NotifyCh = n.notifyCh
	rc.NoSnapshotRestoreOnStart = true
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	if cfg.SnapshotThreshold != 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	if cfg.SnapshotInterval != 0 {
		rc.SnapshotInterval = cfg.SnapshotInterval
	}
	if cfg.TrailingLogs != 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}
	tune.raft(rc)
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("raftjournal: %w", err)
	}

	existing, err := raft.HasExistingState(logStore, n.logs, snaps)
	if err != nil {
		return fmt.Errorf("raftjournal: %w", err)
	}
	if !existing && len(cfg.Peers) > 0 {
		var servers []raft.Server
		for _, p := range cfg.Peers {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr)})
		}
		err := raft.BootstrapCluster(rc, logStore, n.logs, snaps, n.rtrans, raft.Configuration{Servers: servers})
		if err != nil {
			return fmt.Errorf("raftjournal: bootstrap: %w", err)
		}
	}
	if existing {
		// A restarted master forgot which leader it followed, and raft would
		// let it vote at once. Waiting out one lease first keeps CheckLease's
		// promise: a leader whose heartbeat it acknowledged before the crash
		// holds its lease until that lease has run out.
		time.Sleep(cfg.LeaderLeaseTimeout)
	}
	n.raft, err = raft.NewRaft(rc, n.fsm, logStore, n.logs, snaps, n.rtrans)
	if err != nil {
		return fmt.Errorf("raftjournal: start raft: %w", err)
	}
	return nil
}

// finishRestore restores the newest local snapshot again when the store or the
// marker file says a restore began and did not finish: raft writes an installed snapshot to the
// snapshot store before it restores from it, so the newest one is that one.
func (n *Node) finishRestore() error {
	var restoring bool
	err := n.store.View(func(tx meta.Txn) error {
		var err error
		restoring, err = meta.Restoring(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("raftjournal: %w", err)
	}
	marker := n.restoreMarker()
	if _, err := os.Stat(marker); err == nil {
		restoring = true
	}
	if !restoring {
		return nil
	}
	list, err := n.snaps.List()
	if err != nil {
		return fmt.Errorf("raftjournal: list snapshots: %w", err)
	}
	if len(list) == 0 {
		return errors.New("raftjournal: the store holds a half-finished restore and there is no local snapshot to finish it from")
	}
	n.log.Warn("raftjournal: finishing an interrupted snapshot restore", "snapshot", list[0].ID, "index", list[0].Index)
	_, rc, err := n.snaps.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("raftjournal: open snapshot %s: %w", list[0].ID, err)
	}
	defer rc.Close()
	if err := meta.RestoreSnapshot(n.store, rc); err != nil {
		return fmt.Errorf("raftjournal: restore snapshot %s: %w", list[0].ID, err)
	}
	if err := removeDurable(marker); err != nil {
		return fmt.Errorf("raftjournal: %w", err)
	}
	return nil
}

// restoreMarker is the path of the file that says a snapshot restore is under
// way (see fsm.Restore).
func (n *Node) restoreMarker() string { return filepath.Join(n.cfg.Dir, "restoring") }

// Close stops raft and closes the stores. The node is unusable afterwards.
func (n *Node) Close() error {
	var err error
	n.closing.Do(func() {
		close(n.done)
		n.setServing(false, 0)
		if n.raft != nil {
			if e := n.raft.Shutdown().Error(); e != nil {
				err = fmt.Errorf("raftjournal: shutdown: %w", e)
			}
		}
		n.wg.Wait()
		n.storeMu.Lock()
		n.storeClosed = true
		n.storeMu.Unlock()
		if e := n.closeStores(); e != nil && err == nil {
			err = e
		}
	})
	return err
}

func (n *Node) closeStores() error {
	var errs []error
	if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	if n.logs != nil {
		errs = append(errs, n.logs.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("raftjournal: close: %w", err)
	}
	return nil
}

// Serving reports whether this node is the leader and serves clients: it has
// been elected, has applied everything committed before its term began, is not
// handing leadership over, and raft still reports it as leader (checked on
// every call, so a step-down is seen at once).
func (n *Node) Serving() bool {
	n.mu.Lock()
	ok := n.serving && !n.transferring
	term := n.servingTerm
	n.mu.Unlock()
	return ok && n.raft.State() == raft.Leader && n.raft.CurrentTerm() == term
}

// LeaderChanges returns a channel that receives true when this node starts
// serving and false when it stops. It has room for one value and holds only
// the latest: a slow receiver misses intermediate changes but always ends up
// with the current state. There is one channel per Node: give it one reader.
// A false may arrive late (after raft stepped down); Serving and the errors of
// Propose are immediate.
func (n *Node) LeaderChanges() <-chan bool { return n.changes }

func (n *Node) setServing(on bool, term uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.setServingLocked(on, term)
}

// setServingLocked is setServing with n.mu held.
func (n *Node) setServingLocked(on bool, term uint64) {
	if n.serving == on && (!on || n.servingTerm == term) {
		return
	}
	n.serving, n.servingTerm = on, term
	if !on {
		n.leaseStart = time.Time{}
	}
	select {
	case <-n.changes:
	default:
	}
	n.changes <- on
}

// watchLeadership follows raft's leadership notifications: losing leadership
// stops serving at once; gaining it starts a promotion.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	for {
		select {
		case leader := <-n.notifyCh:
			n.mu.Lock()
			n.gen++
			gen := n.gen
			n.setServingLocked(false, 0)
			n.mu.Unlock()
			if leader {
				n.wg.Add(1)
				go n.promote(gen)
			}
		case <-n.done:
			return
		}
	}
}

// promote runs when raft makes this node leader: it applies everything
// committed (Barrier), records this node's addresses (and those of initial
// peers the journal does not know yet) and then serves, unless leadership was
// lost meanwhile.
func (n *Node) promote(gen uint64) {
	defer n.wg.Done()
	current := func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.gen == gen && n.raft.State() == raft.Leader
	}
	term := n.raft.CurrentTerm()
	for current() {
		err := n.promoteOnce()
		if err == nil {
			break
		}
		n.log.Warn("raftjournal: promotion to leader failed; retrying", "err", err)
		select {
		case <-n.done:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Under n.mu, so that a step-down notified meanwhile (which bumps gen
	// under n.mu) cannot be overtaken.
	n.mu.Lock()
	ok := n.gen == gen && n.raft.State() == raft.Leader && n.raft.CurrentTerm() == term
	if ok {
		n.setServingLocked(true, term)
	}
	n.mu.Unlock()
	if ok {
		n.log.Info("raftjournal: serving as leader", "term", term)
	}
}

func (n *Node) promoteOnce() error {
	if err := n.raft.Barrier(n.cfg.ElectionTimeout * 4).Error(); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	var members map[string]*journalpb.Member
	if err := n.store.View(func(tx meta.Txn) (err error) {
		members, err = readMembers(tx)
		return err
	}); err != nil {
		return err
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return err
	}
	known := make(map[string]Peer)
	for _, p := range n.cfg.Peers {
		known[p.ID] = p
	}
	var cmds []*journalpb.Command
	for _, s := range cf.Configuration().Servers {
		id := string(s.ID)
		if id == n.cfg.NodeID || members[id] != nil {
			continue
		}
		if p, ok := known[id]; ok {
			cmds = append(cmds, setMember(p))
		}
	}
	// Our own record comes last and always: once it is applied, the last log
	// entry is one the state machine sees (see ReadBarrier).
	cmds = append(cmds, setMember(Peer{ID: n.cfg.NodeID, RaftAddr: n.cfg.RaftAddr, RPCAddr: n.cfg.RPCAddr}))
	for _, c := range cmds {
		if _, err := n.applyCommand(context.Background(), c); err != nil {
			return err
		}
	}
	return nil
}

func setMember(p Peer) *journalpb.Command {
	return &journalpb.Command{Op: &journalpb.Command_SetMember{SetMember: &journalpb.Member{Id: p.ID, RaftAddr: p.RaftAddr, RpcAddr: p.RPCAddr}}}
}

// Propose replicates a namespace entry and returns its outcome once it is
// committed and applied here. It fails with a *NotLeaderError (errors.Is
// ErrNotLeader) when this node does not serve. If leadership is lost while the
// entry is in flight the error also says not leader, but the entry may still
// be committed by the next leader: callers retry with the same RequestID, which
// meta deduplicates. A ctx that ends first leaves the outcome unknown in the
// same way. Concurrent proposals travel together in one log entry (see
// waves.go); each still gets its own result, in the order raft committed them.
func (n *Node) Propose(ctx context.Context, e *metapb.Entry) (meta.Result, error) {
	if !n.Serving() {
		return meta.Result{}, n.notLeader(nil)
	}
	data, err := encodeMeta(e)
	if err != nil {
		return meta.Result{}, fmt.Errorf("raftjournal: encode entry: %w", err)
	}
	if n.waves.max > 0 {
		return n.waves.propose(ctx, data)
	}
	resp, err := n.apply(ctx, data)
	if err != nil {
		return meta.Result{}, err
	}
	res, ok := resp.(meta.Result)
	if !ok {
		return meta.Result{}, fmt.Errorf("raftjournal: entry applied without a result (%T)", resp)
	}
	return res, nil
}

// applyCommand replicates a journal command; it does not check Serving.
func (n *Node) applyCommand(ctx context.Context, c *journalpb.Command) (interface{}, error) {
	data, err := encodeCommand(c)
	if err != nil {
		return nil, fmt.Errorf("raftjournal: encode command: %w", err)
	}
	return n.apply(ctx, data)
}

func (n *Node) apply(ctx context.Context, data []byte) (interface{}, error) {
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	f := n.raft.Apply(data, timeout)
	if err := n.wait(ctx, f); err != nil {
		return nil, err
	}
	return f.Response(), nil
}

// wait waits for a raft future, or for ctx; raft errors that mean "not the
// leader" become a *NotLeaderError.
func (n *Node) wait(ctx context.Context, f raft.Future) error {
	var err error
	if ctx.Done() == nil {
		err = f.Error()
	} else {
		ch := make(chan error, 1)
		go func() { ch <- f.Error() }()
		select {
		case err = <-ch:
		case <-ctx.Done():
			return fmt.Errorf("raftjournal: %w", ctx.Err())
		}
	}
	return n.waitErr(err)
}

// waitErr maps an error of a raft future.
func (n *Node) waitErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return n.notLeader(err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("raftjournal: %w: %w", context.DeadlineExceeded, err)
	}
	return fmt.Errorf("raftjournal: %w", err)
}

func (n *Node) notLeader(cause error) error {
	select {
	case <-n.done:
		return ErrClosed
	default:
	}
	id, rpc := n.Leader()
	if id == n.cfg.NodeID {
		id, rpc = "", "" // we are raft's leader but do not serve (yet)
	}
	return &NotLeaderError{LeaderID: id, LeaderRPCAddr: rpc, Err: cause}
}

// Leader returns the current leader's ID and client RPC address as this node
// knows them, or empty strings. The address comes from the journal's member
// records, or from Config.Peers until the journal has one.
func (n *Node) Leader() (id, rpcAddr string) {
	_, lid := n.raft.LeaderWithID()
	if lid == "" {
		return "", ""
	}
	return string(lid), n.rpcAddr(string(lid))
}

func (n *Node) rpcAddr(id string) string {
	if id == n.cfg.NodeID {
		return n.cfg.RPCAddr
	}
	var m *journalpb.Member
	_ = n.View(func(tx meta.Txn) (err error) {
		m, err = readMember(tx, id)
		return err
	})
	if m != nil {
		return m.RpcAddr
	}
	for _, p := range n.cfg.Peers {
		if p.ID == id {
			return p.RPCAddr
		}
	}
	return ""
}

// View runs fn in a read-only transaction of the local store. On the leader,
// call ReadBarrier first for a linearizable read.
// fn must not call Close. After Close, View returns ErrClosed.
func (n *Node) View(fn func(meta.Txn) error) error {
	n.storeMu.RLock()
	defer n.storeMu.RUnlock()
	if n.storeClosed {
		return ErrClosed
	}
	return n.store.View(fn)
}

// entriesApplied is the number of log entries applied (not skipped) since Open.
func (n *Node) entriesApplied() uint64 { return n.fsm.entries.Load() }
