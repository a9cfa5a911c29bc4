package master

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/meta/memstore"
	"github.com/skyfs/skyfs/proto/metapb"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
	"github.com/skyfs/skyfs/raftjournal"
)

// fakeJournal is a single-node journal over memstore: every proposal is
// encoded, decoded and applied at once.
type fakeJournal struct {
	store     *memstore.Store
	serving   atomic.Bool
	proposals atomic.Int64
	barriers  atomic.Int64
	views     atomic.Int64
	noLease   atomic.Bool // CheckLease fails

	mu      sync.Mutex
	entries []*metapb.Entry
}

func newFakeJournal() *fakeJournal {
	f := &fakeJournal{store: memstore.New()}
	f.serving.Store(true)
	return f
}

func (f *fakeJournal) Propose(_ context.Context, e *metapb.Entry) (meta.Result, error) {
	if !f.serving.Load() {
		return meta.Result{}, raftjournal.ErrNotLeader
	}
	b, err := meta.EncodeEntry(e)
	if err != nil {
		return meta.Result{}, err
	}
	if e, err = meta.DecodeEntry(b); err != nil {
		return meta.Result{}, err
	}
	f.proposals.Add(1)
	f.mu.Lock()
	f.entries = append(f.entries, e)
	f.mu.Unlock()
	var res meta.Result
	err = f.store.Update(func(tx meta.Txn) (err error) {
		res, err = meta.Apply(tx, e)
		return err
	})
	return res, err
}

func (f *fakeJournal) ReadBarrier(context.Context) error {
	f.barriers.Add(1)
	if !f.serving.Load() {
		return raftjournal.ErrNotLeader
	}
	return nil
}

func (f *fakeJournal) View(fn func(meta.Txn) error) error {
	f.views.Add(1)
	return f.store.View(fn)
}

func (f *fakeJournal) Serving() bool { return f.serving.Load() }

func (f *fakeJournal) Leader() (string, string) {
	if f.serving.Load() {
		return "m1", "127.0.0.1:7700"
	}
	return "m2", "127.0.0.1:7701"
}

// lastEntry returns the last proposed entry.
func (f *fakeJournal) lastEntry() *metapb.Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.entries) == 0 {
		return nil
	}
	return f.entries[len(f.entries)-1]
}

// fakeAdmin records admin calls.
type fakeAdmin struct {
	mu     sync.Mutex
	status raftjournal.Status
	calls  []string
}

func (a *fakeAdmin) record(call string) {
	a.mu.Lock()
	a.calls = append(a.calls, call)
	a.mu.Unlock()
}

func (a *fakeAdmin) AddVoter(_ context.Context, p raftjournal.Peer) error {
	a.record("add " + p.ID)
	a.mu.Lock()
	a.status.Members = append(a.status.Members, raftjournal.Member{ID: p.ID, RaftAddr: p.RaftAddr, RPCAddr: p.RPCAddr, Suffrage: "voter"})
	a.mu.Unlock()
	return nil
}

func (a *fakeAdmin) RemoveServer(_ context.Context, id string) error {
	a.record("remove " + id)
	return nil
}

func (a *fakeAdmin) TransferLeadership(_ context.Context, id string) error {
	a.record("transfer " + id)
	return nil
}

func (a *fakeAdmin) Checkpoint(context.Context) (uint64, error) {
	a.record("checkpoint")
	return 42, nil
}

func (a *fakeAdmin) Status() raftjournal.Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.status
	st.Members = append([]raftjournal.Member(nil), a.status.Members...)
	return st
}

// env is one master over a fake journal, served on a loopback port.
type env struct {
	j     *fakeJournal
	admin *fakeAdmin
	srv   *Server
	addr  string
	ns    pb.NamespaceClient
	mt    pb.MountsClient
	cl    pb.ClusterClient
	seq   atomic.Uint64
	now   atomic.Int64
}

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith is newEnv with cfg changing the master's Config first.
func newEnvWith(t *testing.T, cfg func(*Config)) *env {
	t.Helper()
	e := &env{j: newFakeJournal()}
	e.now.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = lis.Addr().String()
	e.admin = &fakeAdmin{status: raftjournal.Status{
		ID: "m1", Role: "leader", Serving: true, Term: 3,
		LastLogIndex: 10, AppliedIndex: 10, CommitIndex: 10, LeaderID: "m1", LeaderRPCAddr: e.addr,
		Members: []raftjournal.Member{{ID: "m1", RaftAddr: "127.0.0.1:1", RPCAddr: e.addr, Suffrage: "voter"}},
	}}
	c := Config{Journal: e.j, Admin: e.admin, Now: func() time.Time { return time.Unix(0, e.now.Load()) }}
	if cfg != nil {
		cfg(&c)
	}
	e.srv, err = New(c)
	if err != nil {
		t.Fatal(err)
	}
	// The env's calls count as the admin's, as if a token came with them.
	g := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return h(context.WithValue(ctx, roleKey{}, RoleAdmin), req)
	}))
	e.srv.Register(g)
	go g.Serve(lis)
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		g.Stop()
		e.srv.Close()
	})
	e.ns, e.mt, e.cl = pb.NewNamespaceClient(conn), pb.NewMountsClient(conn), pb.NewClusterClient(conn)
	return e
}

// req returns a fresh request id.
func (e *env) req() *pb.RequestID { return &pb.RequestID{Client: 7, Seq: e.seq.Add(1)} }

// asMount is ctx of a call the interceptors accepted with the mount token.
func asMount(ctx context.Context) context.Context {
	return context.WithValue(ctx, roleKey{}, RoleMount)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (f *fakeJournal) CheckLease(context.Context) error {
	if !f.serving.Load() || f.noLease.Load() {
		return raftjournal.ErrLeaseExpired
	}
	return nil
}
