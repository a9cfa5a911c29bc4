package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/skyfs/skyfs/client"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// The linearizability model: a directory holding up to three names, each
// absent (0) or naming an inode.
const (
	opCreate = iota
	opRename
	opStat
	opUnlink
)

var linNames = []string{"a", "b", "c"}

type linInput struct {
	op   int
	a, b int // indexes into linNames
}

type linOutput struct {
	errno syscall.Errno
	ino   uint64
}

type linState [3]uint64

var linModel = porcupine.Model{
	Init: func() any { return linState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(linState), input.(linInput), output.(linOutput)
		switch in.op {
		case opCreate:
			if s[in.a] != 0 {
				return out.errno == syscall.EEXIST, s
			}
			if out.errno != 0 || out.ino == 0 {
				return false, s
			}
			s[in.a] = out.ino
			return true, s
		case opStat:
			if s[in.a] == 0 {
				return out.errno == syscall.ENOENT, s
			}
			return out.errno == 0 && out.ino == s[in.a], s
		case opUnlink:
			if s[in.a] == 0 {
				return out.errno == syscall.ENOENT, s
			}
			ok := out.errno == 0 && out.ino == s[in.a]
			s[in.a] = 0
			return ok, s
		case opRename:
			if s[in.a] == 0 {
				return out.errno == syscall.ENOENT, s
			}
			ok := out.errno == 0 && out.ino == s[in.a]
			if in.a != in.b {
				s[in.b], s[in.a] = s[in.a], 0
			}
			return ok, s
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		op := [...]string{"create", "rename", "stat", "unlink"}[in.op]
		arg := linNames[in.a]
		if in.op == opRename {
			arg += " → " + linNames[in.b]
		}
		return fmt.Sprintf("%s(%s) = %v ino %d", op, arg, out.errno, out.ino)
	},
}

// linCall runs one operation and returns its outcome; err is set when the
// outcome is not a POSIX one (the call did not complete).
func linCall(ctx context.Context, cl *client.Client, in linInput) (linOutput, error) {
	p := "/lin/" + linNames[in.a]
	var ino uint64
	var err error
	switch in.op {
	case opCreate:
		var r *pb.EntryResponse
		if r, err = cl.Create(ctx, &pb.CreateRequest{Path: p, Mode: 0o644}); err == nil {
			ino = r.Ino
		}
	case opStat:
		var a *pb.Attr
		if a, err = cl.Stat(ctx, p); err == nil {
			ino = a.Ino
		}
	case opUnlink:
		var r *pb.RemoveResponse
		if r, err = cl.Unlink(ctx, &pb.UnlinkRequest{Path: p}); err == nil {
			ino = r.Ino
		}
	case opRename:
		var r *pb.RenameResponse
		if r, err = cl.Rename(ctx, &pb.RenameRequest{OldPath: p, NewPath: "/lin/" + linNames[in.b]}); err == nil {
			ino = r.Ino
		}
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return linOutput{errno: en}, nil
	}
	return linOutput{ino: ino}, err
}

// TestLinearizable records a concurrent history of create, rename, stat and
// unlink on three names across a leader kill and checks it with porcupine.
func TestLinearizable(t *testing.T) {
	c := newCluster(t, 3)
	ctx := context.Background()
	setup := c.client(client.Config{})
	if _, err := setup.Mkdir(ctx, &pb.MkdirRequest{Path: "/lin", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	const clients, perClient = 8, 150
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		wg      sync.WaitGroup
		done    = make(chan struct{})
	)
	start := time.Now()
	for id := range clients {
		cl := c.client(client.Config{})
		rng := rand.New(rand.NewPCG(uint64(id), 99))
		wg.Go(func() {
			for range perClient {
				in := linInput{op: rng.IntN(4), a: rng.IntN(3), b: rng.IntN(3)}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				call := time.Since(start).Nanoseconds()
				out, err := linCall(ctx, cl, in)
				ret := time.Since(start).Nanoseconds()
				cancel()
				if err != nil {
					t.Errorf("client %d: %+v did not complete: %v", id, in, err)
					return
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
				n := len(history)
				mu.Unlock()
				if n == clients*perClient/3 {
					close(done)
				}
			}
		})
	}
	// Kill the leader a third of the way through.
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the history does not grow")
	}
	old := c.leader()
	c.kill(old)
	wg.Wait()
	t.Logf("%d operations; leader %s killed after %d", len(history), old.id, clients*perClient/3)

	res, info := porcupine.CheckOperationsVerbose(linModel, history, 60*time.Second)
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Errorf("linearizability check timed out")
	default:
		t.Errorf("history is not linearizable")
		for _, part := range info.PartialLinearizationsOperations() {
			for i, lin := range part {
				if i >= 1 {
					break
				}
				for _, op := range lin[max(0, len(lin)-10):] {
					t.Logf("  longest linearizable prefix ends: %s", linModel.DescribeOperation(op.Input, op.Output))
				}
			}
		}
	}
}

// TestLinearizableModel checks that the model refuses a history in which a
// stat that began after an unlink returned still sees the file.
func TestLinearizableModel(t *testing.T) {
	ok := []porcupine.Operation{
		{ClientId: 0, Input: linInput{op: opCreate}, Output: linOutput{ino: 5}, Call: 0, Return: 10},
		{ClientId: 1, Input: linInput{op: opUnlink}, Output: linOutput{ino: 5}, Call: 20, Return: 30},
		{ClientId: 0, Input: linInput{op: opStat}, Output: linOutput{errno: syscall.ENOENT}, Call: 40, Return: 50},
		{ClientId: 1, Input: linInput{op: opCreate, a: 1}, Output: linOutput{ino: 6}, Call: 60, Return: 70},
		{ClientId: 0, Input: linInput{op: opRename, a: 1, b: 2}, Output: linOutput{ino: 6}, Call: 80, Return: 90},
		{ClientId: 1, Input: linInput{op: opStat, a: 2}, Output: linOutput{ino: 6}, Call: 85, Return: 95},
	}
	if !porcupine.CheckOperations(linModel, ok) {
		t.Error("a linearizable history was refused")
	}
	bad := append([]porcupine.Operation(nil), ok[:2]...)
	bad = append(bad, porcupine.Operation{ClientId: 0, Input: linInput{op: opStat}, Output: linOutput{ino: 5}, Call: 40, Return: 50})
	if porcupine.CheckOperations(linModel, bad) {
		t.Error("a stale read was accepted")
	}
}
