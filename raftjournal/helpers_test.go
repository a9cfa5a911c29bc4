package raftjournal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/meta/memstore"
	"github.com/skyfs/skyfs/proto/metapb"
)

// testLogger discards the log unless RAFTJOURNAL_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("RAFTJOURNAL_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cluster is a set of in-process nodes on loopback TCP.
type cluster struct {
	t     testing.TB
	cfgs  []Config
	nodes []*Node // nil when stopped
}

// testConfig returns the config of a test node; tune may adjust it.
func testConfig(t testing.TB, id string) Config {
	return Config{
		NodeID:           id,
		Dir:              t.TempDir(),
		RaftAddr:         freeAddr(t),
		RPCAddr:          "rpc-" + id + ":7700",
		HeartbeatTimeout: 300 * time.Millisecond,
		ElectionTimeout:  300 * time.Millisecond,
		Logger:           testLogger(),
	}
}

func newCluster(t testing.TB, size int, tune func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t}
	var peers []Peer
	for i := range size {
		cfg := testConfig(t, fmt.Sprintf("m%d", i+1))
		if tune != nil {
			tune(&cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
		peers = append(peers, Peer{ID: cfg.NodeID, RaftAddr: cfg.RaftAddr, RPCAddr: cfg.RPCAddr})
	}
	for i := range c.cfgs {
		c.cfgs[i].Peers = peers
	}
	c.nodes = make([]*Node, size)
	for i := range c.cfgs {
		c.start(i)
	}
	t.Cleanup(c.closeAll)
	return c
}

func (c *cluster) start(i int) *Node {
	c.t.Helper()
	n, err := Open(c.cfgs[i])
	if err != nil {
		c.t.Fatalf("open %s: %v", c.cfgs[i].NodeID, err)
	}
	c.nodes[i] = n
	return n
}

func (c *cluster) stop(i int) {
	c.t.Helper()
	if err := c.nodes[i].Close(); err != nil {
		c.t.Errorf("close %s: %v", c.cfgs[i].NodeID, err)
	}
	c.nodes[i] = nil
}

func (c *cluster) closeAll() {
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		if n != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.Close()
			}()
			c.nodes[i] = nil
		}
	}
	wg.Wait()
}

// leader waits until exactly one running node serves and returns its index.
func (c *cluster) leader() int {
	c.t.Helper()
	idx := -1
	waitFor(c.t, 15*time.Second, "a serving leader", func() bool {
		idx = -1
		for i, n := range c.nodes {
			if n != nil && n.Serving() {
				if idx >= 0 {
					return false
				}
				idx = i
			}
		}
		return idx >= 0
	})
	return idx
}

// createEntry is a namespace entry creating a regular file in the root.
func createEntry(name string) *metapb.Entry {
	return &metapb.Entry{Version: meta.EntryVersion, TimeNs: 1_700_000_000_000_000_000,
		Op: &metapb.Entry_CreateFile{CreateFile: &metapb.CreateFile{Parent: meta.RootIno, Name: []byte(name), Mode: 0o644}}}
}

func unlinkEntry(name string) *metapb.Entry {
	return &metapb.Entry{Version: meta.EntryVersion, TimeNs: 1_700_000_000_000_000_000,
		Op: &metapb.Entry_Unlink{Unlink: &metapb.Unlink{Parent: meta.RootIno, Name: []byte(name)}}}
}

// propose proposes e on n and fails the test on an error or a non-zero errno.
func propose(t testing.TB, n *Node, e *metapb.Entry) meta.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n.Propose(ctx, e)
	if err != nil {
		t.Fatalf("propose: %v", err)
	}
	if res.Errno != 0 {
		t.Fatalf("propose: errno %v", res.Errno)
	}
	return res
}

// rootNames lists the names in the root directory of n's store.
func rootNames(t testing.TB, n *Node) map[string]bool {
	t.Helper()
	names := make(map[string]bool)
	err := n.View(func(tx meta.Txn) error {
		var after []byte
		for {
			ents, more, err := meta.ReadDir(tx, meta.RootIno, after, meta.MaxReadDirPage, false)
			if err != nil {
				return err
			}
			for _, e := range ents {
				names[string(e.Name)] = true
				after = e.Name
			}
			if !more {
				return nil
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func inodeCount(t testing.TB, n *Node) uint64 {
	t.Helper()
	var c uint64
	if err := n.View(func(tx meta.Txn) (err error) {
		c, err = meta.InodeCount(tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return c
}

// crashStore is a memstore whose durable content is what it held at the last
// Sync: crash returns a store with only that, as Badger after a power loss
// in the worst case (its commits are not fsynced).
type crashStore struct {
	*memstore.Store
	mu      sync.Mutex
	durable [][2][]byte
}

func newCrashStore() *crashStore { return &crashStore{Store: memstore.New()} }

func (c *crashStore) Sync() error {
	rp, err := c.Store.ReadPoint()
	if err != nil {
		return err
	}
	defer rp.Release()
	var kv [][2][]byte
	err = rp.Scan(nil, nil, func(k, v []byte) (bool, error) {
		kv = append(kv, [2][]byte{append([]byte(nil), k...), append([]byte(nil), v...)})
		return true, nil
	})
	c.mu.Lock()
	c.durable = kv
	c.mu.Unlock()
	return err
}

// ReplaceAll syncs at the end, like badgerstore's.
func (c *crashStore) ReplaceAll(fill func(put func(k, v []byte) error) error) error {
	err := c.Store.ReplaceAll(fill)
	if serr := c.Sync(); err == nil {
		err = serr
	}
	return err
}

// Close keeps the content: a crash is simulated by crash, not by Close.
func (c *crashStore) Close() error { return nil }

// crash returns a new store holding only the durable content.
func (c *crashStore) crash() *crashStore {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := newCrashStore()
	err := s.Store.ReplaceAll(func(put func(k, v []byte) error) error {
		for _, kv := range c.durable {
			if err := put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
	s.durable = c.durable
	return s
}
