package master

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/skyfs/skyfs/proto/skyfspb"
	"github.com/skyfs/skyfs/ufs"
)

// gatedUFS holds its first Rename until release is closed, and counts them.
type gatedUFS struct {
	ufs.FileSystem
	started chan struct{}
	release chan struct{}
	renames atomic.Int32
}

func (g *gatedUFS) Rename(ctx context.Context, src, dst string) error {
	if g.renames.Add(1) == 1 {
		close(g.started)
		<-g.release
	}
	return g.FileSystem.Rename(ctx, src, dst)
}

// TestRetriedRenameJoinsTheFirst: a caller that gives up while its rename's
// UFS side is under way, then retries with the same request id, gets the
// first attempt's outcome. The UFS rename runs once, the first attempt
// finishes though its caller left, and the namespace and the UFS agree.
// Planned again instead, the retry would find the object already moved and
// answer ENOENT, and the namespace would keep the old name.
func TestRetriedRenameJoinsTheFirst(t *testing.T) {
	g := &gatedUFS{started: make(chan struct{}), release: make(chan struct{})}
	e := newEnvWith(t, func(c *Config) {
		c.WrapUFS = func(fsys ufs.FileSystem, _ string) ufs.FileSystem {
			g.FileSystem = fsys
			return g
		}
	})
	dir := e.mount(t, "/w", false, "a.txt")
	e.list(t, "/w")
	req := e.req()
	rename := func(ctx context.Context) (*pb.RenameResponse, error) {
		return e.ns.Rename(ctx, &pb.RenameRequest{Request: req, OldPath: "/w/a.txt", NewPath: "/w/b.txt"})
	}

	// The first attempt's caller gives up while the UFS rename is held.
	ctx, cancel := context.WithCancel(ctxT(t))
	first := make(chan error, 1)
	go func() {
		_, err := rename(ctx)
		first <- err
	}()
	<-g.started
	cancel()
	if err := <-first; err == nil {
		t.Fatal("the abandoned attempt returned no error")
	}

	// The retry waits for the first attempt, which goes on without its caller.
	retry := make(chan *pb.RenameResponse, 1)
	go func() {
		r, err := rename(ctxT(t))
		mustOK(t, "retried rename", r.GetErrno(), r.GetMessage(), err)
		retry <- r
	}()
	waitFor(t, "the retry to join the first attempt", func() bool { return e.srv.joined.Load() == 1 })
	close(g.release)
	<-retry
	if n := g.renames.Load(); n != 1 {
		t.Errorf("the UFS rename ran %d times, want once", n)
	}
	if exists(filepath.Join(dir, "a.txt")) || !exists(filepath.Join(dir, "b.txt")) {
		t.Error("the UFS file was not moved")
	}
	if got := e.list(t, "/w"); len(got) != 1 || got[0] != "b.txt" {
		t.Errorf("/w lists %v, want [b.txt]", got)
	}

	// A retry after the rename was applied is answered from the journal,
	// though its old name is gone.
	r, err := rename(ctxT(t))
	mustOK(t, "rename retried after it was applied", r.GetErrno(), r.GetMessage(), err)
	if !r.Replayed || g.renames.Load() != 1 {
		t.Errorf("late retry: replayed=%v, UFS renames %d", r.Replayed, g.renames.Load())
	}
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
