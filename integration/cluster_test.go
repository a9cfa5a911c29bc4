package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skyfs/skyfs/client"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// Raft timers of the test clusters: short, but not so short that a loaded
// two-core machine holds spurious elections.
var timers = []string{"--heartbeat-timeout", "500ms", "--election-timeout", "500ms", "--lease-timeout", "250ms"}

// node is one masterd process.
type node struct {
	id, raft, rpc, dir string
	logPath            string
	extra              []string // flags beyond the cluster's
	join               bool

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool // SIGSTOPped
}

// cluster is a group of masters started by one test.
type cluster struct {
	t     testing.TB
	dir   string
	nodes []*node
	flags []string
	sec   clientSecurity // from flags: security_harness_test.go
}

// freeAddrs returns n loopback addresses whose ports were free together.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// newCluster starts n masters with extra flags and waits for a leader.
func newCluster(t testing.TB, n int, flags ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir()}
	c.flags = secureByDefault(flags, filepath.Join(c.dir, "secrets"))
	c.sec = securityOf(c.flags)
	addrs := freeAddrs(t, 2*n)
	var peers []string
	for i := range n {
		nd := &node{id: fmt.Sprintf("m%d", i+1), raft: addrs[2*i], rpc: addrs[2*i+1]}
		nd.dir = filepath.Join(c.dir, nd.id)
		nd.logPath = filepath.Join(c.dir, nd.id+".log")
		peers = append(peers, nd.id+"="+nd.raft+"="+nd.rpc)
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		nd.extra = []string{"--peers", strings.Join(peers, ",")}
	}
	t.Cleanup(c.shutdown)
	for _, nd := range c.nodes {
		c.start(nd)
	}
	c.waitLeader(30 * time.Second)
	return c
}

// addNode starts one more master with --join (not yet a member).
func (c *cluster) addNode() *node {
	addrs := freeAddrs(c.t, 2)
	nd := &node{id: fmt.Sprintf("m%d", len(c.nodes)+1), raft: addrs[0], rpc: addrs[1], join: true}
	nd.dir = filepath.Join(c.dir, nd.id)
	nd.logPath = filepath.Join(c.dir, nd.id+".log")
	nd.extra = []string{"--join"}
	c.nodes = append(c.nodes, nd)
	c.start(nd)
	return nd
}

// start runs nd's masterd.
func (c *cluster) start(nd *node) {
	c.t.Helper()
	args := []string{"--id", nd.id, "--data-dir", nd.dir, "--raft-addr", nd.raft, "--rpc-addr", nd.rpc, "--log-level", "info"}
	args = append(args, timers...)
	args = append(args, c.flags...)
	args = append(args, nd.extra...)
	logf, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(bin.masterd, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("start %s: %v", nd.id, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	nd.mu.Lock()
	nd.cmd, nd.exited, nd.stopped = cmd, exited, false
	nd.mu.Unlock()
}

// signal sends sig to nd's process.
func (nd *node) signal(sig syscall.Signal) error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return fmt.Errorf("%s is not running", nd.id)
	}
	switch sig {
	case syscall.SIGSTOP:
		nd.stopped = true
	case syscall.SIGCONT:
		nd.stopped = false
	}
	return nd.cmd.Process.Signal(sig)
}

// kill SIGKILLs nd and waits for it to exit.
func (c *cluster) kill(nd *node) {
	c.t.Helper()
	if err := nd.signal(syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	<-nd.exited
	nd.mu.Lock()
	nd.cmd = nil
	nd.mu.Unlock()
}

// stop SIGTERMs nd and waits for a clean exit.
func (c *cluster) stop(nd *node) {
	c.t.Helper()
	nd.mu.Lock()
	cmd, exited, stopped := nd.cmd, nd.exited, nd.stopped
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	if stopped {
		cmd.Process.Signal(syscall.SIGCONT)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			c.t.Errorf("%s exited with %d after SIGTERM", nd.id, code)
		}
	case <-time.After(20 * time.Second):
		c.t.Errorf("%s did not stop within 20s of SIGTERM; killing it", nd.id)
		cmd.Process.Kill()
		<-exited
	}
	nd.mu.Lock()
	nd.cmd = nil
	nd.mu.Unlock()
}

