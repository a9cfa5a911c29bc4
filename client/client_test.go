package client

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// fakeMaster answers Create and ResolvePath with the functions it is given and
// records the request ids it saw.
type fakeMaster struct {
	pb.UnimplementedNamespaceServer
	addr   string
	create func(ctx context.Context, req *pb.CreateRequest) (*pb.EntryResponse, error)
	stat   func(ctx context.Context, req *pb.ResolvePathRequest) (*pb.ResolvePathResponse, error)

	mu   sync.Mutex
	reqs []*pb.RequestID
	hits int
}

func (f *fakeMaster) Create(ctx context.Context, req *pb.CreateRequest) (*pb.EntryResponse, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req.Request)
	f.hits++
	f.mu.Unlock()
	return f.create(ctx, req)
}

func (f *fakeMaster) ResolvePath(ctx context.Context, req *pb.ResolvePathRequest) (*pb.ResolvePathResponse, error) {
	f.mu.Lock()
	f.hits++
	f.mu.Unlock()
	return f.stat(ctx, req)
}

func (f *fakeMaster) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits
}

func serve(t *testing.T, f *fakeMaster) *fakeMaster {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = lis.Addr().String()
	g := grpc.NewServer()
	pb.RegisterNamespaceServer(g, f)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return f
}

// deadAddr returns a loopback address nobody listens on.
func deadAddr(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func notLeader(leader string) error {
	st, _ := status.New(codes.Unavailable, "not leader").WithDetails(&pb.NotLeader{LeaderId: "x", LeaderRpcAddr: leader})
	return st.Err()
}

func okCreate(context.Context, *pb.CreateRequest) (*pb.EntryResponse, error) {
	return &pb.EntryResponse{Attr: &pb.Attr{Ino: 42}}, nil
}

func newClient(t *testing.T, masters ...string) *Client {
	t.Helper()
	c, err := New(Config{Masters: masters, CallTimeout: 300 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRedirectAndFailover(t *testing.T) {
	leader := serve(t, &fakeMaster{create: okCreate})
	follower := serve(t, &fakeMaster{create: func(context.Context, *pb.CreateRequest) (*pb.EntryResponse, error) {
		return nil, notLeader(leader.addr)
	}})
	hung := serve(t, &fakeMaster{create: func(ctx context.Context, _ *pb.CreateRequest) (*pb.EntryResponse, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	electing := serve(t, &fakeMaster{create: func(context.Context, *pb.CreateRequest) (*pb.EntryResponse, error) {
		return nil, notLeader("") // no leader known yet
	}})
	tests := []struct {
		name    string
		masters []string
	}{
		{"redirected by a follower", []string{follower.addr}},
		{"connection refused first", []string{deadAddr(t), leader.addr}},
		{"hung master first", []string{hung.addr, leader.addr}},
		{"no leader known, then the leader", []string{electing.addr, leader.addr}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tc.masters...)
			r, err := c.Create(context.Background(), &pb.CreateRequest{Path: "/f"})
			if err != nil || r.Attr.Ino != 42 {
				t.Fatalf("create = %v, %v", r, err)
			}
			if c.Leader() != leader.addr {
				t.Errorf("leader = %q, want %q", c.Leader(), leader.addr)
			}
		})
	}
}

// TestRequestIDStable checks that a mutation keeps its request id across
// retries and that the next mutation gets a new one.
func TestRequestIDStable(t *testing.T) {
	var mu sync.Mutex
	fails := 2
	m := serve(t, &fakeMaster{create: func(context.Context, *pb.CreateRequest) (*pb.EntryResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return nil, status.Error(codes.Unavailable, "leadership lost")
		}
		return &pb.EntryResponse{Attr: &pb.Attr{Ino: 7}, Replayed: true}, nil
	}})
	c := newClient(t, m.addr)
	if _, err := c.Create(context.Background(), &pb.CreateRequest{Path: "/f"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(context.Background(), &pb.CreateRequest{Path: "/g"}); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.reqs) != 4 {
		t.Fatalf("%d attempts, want 4", len(m.reqs))
	}
	first := m.reqs[0]
	if first.Client == 0 || first.Client != c.ID() {
		t.Errorf("client id %d, want %d", first.Client, c.ID())
	}
	for _, r := range m.reqs[1:3] {
		if r.Client != first.Client || r.Seq != first.Seq {
			t.Errorf("retry carried %v, want %v", r, first)
		}
	}
	if m.reqs[3].Seq == first.Seq {
		t.Errorf("a new mutation reused sequence %d", first.Seq)
	}
}

func TestErrors(t *testing.T) {
	m := serve(t, &fakeMaster{
		create: func(_ context.Context, req *pb.CreateRequest) (*pb.EntryResponse, error) {
			if req.Path == "/bad" {
				return nil, status.Error(codes.InvalidArgument, "no")
			}
			return &pb.EntryResponse{Errno: int32(syscall.ENAMETOOLONG), Message: "name of 300 bytes is longer than 255"}, nil
		},
		stat: func(context.Context, *pb.ResolvePathRequest) (*pb.ResolvePathResponse, error) {
			return &pb.ResolvePathResponse{Errno: int32(syscall.ENOENT)}, nil
		},
	})
	c := newClient(t, m.addr)
	ctx := context.Background()

	_, err := c.Stat(ctx, "/x")
	if err != syscall.ENOENT {
		t.Errorf("stat error = %#v, want bare ENOENT", err)
	}
	_, err = c.Create(ctx, &pb.CreateRequest{Path: "/long"})
	var en syscall.Errno
	var ce *Error
	if !errors.As(err, &en) || en != syscall.ENAMETOOLONG || !errors.As(err, &ce) || ce.Message == "" {
		t.Errorf("create error = %#v", err)
	}
	before := m.calls()
	_, err = c.Create(ctx, &pb.CreateRequest{Path: "/bad"})
	if status.Code(err) != codes.InvalidArgument || m.calls()-before != 1 {
		t.Errorf("invalid argument: %v after %d attempts", err, m.calls()-before)
	}
}

func TestGivesUp(t *testing.T) {
	c := newClient(t, deadAddr(t), deadAddr(t))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Stat(ctx, "/")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v", d)
	}
	if _, err := New(Config{}); !errors.Is(err, ErrNoMasters) {
		t.Errorf("New without masters: %v", err)
	}
	if _, err := New(Config{Masters: []string{"nohost"}}); err == nil {
		t.Errorf("New with a bad address succeeded")
	}
}
