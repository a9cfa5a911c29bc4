package raftjournal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/skyfs/skyfs/internal/rafttest"
)

// The benchmarks measure the write path: three masters on loopback TCP, every
// log entry fsynced on a quorum.
//
//	go test -run '^$' -bench . -benchtime 3s -count 3 ./raftjournal/
//
// BenchmarkBareRaft is the ceiling: hashicorp/raft alone, raft-boltdb/v2, a
// counting FSM and 100-byte commands. BenchmarkNodeCreate is this package:
// Node.Propose of meta create-file entries into Badger. Each runs with raft's
// stock throughput settings and with ours (tuning.go), from 1 to 256 clients,
// and reports ops/s and the median latency of one operation.

// benchClients are the client counts; RAFTJOURNAL_CLIENTS=1,64 overrides.
func benchClients() []int {
	v := os.Getenv("RAFTJOURNAL_CLIENTS")
	if v == "" {
		return []int{1, 16, 64, 256}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

// runClients runs b.N operations from clients goroutines and reports the rate
// and the median latency.
func runClients(b *testing.B, clients int, commits *atomic.Int64, op func(i int) error) {
	before := commits.Load()
	b.ResetTimer()
	elapsed, all, err := rafttest.Clients(clients, func(i int) bool { return i < b.N },
		func(_, i int) error { return op(i) })
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(commits.Load()-before)/float64(b.N), "logcommits/op")
	b.ReportMetric(0, "ns/op")
}

// countingLog counts the commits (one fsync each) of a log store.
type countingLog struct {
	raft.LogStore
	commits *atomic.Int64
}

func (c countingLog) StoreLog(l *raft.Log) error {
	c.commits.Add(1)
	return c.LogStore.StoreLog(l)
}

func (c countingLog) StoreLogs(l []*raft.Log) error {
	c.commits.Add(1)
	return c.LogStore.StoreLogs(l)
}

// bareCluster starts three plain raft nodes (rafttest) with tune's settings
// and returns the leader; commits counts their log commits.
func bareCluster(b *testing.B, tune tuning, commits *atomic.Int64) *raft.Raft {
	return rafttest.Bare(b, rafttest.Options{
		Config: tune.raft,
		Bolt:   tune.bolt,
		WrapLog: func(s raft.LogStore) (raft.LogStore, error) {
			return tune.logStore(countingLog{s, commits})
		},
		Transport: tune.transport,
	})
}

// benchTunings are the configurations benchmarked: RAFTJOURNAL_TUNE picks
// variants for exploring (see tuningVariants).
// RAFTJOURNAL_BARE does the same for the bare raft clusters.
func benchTunings() []string { return envList("RAFTJOURNAL_TUNE") }

func bareTunings() []string { return envList("RAFTJOURNAL_BARE") }

func envList(name string) []string {
	if v, ok := os.LookupEnv(name); ok {
		if v == "" {
			return nil
		}
		return strings.Split(v, ",")
	}
	return []string{"stock", "tuned"}
}

// tuningVariants are stock, ours, and stock plus one of our settings.
var tuningVariants = map[string]tuning{
	"stock":      stockTuning,
	"tuned":      ourTuning,
	"mae":        {maxAppendEntries: ourTuning.maxAppendEntries},
	"batchapply": {maxAppendEntries: 64, batchApplyCh: true},
	"cache":      {maxAppendEntries: 64, logCache: ourTuning.logCache},
	"freelist":   {maxAppendEntries: 64, boltFreelist: true},
	"nopipeline": {maxAppendEntries: 64, noPipeline: true},
	"nopipe+mae": {maxAppendEntries: ourTuning.maxAppendEntries, noPipeline: true},
	"waves1":     {maxAppendEntries: 64, maxWaves: 1},
	"waves2":     {maxAppendEntries: 64, maxWaves: 2},
	"tuned-w0":   withWaves(ourTuning, 0),
	"tuned-w2":   withWaves(ourTuning, 2),
}

func withWaves(t tuning, n int) tuning {
	t.maxWaves = n
	return t
}

func BenchmarkBareRaft(b *testing.B) {
	for _, name := range bareTunings() {
		b.Run("config="+name, func(b *testing.B) {
			var commits atomic.Int64
			leader := bareCluster(b, tuningVariants[name], &commits)
			cmd := make([]byte, 100)
			for _, clients := range benchClients() {
				b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
					runClients(b, clients, &commits, func(int) error { return leader.Apply(cmd, 0).Error() })
				})
			}
		})
	}
}

