package master

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/meta/metatest"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// asHolder is ctx of a call from the mount daemon of session holder.
func asHolder(ctx context.Context, holder uint64) context.Context {
	return metadata.AppendToOutgoingContext(ctx, HolderMetadata, strconv.FormatUint(holder, 10))
}

// openHolder opens a session with lease, grants it count numbers and
// delegates dir to it; it returns the first number.
func (e *env) openHolder(t *testing.T, holder uint64, lease time.Duration, dir uint64, count uint32) uint64 {
	t.Helper()
	ctx := ctxT(t)
	s, err := e.ns.OpenSession(ctx, &pb.OpenSessionRequest{Request: e.req(), Holder: holder, LeaseNs: int64(lease)})
	mustOK(t, "open session", s.GetErrno(), s.GetMessage(), err)
	if want := e.now.Load() + int64(lease); s.ExpiresNs < want || s.ExpiresNs > want+100 {
		t.Fatalf("session expires %d, want %d (the leader's clock and the lease)", s.ExpiresNs, want)
	}
	r, err := e.ns.GrantRange(ctx, &pb.GrantRangeRequest{Request: e.req(), Holder: holder, Count: count})
	mustOK(t, "grant range", r.GetErrno(), r.GetMessage(), err)
	if r.End != r.Start+uint64(count) {
		t.Fatalf("range [%d, %d) for %d", r.Start, r.End, count)
	}
	d, err := e.ns.Delegate(ctx, &pb.DelegateRequest{Request: e.req(), Holder: holder, Dir: dir})
	mustOK(t, "delegate", d.GetErrno(), d.GetMessage(), err)
	return r.Start
}

func (e *env) createOp(parent uint64, name string, ino uint64) *pb.FlushOp {
	return &pb.FlushOp{Ino: ino, Op: &pb.FlushOp_Create{Create: &pb.CreateRequest{
		Request: e.req(), Parent: parent, Name: []byte(name), Mode: 0o644, Caller: &pb.Caller{Uid: 5, Gid: 6}}}}
}

func (e *env) completeOp(ino uint64, size uint64) *pb.FlushOp {
	return &pb.FlushOp{Op: &pb.FlushOp_Complete{Complete: &pb.CompleteFileRequest{
		Request: e.req(), Ino: ino, Size: size, Ufs: &pb.Fingerprint{Size: int64(size), Etag: "t"}}}}
}

