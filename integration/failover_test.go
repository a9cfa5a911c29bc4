package integration

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyfs/skyfs/client"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// ack is one acknowledged create.
type ack struct {
	name  string
	ino   uint64
	start time.Time // when the call began
	at    time.Time // when it was acknowledged
	by    string    // the master that answered
}

// writers runs n clients that create files named prefix-<client>-<seq> in dir
// until stop is closed, and returns what was acknowledged and every error.
type writers struct {
	mu   sync.Mutex
	acks []ack
	errs []error
	n    atomic.Int64
	wg   sync.WaitGroup
	stop chan struct{}
}

func startWriters(c *cluster, n int, dir, prefix string, cfg client.Config) *writers {
	w := &writers{stop: make(chan struct{})}
	for i := range n {
		cl := c.client(cfg)
		w.wg.Go(func() {
			for seq := 0; ; seq++ {
				select {
				case <-w.stop:
					return
				default:
				}
				name := fmt.Sprintf("%s-%02d-%05d", prefix, i, seq)
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				start := time.Now()
				r, err := cl.Create(ctx, &pb.CreateRequest{Path: dir + "/" + name, Mode: 0o644})
				cancel()
				at := time.Now()
				w.mu.Lock()
				if err != nil {
					w.errs = append(w.errs, fmt.Errorf("create %s: %w", name, err))
				} else {
					w.acks = append(w.acks, ack{name: name, ino: r.Ino, start: start, at: at, by: cl.Leader()})
				}
				w.mu.Unlock()
				if err == nil {
					w.n.Add(1)
				}
			}
		})
	}
	return w
}

// finish stops the writers and waits for them.
func (w *writers) finish() {
	close(w.stop)
	w.wg.Wait()
}

// waitAcks waits until the writers have n acknowledgements in all.
func (w *writers) waitAcks(t testing.TB, n int64, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d acknowledged creates", n), func() bool { return w.n.Load() >= n })
}

// checkDurable checks that every acknowledged create exists with its inode.
func checkDurable(ctx context.Context, t testing.TB, cl *client.Client, dir string, acks []ack) {
	t.Helper()
	have := listAll(ctx, t, cl, dir)
	lost := 0
	for _, a := range acks {
		if ino, ok := have[a.name]; !ok || ino != a.ino {
			if lost < 10 {
				t.Errorf("acknowledged create %s (ino %d) lost: found ino %d", a.name, a.ino, ino)
			}
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged creates lost", lost, len(acks))
	}
}

// TestLeaderKill: 16 clients create files while the leader is SIGKILLed; every
// acknowledged create survives and writes resume on the new leader.
func TestLeaderKill(t *testing.T) {
	c := newCluster(t, 3)
	ctx := context.Background()
	cl := c.client(client.Config{})
	if _, err := cl.Mkdir(ctx, &pb.MkdirRequest{Path: "/w", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	w := startWriters(c, 16, "/w", "f", client.Config{})
	w.waitAcks(t, 400, 60*time.Second)

	old := c.leader()
	if old == nil {
		t.Fatal("no leader")
	}
	before := w.n.Load()
	killed := time.Now()
	c.kill(old)
	w.waitAcks(t, before+400, 60*time.Second)
	w.finish()

	var first time.Time
	for _, a := range w.acks {
		if a.at.After(killed) && a.by != old.rpc && (first.IsZero() || a.at.Before(first)) {
			first = a.at
		}
	}
	t.Logf("killed leader %s after %d acknowledged creates; first acknowledged write on the new leader %v after the kill; %d acknowledged in all",
		old.id, before, first.Sub(killed).Round(time.Millisecond), len(w.acks))
	for _, err := range w.errs {
		t.Errorf("client error: %v", err)
	}
	checkDurable(ctx, t, cl, "/w", w.acks)

	// The killed master comes back and catches up.
	c.start(old)
	l := c.waitLeader(30 * time.Second)
	want := c.status(l).AppliedIndex
	waitFor(t, 30*time.Second, old.id+" to catch up", func() bool {
		m := c.status(old)
		return m != nil && m.AppliedIndex >= want
	})
}
