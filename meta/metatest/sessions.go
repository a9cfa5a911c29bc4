package metatest

import (
	"bytes"
	"slices"
	"syscall"
	"testing"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
)

// lease is the lease of the sessions of these tests: 200 ticks of the
// harness's clock.
const lease = int64(200e9)

// bop wraps operations into the operations of a Batch, the i-th with request
// (client, seq0+i) when client is non-zero.
func bop(client, seq0 uint64, ops ...any) *metapb.Batch {
	b := new(metapb.Batch)
	for i, op := range ops {
		o := new(metapb.BatchOp)
		if client != 0 {
			o.Request = &metapb.RequestID{Client: client, Seq: seq0 + uint64(i)}
		}
		switch op := op.(type) {
		case *metapb.CreateFile:
			o.Op = &metapb.BatchOp_CreateFile{CreateFile: op}
		case *metapb.Mkdir:
			o.Op = &metapb.BatchOp_Mkdir{Mkdir: op}
		case *metapb.Unlink:
			o.Op = &metapb.BatchOp_Unlink{Unlink: op}
		case *metapb.Rename:
			o.Op = &metapb.BatchOp_Rename{Rename: op}
		case *metapb.CompleteFile:
			o.Op = &metapb.BatchOp_CompleteFile{CompleteFile: op}
		default:
			panic("metatest: not a batch operation")
		}
		b.Ops = append(b.Ops, o)
	}
	return b
}

func create(parent meta.Ino, name string, ino meta.Ino) *metapb.CreateFile {
	return &metapb.CreateFile{Parent: parent, Name: []byte(name), Mode: 0o644, Persist: metapb.PersistState_PENDING, Ino: ino}
}

func errnos(rs []meta.Result) []syscall.Errno {
	out := make([]syscall.Errno, len(rs))
	for i, r := range rs {
		out[i] = r.Errno
	}
	return out
}

// testBatchEntry checks Batch entries without a holder: each operation has
// its own outcome, one entry time, and its own request; the whole batch is
// refused for bad framing.
func testBatchEntry(t *testing.T, open func(testing.TB) meta.Store) {
	h := NewH(t, open(t))
	d := h.Mkdir(meta.RootIno, "d")
	b := bop(9, 100,
		create(d, "a", 0),
		create(d, "a", 0), // EEXIST, and the batch goes on
		&metapb.Mkdir{Parent: d, Name: []byte("sub"), Mode: 0o755},
		&metapb.Rename{OldParent: d, OldName: []byte("a"), NewParent: d, NewName: []byte("b")},
		create(d, "c", 0),
		&metapb.Unlink{Parent: d, Name: []byte("c")},
		&metapb.Unlink{Parent: d, Name: []byte("nope")},
		create(d, "x", 12345), // a number of no range: only a holder's batch brings one
	)
	res := h.Apply(b)
	if res.Errno != 0 || len(res.Ops) != len(b.Ops) {
		t.Fatalf("batch: %v, %d results", res.Errno, len(res.Ops))
	}
	want := []syscall.Errno{0, syscall.EEXIST, 0, 0, 0, 0, syscall.ENOENT, syscall.EINVAL}
	if got := errnos(res.Ops); !slices.Equal(got, want) {
		t.Fatalf("outcomes %v, want %v", got, want)
	}
	if got := h.Names(d, 10); !slices.Equal(got, []string{"b", "sub"}) {
		t.Fatalf("names %v", got)
	}
	if a := h.Attr(d); a.Mtime != h.Clock || a.Nlink != 3 {
		t.Fatalf("directory after the batch: %+v", a)
	}
	f := res.Ops[0].Ino
	if a := h.Attr(f); a.Ctime != h.Clock || !a.Pending {
		t.Fatalf("created file: %+v", a)
	}
	if res.Ops[5].Removed == nil || res.Ops[5].Removed[0] != res.Ops[4].Ino {
		t.Fatalf("unlink removed %v, created %d", res.Ops[5].Removed, res.Ops[4].Ino)
	}
	checkInvariants(t, h.S)

	// A retry answers every operation from its record and changes nothing.
	before := Dump(t, h.S)
	again := h.Apply(b)
	if got := errnos(again.Ops); !slices.Equal(got, want) {
		t.Fatalf("retried outcomes %v", got)
	}
	for i, r := range again.Ops {
		if !r.Replayed || r.Ino != res.Ops[i].Ino {
			t.Fatalf("retried op %d: %+v, first %+v", i, r, res.Ops[i])
		}
	}
	if diff := DiffDumps(before, Dump(t, h.S)); diff != "" {
		t.Fatalf("retry changed the state:\n%s", diff)
	}

	// Completion in the same batch as other work; an operation of a request
	// applied before is answered from its record, the new one applied.
	res = h.Must(bop(9, 200,
		&metapb.CompleteFile{Ino: f, Size: 4096, Ufs: &metapb.Fingerprint{Size: 4096, Etag: "e"}},
		create(d, "n", 0)))
	if a := h.Attr(f); a.Pending || a.Size != 4096 || a.UFS.ETag != "e" {
		t.Fatalf("completed in a batch: %+v", a)
	}
	mixed := h.Must(bop(9, 201, create(d, "n", 0), create(d, "m", 0)))
	if !mixed.Ops[0].Replayed || mixed.Ops[0].Ino != res.Ops[1].Ino || mixed.Ops[1].Replayed || mixed.Ops[1].Errno != 0 {
		t.Fatalf("mixed retry: %+v", mixed.Ops)
	}

	// Bad framing refuses the whole entry.
	withReq := Entry(h.Clock+1e9, bop(0, 0, create(d, "r", 0)))
	withReq.Request = &metapb.RequestID{Client: 1, Seq: 1}
	h.Expect(syscall.EINVAL, withReq)
	h.Expect(syscall.EINVAL, &metapb.Batch{})
	many := make([]any, meta.MaxBatchOps+1)
	for i := range many {
		many[i] = create(d, "m"+itoa(i), 0)
	}
	h.Expect(syscall.EINVAL, bop(0, 0, many...))
	// A plain create never brings its own number.
	h.Expect(syscall.EINVAL, create(d, "p", 99999))
	h.Expect(syscall.EINVAL, &metapb.Mkdir{Parent: d, Name: []byte("p"), Ino: 99999})
	// An operation of a kind this version does not know stops the master.
	if _, err := h.TryApply(&metapb.Batch{Ops: []*metapb.BatchOp{{}}}); err == nil {
		t.Fatal("batch with an empty operation applied")
	}
	checkInvariants(t, h.S)
}