func TestDelegationCalls(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	mk, err := e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "/d", Mode: 0o755})
	mustOK(t, "mkdir", mk.GetErrno(), mk.GetMessage(), err)
	d := mk.Ino
	mk, err = e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "/other", Mode: 0o755})
	mustOK(t, "mkdir", mk.GetErrno(), mk.GetMessage(), err)
	other := mk.Ino
	first := e.openHolder(t, 5, time.Minute, d, 10)

	// One flush: creates and their completions, one entry.
	before := e.j.proposals.Load()
	f, err := e.ns.Flush(ctx, &pb.FlushRequest{Holder: 5, Ops: []*pb.FlushOp{
		e.createOp(d, "a", first), e.completeOp(first, 4096),
		e.createOp(d, "b", first+1), e.completeOp(first+1, 10),
		e.createOp(d, "a", first+2), // EEXIST, the others stand
	}})
	mustOK(t, "flush", f.GetErrno(), f.GetMessage(), err)
	if n := e.j.proposals.Load() - before; n != 1 {
		t.Fatalf("flush proposed %d entries, want 1", n)
	}
	want := []syscall.Errno{0, 0, 0, 0, syscall.EEXIST}
	for i, r := range f.Results {
		if syscall.Errno(r.Errno) != want[i] {
			t.Fatalf("result %d: %v (%s), want %v", i, syscall.Errno(r.Errno), r.Message, want[i])
		}
	}
	if a := f.Results[1].Attr; a == nil || a.Ino != first || a.Size != 4096 || a.Pending || a.Uid != 5 {
		t.Fatalf("created and completed: %+v", a)
	}

	// Bad input is refused with a message and changes nothing.
	dump := metatest.Dump(t, e.j.store)
	for name, c := range map[string]struct {
		req  *pb.FlushRequest
		want syscall.Errno
	}{
		"no holder":        {&pb.FlushRequest{Ops: []*pb.FlushOp{e.createOp(d, "x", 0)}}, syscall.EINVAL},
		"no operations":    {&pb.FlushRequest{Holder: 5}, syscall.EINVAL},
		"path":             {&pb.FlushRequest{Holder: 5, Ops: []*pb.FlushOp{{Op: &pb.FlushOp_Unlink{Unlink: &pb.UnlinkRequest{Request: e.req(), Path: "/d/a"}}}}}, syscall.EINVAL},
		"no request id":    {&pb.FlushRequest{Holder: 5, Ops: []*pb.FlushOp{{Op: &pb.FlushOp_Unlink{Unlink: &pb.UnlinkRequest{Parent: d, Name: []byte("a")}}}}}, syscall.EINVAL},
		"bad name":         {&pb.FlushRequest{Holder: 5, Ops: []*pb.FlushOp{e.createOp(d, "x/y", 0)}}, syscall.EINVAL},
		"number on unlink": {&pb.FlushRequest{Holder: 5, Ops: []*pb.FlushOp{{Ino: first + 3, Op: &pb.FlushOp_Unlink{Unlink: &pb.UnlinkRequest{Request: e.req(), Parent: d, Name: []byte("a")}}}}}, syscall.EINVAL},
		"not held":         {&pb.FlushRequest{Holder: 5, Ops: []*pb.FlushOp{e.createOp(d, "x", first+3), e.createOp(other, "x", 0)}}, meta.ErrnoNotHeld},
		"not granted":      {&pb.FlushRequest{Holder: 5, Ops: []*pb.FlushOp{e.createOp(d, "x", first+10)}}, meta.ErrnoNotGranted},
		"spent":            {&pb.FlushRequest{Holder: 5, Ops: []*pb.FlushOp{e.createOp(d, "x", first)}}, meta.ErrnoNotGranted},
		"no session":       {&pb.FlushRequest{Holder: 6, Ops: []*pb.FlushOp{e.createOp(d, "x", 0)}}, meta.ErrnoStaleLease},
	} {
		f, err := e.ns.Flush(ctx, c.req)
		if err != nil || syscall.Errno(f.Errno) != c.want || f.Message == "" || len(f.Results) != 0 {
			t.Fatalf("%s: %v %v (%q), want %v", name, err, syscall.Errno(f.GetErrno()), f.GetMessage(), c.want)
		}
	}
	if diff := metatest.DiffDumps(dump, metatest.Dump(t, e.j.store)); diff != "" {
		t.Fatalf("refused flushes changed the state:\n%s", diff)
	}
	for name, c := range map[string]struct {
		call func() (int32, string, error)
		want syscall.Errno
	}{
		"lease too long": {func() (int32, string, error) {
			r, err := e.ns.OpenSession(ctx, &pb.OpenSessionRequest{Request: e.req(), Holder: 6, LeaseNs: meta.MaxLease + 1})
			return r.GetErrno(), r.GetMessage(), err
		}, syscall.EINVAL},
		"session of no holder": {func() (int32, string, error) {
			r, err := e.ns.OpenSession(ctx, &pb.OpenSessionRequest{Request: e.req(), LeaseNs: int64(time.Minute)})
			return r.GetErrno(), r.GetMessage(), err
		}, syscall.EINVAL},
		"empty range": {func() (int32, string, error) {
			r, err := e.ns.GrantRange(ctx, &pb.GrantRangeRequest{Request: e.req(), Holder: 5})
			return r.GetErrno(), r.GetMessage(), err
		}, syscall.EINVAL},
		"range without session": {func() (int32, string, error) {
			r, err := e.ns.GrantRange(ctx, &pb.GrantRangeRequest{Request: e.req(), Holder: 6, Count: 1})
			return r.GetErrno(), r.GetMessage(), err
		}, meta.ErrnoStaleLease},
		"held elsewhere": {func() (int32, string, error) {
			if r, err := e.ns.OpenSession(ctx, &pb.OpenSessionRequest{Request: e.req(), Holder: 7, LeaseNs: int64(time.Minute)}); err != nil || r.Errno != 0 {
				t.Fatal(err, r.GetErrno())
			}
			r, err := e.ns.Delegate(ctx, &pb.DelegateRequest{Request: e.req(), Holder: 7, Dir: d})
			return r.GetErrno(), r.GetMessage(), err
		}, syscall.EBUSY},
		"give back what is not held": {func() (int32, string, error) {
			r, err := e.ns.Undelegate(ctx, &pb.UndelegateRequest{Request: e.req(), Holder: 7, Dir: d})
			return r.GetErrno(), r.GetMessage(), err
		}, meta.ErrnoNotHeld},
	} {
		en, msg, err := c.call()
		if err != nil || syscall.Errno(en) != c.want || msg == "" {
			t.Fatalf("%s: %v %v (%q), want %v", name, err, syscall.Errno(en), msg, c.want)
		}
	}

	// The holder's own lookups recall nothing.
	l, err := e.ns.Lookup(asHolder(ctx, 5), &pb.LookupRequest{Parent: d, Name: []byte("a")})
	mustOK(t, "holder's lookup", l.GetErrno(), l.GetMessage(), err)
	if n, _, _ := e.srv.RecallStats(); n != 0 {
		t.Fatalf("%d recalls for the holder's own lookup", n)
	}
	u, err := e.ns.Undelegate(ctx, &pb.UndelegateRequest{Request: e.req(), Holder: 5, Dir: d})
	mustOK(t, "give back", u.GetErrno(), u.GetMessage(), err)
	s, err := e.ns.EndSession(ctx, &pb.EndSessionRequest{Request: e.req(), Holder: 5})
	mustOK(t, "end session", s.GetErrno(), s.GetMessage(), err)
	if err := e.j.store.View(meta.Check); err != nil {
		t.Fatal(err)
	}
}

