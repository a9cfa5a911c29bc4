package raftjournal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestReplicate(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.nodes[c.leader()]
	inos := make(map[uint64]bool)
	const files = 50
	for i := range files {
		res := propose(t, l, createEntry(fmt.Sprintf("f%03d", i)))
		if res.Ino == 0 || inos[res.Ino] || res.Attr == nil {
			t.Fatalf("create %d: bad result %+v", i, res)
		}
		inos[res.Ino] = true
	}
	// A POSIX failure is a result, not an error.
	res, err := l.Propose(context.Background(), createEntry("f000"))
	if err != nil || res.Errno == 0 {
		t.Fatalf("duplicate create: %+v, %v", res, err)
	}
	for _, n := range c.nodes {
		waitFor(t, 10*time.Second, n.cfg.NodeID+" to apply every create", func() bool {
			return inodeCount(t, n) == files+1
		})
		if got := len(rootNames(t, n)); got != files {
			t.Fatalf("%s: %d names, want %d", n.cfg.NodeID, got, files)
		}
	}
	st := l.Status()
	if st.Role != "leader" || !st.Serving || st.LeaderID != l.cfg.NodeID || len(st.Members) != 3 ||
		st.AppliedIndex == 0 || st.CommitIndex < st.AppliedIndex || st.LastLogIndex < st.CommitIndex {
		t.Fatalf("leader status: %+v", st)
	}
	for _, m := range st.Members {
		if m.RPCAddr != "rpc-"+m.ID+":7700" || m.Suffrage != "voter" || m.RaftAddr == "" {
			t.Fatalf("member: %+v", m)
		}
	}
}

func TestProposeOnFollower(t *testing.T) {
	c := newCluster(t, 3, nil)
	li := c.leader()
	l := c.nodes[li]
	propose(t, l, createEntry("x"))
	for i, n := range c.nodes {
		if i == li {
			continue
		}
		// The follower learns the leader with the first heartbeat; its record
		// comes with the log.
		waitFor(t, 5*time.Second, "follower to know the leader", func() bool {
			id, _ := n.Leader()
			return id == l.cfg.NodeID
		})
		_, err := n.Propose(context.Background(), createEntry("y"))
		var nle *NotLeaderError
		if !errors.Is(err, ErrNotLeader) || !errors.As(err, &nle) {
			t.Fatalf("propose on follower: %v", err)
		}
		if nle.LeaderID != l.cfg.NodeID || nle.LeaderRPCAddr != l.cfg.RPCAddr {
			t.Fatalf("not-leader error names %q at %q, want %q at %q", nle.LeaderID, nle.LeaderRPCAddr, l.cfg.NodeID, l.cfg.RPCAddr)
		}
		if err := n.ReadBarrier(context.Background()); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("read barrier on follower: %v", err)
		}
		if err := n.CheckLease(context.Background()); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("lease on follower: %v", err)
		}
		if st := n.Status(); st.Role != "follower" || st.Serving || st.LeaderRPCAddr != l.cfg.RPCAddr {
			t.Fatalf("follower status: %+v", st)
		}
	}
}

// TestLeaderFailover closes the leader while clients write; a new leader takes
// over and every acknowledged create is there.
func TestLeaderFailover(t *testing.T) {
	c := newCluster(t, 3, nil)
	old := c.leader()
	var mu sync.Mutex
	acked := make(map[string]bool)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var target *Node
				mu.Lock()
				for _, n := range c.nodes {
					if n != nil && n.Serving() {
						target = n
					}
				}
				mu.Unlock()
				if target == nil {
					time.Sleep(time.Millisecond)
					continue
				}
				name := fmt.Sprintf("w%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				res, err := target.Propose(ctx, createEntry(name))
				cancel()
				if err == nil && res.Errno == 0 {
					mu.Lock()
					acked[name] = true
					mu.Unlock()
				}
			}
		}()
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	waitFor(t, 10*time.Second, "some writes", func() bool { return count() >= 50 })
	mu.Lock()
	oldNode := c.nodes[old]
	c.nodes[old] = nil
	mu.Unlock()
	if err := oldNode.Close(); err != nil {
		t.Fatal(err)
	}
	before := count()
	nl := c.leader()
	if nl == old {
		t.Fatal("closed node still leads")
	}
	waitFor(t, 10*time.Second, "writes on the new leader", func() bool { return count() >= before+50 })
	close(stop)
	wg.Wait()

	l := c.nodes[nl]
	if err := l.ReadBarrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	names := rootNames(t, l)
	mu.Lock()
	defer mu.Unlock()
	for name := range acked {
		if !names[name] {
			t.Fatalf("acknowledged create %s lost", name)
		}
	}
	if uint64(len(names))+1 != inodeCount(t, l) {
		t.Fatalf("%d names but %d inodes", len(names), inodeCount(t, l))
	}
	t.Logf("%d acknowledged creates, %d present", len(acked), len(names))
}

