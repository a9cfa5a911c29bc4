package raftjournal

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
)

// BenchmarkNamespaceScale grows a cluster of RAFTJOURNAL_NODES masters
// (default 3) in one process to RAFTJOURNAL_INODES files (default 1,000,000)
// in one directory, through the journal: 256 proposers, whose creates the
// leader batches into waves, as a mount daemon or a bulk loader sends them.
// At that size it reports:
//
//   - the load rate, disk per inode (the leader's store and its Raft log),
//     and the Go heap and resident memory of the process, which holds every
//     master (so a master holds about RSS/nodes);
//   - a lookup of a random name, p50/p99, in the leader's state;
//   - a listing of the whole directory page by page (1,024 entries): the time
//     to the first page, the whole time, and the most the heap grew meanwhile;
//   - a snapshot forced while 16 writers go on: its time and size, and the
//     writers' p99 during it against the same writers just before;
//   - the restart of a follower until it has applied everything again, and
//     a new master added until it has installed the snapshot and caught up.
//
// With RAFTJOURNAL_LOAD=bulk the files come instead as a metadata sync of a
// UFS directory brings them: LoadDir entries of meta.MaxLoadBatch children,
// 16 in flight, and it reports how long the last one, which prunes the
// directory of what the UFS no longer holds, took to apply.
//
// It takes minutes per million, so it runs with -benchtime 1x:
//
//	RAFTJOURNAL_INODES=1000000 go test -run '^$' -bench NamespaceScale -benchtime 1x -timeout 2h ./raftjournal/
func BenchmarkNamespaceScale(b *testing.B) {
	files := benchEnvInt(b, "RAFTJOURNAL_INODES", 1_000_000)
	nodes := benchEnvInt(b, "RAFTJOURNAL_NODES", 3)
	bulk := os.Getenv("RAFTJOURNAL_LOAD") == "bulk"
	for range b.N {
		namespaceScale(b, files, nodes, bulk)
	}
}

func benchEnvInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive count", name, v)
	}
	return n
}