// shutdown stops every master and prints their logs if the test failed.
func (c *cluster) shutdown() {
	var wg sync.WaitGroup
	for _, nd := range c.nodes {
		wg.Go(func() { c.stop(nd) })
	}
	wg.Wait()
	if c.t.Failed() || os.Getenv("SKYFS_TEST_LOGS") != "" {
		for _, nd := range c.nodes {
			b, _ := os.ReadFile(nd.logPath)
			if len(b) > 16<<10 {
				b = append([]byte("...\n"), b[len(b)-16<<10:]...)
			}
			c.t.Logf("---- %s log ----\n%s", nd.id, b)
		}
	}
}

// rpcAddrs lists the masters' client addresses.
func (c *cluster) rpcAddrs() []string {
	var out []string
	for _, nd := range c.nodes {
		out = append(out, nd.rpc)
	}
	return out
}

// client returns a client of every master, closed at the end of the test.
func (c *cluster) client(cfg client.Config) *client.Client {
	c.t.Helper()
	if cfg.Masters == nil {
		cfg.Masters = c.rpcAddrs()
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = time.Second
	}
	c.sec.apply(c.t, &cfg)
	cl, err := client.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// status asks nd about itself; nil when it does not answer.
func (c *cluster) status(nd *node) *pb.Member {
	cfg := client.Config{Masters: []string{nd.rpc}, CallTimeout: 500 * time.Millisecond}
	c.sec.apply(c.t, &cfg)
	cl, err := client.New(cfg)
	if err != nil {
		return nil
	}
	defer cl.Close()
	m, err := cl.MemberStatus(context.Background(), nd.rpc)
	if err != nil {
		return nil
	}
	return m
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// leader returns the running master that reports itself leader with the
// highest term, or nil.
func (c *cluster) leader() *node {
	var best *node
	var term uint64
	for _, nd := range c.nodes {
		nd.mu.Lock()
		up := nd.cmd != nil && !nd.stopped
		nd.mu.Unlock()
		if !up {
			continue
		}
		if m := c.status(nd); m != nil && m.Role == "leader" && m.Term >= term {
			best, term = nd, m.Term
		}
	}
	return best
}

// waitLeader waits until some master leads and serves namespace reads.
func (c *cluster) waitLeader(timeout time.Duration) *node {
	c.t.Helper()
	var l *node
	waitFor(c.t, timeout, "a serving leader", func() bool {
		if l = c.leader(); l == nil {
			return false
		}
		cfg := client.Config{Masters: []string{l.rpc}, CallTimeout: 500 * time.Millisecond}
		c.sec.apply(c.t, &cfg)
		cl, err := client.New(cfg)
		if err != nil {
			return false
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err = cl.Stat(ctx, "/")
		return err == nil
	})
	return l
}

// node returns the node with the given RPC address.
func (c *cluster) byRPC(addr string) *node {
	for _, nd := range c.nodes {
		if nd.rpc == addr {
			return nd
		}
	}
	return nil
}

// cli runs the skyfs binary against the cluster and returns its exit code,
// stdout and stderr.
func (c *cluster) cli(args ...string) (int, string, string) {
	c.t.Helper()
	cmd := exec.Command(bin.skyfs, args...)
	cmd.Env = append(os.Environ(), "SKYFS_MASTERS="+strings.Join(c.rpcAddrs(), ","))
	cmd.Env = append(cmd.Env, c.sec.env()...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			c.t.Fatalf("skyfs %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return code, out.String(), errb.String()
}

// mustCLI runs the skyfs binary and fails the test unless it succeeds.
func (c *cluster) mustCLI(args ...string) string {
	c.t.Helper()
	code, out, errs := c.cli(args...)
	if code != 0 {
		c.t.Fatalf("skyfs %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

// listAll returns name → ino of every entry of a directory.
func listAll(ctx context.Context, t testing.TB, cl *client.Client, dir string) map[string]uint64 {
	t.Helper()
	out := make(map[string]uint64)
	for e, err := range cl.List(ctx, dir, 5000, false) {
		if err != nil {
			t.Fatalf("list %s: %v", dir, err)
		}
		out[string(e.Name)] = e.Ino
	}
	return out
}

// readLog returns nd's log so far.
func readLog(nd *node) (string, error) {
	b, err := os.ReadFile(nd.logPath)
	return string(b), err
}
