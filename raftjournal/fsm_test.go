package raftjournal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/meta/badgerstore"
	"github.com/skyfs/skyfs/meta/memstore"
	"github.com/skyfs/skyfs/proto/metapb"
)

func metaLog(t testing.TB, index uint64, e *metapb.Entry) *raft.Log {
	t.Helper()
	b, err := encodeMeta(e)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: b}
}

func storeApplied(t testing.TB, s meta.Store) uint64 {
	t.Helper()
	var idx uint64
	if err := s.View(func(tx meta.Txn) (err error) {
		idx, err = meta.AppliedIndex(tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return idx
}

// TestApplyBatchSplitsTooBig applies one batch far larger than a small Badger
// memtable allows in one transaction.
func TestApplyBatchSplitsTooBig(t *testing.T) {
	s, err := badgerstore.Open(t.TempDir(), badgerstore.Options{MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := newFSM(s, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	logs := make([]*raft.Log, 0, n+1)
	for i := range n {
		logs = append(logs, metaLog(t, uint64(i+1), createEntry(fmt.Sprintf("file-%05d", i))))
		if i == n/2 { // a configuration entry in the middle is skipped over
			logs = append(logs, &raft.Log{Type: raft.LogConfiguration})
		}
	}
	for j := range logs {
		logs[j].Index = uint64(j + 1)
	}
	resp := f.ApplyBatch(logs)
	if len(resp) != len(logs) {
		t.Fatalf("%d responses for %d logs", len(resp), len(logs))
	}
	inos := make(map[uint64]bool)
	for i, r := range resp {
		if logs[i].Type != raft.LogCommand {
			if r != nil {
				t.Fatalf("response %v for a configuration entry", r)
			}
			continue
		}
		res, ok := r.(meta.Result)
		if !ok || res.Errno != 0 || inos[res.Ino] {
			t.Fatalf("entry %d: %#v", i, r)
		}
		inos[res.Ino] = true
	}
	if f.splits.Load() == 0 {
		t.Fatal("the batch fit in one transaction; make it bigger")
	}
	if got := storeApplied(t, s); got != uint64(len(logs)) {
		t.Fatalf("applied index %d, want %d", got, len(logs))
	}
	var count uint64
	s.View(func(tx meta.Txn) (err error) { count, err = meta.InodeCount(tx); return err })
	if count != n+1 {
		t.Fatalf("%d inodes, want %d", count, n+1)
	}
	// Applying the same batch again (a restart's replay) changes nothing.
	again := f.ApplyBatch(logs)
	for i, r := range again {
		if r != nil {
			t.Fatalf("replayed entry %d applied again: %v", i, r)
		}
	}
}

// stopPanic is what the test's fatal panics with.
type stopPanic string

// expectStop runs fn and returns the message the FSM stopped the master with.
func expectStop(t *testing.T, fn func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("the FSM did not stop")
		}
		switch v := r.(type) {
		case stopPanic:
			msg = string(v)
		case string:
			msg = v
		default:
			t.Fatalf("unexpected panic %#v", r)
		}
	}()
	fn()
	return ""
}

// TestUndecodableEntryStops feeds the FSM entries it cannot decode or apply:
// each stops the master (the default fatal panics) instead of being skipped.
func TestUndecodableEntryStops(t *testing.T) {
	badVersion := createEntry("v")
	badVersion.Version = meta.EntryVersion + 1
	cases := map[string][]byte{
		"empty":         nil,
		"unknown type":  {0x7f, 1, 2, 3},
		"garbage entry": {tagMeta, 0xff, 0xff, 0xff},
		"garbage batch": {tagBatch, 0xff, 0xff},
		"empty batch":   {tagBatch},
		"no operation":  {tagMeta, 0x08, 0x01},
		"future format": mustEncode(t, badVersion),
		"empty command": {tagCommand},
		"future format in a batch": func() []byte {
			good, _ := meta.EncodeEntry(createEntry("a"))
			b, _ := encodeBatch([][]byte{good, mustEncode(t, badVersion)[1:]})
			return b
		}(),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			s := memstore.New()
			f, err := newFSM(s, testLogger())
			if err != nil {
				t.Fatal(err)
			}
			good := metaLog(t, 1, createEntry("ok"))
			f.ApplyBatch([]*raft.Log{good})
			logs := []*raft.Log{metaLog(t, 2, createEntry("before")), {Index: 3, Term: 1, Type: raft.LogCommand, Data: data}}
			msg := expectStop(t, func() { f.ApplyBatch(logs) }) // default fatal: panic
			if !strings.Contains(msg, "log entry 3") || !strings.Contains(msg, "stopping") {
				t.Fatalf("stop message %q does not name the entry", msg)
			}
			if got := storeApplied(t, s); got != 1 {
				t.Fatalf("applied index moved to %d past an undecodable entry", got)
			}
		})
	}
}

func mustEncode(t *testing.T, e *metapb.Entry) []byte {
	b, err := encodeMeta(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// failingStore fails every write with an engine error (not a POSIX outcome).
type failingStore struct{ *memstore.Store }

func (s failingStore) Update(fn func(meta.Txn) error) error {
	return s.Store.Update(func(tx meta.Txn) error { return fn(failingTxn{tx}) })
}

type failingTxn struct{ meta.Txn }

func (failingTxn) Set(k, v []byte) error { return errors.New("disk on fire") }

func TestApplyErrorStops(t *testing.T) {
	f, err := newFSM(failingStore{memstore.New()}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	f.fatal = func(msg string) { panic(stopPanic(msg)) }
	msg := expectStop(t, func() { f.ApplyBatch([]*raft.Log{metaLog(t, 1, createEntry("x"))}) })
	if !strings.Contains(msg, "disk on fire") || !strings.Contains(msg, "entry 1") {
		t.Fatalf("stop message %q", msg)
	}
}

// TestReadBarrierCoalesces checks that, with strict reads, many concurrent
// readers share a few VerifyLeader rounds, that reads see acknowledged writes,
// and that the lease answers CheckLease without a round while fresh.
func TestReadBarrierCoalesces(t *testing.T) {
	// A lease long enough that a VerifyLeader round on a loaded machine (and
	// under -race) ends well within it.
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
		cfg.StrictReads = true
	})
	l := c.nodes[c.leader()]
	ctx := context.Background()
	propose(t, l, createEntry("seen"))
	if err := l.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	if !rootNames(t, l)["seen"] {
		t.Fatal("read after barrier misses an acknowledged write")
	}

	const readers = 200
	before := l.verifyRounds()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, readers)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := l.ReadBarrier(ctx); err != nil {
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rounds := l.verifyRounds() - before
	t.Logf("%d concurrent read barriers took %d VerifyLeader rounds", readers, rounds)
	if rounds == 0 || rounds > readers/10 {
		t.Fatalf("%d rounds for %d readers", rounds, readers)
	}

	// The lease: one round, then answers from memory while fresh.
	waitFor(t, 5*time.Second, "lease to lapse", func() bool { return !l.leaseValid() })
	before = l.verifyRounds()
	for range 50 {
		if err := l.CheckLease(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.verifyRounds() - before; got < 1 || got > 3 {
		t.Fatalf("50 lease checks took %d rounds", got)
	}
}

// TestLeaseReads checks that reads answer from the lease, which the leader
// keeps fresh on its own, that they see acknowledged writes, and that a leader
// cut off from its followers stops answering them.
func TestLeaseReads(t *testing.T) {
	c := newCluster(t, 3, nil)
	li := c.leader()
	l := c.nodes[li]
	ctx := context.Background()
	propose(t, l, createEntry("seen"))
	if err := l.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	if !rootNames(t, l)["seen"] {
		t.Fatal("read after barrier misses an acknowledged write")
	}
	// Idle for several leases: the lease is renewed in the background, and a
	// burst of reads needs no rounds of its own.
	time.Sleep(4 * l.lease)
	if !l.leaseValid() {
		t.Fatal("an idle leader let its lease lapse")
	}
	before := l.verifyRounds()
	start := time.Now()
	for range 1000 {
		if err := l.ReadBarrier(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Only the background rounds of the time the reads took, never one each.
	if got, most := l.verifyRounds()-before, 2+int(time.Since(start)/(l.lease/4)); int(got) > most {
		t.Fatalf("1000 lease reads took %d rounds, want at most %d", got, most)
	}
	for i := range c.nodes {
		if i != li {
			c.stop(i)
		}
	}
	waitFor(t, 5*time.Second, "reads to be refused", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return l.ReadBarrier(ctx) != nil
	})
	if l.leaseValid() {
		t.Fatal("a leader without followers holds a lease")
	}
}

// TestLeaseLostWithQuorum stops both followers: the leader's lease check must
// fail within the lease, and it stops serving.
func TestLeaseLostWithQuorum(t *testing.T) {
	c := newCluster(t, 3, nil)
	li := c.leader()
	l := c.nodes[li]
	if err := l.CheckLease(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range c.nodes {
		if i != li {
			c.stop(i)
		}
	}
	waitFor(t, 5*time.Second, "lease check to fail", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return errors.Is(l.CheckLease(ctx), ErrNotLeader)
	})
	waitFor(t, 5*time.Second, "leader to stop serving", func() bool { return !l.Serving() })
	if _, err := l.Propose(context.Background(), createEntry("lonely")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("propose without quorum: %v", err)
	}
}

func batchLog(t testing.TB, index uint64, names ...string) *raft.Log {
	t.Helper()
	var entries [][]byte
	for _, name := range names {
		b, err := meta.EncodeEntry(createEntry(name))
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, b)
	}
	data, err := encodeBatch(entries)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

// TestBatchEntryInParts applies one batch log entry too big for a transaction:
// it is applied in parts, and a restart between parts (simulated by a partial
// record) goes on without applying anything twice.
func TestBatchEntryInParts(t *testing.T) {
	s, err := badgerstore.Open(t.TempDir(), badgerstore.Options{MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := newFSM(s, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := range 3000 {
		names = append(names, fmt.Sprintf("b%05d", i))
	}
	resp := f.ApplyBatch([]*raft.Log{metaLog(t, 1, createEntry("first")), batchLog(t, 2, names...)})
	results, ok := resp[1].([]meta.Result)
	if !ok || len(results) != len(names) {
		t.Fatalf("batch response %T", resp[1])
	}
	for i, r := range results {
		if r.Errno != 0 || r.Ino == 0 {
			t.Fatalf("entry %d: %+v", i, r)
		}
	}
	if f.splits.Load() == 0 {
		t.Fatal("the batch fit in one transaction")
	}
	if got := storeApplied(t, s); got != 2 {
		t.Fatalf("applied index %d", got)
	}
	var count uint64
	s.View(func(tx meta.Txn) (err error) { count, err = meta.InodeCount(tx); return err })
	if count != 3002 {
		t.Fatalf("%d inodes", count)
	}

	// A crash after the first 10 entries of a batch at index 3: the restart
	// applies the other 10 only (the first 10 would fail with EEXIST if
	// applied again, and results would say so).
	var more []string
	for i := range 20 {
		more = append(more, fmt.Sprintf("m%02d", i))
	}
	first := batchLog(t, 3, more[:10]...)
	d, _ := decode(first.Data)
	if err := s.Update(func(tx meta.Txn) error {
		for _, e := range d.batch {
			if _, err := meta.Apply(tx, e); err != nil {
				return err
			}
		}
		return setPartial(tx, 3, 10)
	}); err != nil {
		t.Fatal(err)
	}
	resp = f.ApplyBatch([]*raft.Log{batchLog(t, 3, more...), metaLog(t, 4, createEntry("last"))})
	results = resp[0].([]meta.Result)
	for i, r := range results {
		if i < 10 && (r.Ino != 0 || r.Errno != 0 || r.Attr != nil) {
			t.Fatalf("entry %d applied again: %+v", i, r)
		}
		if i >= 10 && (r.Errno != 0 || r.Ino == 0) {
			t.Fatalf("entry %d: %+v", i, r)
		}
	}
	s.View(func(tx meta.Txn) (err error) { count, err = meta.InodeCount(tx); return err })
	if count != 3002+20+1 {
		t.Fatalf("%d inodes after the partial batch", count)
	}
	s.View(func(tx meta.Txn) error {
		if idx, _, _ := getPartial(tx); idx != 0 {
			t.Errorf("partial record left behind: %d", idx)
		}
		return nil
	})
}