// testDelegations checks sessions, inode ranges and delegations: what a
// holder may flush, what others are refused, lease expiry from entry time,
// and bad input refused with nothing changed.
func testDelegations(t *testing.T, open func(testing.TB) meta.Store) {
	h := NewH(t, open(t))
	d := h.Mkdir(meta.RootIno, "d")
	e := h.Mkdir(meta.RootIno, "e")
	h.Create(e, "x")
	const a, b = 0xa, 0xb

	// Sessions: bad leases, opening, renewing.
	h.Expect(syscall.EINVAL, &metapb.OpenSession{Holder: 0, LeaseNs: lease})
	h.Expect(syscall.EINVAL, &metapb.OpenSession{Holder: a, LeaseNs: 0})
	h.Expect(syscall.EINVAL, &metapb.OpenSession{Holder: a, LeaseNs: meta.MaxLease + 1})
	if r := h.Must(&metapb.OpenSession{Holder: a, LeaseNs: lease}); r.Expires != h.Clock+lease {
		t.Fatalf("session expires %d, want %d", r.Expires, h.Clock+lease)
	}
	h.Must(&metapb.OpenSession{Holder: b, LeaseNs: lease})

	// Nothing is granted to a session that does not exist.
	h.Expect(meta.ErrnoStaleLease, &metapb.GrantRange{Holder: 0xc, Count: 10})
	h.Expect(meta.ErrnoStaleLease, &metapb.Delegate{Holder: 0xc, Dir: d})
	h.Expect(syscall.EINVAL, &metapb.GrantRange{Holder: a, Count: 0})
	h.Expect(syscall.EINVAL, &metapb.GrantRange{Holder: a, Count: meta.MaxRangeCount + 1})

	// Ranges come from the counter: never overlapping what the counter gave
	// before or gives after.
	r1 := h.Must(&metapb.GrantRange{Holder: a, Count: 4})
	mid := h.Create(meta.RootIno, "mid")
	r2 := h.Must(&metapb.GrantRange{Holder: b, Count: 4})
	if r1.Until != r1.Ino+4 || mid != r1.Until || r2.Ino != mid+1 || r2.Until != r2.Ino+4 {
		t.Fatalf("ranges [%d,%d) and [%d,%d) around created %d", r1.Ino, r1.Until, r2.Ino, r2.Until, mid)
	}

	// Delegations: one live holder at a time.
	h.Expect(syscall.ENOENT, &metapb.Delegate{Holder: a, Dir: 9999})
	h.Expect(syscall.ENOTDIR, &metapb.Delegate{Holder: a, Dir: mid})
	if r := h.Must(&metapb.Delegate{Holder: a, Dir: d}); r.Expires == 0 {
		t.Fatalf("delegate: %+v", r)
	}
	h.Must(&metapb.Delegate{Holder: a, Dir: d}) // held already: fine
	h.Expect(syscall.EBUSY, &metapb.Delegate{Holder: b, Dir: d})

	// The holder flushes creates and their completions in one entry, with
	// its own numbers.
	res := h.Must(h.As(a, bop(a, 1,
		create(d, "f0", r1.Ino),
		&metapb.CompleteFile{Ino: r1.Ino, Size: 4096, Ufs: &metapb.Fingerprint{Size: 4096, Etag: "x"}},
		&metapb.Mkdir{Parent: d, Name: []byte("s"), Mode: 0o755, Ino: r1.Ino + 1},
		create(d, "f0", r1.Ino+2), // EEXIST: the number stays unused, never reused
	)))
	if got := errnos(res.Ops); !slices.Equal(got, []syscall.Errno{0, 0, 0, syscall.EEXIST}) {
		t.Fatalf("flush outcomes %v", got)
	}
	if res.Ops[0].Ino != r1.Ino || res.Ops[2].Ino != r1.Ino+1 {
		t.Fatalf("flush numbers %d %d, want %d %d", res.Ops[0].Ino, res.Ops[2].Ino, r1.Ino, r1.Ino+1)
	}
	if at := h.Attr(r1.Ino); at.Pending || at.Size != 4096 || at.Type != meta.TypeRegular {
		t.Fatalf("created and completed: %+v", at)
	}
	checkInvariants(t, h.S)

	// Bad flushes are refused whole, with nothing changed.
	h.Expect(meta.ErrnoNotHeld, h.As(a, bop(a, 10, create(d, "g", r1.Ino+3), create(e, "g", 0))))
	s := r1.Ino + 1
	h.Expect(meta.ErrnoNotHeld, h.As(a, bop(a, 10, create(s, "g", 0))))          // a new subdirectory is not delegated
	h.Expect(meta.ErrnoNotGranted, h.As(a, bop(a, 10, create(d, "g", r2.Ino))))  // b's number
	h.Expect(meta.ErrnoNotGranted, h.As(a, bop(a, 10, create(d, "g", r1.Ino))))  // spent
	h.Expect(meta.ErrnoNotGranted, h.As(a, bop(a, 10, create(d, "f0", r1.Ino)))) // spent, whatever the name
	h.Expect(meta.ErrnoNotGranted, h.As(a, bop(a, 10, create(d, "g", r1.Ino+3), create(d, "h", r1.Ino+3))))
	h.Expect(meta.ErrnoNotGranted, h.As(a, bop(a, 10, create(d, "g", mid))))
	h.Expect(meta.ErrnoNotHeld, h.As(b, bop(b, 10, create(d, "g", r2.Ino))))
	h.Expect(meta.ErrnoStaleLease, h.As(0xc, bop(0xc, 10, create(d, "g", 0))))

	// Others are kept out of the delegated directory; reads are the
	// leader's to recall for, attribute changes are not names.
	h.Expect(meta.ErrnoDelegated, create(d, "g", 0))
	h.Expect(meta.ErrnoDelegated, &metapb.Mkdir{Parent: d, Name: []byte("g")})
	h.Expect(meta.ErrnoDelegated, &metapb.Unlink{Parent: d, Name: []byte("f0")})
	h.Expect(meta.ErrnoDelegated, ren(d, "f0", e, "f0"))
	h.Expect(meta.ErrnoDelegated, ren(e, "x", d, "x"))
	h.Expect(meta.ErrnoDelegated, sym(d, "l", "t"))
	h.Expect(meta.ErrnoDelegated, &metapb.Link{Ino: mid, NewParent: d, NewName: []byte("l")})
	h.Expect(meta.ErrnoDelegated, h.As(b, create(d, "g", 0)))
	h.Expect(meta.ErrnoDelegated, load(d, true, true, 0))
	h.Must(&metapb.SetAttr{Ino: r1.Ino, Valid: meta.SetAttrMode, Mode: 0o600})
	// The holder's own plain entries pass.
	h.Must(h.As(a, sym(d, "l", "t")))

	// A delegated directory is not removed or replaced under its holder.
	h.Must(&metapb.Delegate{Holder: b, Dir: e})
	h.Must(h.As(a, &metapb.Delegate{Holder: a, Dir: s}))
	h.Expect(meta.ErrnoDelegated, &metapb.Rmdir{Parent: meta.RootIno, Name: []byte("e")})

	// Recall, and the leader's revocation only after a whole lease.
	h.Expect(syscall.ENOENT, &metapb.Recall{Dir: mid})
	if r := h.Must(&metapb.Recall{Dir: e}); r.Holder != b {
		t.Fatalf("recall: %+v", r)
	}
	recalled := h.Clock
	h.Expect(syscall.EBUSY, &metapb.Delegate{Holder: b, Dir: e}) // give it back first
	h.Expect(syscall.EBUSY, &metapb.Undelegate{Holder: b, Dir: e})
	h.Expect(meta.ErrnoNotHeld, &metapb.Undelegate{Holder: a, Dir: e})
	h.Expect(meta.ErrnoNotHeld, h.As(a, &metapb.Undelegate{Holder: a, Dir: e}))
	// The recalled holder still flushes until it gives the delegation back.
	h.Must(h.As(b, bop(b, 1, create(e, "late", r2.Ino))))
	for i := 0; h.Clock+1e9 < recalled+lease-1e9; i++ {
		h.Must(&metapb.OpenSession{Holder: []uint64{a, b}[i%2], LeaseNs: lease}) // b renews, but does not answer
	}
	h.Expect(syscall.EBUSY, &metapb.Undelegate{Holder: b, Dir: e})
	if r := h.Must(&metapb.Undelegate{Holder: b, Dir: e}); r.Holder != b {
		t.Fatalf("revoke: %+v", r)
	}
	h.Expect(meta.ErrnoNotHeld, h.As(b, bop(b, 2, create(e, "later", r2.Ino+1))))
	h.Must(create(e, "other", 0))
	checkInvariants(t, h.S)

	// A request refused because of a delegation is not remembered: once the
	// delegation is given back, the same request is applied.
	h.Must(&metapb.Delegate{Holder: b, Dir: e})
	retried := Entry(h.Clock+1e9, create(e, "retried", 0))
	retried.Request = &metapb.RequestID{Client: 77, Seq: 1}
	// (Only the expiry bookkeeping of request records may change.)
	if r := h.Apply(retried); r.Errno != meta.ErrnoDelegated {
		t.Fatalf("create in a directory delegated elsewhere: %v", r.Errno)
	}
	if r := h.Apply(bop(77, 2, create(e, "retried2", 0))); r.Errno != 0 || r.Ops[0].Errno != meta.ErrnoDelegated {
		t.Fatalf("batched create in a directory delegated elsewhere: %v %+v", r.Errno, r.Ops)
	}
	h.Must(h.As(b, &metapb.Undelegate{Holder: b, Dir: e}))
	retried.TimeNs = h.Clock + 1e9
	if r := h.Must(retried); r.Replayed {
		t.Fatalf("a refused request was remembered: %+v", r)
	}
	if r := h.Must(bop(77, 2, create(e, "retried2", 0))); r.Ops[0].Errno != 0 || r.Ops[0].Replayed {
		t.Fatalf("a refused batch operation was remembered: %+v", r.Ops[0])
	}

	// The holder's own rmdir of a delegated subdirectory ends the delegation.
	h.Must(h.As(a, &metapb.Rmdir{Parent: d, Name: []byte("s")}))
	h.view(func(tx meta.Txn) error {
		if _, ok, err := meta.DelegationOf(tx, s); ok || err != nil {
			t.Fatalf("delegation of a removed directory: %v %v", ok, err)
		}
		return nil
	})
	checkInvariants(t, h.S)

	// A release by the holder; another session then takes the directory.
	h.Must(h.As(a, &metapb.Undelegate{Holder: a, Dir: d}))
	h.Must(create(d, "free", 0))
	h.Must(&metapb.Delegate{Holder: b, Dir: d})

	// Lease expiry, decided from entry time: b stops renewing.
	expires := h.Must(&metapb.OpenSession{Holder: b, LeaseNs: lease}).Expires
	h.Must(&metapb.Delegate{Holder: a, Dir: e})
	h.Must(h.As(a, &metapb.Undelegate{Holder: a, Dir: e}))
	h.Expect(syscall.EBUSY, &metapb.EndSession{Holder: b})
	for h.Clock+2e9 < expires {
		h.Must(&metapb.OpenSession{Holder: a, LeaseNs: lease})
	}
	h.Expect(meta.ErrnoDelegated, create(d, "g", 0)) // the last moment of b's lease
	h.Must(&metapb.OpenSession{Holder: a, LeaseNs: lease})
	// b's lease ran out: it flushes nothing, renews nothing, and its
	// directory is open to others.
	h.Expect(meta.ErrnoStaleLease, h.As(b, bop(b, 3, create(d, "g", r2.Ino+1))))
	h.Expect(meta.ErrnoStaleLease, &metapb.OpenSession{Holder: b, LeaseNs: lease})
	h.Expect(meta.ErrnoStaleLease, &metapb.GrantRange{Holder: b, Count: 1})
	h.Must(create(d, "g", 0))
	h.Must(&metapb.Delegate{Holder: a, Dir: d}) // taken over from the expired b
	h.Must(&metapb.EndSession{Holder: b})
	h.Expect(meta.ErrnoStaleLease, &metapb.EndSession{Holder: b})
	h.view(func(tx meta.Txn) error {
		if rs, err := meta.RangesOf(tx, b); err != nil || len(rs) != 0 {
			t.Fatalf("ranges of an ended session: %v %v", rs, err)
		}
		if ds, err := meta.DelegatedTo(tx, b); err != nil || len(ds) != 0 {
			t.Fatalf("delegations of an ended session: %v %v", ds, err)
		}
		if ds, err := meta.DelegatedTo(tx, a); err != nil || !slices.Equal(ds, []meta.Ino{d}) {
			t.Fatalf("delegations of a: %v %v", ds, err)
		}
		return nil
	})
	checkInvariants(t, h.S)

	// A session holds a bounded number of ranges; ending it by its holder
	// drops them and its delegations.
	for range meta.MaxRanges - 1 {
		h.Must(&metapb.GrantRange{Holder: a, Count: 1 + uint32(h.Clock/1e9%3)})
	}
	h.Expect(syscall.ENOSPC, &metapb.GrantRange{Holder: a, Count: 1})
	checkInvariants(t, h.S)
	h.Must(h.As(a, &metapb.EndSession{Holder: a}))
	h.Must(create(d, "after", 0))
	checkInvariants(t, h.S)
}