func TestTransferAndRemove(t *testing.T) {
	c := newCluster(t, 3, nil)
	li := c.leader()
	l := c.nodes[li]
	target := c.nodes[(li+1)%3]
	ch := l.LeaderChanges()
	if err := l.TransferLeadership(context.Background(), target.cfg.NodeID); err != nil {
		t.Fatal(err)
	}
	if got := c.leader(); c.nodes[got] != target {
		t.Fatalf("leader is %s, want %s", c.nodes[got].cfg.NodeID, target.cfg.NodeID)
	}
	waitFor(t, 5*time.Second, "old leader to report it stopped serving", func() bool {
		for {
			select {
			case v := <-ch:
				if !v {
					return true
				}
			default:
				return false
			}
		}
	})
	// Remove the third node.
	third := c.nodes[(li+2)%3]
	if err := target.RemoveServer(context.Background(), third.cfg.NodeID); err != nil {
		t.Fatal(err)
	}
	if st := target.Status(); len(st.Members) != 2 {
		t.Fatalf("members after remove: %+v", st.Members)
	}
	propose(t, target, createEntry("after-remove"))
	// Any leader.
	if err := target.TransferLeadership(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the old leader to serve again", func() bool { return l.Serving() })
}

// TestConcurrentProposals checks that proposals grouped into waves each get
// their own result.
func TestConcurrentProposals(t *testing.T) {
	for _, maxWaves := range []int{0, 1} {
		t.Run(fmt.Sprintf("waves=%d", maxWaves), func(t *testing.T) {
			c := newCluster(t, 3, func(cfg *Config) {
				tune := ourTuning
				tune.maxWaves = maxWaves
				cfg.tuning = &tune
			})
			l := c.nodes[c.leader()]
			const writers, each = 32, 20
			var mu sync.Mutex
			inos := make(map[uint64]string)
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						name := fmt.Sprintf("w%d-%d", w, i)
						res, err := l.Propose(context.Background(), createEntry(name))
						if err != nil || res.Errno != 0 || res.Attr == nil {
							t.Errorf("%s: %+v, %v", name, res, err)
							return
						}
						mu.Lock()
						if prev, dup := inos[res.Ino]; dup {
							t.Errorf("%s and %s both got inode %d", prev, name, res.Ino)
						}
						inos[res.Ino] = name
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			// A duplicate name fails with EEXIST, in the same wave as others.
			res, err := l.Propose(context.Background(), createEntry("w0-0"))
			if err != nil || res.Errno == 0 {
				t.Fatalf("duplicate: %+v, %v", res, err)
			}
			for _, n := range c.nodes {
				catchUp(t, n, l)
				if got := inodeCount(t, n); got != writers*each+1 {
					t.Fatalf("%s: %d inodes", n.cfg.NodeID, got)
				}
			}
		})
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	good := testConfig(t, "m1")
	for name, mutate := range map[string]func(*Config){
		"no id":          func(c *Config) { c.NodeID = "" },
		"no dir":         func(c *Config) { c.Dir = "" },
		"no raft addr":   func(c *Config) { c.RaftAddr = "" },
		"not in peers":   func(c *Config) { c.Peers = []Peer{{ID: "other", RaftAddr: "127.0.0.1:1"}} },
		"lease too long": func(c *Config) { c.LeaderLeaseTimeout = 2 * c.HeartbeatTimeout },
	} {
		cfg := good
		cfg.Dir = t.TempDir()
		mutate(&cfg)
		if n, err := Open(cfg); err == nil {
			n.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
}