// TestRecall has another host look up, list and create in a directory a
// holder is creating in: the leader recalls the delegation on the holder's
// stream, the holder flushes and gives it back, and the other host sees
// what the holder closed.
func TestRecall(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	mk, err := e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "/d", Mode: 0o755})
	mustOK(t, "mkdir", mk.GetErrno(), mk.GetMessage(), err)
	d := mk.Ino
	first := e.openHolder(t, 5, time.Minute, d, 10)
	next := first

	// The holder: answers each recall by flushing what is pending and
	// giving the directory back.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := e.ns.Recalls(asHolder(sctx, 5), &pb.RecallsRequest{Holder: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex // guards pending and held
	pending := []*pb.FlushOp{e.createOp(d, "closed", next), e.completeOp(next, 3)}
	held := true
	next++
	answered := make(chan error, 4)
	go func() {
		for {
			n, err := stream.Recv()
			if err != nil {
				return
			}
			mu.Lock()
			if !held {
				mu.Unlock()
				continue // a recall asked again: given back already
			}
			held = false
			hctx := asHolder(ctx, 5)
			if len(pending) > 0 {
				f, err := e.ns.Flush(hctx, &pb.FlushRequest{Holder: 5, Ops: pending})
				if err == nil && f.Errno != 0 {
					err = syscall.Errno(f.Errno)
				}
				if err != nil {
					mu.Unlock()
					answered <- err
					return
				}
				pending = nil
			}
			mu.Unlock()
			u, err := e.ns.Undelegate(hctx, &pb.UndelegateRequest{Request: e.req(), Holder: 5, Dir: n.Dir})
			if err == nil && u.Errno != 0 {
				err = syscall.Errno(u.Errno)
			}
			answered <- err
		}
	}()

	l, err := e.ns.Lookup(ctx, &pb.LookupRequest{Parent: d, Name: []byte("closed")})
	mustOK(t, "lookup after recall", l.GetErrno(), l.GetMessage(), err)
	if l.Attr.Ino != first || l.Attr.Size != 3 {
		t.Fatalf("lookup of the holder's file: %+v", l.Attr)
	}
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	n, total, _ := e.srv.RecallStats()
	t.Logf("recall: %d, %v", n, total)
	if n != 1 {
		t.Fatalf("%d recalls", n)
	}

	// Taken again, then a create by another host recalls it too.
	dl, err := e.ns.Delegate(ctx, &pb.DelegateRequest{Request: e.req(), Holder: 5, Dir: d})
	mustOK(t, "delegate again", dl.GetErrno(), dl.GetMessage(), err)
	mu.Lock()
	pending, held = []*pb.FlushOp{e.createOp(d, "x", next)}, true
	mu.Unlock()
	c, err := e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Parent: d, Name: []byte("x"), Mode: 0o644})
	if err != nil || syscall.Errno(c.Errno) != syscall.EEXIST {
		t.Fatalf("create of a name the holder made: %v %v", err, syscall.Errno(c.GetErrno()))
	}
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	c, err = e.ns.Create(ctx, &pb.CreateRequest{Request: e.req(), Parent: d, Name: []byte("y"), Mode: 0o644})
	mustOK(t, "create once given back", c.GetErrno(), c.GetMessage(), err)
	if n, _, _ := e.srv.RecallStats(); n != 2 {
		t.Fatalf("%d recalls", n)
	}
}