// testDelegationSnapshot checks that sessions, delegations and ranges travel
// in a snapshot, and that a restored store grants nothing twice.
func testDelegationSnapshot(t *testing.T, open func(testing.TB) meta.Store) {
	h := NewH(t, open(t))
	d := h.Mkdir(meta.RootIno, "d")
	h.Must(&metapb.OpenSession{Holder: 7, LeaseNs: lease})
	r := h.Must(&metapb.GrantRange{Holder: 7, Count: 100})
	h.Must(&metapb.Delegate{Holder: 7, Dir: d})
	h.Must(h.As(7, bop(7, 1, create(d, "a", r.Ino+5))))
	rp, err := h.S.ReadPoint()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := meta.WriteSnapshot(rp, &buf); err != nil {
		t.Fatal(err)
	}
	rp.Release()
	fresh := NewH(t, open(t))
	fresh.Clock = h.Clock
	if err := meta.RestoreSnapshot(fresh.S, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if diff := DiffDumps(Dump(t, h.S), Dump(t, fresh.S)); diff != "" {
		t.Fatalf("restored state differs:\n%s", diff)
	}
	checkInvariants(t, fresh.S)
	for _, x := range []*H{h, fresh} {
		x.Expect(meta.ErrnoNotGranted, x.As(7, bop(7, 2, create(d, "b", r.Ino+5))))
		x.Expect(meta.ErrnoDelegated, create(d, "b", 0))
		x.Must(x.As(7, bop(7, 2, create(d, "b", r.Ino+6))))
		next := x.Must(&metapb.GrantRange{Holder: 7, Count: 10})
		if next.Ino != r.Until {
			t.Fatalf("range after restore starts at %d, want %d", next.Ino, r.Until)
		}
	}
	if diff := DiffDumps(Dump(t, h.S), Dump(t, fresh.S)); diff != "" {
		t.Fatalf("the same entries after the restore diverge:\n%s", diff)
	}
}
