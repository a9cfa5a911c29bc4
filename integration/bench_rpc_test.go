package integration

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/skyfs/skyfs/client"
	"github.com/skyfs/skyfs/internal/rafttest"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// grpcEchoEnv makes the test binary a bare gRPC server (serveGRPCEcho).
const grpcEchoEnv = "SKYFS_INTEGRATION_GRPC_ECHO"

// echoNamespace answers ResolvePath and Create with a fixed attribute, doing
// no other work: the cost of the RPC layer alone, with skyfs's own messages.
type echoNamespace struct {
	pb.UnimplementedNamespaceServer
	attr *pb.Attr
}

func (e *echoNamespace) ResolvePath(context.Context, *pb.ResolvePathRequest) (*pb.ResolvePathResponse, error) {
	return &pb.ResolvePathResponse{Attr: e.attr}, nil
}

func (e *echoNamespace) Create(context.Context, *pb.CreateRequest) (*pb.EntryResponse, error) {
	return &pb.EntryResponse{Attr: e.attr}, nil
}

// serveGRPCEcho serves echoNamespace on loopback with the flow-control
// windows masterd uses, prints its address, and serves until killed.
func serveGRPCEcho() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	g := grpc.NewServer(grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(1<<20))
	pb.RegisterNamespaceServer(g, &echoNamespace{attr: &pb.Attr{
		Ino: 1234, Type: pb.FileType_REGULAR, Mode: 0o644, Nlink: 1, Uid: 1000, Gid: 1000,
		Size: 4096, MtimeNs: 1, CtimeNs: 1, AtimeNs: 1,
	}})
	fmt.Println(l.Addr())
	if err := g.Serve(l); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// grpcEchoPeer starts the test binary again as a bare gRPC server in its own
// process and returns its address.
func grpcEchoPeer(tb testing.TB) string {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), grpcEchoEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		tb.Fatal(err)
	}
	return strings.TrimSpace(addr)
}

// BenchmarkMetaVsEcho compares stat (ResolvePath of a file three levels
// down) and create through gRPC on three masters with a bare gRPC server in
// another process that answers the same calls with a fixed attribute, both
// driven by the same client code from 64 clients (one connection each). It
// alternates two-second bursts, round after round, and reports the medians
// and the median of the rounds' ratios. SKYFS_BENCH_ROUNDS sets the rounds
// (default 5); SKYFS_BENCH_CLIENTS the clients (default 64).
//
//	go test -run '^$' -bench MetaVsEcho -benchtime 1x ./integration
func BenchmarkMetaVsEcho(b *testing.B) {
	const burstLen = 2 * time.Second
	rounds := envInt("SKYFS_BENCH_ROUNDS", 5)
	clients := envInt("SKYFS_BENCH_CLIENTS", 64)
	echo := grpcEchoPeer(b)
	c := newCluster(b, 3)
	ctx := context.Background()
	setup := c.client(client.Config{})
	for _, d := range []string{"/bench", "/bench/d"} {
		if _, err := setup.Mkdir(ctx, &pb.MkdirRequest{Path: d, Mode: 0o755}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := setup.Create(ctx, &pb.CreateRequest{Path: "/bench/d/statme", Mode: 0o644}); err != nil {
		b.Fatal(err)
	}
	masters := make([]*client.Client, clients)
	echoes := make([]*client.Client, clients)
	for i := range clients {
		masters[i] = c.client(client.Config{})
		echoes[i] = c.client(client.Config{Masters: []string{echo}})
	}
	var dirs atomic.Int64
	burst := func(cls []*client.Client, op string) (float64, time.Duration) {
		var next atomic.Int64
		dir := fmt.Sprintf("/bench/c%d", dirs.Add(1))
		if op == "create" && cls[0] == masters[0] {
			if _, err := setup.Mkdir(ctx, &pb.MkdirRequest{Path: dir, Mode: 0o755}); err != nil {
				b.Fatal(err)
			}
		}
		rate, p50, err := rafttest.Burst(clients, burstLen, func(i int) error {
			cl := cls[next.Add(1)%int64(clients)]
			var err error
			switch op {
			case "stat":
				_, err = cl.Stat(ctx, "/bench/d/statme")
			case "create":
				_, err = cl.Create(ctx, &pb.CreateRequest{Path: fmt.Sprintf("%s/%d", dir, i), Mode: 0o644})
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		return rate, p50
	}
	for b.Loop() {
		for _, op := range []string{"stat", "create"} {
			var sky, bare, ratio []float64
			var skyLat, bareLat []time.Duration
			for range rounds {
				er, el := burst(echoes, op)
				sr, sl := burst(masters, op)
				sky, bare, ratio = append(sky, sr), append(bare, er), append(ratio, sr/er)
				skyLat, bareLat = append(skyLat, sl), append(bareLat, el)
			}
			b.Logf("%s, %d clients: skyfs %6.0f/s (p50 %v), bare gRPC %6.0f/s (p50 %v), ratio %.2f; ratios by round %.2f",
				op, clients, median(sky), median(skyLat), median(bare), median(bareLat), median(ratio), ratio)
			b.ReportMetric(median(sky), op+"-ops/s")
			b.ReportMetric(median(bare), op+"-echo-ops/s")
			b.ReportMetric(median(ratio), op+"-ratio")
		}
	}
}

// envInt reads a positive integer from the environment, def without one.
func envInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err == nil && v > 0 {
		return v
	}
	return def
}
