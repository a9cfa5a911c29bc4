package raftjournal

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkSnapshotMillion loads a master with a million files (by default;
// RAFTJOURNAL_INODES sets another count) through the journal, then measures:
// the time to take a snapshot and its size on disk; the time a master takes to
// restart on that state until it serves again; and the time a new master takes
// to join and catch up by installing the snapshot. It takes minutes, so it
// runs with -benchtime 1x:
//
//	go test -run '^$' -bench SnapshotMillion -benchtime 1x -timeout 30m ./raftjournal/
func BenchmarkSnapshotMillion(b *testing.B) {
	files := 1_000_000
	if v := os.Getenv("RAFTJOURNAL_INODES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("RAFTJOURNAL_INODES=%q: want a positive count", v)
		}
		files = n
	}
	for range b.N {
		snapshotMillion(b, files)
	}
}

func snapshotMillion(b *testing.B, files int) {
	ctx := context.Background()
	tune := func(cfg *Config) {
		cfg.TrailingLogs = 64
		cfg.SnapshotThreshold = math.MaxUint64 / 2 // only the forced checkpoint
		cfg.SnapshotInterval = time.Hour
		cfg.HeartbeatTimeout, cfg.ElectionTimeout = time.Second, time.Second
	}
	c := newCluster(b, 1, tune)
	l := c.nodes[c.leader()]

	// Load: 256 proposers, so waves carry hundreds of creates per entry.
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 256 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(files) {
					return
				}
				res, err := l.Propose(ctx, createEntry(fmt.Sprintf("f%07d", i)))
				if err == nil && res.Errno != 0 {
					err = res.Errno
				}
				if err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	load := time.Since(start)
	want := uint64(files) + 1 // and the root
	if got := inodeCount(b, l); got != want {
		b.Fatalf("loaded %d inodes, want %d", got, want)
	}

	// Take a snapshot.
	start = time.Now()
	idx, err := l.Checkpoint(ctx)
	if err != nil {
		b.Fatal(err)
	}
	take := time.Since(start)
	size := snapshotBytes(b, c.cfgs[0].Dir)

	// Restart the master on that state: until it serves again.
	c.stop(0)
	start = time.Now()
	l = c.start(0)
	waitFor(b, 5*time.Minute, "the restarted master to serve", l.Serving)
	restart := time.Since(start)
	if got := inodeCount(b, l); got != want {
		b.Fatalf("after restart %d inodes, want %d", got, want)
	}

	// A new master joins and installs the snapshot.
	cfg := testConfig(b, "m2")
	tune(&cfg)
	n2, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer n2.Close()
	start = time.Now()
	if err := l.AddVoter(ctx, Peer{ID: cfg.NodeID, RaftAddr: cfg.RaftAddr, RPCAddr: cfg.RPCAddr}); err != nil {
		b.Fatal(err)
	}
	waitFor(b, 10*time.Minute, "the new master to install the snapshot", func() bool {
		return n2.Status().AppliedIndex >= idx
	})
	install := time.Since(start)
	if got := inodeCount(b, n2); got != want {
		b.Fatalf("new master holds %d inodes, want %d", got, want)
	}
	if st := n2.Status(); st.LastSnapshotIndex < idx {
		b.Fatalf("the new master caught up without the snapshot: %+v", st)
	}

	b.ReportMetric(float64(files)/load.Seconds(), "load-files/s")
	b.ReportMetric(take.Seconds(), "snapshot-s")
	b.ReportMetric(float64(size)/(1<<20), "snapshot-MiB")
	b.ReportMetric(float64(size)/float64(want), "snapshot-B/inode")
	b.ReportMetric(restart.Seconds(), "restart-s")
	b.ReportMetric(install.Seconds(), "install-s")
}

// snapshotBytes returns the size of the newest snapshot's files under dir.
func snapshotBytes(b *testing.B, dir string) int64 {
	b.Helper()
	var newest string
	entries, err := os.ReadDir(filepath.Join(dir, "snapshots"))
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() > newest {
			newest = e.Name()
		}
	}
	if newest == "" {
		b.Fatal("no snapshot on disk")
	}
	var size int64
	err = filepath.WalkDir(filepath.Join(dir, "snapshots", newest), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			size += info.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return size
}
