package raftjournal

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
)

// sessionState is what the state holds about one session: its ranges and
// delegations.
type sessionState struct {
	ranges []meta.InoRange
	dirs   []meta.Ino
}

func readSession(t *testing.T, n *Node, holder uint64) sessionState {
	t.Helper()
	var s sessionState
	err := n.View(func(tx meta.Txn) error {
		var err error
		if s.ranges, err = meta.RangesOf(tx, holder); err != nil {
			return err
		}
		s.dirs, err = meta.DelegatedTo(tx, holder)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSessionsSurviveRestartAndInstall puts a session with inode ranges and
// a delegation in the state, installs it on a new master by snapshot and
// restarts the whole cluster: every master holds the same grants, and none
// is granted twice afterwards.
func TestSessionsSurviveRestartAndInstall(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.TrailingLogs = 10 })
	l := c.nodes[c.leader()]
	now := int64(1_700_000_000_000_000_000)
	entry := func(holder uint64, op any) *metapb.Entry {
		now += 1e6
		e := &metapb.Entry{Version: meta.EntryVersion, TimeNs: now, Holder: holder}
		switch op := op.(type) {
		case *metapb.OpenSession:
			e.Op = &metapb.Entry_OpenSession{OpenSession: op}
		case *metapb.GrantRange:
			e.Op = &metapb.Entry_GrantRange{GrantRange: op}
		case *metapb.Delegate:
			e.Op = &metapb.Entry_Delegate{Delegate: op}
		case *metapb.Mkdir:
			e.Op = &metapb.Entry_Mkdir{Mkdir: op}
		case *metapb.Batch:
			e.Op = &metapb.Entry_Batch{Batch: op}
		}
		return e
	}
	flush := func(n *Node, dir, first meta.Ino, count int) meta.Result {
		b := new(metapb.Batch)
		for i := range count {
			b.Ops = append(b.Ops, &metapb.BatchOp{Op: &metapb.BatchOp_CreateFile{CreateFile: &metapb.CreateFile{
				Parent: dir, Name: fmt.Appendf(nil, "f%d", first+meta.Ino(i)), Mode: 0o644, Ino: first + meta.Ino(i)}}})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := n.Propose(ctx, entry(7, b))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	const holder = 7
	propose(t, l, entry(0, &metapb.OpenSession{Holder: holder, LeaseNs: meta.MaxLease}))
	r := propose(t, l, entry(0, &metapb.GrantRange{Holder: holder, Count: 100}))
	d := propose(t, l, entry(0, &metapb.Mkdir{Parent: meta.RootIno, Name: []byte("d"), Mode: 0o755})).Ino
	propose(t, l, entry(0, &metapb.Delegate{Holder: holder, Dir: d}))
	if res := flush(l, d, r.Ino, 20); res.Errno != 0 || len(res.Ops) != 20 || res.Ops[19].Ino != r.Ino+19 {
		t.Fatalf("flush: %v, %d results", res.Errno, len(res.Ops))
	}
	for i := range 30 {
		propose(t, l, createEntry(fmt.Sprintf("g%02d", i))) // push the flush out of the log
	}
	want := readSession(t, l, holder)
	if len(want.ranges) != 1 || want.ranges[0].Next != r.Ino+20 || !slices.Equal(want.dirs, []meta.Ino{d}) {
		t.Fatalf("session state %+v", want)
	}
	if _, err := l.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(t, "m4")
	n4, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.cfgs, c.nodes = append(c.cfgs, cfg), append(c.nodes, n4) // closed and restarted with the others
	if err := l.AddVoter(context.Background(), Peer{ID: cfg.NodeID, RaftAddr: cfg.RaftAddr, RPCAddr: cfg.RPCAddr}); err != nil {
		t.Fatal(err)
	}
	catchUp(t, n4, l)
	if got := readSession(t, n4, holder); !slices.Equal(got.ranges, want.ranges) || !slices.Equal(got.dirs, want.dirs) {
		t.Fatalf("installed session state %+v, want %+v", got, want)
	}
	if n4.entriesApplied() > 20 {
		t.Fatalf("new master applied %d entries from the log; want the snapshot to carry the grants", n4.entriesApplied())
	}

	c.closeAll()
	for i := range c.cfgs {
		c.start(i)
	}
	l = c.nodes[c.leader()]
	if err := l.ReadBarrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readSession(t, l, holder); !slices.Equal(got.ranges, want.ranges) || !slices.Equal(got.dirs, want.dirs) {
		t.Fatalf("restarted session state %+v, want %+v", got, want)
	}
	// Spent numbers stay spent; the next range starts past everything.
	if res := flush(l, d, r.Ino+19, 1); res.Errno != meta.ErrnoNotGranted {
		t.Fatalf("flush of a spent number: %v", res.Errno)
	}
	if res := flush(l, d, r.Ino+20, 1); res.Errno != 0 || res.Ops[0].Errno != 0 {
		t.Fatalf("flush after restart: %v %v", res.Errno, res.Ops)
	}
	next := propose(t, l, entry(0, &metapb.GrantRange{Holder: holder, Count: 10}))
	other := propose(t, l, createEntry("after")).Ino
	if next.Ino < r.Until || other < next.Until {
		t.Fatalf("after restart: range [%d,%d), created %d; first range [%d,%d)", next.Ino, next.Until, other, r.Ino, r.Until)
	}
	if res, err := l.Propose(context.Background(), entry(0, &metapb.Delegate{Holder: 8, Dir: d})); err != nil || res.Errno != meta.ErrnoStaleLease {
		t.Fatalf("delegation to an unknown session: %v %v", res.Errno, err)
	}
	if res, err := l.Propose(context.Background(), createEntry("x")); err != nil || res.Errno != 0 {
		t.Fatal(res.Errno, err)
	}
	n4 = c.nodes[3]
	catchUp(t, n4, l)
	if got, lw := readSession(t, n4, holder), readSession(t, l, holder); !slices.Equal(got.ranges, lw.ranges) {
		t.Fatalf("new master ranges %+v, leader %+v", got.ranges, lw.ranges)
	}
}
