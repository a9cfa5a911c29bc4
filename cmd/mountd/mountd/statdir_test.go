package mountd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/skyfs/skyfs/client"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// TestStatDirOlderMasters: against masters that do not know StatDir, the
// first call says so and later ones do not reach them.
func TestStatDirOlderMasters(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		calls.Add(1)
		return h(ctx, req)
	}))
	pb.RegisterNamespaceServer(srv, pb.UnimplementedNamespaceServer{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	c, err := client.New(client.Config{Masters: []string{lis.Addr().String()}, RetryTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	n := newNamespace(c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i := range 3 {
		if _, err := n.StatDir(t.Context(), 1, []string{"a"}); !errors.Is(err, errNoStatDir) {
			t.Fatalf("call %d: %v, want errNoStatDir", i, err)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("%d calls reached the masters, want 1", got)
	}
}