func namespaceScale(b *testing.B, files, nodes int, bulk bool) {
	ctx := context.Background()
	tune := func(cfg *Config) {
		cfg.TrailingLogs = 64
		cfg.SnapshotThreshold = math.MaxUint64 / 2 // only the forced checkpoint
		cfg.SnapshotInterval = time.Hour
		cfg.HeartbeatTimeout, cfg.ElectionTimeout = 5*time.Second, 5*time.Second
		cfg.LeaderLeaseTimeout = 2 * time.Second
	}
	c := newCluster(b, nodes, tune)
	li := c.leader()
	l := c.nodes[li]
	baseRSS := rssBytes()

	// Load.
	start := time.Now()
	var failed atomic.Value
	var endApply time.Duration
	if bulk {
		endApply = loadBulk(b, l, files)
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 256 {
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > int64(files) {
						return
					}
					res, err := l.Propose(ctx, createEntry(fmt.Sprintf("f%09d", i)))
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
	}
	load := time.Since(start)
	want := uint64(files) + 1 // and the root
	if got := inodeCount(b, l); got != want {
		b.Fatalf("loaded %d inodes, want %d", got, want)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	loadedRSS := rssBytes()
	storeBytes := dirBytes(b, filepath.Join(c.cfgs[li].Dir, "meta"))
	logBytes := dirBytes(b, filepath.Join(c.cfgs[li].Dir, "raft.db"))

	// Lookups of random names.
	lat := make([]time.Duration, 0, 20000)
	for range cap(lat) {
		name := []byte(fmt.Sprintf("f%09d", 1+rand.IntN(files)))
		t0 := time.Now()
		if err := l.View(func(tx meta.Txn) error {
			_, err := meta.Lookup(tx, meta.RootIno, name)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)

	// The whole directory, page by page.
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapBase, heapPeak := ms.HeapAlloc, ms.HeapAlloc
	start = time.Now()
	var firstPage time.Duration
	var cursor []byte
	listed, pages := 0, 0
	for {
		var ents []meta.DirEntry
		var more bool
		if err := l.View(func(tx meta.Txn) (err error) {
			ents, more, err = meta.ReadDir(tx, meta.RootIno, cursor, 1024, true)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		if pages == 0 {
			firstPage = time.Since(start)
		}
		pages++
		listed += len(ents)
		if pages%16 == 0 {
			runtime.ReadMemStats(&ms)
			heapPeak = max(heapPeak, ms.HeapAlloc)
		}
		if !more {
			break
		}
		cursor = bytes.Clone(ents[len(ents)-1].Name)
	}
	listAll := time.Since(start)
	if listed != files {
		b.Fatalf("listed %d entries, want %d", listed, files)
	}

	// A snapshot while writers go on, and the same writers before it.
	writers := func(stop <-chan struct{}, prefix string) []time.Duration {
		var mu sync.Mutex
		var all []time.Duration
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				var mine []time.Duration
				for i := 0; ; i++ {
					select {
					case <-stop:
						mu.Lock()
						all = append(all, mine...)
						mu.Unlock()
						return
					default:
					}
					t0 := time.Now()
					res, err := l.Propose(ctx, createEntry(fmt.Sprintf("%s-%02d-%07d", prefix, w, i)))
					if err == nil && res.Errno != 0 {
						err = res.Errno
					}
					if err != nil {
						failed.Store(err)
						return
					}
					mine = append(mine, time.Since(t0))
				}
			})
		}
		<-stop
		wg.Wait()
		slices.Sort(all)
		return all
	}
	var take time.Duration
	var during []time.Duration
	{
		stop := make(chan struct{})
		done := make(chan []time.Duration)
		go func() { done <- writers(stop, "during") }()
		time.Sleep(200 * time.Millisecond) // writers under way before the snapshot
		start = time.Now()
		var err error
		_, err = l.Checkpoint(ctx)
		take = time.Since(start)
		close(stop)
		during = <-done
		if err != nil {
			b.Fatal(err)
		}
	}
	stop := make(chan struct{})
	done := make(chan []time.Duration)
	go func() { done <- writers(stop, "before") }()
	time.Sleep(max(take, time.Second))
	close(stop)
	before := <-done
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	snapSize := snapshotBytes(b, c.cfgs[li].Dir)
	count := inodeCount(b, l)

	// Restart a follower until it has applied everything again.
	var restart time.Duration
	if nodes > 1 {
		fi := (li + 1) % nodes
		c.stop(fi)
		start = time.Now()
		f := c.start(fi)
		target := l.Status().AppliedIndex
		waitFor(b, 30*time.Minute, "the restarted follower to catch up", func() bool {
			return f.Status().AppliedIndex >= target
		})
		restart = time.Since(start)
	}

	// A new master joins and installs the snapshot.
	cfg := testConfig(b, fmt.Sprintf("m%d", nodes+1))
	tune(&cfg)
	nn, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer nn.Close()
	l = c.nodes[c.leader()] // a restart on a loaded machine may have moved it
	start = time.Now()
	if err := l.AddVoter(ctx, Peer{ID: cfg.NodeID, RaftAddr: cfg.RaftAddr, RPCAddr: cfg.RPCAddr}); err != nil {
		b.Fatal(err)
	}
	target := l.Status().AppliedIndex
	waitFor(b, 30*time.Minute, "the new master to install the snapshot and catch up", func() bool {
		return nn.Status().AppliedIndex >= target
	})
	install := time.Since(start)
	if got := inodeCount(b, nn); got != count {
		b.Fatalf("new master holds %d inodes, want %d", got, count)
	}
	installed := nn.Status().LastSnapshotIndex > 0

	p := func(d []time.Duration, q float64) float64 {
		if len(d) == 0 {
			return 0
		}
		return float64(d[int(float64(len(d)-1)*q)].Microseconds())
	}
	b.Logf("%d inodes on %d masters: load %.0f/s; store %.0f B/inode, log %.0f B/inode; heap %d MiB, RSS %d MiB (from %d MiB empty)",
		want, nodes, float64(files)/load.Seconds(), float64(storeBytes)/float64(want), float64(logBytes)/float64(want),
		ms.HeapInuse>>20, loadedRSS>>20, baseRSS>>20)
	if bulk {
		b.Logf("bulk load: the last LoadDir entry (the prune of %d entries) took %v", files, endApply)
		b.ReportMetric(endApply.Seconds(), "load-end-s")
	}
	b.Logf("lookup p50 %.0f µs p99 %.0f µs; readdir of %d entries: first page %v, all %v (%d pages), heap grew at most %d KiB",
		p(lat, 0.5), p(lat, 0.99), files, firstPage, listAll, pages, (heapPeak-heapBase)>>10)
	b.Logf("snapshot %v, %.1f MiB; writes p99 %.0f µs during it (%d writes), %.0f µs before (%d writes); follower restart %v; new master %v (by snapshot install: %v)",
		take, float64(snapSize)/(1<<20), p(during, 0.99), len(during), p(before, 0.99), len(before), restart, install, installed)
	b.ReportMetric(float64(files)/load.Seconds(), "load-inodes/s")
	b.ReportMetric(float64(storeBytes)/float64(want), "store-B/inode")
	b.ReportMetric(float64(loadedRSS>>20), "rss-MiB")
	b.ReportMetric(p(lat, 0.5), "lookup-p50-µs")
	b.ReportMetric(p(lat, 0.99), "lookup-p99-µs")
	b.ReportMetric(float64(firstPage.Microseconds()), "readdir-first-page-µs")
	b.ReportMetric(listAll.Seconds(), "readdir-all-s")
	b.ReportMetric(take.Seconds(), "snapshot-s")
	b.ReportMetric(float64(snapSize)/(1<<20), "snapshot-MiB")
	b.ReportMetric(p(during, 0.99), "write-p99-during-snapshot-µs")
	b.ReportMetric(p(before, 0.99), "write-p99-µs")
	b.ReportMetric(restart.Seconds(), "restart-s")
	b.ReportMetric(install.Seconds(), "install-s")
}

// loadBulk loads files into the root as a sync of a UFS directory does, and
// returns how long the last entry took.
func loadBulk(b *testing.B, l *Node, files int) time.Duration {
	ctx := context.Background()
	children := func(from, to int) []*metapb.LoadedChild {
		var out []*metapb.LoadedChild
		for i := from; i < to; i++ {
			out = append(out, &metapb.LoadedChild{Name: []byte(fmt.Sprintf("f%09d", i+1)), Type: metapb.FileType_REGULAR,
				Mode: 0o644, Ufs: &metapb.Fingerprint{Size: 4096, Etag: "0123456789abcdef0123456789abcdef", MtimeNs: 1_700_000_000_000_000_000}})
		}
		return out
	}
	entry := func(op *metapb.LoadDir) *metapb.Entry {
		return &metapb.Entry{Version: meta.EntryVersion, TimeNs: 1_700_000_000_000_000_000, Op: &metapb.Entry_LoadDir{LoadDir: op}}
	}
	must := func(e *metapb.Entry) meta.Result {
		res, err := l.Propose(ctx, e)
		if err == nil && res.Errno != 0 {
			err = res.Errno
		}
		if err != nil {
			b.Fatal(err)
		}
		return res
	}
	batch := meta.MaxLoadBatch
	gen := must(entry(&metapb.LoadDir{Dir: meta.RootIno, Begin: true, Children: children(0, min(batch, files))})).Gen
	var next atomic.Int64
	next.Store(int64(batch))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				from := int(next.Add(int64(batch))) - batch
				if from >= files {
					return
				}
				must(entry(&metapb.LoadDir{Dir: meta.RootIno, Gen: gen, Children: children(from, min(from+batch, files))}))
			}
		})
	}
	wg.Wait()
	t0 := time.Now()
	must(entry(&metapb.LoadDir{Dir: meta.RootIno, Gen: gen, End: true}))
	return time.Since(t0)
}

// rssBytes is the process's resident memory (0 where /proc says nothing).
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, rss uint64
	if _, err := fmt.Sscan(string(b), &size, &rss); err != nil {
		return 0
	}
	return rss * uint64(os.Getpagesize())
}

// dirBytes is the disk space the files under path (a file or a directory)
// take: their allocated blocks, not their sizes (Badger's files are sparse).
func dirBytes(b *testing.B, path string) int64 {
	b.Helper()
	var size int64
	err := filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				size += st.Blocks * 512
			} else {
				size += info.Size()
			}
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return size
}
