package client

import (
	"context"
	"net"
	"sync"
	"syscall"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// sessionMaster answers GrantRange (EALREADY to its first request, as a
// master does to a grant retried after it committed) and Recalls, and
// records the holder each call named.
type sessionMaster struct {
	pb.UnimplementedNamespaceServer
	mu      sync.Mutex
	holders []string
	grants  int
}

func (m *sessionMaster) note(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	m.mu.Lock()
	m.holders = append(m.holders, md.Get(HolderMetadata)...)
	m.mu.Unlock()
}

func (m *sessionMaster) GrantRange(ctx context.Context, req *pb.GrantRangeRequest) (*pb.GrantRangeResponse, error) {
	m.note(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.grants++
	if m.grants == 1 {
		return &pb.GrantRangeResponse{Errno: int32(syscall.EALREADY)}, nil
	}
	return &pb.GrantRangeResponse{Start: 100, End: 100 + uint64(req.Count)}, nil
}

func (m *sessionMaster) Recalls(req *pb.RecallsRequest, stream pb.Namespace_RecallsServer) error {
	m.note(stream.Context())
	for _, d := range []uint64{7, 8} {
		if err := stream.Send(&pb.RecallNotice{Dir: d}); err != nil {
			return err
		}
	}
	return nil // the stream ends: the client opens it again
}

func TestSessionCalls(t *testing.T) {
	m := &sessionMaster{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	pb.RegisterNamespaceServer(g, m)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	c := newClient(t, lis.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	start, end, err := c.GrantRange(ctx, 5, 10)
	if err != nil || start != 100 || end != 110 {
		t.Fatalf("grant range: [%d, %d) %v", start, end, err)
	}
	c.SetHolder(5)
	if _, _, err := c.GrantRange(ctx, 5, 10); err != nil {
		t.Fatal(err)
	}
	var dirs []uint64
	if err := c.Recalls(ctx, 5, func(d uint64) {
		dirs = append(dirs, d)
		if len(dirs) == 4 {
			cancel()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 4 || dirs[0] != 7 || dirs[3] != 8 {
		t.Fatalf("recalled %v, want 7 8 twice (the stream opened again)", dirs)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.grants != 3 || len(m.holders) < 3 || m.holders[0] != "5" {
		t.Fatalf("grants %d, holders named %v (none before SetHolder, then 5)", m.grants, m.holders)
	}
	if err := c.Recalls(context.Background(), 0, func(uint64) {}); err == nil {
		t.Fatal("recalls without a session")
	}
}
