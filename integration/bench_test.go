package integration

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyfs/skyfs/client"
	"github.com/skyfs/skyfs/internal/rafttest"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// BenchmarkMeta measures metadata operations through gRPC against one and
// three masters on loopback (the journal fsyncs every commit), with 1, 16 and
// 64 concurrent clients. ns/op is wall time per operation across all clients;
// ops/s is the throughput.
//
//	go test -run '^$' -bench BenchmarkMeta -benchtime 2000x ./integration
func BenchmarkMeta(b *testing.B) {
	for _, masters := range []int{1, 3} {
		b.Run(fmt.Sprintf("masters=%d", masters), func(b *testing.B) {
			c := newCluster(b, masters)
			ctx := context.Background()
			setup := c.client(client.Config{})
			if _, err := setup.Create(ctx, &pb.CreateRequest{Path: "/statme", Mode: 0o644}); err != nil {
				b.Fatal(err)
			}
			var run atomic.Int64
			for _, op := range []string{"create", "mkdir", "stat", "rename"} {
				for _, clients := range []int{1, 16, 64} {
					b.Run(fmt.Sprintf("op=%s/clients=%d", op, clients), func(b *testing.B) {
						dir := fmt.Sprintf("/run%d", run.Add(1))
						if _, err := setup.Mkdir(ctx, &pb.MkdirRequest{Path: dir, Mode: 0o755}); err != nil {
							b.Fatal(err)
						}
						cls := make([]*client.Client, clients)
						for i := range cls {
							cls[i] = c.client(client.Config{})
							if op == "rename" {
								if _, err := cls[i].Create(ctx, &pb.CreateRequest{Path: fmt.Sprintf("%s/%d-0", dir, i), Mode: 0o644}); err != nil {
									b.Fatal(err)
								}
							}
						}
						benchOps(b, cls, func(cl *client.Client, i, n int) error {
							var err error
							switch op {
							case "create":
								_, err = cl.Create(ctx, &pb.CreateRequest{Path: fmt.Sprintf("%s/%d-%d", dir, i, n), Mode: 0o644})
							case "mkdir":
								_, err = cl.Mkdir(ctx, &pb.MkdirRequest{Path: fmt.Sprintf("%s/%d-%d", dir, i, n), Mode: 0o755})
							case "stat":
								_, err = cl.Stat(ctx, "/statme")
							case "rename":
								_, err = cl.Rename(ctx, &pb.RenameRequest{
									OldPath: fmt.Sprintf("%s/%d-%d", dir, i, n%2),
									NewPath: fmt.Sprintf("%s/%d-%d", dir, i, (n+1)%2),
								})
							}
							return err
						})
					})
				}
			}
		})
	}
}