func BenchmarkNodeCreate(b *testing.B) {
	for _, name := range benchTunings() {
		b.Run("config="+name, func(b *testing.B) {
			var commits atomic.Int64
			c := newCluster(b, 3, func(cfg *Config) {
				t := tuningVariants[name]
				cfg.tuning = &t
				cfg.wrapLog = func(s raft.LogStore) raft.LogStore { return countingLog{s, &commits} }
				cfg.HeartbeatTimeout, cfg.ElectionTimeout = time.Second, time.Second
			})
			defer c.closeAll()
			l := c.nodes[c.leader()]
			ctx := context.Background()
			var seq atomic.Int64 // file names are unique in the cluster
			for _, clients := range benchClients() {
				b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
					b.ResetTimer()
					runClients(b, clients, &commits, func(int) error {
						res, err := l.Propose(ctx, createEntry(fmt.Sprintf("f%d", seq.Add(1))))
						if err == nil && res.Errno != 0 {
							err = res.Errno
						}
						return err
					})
				})
			}
		})
	}
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// BenchmarkInterleaved compares configurations on a noisy machine: it starts a
// bare raft cluster and a Node cluster for each of stock and tuned settings
// (RAFTJOURNAL_TUNE picks others), then runs short bursts on each in turn,
// several rounds (RAFTJOURNAL_ROUNDS, default 5), and reports the median rate
// and median latency of each cluster per client count. Run it with
// -benchtime 1x; it takes minutes, so it runs only when asked:
//
//	RAFTJOURNAL_INTERLEAVED=1 go test -run '^$' -bench Interleaved -benchtime 1x ./raftjournal/
func BenchmarkInterleaved(b *testing.B) {
	if os.Getenv("RAFTJOURNAL_INTERLEAVED") == "" {
		b.Skip("set RAFTJOURNAL_INTERLEAVED=1 to run")
	}
	const burstLen = 1500 * time.Millisecond
	rounds := 5
	if v, err := strconv.Atoi(os.Getenv("RAFTJOURNAL_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	type target struct {
		name    string
		op      func(clients, i int) error
		commits *atomic.Int64
	}
	var targets []target
	cmd := make([]byte, 100)
	for _, name := range bareTunings() {
		commits := new(atomic.Int64)
		leader := bareCluster(b, tuningVariants[name], commits)
		targets = append(targets, target{"bare-" + name, func(_, _ int) error { return leader.Apply(cmd, 0).Error() }, commits})
	}
	for _, name := range benchTunings() {
		commits := new(atomic.Int64)
		c := newCluster(b, 3, func(cfg *Config) {
			t := tuningVariants[name]
			cfg.tuning = &t
			cfg.wrapLog = func(s raft.LogStore) raft.LogStore { return countingLog{s, commits} }
			cfg.HeartbeatTimeout, cfg.ElectionTimeout = time.Second, time.Second
		})
		var l atomic.Pointer[Node]
		l.Store(c.nodes[c.leader()])
		targets = append(targets, target{"node-" + name, func(clients, i int) error {
			for {
				res, err := l.Load().Propose(context.Background(), createEntry(fmt.Sprintf("c%d-%d", clients, i)))
				if errors.Is(err, ErrNotLeader) { // the machine is noisy: elections happen
					l.Store(c.nodes[c.leader()])
					continue
				}
				if err == nil && res.Errno != 0 {
					err = res.Errno
				}
				return err
			}
		}, commits})
	}
	for _, clients := range benchClients() {
		rates := make(map[string][]float64)
		lats := make(map[string][]float64)
		fsyncs := make(map[string][]float64)
		for r := range rounds {
			for _, t := range targets {
				before := t.commits.Load()
				rate, p50, err := rafttest.Burst(clients, burstLen, func(i int) error { return t.op(clients, r<<32|i) })
				if err != nil {
					b.Fatal(err)
				}
				fsyncs[t.name] = append(fsyncs[t.name], float64(t.commits.Load()-before)/(rate*burstLen.Seconds()))
				rates[t.name] = append(rates[t.name], rate)
				lats[t.name] = append(lats[t.name], float64(p50.Microseconds()))
			}
		}
		for _, t := range targets {
			b.Logf("clients=%-3d %-16s ops/s %8.0f  p50 %6.0f µs  log commits/op %.3f  (rounds: %.0f)", clients, t.name,
				median(rates[t.name]), median(lats[t.name]), median(fsyncs[t.name]), rates[t.name])
		}
	}
}
