package raftjournal

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKillHelper is the process TestKillRestart kills: a one-master cluster on
// Badger that runs churn steps and prints each acknowledged one, with a
// checkpoint every 40 steps.
func TestKillHelper(t *testing.T) {
	dir, addr := os.Getenv("RAFTJOURNAL_KILL_DIR"), os.Getenv("RAFTJOURNAL_KILL_ADDR")
	if dir == "" {
		t.Skip("run by TestKillRestart")
	}
	cfg := Config{NodeID: "solo", Dir: dir, RaftAddr: addr, RPCAddr: "rpc-solo:7700", Logger: testLogger(),
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond}
	cfg.Peers = []Peer{{ID: cfg.NodeID, RaftAddr: cfg.RaftAddr, RPCAddr: cfg.RPCAddr}}
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "serving", n.Serving)
	for i := 0; ; i++ {
		churn(t, n, i, i+1)
		fmt.Printf("ack %d\n", i)
		if i%40 == 39 {
			if _, err := n.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestKillRestart kills a master with SIGKILL while it writes, with snapshots
// taken along the way, and restarts it on the same directory: every
// acknowledged step is there and nothing was applied twice.
func TestKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	dir, addr := t.TempDir(), freeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "RAFTJOURNAL_KILL_DIR="+dir, "RAFTJOURNAL_KILL_ADDR="+addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := -1
	sc := bufio.NewScanner(out)
	deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	for acked < 100 && sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			acked, _ = strconv.Atoi(rest)
		}
	}
	deadline.Stop()
	cmd.Process.Kill()
	cmd.Wait()
	if acked < 100 {
		t.Fatalf("helper acknowledged only %d steps", acked+1)
	}

	cfg := Config{NodeID: "solo", Dir: dir, RaftAddr: addr, RPCAddr: "rpc-solo:7700", Logger: testLogger(),
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond}
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	waitFor(t, 10*time.Second, "serving after the kill", n.Serving)
	if err := n.ReadBarrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n.Status().LastSnapshotIndex == 0 {
		t.Fatal("no snapshot was taken before the kill")
	}
	// Steps up to acked are whole; the step after it may be partly there.
	names := rootNames(t, n)
	ks := 0
	for name := range names {
		i, _ := strconv.Atoi(name[1:])
		switch {
		case name[0] == 'k' && i <= acked+1:
			ks++
		case name[0] == 't' && i == acked+1:
		default:
			t.Fatalf("%s exists after %d acknowledged steps: applied twice or invented", name, acked+1)
		}
	}
	for i := 0; i <= acked; i++ {
		if !names[fmt.Sprintf("k%03d", i)] {
			t.Fatalf("acknowledged k%03d lost", i)
		}
	}
	if got := inodeCount(t, n); got != uint64(len(names))+1 {
		t.Fatalf("%d inodes for %d names", got, len(names))
	}
	t.Logf("%d steps acknowledged, %d files after restart", acked+1, ks)
}