// benchOps runs b.N operations spread over the clients, op getting the
// client's index i and its own count n of calls so far, and reports the
// throughput and the median and 99th percentile latency of one operation.
func benchOps(b *testing.B, cls []*client.Client, op func(cl *client.Client, i, n int) error) {
	calls := make([]int, len(cls)) // each entry touched by its own client only
	b.ResetTimer()
	elapsed, all, err := rafttest.Clients(len(cls), func(k int) bool { return k < b.N }, func(i, _ int) error {
		n := calls[i]
		calls[i]++
		return op(cls[i], i, n)
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
}

// BenchmarkCreateVsBare compares creates through gRPC on three masters with
// the bare ceiling, raft alone (internal/rafttest: three hashicorp/raft
// nodes with raft-boltdb/v2, stock settings, a counting FSM, 100-byte
// commands), on the same machine and under the same noise: for each client
// count it runs a short burst on each in turn, round after round, and
// reports the median rate of each and the median of the rounds' ratios.
// SKYFS_BENCH_ROUNDS sets the rounds (default 9).
//
//	go test -run '^$' -bench CreateVsBare -benchtime 1x ./integration
func BenchmarkCreateVsBare(b *testing.B) {
	const burstLen = 2 * time.Second
	rounds := 9
	if v, err := strconv.Atoi(os.Getenv("SKYFS_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	bare := rafttest.Bare(b, rafttest.Options{})
	c := newCluster(b, 3)
	ctx := context.Background()
	setup := c.client(client.Config{})
	for b.Loop() {
		for _, clients := range []int{1, 64} {
			cls := make([]*client.Client, clients)
			for i := range cls {
				cls[i] = c.client(client.Config{})
			}
			var next atomic.Int64
			var skyfs, raft, ratio []float64
			var skyfsLat, raftLat []time.Duration
			for r := range rounds {
				dir := fmt.Sprintf("/vs-%d-%d", clients, r)
				if _, err := setup.Mkdir(ctx, &pb.MkdirRequest{Path: dir, Mode: 0o755}); err != nil {
					b.Fatal(err)
				}
				br, bl, err := rafttest.Burst(clients, burstLen, func(int) error { return bare.Apply(rafttest.Command, 0).Error() })
				if err != nil {
					b.Fatal(err)
				}
				sr, sl, err := rafttest.Burst(clients, burstLen, func(i int) error {
					cl := cls[next.Add(1)%int64(clients)]
					_, err := cl.Create(ctx, &pb.CreateRequest{Path: fmt.Sprintf("%s/%d", dir, i), Mode: 0o644})
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				raft, skyfs, ratio = append(raft, br), append(skyfs, sr), append(ratio, sr/br)
				raftLat, skyfsLat = append(raftLat, bl), append(skyfsLat, sl)
			}
			b.Logf("clients=%-2d creates %6.0f/s (p50 %v), bare raft %6.0f/s (p50 %v), ratio %.2f; ratios by round %.2f",
				clients, median(skyfs), median(skyfsLat), median(raft), median(raftLat), median(ratio), ratio)
			b.ReportMetric(median(skyfs), fmt.Sprintf("create-%d-ops/s", clients))
			b.ReportMetric(median(raft), fmt.Sprintf("bare-%d-ops/s", clients))
			b.ReportMetric(median(ratio), fmt.Sprintf("ratio-%d", clients))
		}
	}
}

// BenchmarkLoopbackRoundTrip measures what one hop between two processes
// costs on this machine, below any skyfs code: a 100-byte TCP round trip on
// loopback to an echo in a child process, back to back and after the
// sender was idle for 1 ms (as a client is while the journal fsyncs). The
// second is what each of a create's two gRPC hops pays that a bare raft
// cluster, called in process, does not.
//
//	go test -run '^$' -bench LoopbackRoundTrip ./integration
func BenchmarkLoopbackRoundTrip(b *testing.B) {
	for _, idle := range []time.Duration{0, time.Millisecond} {
		b.Run(fmt.Sprintf("idle=%v", idle), func(b *testing.B) {
			conn := echoPeer(b)
			buf := make([]byte, 100)
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() { // ns/op includes the idle time; p50-µs does not
				if idle > 0 {
					time.Sleep(idle)
				}
				t0 := time.Now()
				if _, err := conn.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(conn, buf); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.ReportMetric(float64(median(lat).Nanoseconds())/1e3, "p50-µs")
		})
	}
}

// BenchmarkFailover kills the leader of a three-master cluster ten times
// while four clients create files, and reports the median and worst time
// from the kill until a write is acknowledged again.
//
//	go test -run '^$' -bench BenchmarkFailover -benchtime 1x ./integration
func BenchmarkFailover(b *testing.B) {
	const kills = 10
	c := newCluster(b, 3)
	ctx := context.Background()
	setup := c.client(client.Config{})
	if _, err := setup.Mkdir(ctx, &pb.MkdirRequest{Path: "/fo", Mode: 0o755}); err != nil {
		b.Fatal(err)
	}
	var times []time.Duration
	for iter := range b.N {
		w := startWriters(c, 4, "/fo", fmt.Sprintf("i%d", iter), client.Config{CallTimeout: 500 * time.Millisecond})
		for k := range kills {
			w.waitAcks(b, w.n.Load()+50, 60*time.Second)
			old := c.leader()
			if old == nil {
				b.Fatal("no leader")
			}
			killed := time.Now()
			c.kill(old)
			var back time.Time
			waitFor(b, 60*time.Second, "a write after the kill", func() bool {
				w.mu.Lock()
				defer w.mu.Unlock()
				for _, a := range w.acks[max(0, len(w.acks)-64):] {
					if a.at.After(killed) && a.by != old.rpc && (back.IsZero() || a.at.Before(back)) {
						back = a.at
					}
				}
				return !back.IsZero()
			})
			d := back.Sub(killed)
			times = append(times, d)
			b.Logf("kill %d of %s: writes acknowledged again after %v", k+1, old.id, d.Round(time.Millisecond))
			// Bring it back and let it catch up before the next kill, so that
			// each kill leaves a quorum.
			c.start(old)
			l := c.waitLeader(30 * time.Second)
			want := c.status(l).AppliedIndex
			waitFor(b, 30*time.Second, old.id+" to catch up", func() bool {
				m := c.status(old)
				return m != nil && m.AppliedIndex >= want
			})
		}
		w.finish()
		for _, err := range w.errs {
			b.Errorf("client error: %v", err)
		}
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "median-ms")
	b.ReportMetric(float64(times[len(times)-1].Milliseconds()), "worst-ms")
}
