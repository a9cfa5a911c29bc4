package integration

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/skyfs/skyfs/client"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// TestStoppedLeader SIGSTOPs the leader for longer than the election timeout
// while clients keep writing: the others elect a new leader and acknowledge
// writes; the stopped master acknowledges nothing, and after SIGCONT it steps
// down and catches up.
func TestStoppedLeader(t *testing.T) {
	c := newCluster(t, 3)
	ctx := context.Background()
	cl := c.client(client.Config{})
	if _, err := cl.Mkdir(ctx, &pb.MkdirRequest{Path: "/s", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	// A short attempt timeout, so that clients stuck on the frozen master move
	// on quickly.
	w := startWriters(c, 4, "/s", "f", client.Config{CallTimeout: 500 * time.Millisecond})
	w.waitAcks(t, 100, 60*time.Second)

	old := c.leader()
	oldTerm := c.status(old).Term
	stopped := time.Now()
	if err := old.signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Writes go on through a new leader while the old one is frozen, for
	// several election timeouts.
	n := w.n.Load()
	w.waitAcks(t, n+200, 60*time.Second)
	var newLeader *node
	waitFor(t, 30*time.Second, "a new leader", func() bool {
		newLeader = c.leader()
		return newLeader != nil && newLeader != old
	})
	waitFor(t, 30*time.Second, "3s of isolation", func() bool { return time.Since(stopped) > 3*time.Second })
	resumed := time.Now()
	if err := old.signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// It steps down: a follower in a newer term.
	waitFor(t, 30*time.Second, old.id+" to step down", func() bool {
		m := c.status(old)
		return m != nil && m.Role == "follower" && m.Term > oldTerm
	})
	n = w.n.Load()
	w.waitAcks(t, n+100, 60*time.Second)
	w.finish()

	// Nothing asked of the old leader after it was stopped was acknowledged
	// by it (a reply already on its way when it stopped may arrive later);
	// every acknowledged create exists.
	isolated := 0
	for _, a := range w.acks {
		if a.start.After(stopped) && a.at.Before(resumed) {
			isolated++
			if a.by == old.rpc {
				t.Errorf("%s acknowledged %s, asked %v after it was stopped", old.id, a.name, a.start.Sub(stopped))
			}
		}
	}
	t.Logf("%d creates acknowledged by %s while %s was stopped", isolated, newLeader.id, old.id)
	if isolated == 0 {
		t.Error("no writes were acknowledged while the leader was stopped")
	}
	for _, err := range w.errs {
		t.Errorf("client error: %v", err)
	}
	checkDurable(ctx, t, cl, "/s", w.acks)

	// It catches up with the leader.
	l := c.waitLeader(30 * time.Second)
	want := c.status(l).AppliedIndex
	waitFor(t, 30*time.Second, old.id+" to catch up", func() bool {
		m := c.status(old)
		return m != nil && m.AppliedIndex >= want
	})
}