// TestRecallUnanswered: a holder that does not give a recalled delegation
// back within its lease loses it, and what it had not flushed is refused.
func TestRecallUnanswered(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	mk, err := e.ns.Mkdir(ctx, &pb.MkdirRequest{Request: e.req(), Path: "/d", Mode: 0o755})
	mustOK(t, "mkdir", mk.GetErrno(), mk.GetMessage(), err)
	d := mk.Ino
	first := e.openHolder(t, 5, time.Second, d, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The leader's clock runs on past the lease while the lookup waits.
		for i := 0; i < 200; i++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
			e.now.Add(int64(50 * time.Millisecond))
			if n, _, _ := e.srv.RecallStats(); n > 0 {
				return
			}
		}
	}()
	l, err := e.ns.ReadDir(ctx, &pb.ReadDirRequest{Ino: d})
	mustOK(t, "listing after the lease", l.GetErrno(), l.GetMessage(), err)
	<-done
	if len(l.Entries) != 0 {
		t.Fatalf("entries %v", l.Entries)
	}
	f, err := e.ns.Flush(asHolder(ctx, 5), &pb.FlushRequest{Holder: 5, Ops: []*pb.FlushOp{e.createOp(d, "late", first)}})
	if err != nil || (syscall.Errno(f.Errno) != meta.ErrnoNotHeld && syscall.Errno(f.Errno) != meta.ErrnoStaleLease) {
		t.Fatalf("flush after losing the delegation: %v %v", err, syscall.Errno(f.GetErrno()))
	}
	if err := e.j.store.View(meta.Check); err != nil {
		t.Fatal(err)
	}
}

