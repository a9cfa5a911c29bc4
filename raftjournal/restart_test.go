package raftjournal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyfs/skyfs/meta"
)

// churn runs steps [from, to): create k<i>, create t<i>, unlink t<i>. Applied
// once each, they leave exactly the k files; an entry applied twice would
// bring a t file back (its create succeeds again once it was unlinked).
func churn(t *testing.T, n *Node, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		propose(t, n, createEntry(fmt.Sprintf("k%03d", i)))
		propose(t, n, createEntry(fmt.Sprintf("t%03d", i)))
		propose(t, n, unlinkEntry(fmt.Sprintf("t%03d", i)))
	}
}

// checkChurn checks the invariant of churn after steps [0, steps).
func checkChurn(t *testing.T, n *Node, steps int) {
	t.Helper()
	names := rootNames(t, n)
	for name := range names {
		if strings.HasPrefix(name, "t") {
			t.Fatalf("%s: %s exists: an entry was applied twice", n.cfg.NodeID, name)
		}
	}
	for i := range steps {
		if !names[fmt.Sprintf("k%03d", i)] {
			t.Fatalf("%s: k%03d lost", n.cfg.NodeID, i)
		}
	}
	if got := inodeCount(t, n); got != uint64(steps)+1 {
		t.Fatalf("%s: %d inodes, want %d", n.cfg.NodeID, got, steps+1)
	}
}

// catchUp waits until n has applied everything l had applied.
func catchUp(t *testing.T, n, l *Node) {
	t.Helper()
	idx := l.Status().AppliedIndex
	waitFor(t, 10*time.Second, n.cfg.NodeID+" to catch up", func() bool { return n.Status().AppliedIndex >= idx })
}

// TestRestartSkipsApplied restarts a follower, then the whole cluster, with no
// snapshot: raft replays the whole log and the store skips what it holds.
func TestRestartSkipsApplied(t *testing.T) {
	c := newCluster(t, 3, nil)
	li := c.leader()
	churn(t, c.nodes[li], 0, 20)
	fi := (li + 1) % 3
	f := c.nodes[fi]
	catchUp(t, f, c.nodes[li])
	checkChurn(t, f, 20)
	c.stop(fi)

	churn(t, c.nodes[li], 20, 40)
	f = c.start(fi)
	catchUp(t, f, c.nodes[li])
	checkChurn(t, f, 40)
	// 20 steps of 3 entries were missing; a leader change adds a member record.
	if got := f.entriesApplied(); got < 60 || got > 63 {
		t.Fatalf("restarted follower applied %d entries, want 60 (+ member records)", got)
	}

	// The whole cluster, at once.
	c.closeAll()
	for i := range c.cfgs {
		c.start(i)
	}
	l := c.nodes[c.leader()]
	churn(t, l, 40, 45)
	if err := l.ReadBarrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		catchUp(t, n, l)
		checkChurn(t, n, 45)
		if got := n.entriesApplied(); got > 15+3 {
			t.Fatalf("%s applied %d entries after restart, want 15 (+ member records)", n.cfg.NodeID, got)
		}
	}
}

// TestCrashReplaysUnsyncedTail loses everything the store did not sync (as
// Badger may on power loss) and restarts: the store is never behind the
// snapshot raft restarts from, so the log replays what was lost.
func TestCrashReplaysUnsyncedTail(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.Peers = []Peer{{ID: cfg.NodeID, RaftAddr: cfg.RaftAddr, RPCAddr: cfg.RPCAddr}}
	cfg.TrailingLogs = 2
	cs := newCrashStore()
	cfg.store = cs
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "serving", n.Serving)
	churn(t, n, 0, 10)
	snapIdx, err := n.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	churn(t, n, 10, 20)
	last := n.Status().AppliedIndex
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	for round := range 2 {
		lost := cs.crash()
		var durable uint64
		if err := lost.View(func(tx meta.Txn) (err error) {
			durable, err = meta.AppliedIndex(tx)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if durable < snapIdx || durable >= last {
			t.Fatalf("round %d: durable index %d: want in [snapshot %d, last %d)", round, durable, snapIdx, last)
		}
		cs = lost
		cfg.store = cs
		if n, err = Open(cfg); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "serving after crash", n.Serving)
		if err := n.ReadBarrier(context.Background()); err != nil {
			t.Fatal(err)
		}
		checkChurn(t, n, 20)
		if got, want := n.entriesApplied(), last-durable; got > want+1 {
			t.Fatalf("round %d: replayed %d entries, want at most %d", round, got, want+1)
		}
		last = n.Status().AppliedIndex
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSnapshotInstallOnAddVoter truncates the log behind a checkpoint and adds
// a fourth master, which catches up by snapshot install and then the log.
func TestSnapshotInstallOnAddVoter(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.TrailingLogs = 10 })
	l := c.nodes[c.leader()]
	for i := range 100 {
		propose(t, l, createEntry(fmt.Sprintf("f%03d", i)))
	}
	idx, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if first, err := l.logs.FirstIndex(); err != nil || first <= 1 || first > idx {
		t.Fatalf("log not truncated: first index %d (snapshot %d), %v", first, idx, err)
	}
	if st := l.Status(); st.LastSnapshotIndex != idx {
		t.Fatalf("status snapshot index %d, want %d", st.LastSnapshotIndex, idx)
	}

	cfg := testConfig(t, "m4")
	n4, err := Open(cfg) // no peers: it joins
	if err != nil {
		t.Fatal(err)
	}
	defer n4.Close()
	if err := l.AddVoter(context.Background(), Peer{ID: cfg.NodeID, RaftAddr: cfg.RaftAddr, RPCAddr: cfg.RPCAddr}); err != nil {
		t.Fatal(err)
	}
	propose(t, l, createEntry("after-join"))
	waitFor(t, 15*time.Second, "the new master to catch up", func() bool { return inodeCount(t, n4) == 102 })
	if st := n4.Status(); st.LastSnapshotIndex < idx {
		t.Fatalf("new master did not install a snapshot: %+v", st)
	}
	if got := n4.entriesApplied(); got >= 100 {
		t.Fatalf("new master applied %d entries from the log; want the snapshot to carry them", got)
	}
	st := l.Status()
	found := false
	for _, m := range st.Members {
		if m.ID == "m4" {
			found = m.Suffrage == "voter" && m.RPCAddr == cfg.RPCAddr
		}
	}
	if !found || len(st.Members) != 4 {
		t.Fatalf("members: %+v", st.Members)
	}
	if id, rpc := n4.Leader(); id != l.cfg.NodeID || rpc != l.cfg.RPCAddr {
		t.Fatalf("new master sees leader %q at %q", id, rpc)
	}
}

