package raftjournal

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// OnApply sees every applied entry; Stats reports the snapshots taken.
func TestApplyHookAndStats(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.Peers = []Peer{{ID: cfg.NodeID, RaftAddr: cfg.RaftAddr, RPCAddr: cfg.RPCAddr}}
	var batches, entries atomic.Int64
	cfg.OnApply = func(s ApplyStats) {
		if s.Logs <= 0 || s.Took < 0 || s.Entries < 0 {
			t.Errorf("OnApply(%+v)", s)
		}
		batches.Add(1)
		entries.Add(int64(s.Entries))
	}
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	waitFor(t, 10*time.Second, "serving", n.Serving)
	if st := n.Stats(); st.Snapshots != 0 || st.SnapshotIndex != 0 || !st.SnapshotTime.IsZero() {
		t.Fatalf("stats before any snapshot: %+v", st)
	}
	before := entries.Load()
	for i := range 10 {
		propose(t, n, createEntry(fmt.Sprintf("f%d", i)))
	}
	if got := entries.Load() - before; got < 10 {
		t.Errorf("OnApply counted %d entries for 10 proposals", got)
	}
	if batches.Load() == 0 {
		t.Error("OnApply never called")
	}
	start := time.Now()
	idx, err := n.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st := n.Stats()
	if st.Snapshots != 1 || st.SnapshotFailures != 0 || st.SnapshotIndex != idx || st.SnapshotSize <= 0 || st.LastSnapshotDuration <= 0 {
		t.Fatalf("stats after a checkpoint at %d: %+v", idx, st)
	}
	if st.SnapshotTime.Before(start.Add(-time.Second)) || st.SnapshotTime.After(time.Now().Add(time.Second)) {
		t.Fatalf("snapshot time %v, checkpoint started at %v", st.SnapshotTime, start)
	}
	if st.EntriesApplied < 10 {
		t.Fatalf("EntriesApplied %d after 10 proposals", st.EntriesApplied)
	}
}

func TestSnapshotTime(t *testing.T) {
	if got := snapshotTime("3-120-1700000000123"); !got.Equal(time.UnixMilli(1700000000123)) {
		t.Errorf("snapshotTime = %v", got)
	}
	for _, id := range []string{"", "abc", "1-2-x", "1-2-0"} {
		if got := snapshotTime(id); !got.IsZero() {
			t.Errorf("snapshotTime(%q) = %v, want zero", id, got)
		}
	}
}