// TestFlushUFSSide flushes operations under a local UFS mount: their UFS
// side is done on the leader, in order, on the state the operations before
// them leave, and a failing one ends the flush there.
func TestFlushUFSSide(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	dir := e.mount(t, "/w", false, "old.txt")
	if got := e.list(t, "/w"); len(got) != 1 {
		t.Fatalf("listing %v", got)
	}
	rs, err := e.ns.ResolvePath(ctx, &pb.ResolvePathRequest{Path: "/w"})
	mustOK(t, "resolve", rs.GetErrno(), rs.GetMessage(), err)
	w := rs.Attr.Ino
	first := e.openHolder(t, 5, time.Minute, w, 10)

	// The holder wrote the object of "new" before flushing its completion.
	if err := os.WriteFile(filepath.Join(dir, "new"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := e.ns.Flush(asHolder(ctx, 5), &pb.FlushRequest{Holder: 5, Ops: []*pb.FlushOp{
		{Ino: first, Op: &pb.FlushOp_Mkdir{Mkdir: &pb.MkdirRequest{Request: e.req(), Parent: w, Name: []byte("sub"), Mode: 0o755}}},
		e.createOp(w, "new", first+1), e.completeOp(first+1, 3),
		{Op: &pb.FlushOp_Rename{Rename: &pb.RenameRequest{Request: e.req(), OldParent: w, OldName: []byte("new"), NewParent: w, NewName: []byte("renamed")}}},
		{Op: &pb.FlushOp_Unlink{Unlink: &pb.UnlinkRequest{Request: e.req(), Parent: w, Name: []byte("old.txt")}}},
		e.createOp(w, "pending", first+2), // never closed: no object, pending
		{Op: &pb.FlushOp_Unlink{Unlink: &pb.UnlinkRequest{Request: e.req(), Parent: w, Name: []byte("pending")}}},
	}})
	mustOK(t, "flush", f.GetErrno(), f.GetMessage(), err)
	for i, r := range f.Results {
		if r.Errno != 0 {
			t.Fatalf("op %d: %v (%s)", i, syscall.Errno(r.Errno), r.Message)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "sub")); err != nil || !fi.IsDir() {
		t.Fatalf("mkdir left no UFS directory: %v", err)
	}
	if exists(filepath.Join(dir, "new")) || !exists(filepath.Join(dir, "renamed")) || exists(filepath.Join(dir, "old.txt")) {
		t.Fatalf("UFS after the flush: new %v renamed %v old.txt %v", exists(filepath.Join(dir, "new")),
			exists(filepath.Join(dir, "renamed")), exists(filepath.Join(dir, "old.txt")))
	}
	names := func() string {
		t.Helper()
		r, err := e.ns.ReadDir(asHolder(ctx, 5), &pb.ReadDirRequest{Ino: w}) // the holder's: no recall
		mustOK(t, "readdir", r.GetErrno(), r.GetMessage(), err)
		var out []string
		for _, d := range r.Entries {
			out = append(out, string(d.Name))
		}
		return fmt.Sprint(out)
	}
	if got := names(); got != "[renamed sub]" {
		t.Fatalf("listing after the flush: %s", got)
	}

	// A UFS side that fails ends the flush: what came before is journaled,
	// what came after is not.
	if err := os.WriteFile(filepath.Join(dir, "sub2"), []byte("a file where the directory goes"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err = e.ns.Flush(asHolder(ctx, 5), &pb.FlushRequest{Holder: 5, Ops: []*pb.FlushOp{
		e.createOp(w, "a", first+3),
		{Ino: first + 4, Op: &pb.FlushOp_Mkdir{Mkdir: &pb.MkdirRequest{Request: e.req(), Parent: w, Name: []byte("sub2"), Mode: 0o755}}},
		e.createOp(w, "b", first+5),
	}})
	mustOK(t, "flush", f.GetErrno(), f.GetMessage(), err)
	if f.Results[0].Errno != 0 || f.Results[1].Errno == 0 || f.Results[1].Message == "" || syscall.Errno(f.Results[2].Errno) != syscall.ECANCELED {
		t.Fatalf("outcomes %v", f.Results)
	}
	if got := names(); got != "[a renamed sub]" {
		t.Fatalf("listing after the failed flush: %s", got)
	}
	if n, _, _ := e.srv.RecallStats(); n != 0 {
		t.Fatalf("%d recalls for the holder's own listings", n)
	}
}