func TestCheckpoint(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.Peers = []Peer{{ID: cfg.NodeID, RaftAddr: cfg.RaftAddr, RPCAddr: cfg.RPCAddr}}
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	waitFor(t, 10*time.Second, "serving", n.Serving)
	for i := range 10 {
		propose(t, n, createEntry(fmt.Sprintf("f%d", i)))
	}
	applied := n.Status().AppliedIndex
	idx, err := n.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if idx < applied {
		t.Fatalf("checkpoint index %d below applied %d", idx, applied)
	}
	idx2, err := n.Checkpoint(context.Background())
	if err != nil || idx2 < idx {
		t.Fatalf("second checkpoint: %d, %v", idx2, err)
	}
	if st := n.Status(); st.LastSnapshotIndex != idx2 {
		t.Fatalf("status: %+v", st)
	}
}

// TestOpenFinishesInterruptedRestore leaves the store half restored (a
// snapshot stream cut short, as by a crash during an install) and reopens:
// Open restores the newest local snapshot again before raft starts.
func TestOpenFinishesInterruptedRestore(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.Peers = []Peer{{ID: cfg.NodeID, RaftAddr: cfg.RaftAddr, RPCAddr: cfg.RPCAddr}}
	cs := newCrashStore()
	cfg.store = cs
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "serving", n.Serving)
	churn(t, n, 0, 10)
	if _, err := n.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	churn(t, n, 10, 15)
	list, err := n.snaps.List()
	if err != nil || len(list) == 0 {
		t.Fatalf("snapshots: %v, %v", list, err)
	}
	_, rc, err := n.snaps.Open(list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// The restore dies half way.
	if err := meta.RestoreSnapshot(cs, bytes.NewReader(stream[:len(stream)/2])); err == nil {
		t.Fatal("restore of half a snapshot succeeded")
	}
	cs.View(func(tx meta.Txn) error {
		if r, _ := meta.Restoring(tx); !r {
			t.Fatal("store not marked as restoring")
		}
		return nil
	})
	if n, err = Open(cfg); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	waitFor(t, 10*time.Second, "serving after the restore", n.Serving)
	if err := n.ReadBarrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkChurn(t, n, 15)
}

// TestOpenFinishesRestoreOfEmptiedStore covers a crash after a restore
// emptied the store and before the snapshot stream wrote the store's own
// marker: the marker file beside the store makes Open restore again.
func TestOpenFinishesRestoreOfEmptiedStore(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.Peers = []Peer{{ID: cfg.NodeID, RaftAddr: cfg.RaftAddr, RPCAddr: cfg.RPCAddr}}
	cs := newCrashStore()
	cfg.store = cs
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "serving", n.Serving)
	churn(t, n, 0, 10)
	if _, err := n.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	churn(t, n, 10, 15)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// The restore emptied the store and died.
	if err := writeDurable(filepath.Join(cfg.Dir, "restoring")); err != nil {
		t.Fatal(err)
	}
	if err := cs.ReplaceAll(func(func(k, v []byte) error) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if n, err = Open(cfg); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	waitFor(t, 10*time.Second, "serving after the restore", n.Serving)
	if err := n.ReadBarrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkChurn(t, n, 15)
	if _, err := os.Stat(filepath.Join(cfg.Dir, "restoring")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("marker file left after the restore: %v", err)
	}
}
