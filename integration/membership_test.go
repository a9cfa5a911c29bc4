package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skyfs/skyfs/client"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// TestAddMemberBySnapshot writes enough that the masters' logs are truncated
// behind snapshots, adds a fourth master, which catches up by snapshot
// install, hands it leadership and reads through it.
func TestAddMemberBySnapshot(t *testing.T) {
	c := newCluster(t, 3, "--snapshot-threshold", "32", "--trailing-logs", "8", "--snapshot-interval", "200ms")
	ctx := context.Background()
	cl := c.client(client.Config{})
	if _, err := cl.Mkdir(ctx, &pb.MkdirRequest{Path: "/m", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	w := startWriters(c, 8, "/m", "f", client.Config{})
	w.waitAcks(t, 600, 60*time.Second)
	w.finish()
	for _, err := range w.errs {
		t.Fatalf("client error: %v", err)
	}
	// The journal may batch concurrent proposals into one log entry: compare
	// with the leader's applied index, not with the number of creates.
	applied := c.status(c.leader()).AppliedIndex
	out := c.mustCLI("journal", "checkpoint")
	var snapIdx uint64
	if _, err := fmt.Sscanf(out, "checkpoint at index %d", &snapIdx); err != nil || snapIdx < applied {
		t.Fatalf("checkpoint: %q (%v), want an index of at least %d", out, err, applied)
	}
	// The followers truncated their logs too (by threshold).
	for _, nd := range c.nodes {
		waitFor(t, 30*time.Second, nd.id+" to snapshot", func() bool {
			m := c.status(nd)
			return m != nil && m.LastSnapshotIndex > 0
		})
	}

	m4 := c.addNode()
	waitFor(t, 30*time.Second, "m4 to answer", func() bool { return c.status(m4) != nil })
	c.mustCLI("cluster", "add", m4.id, m4.raft, m4.rpc)
	l := c.leader()
	want := c.status(l).CommitIndex
	waitFor(t, 60*time.Second, "m4 to catch up", func() bool {
		m := c.status(m4)
		return m != nil && m.AppliedIndex >= want
	})
	m := c.status(m4)
	if m.LastSnapshotIndex < snapIdx {
		t.Errorf("m4 snapshot index %d, want ≥ %d: it did not catch up by snapshot", m.LastSnapshotIndex, snapIdx)
	}
	b, _ := readLog(m4)
	if !strings.Contains(strings.ToLower(b), "snapshot") {
		t.Logf("m4's log does not mention a snapshot:\n%s", b)
	}
	st := c.mustCLI("cluster", "status")
	if !strings.Contains(st, "m4") || strings.Contains(st, "unreachable") {
		t.Errorf("cluster status:\n%s", st)
	}

	c.mustCLI("cluster", "transfer-leader", m4.id)
	waitFor(t, 30*time.Second, "m4 to lead", func() bool { return c.leader() == m4 })
	only := c.client(client.Config{Masters: []string{m4.rpc}})
	var names map[string]uint64
	waitFor(t, 30*time.Second, "m4 to serve reads", func() bool {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := only.Stat(ctx, "/m")
		return err == nil
	})
	names = listAll(ctx, t, only, "/m")
	for _, a := range w.acks {
		if names[a.name] != a.ino {
			t.Fatalf("m4 does not see %s (ino %d): %d", a.name, a.ino, names[a.name])
		}
	}
	if _, err := only.Create(ctx, &pb.CreateRequest{Path: "/m/after", Mode: 0o644}); err != nil {
		t.Errorf("create through m4: %v", err)
	}
	// Remove a follower: the cluster goes on with three members.
	gone := c.nodes[0]
	c.mustCLI("cluster", "remove", gone.id)
	waitFor(t, 30*time.Second, gone.id+" to leave the configuration", func() bool {
		st, err := only.Status(ctx)
		if err != nil || len(st.Members) != 3 {
			return false
		}
		for _, m := range st.Members {
			if m.Id == gone.id {
				return false
			}
		}
		return true
	})
	c.stop(gone)
	if _, err := only.Create(ctx, &pb.CreateRequest{Path: "/m/after-remove", Mode: 0o644}); err != nil {
		t.Errorf("create after removing %s: %v", gone.id, err)
	}
	t.Logf("m4 installed a snapshot at index %d (leader checkpoint at %d) and serves %d entries", m.LastSnapshotIndex, snapIdx, len(names))
}
