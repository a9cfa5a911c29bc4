// Package rafttest starts bare hashicorp/raft clusters for benchmarks: three
// nodes on loopback TCP with raft-boltdb/v2 log and stable stores (every
// entry fsynced, NoSync off), a file snapshot store and a state machine that
// only counts. Such a cluster is the ceiling the journal and the masters are
// measured against: what raft alone commits, with nothing of skyfs on the
// path.
//
// Package rafttest is for tests and benchmarks only; it is imported by no
// command.
package rafttest

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Options changes a bare cluster's settings; the zero value is raft's and
// raft-boltdb's stock configuration.
type Options struct {
	// Config adjusts each node's raft configuration.
	Config func(*raft.Config)
	// Bolt adjusts the options of each node's bolt file.
	Bolt func(*bbolt.Options)
	// WrapLog wraps each node's log store (a cache, a counter).
	WrapLog func(raft.LogStore) (raft.LogStore, error)
	// Transport wraps each node's TCP transport.
	Transport func(*raft.NetworkTransport) raft.Transport
}

// Command is a 100-byte command, the size the bare figures are quoted for.
var Command = make([]byte, 100)

// Bare starts a three-node cluster in temporary directories of tb and returns
// its leader, once elected. The cluster stops at tb's cleanup.
func Bare(tb testing.TB, o Options) *raft.Raft {
	tb.Helper()
	logger := hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Error})
	var servers []raft.Server
	for i := range 3 {
		servers = append(servers, raft.Server{ID: raft.ServerID(fmt.Sprint(i)), Address: raft.ServerAddress(freeAddr(tb))})
	}
	var nodes []*raft.Raft
	for _, srv := range servers {
		dir := tb.TempDir()
		rc := raft.DefaultConfig()
		rc.LocalID = srv.ID
		rc.Logger = logger
		if o.Config != nil {
			o.Config(rc)
		}
		bopts := &bbolt.Options{Timeout: time.Second}
		if o.Bolt != nil {
			o.Bolt(bopts)
		}
		bs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), BoltOptions: bopts})
		if err != nil {
			tb.Fatal(err)
		}
		var ls raft.LogStore = bs
		if o.WrapLog != nil {
			if ls, err = o.WrapLog(bs); err != nil {
				tb.Fatal(err)
			}
		}
		snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 1, logger)
		if err != nil {
			tb.Fatal(err)
		}
		addr, err := net.ResolveTCPAddr("tcp", string(srv.Address))
		if err != nil {
			tb.Fatal(err)
		}
		tcp, err := raft.NewTCPTransportWithLogger(string(srv.Address), addr, 4, 10*time.Second, logger)
		if err != nil {
			tb.Fatal(err)
		}
		var tr raft.Transport = tcp
		if o.Transport != nil {
			tr = o.Transport(tcp)
		}
		if err := raft.BootstrapCluster(rc, ls, bs, snaps, tr, raft.Configuration{Servers: servers}); err != nil {
			tb.Fatal(err)
		}
		r, err := raft.NewRaft(rc, &countFSM{}, ls, bs, snaps, tr)
		if err != nil {
			tb.Fatal(err)
		}
		nodes = append(nodes, r)
		tb.Cleanup(func() {
			r.Shutdown().Error()
			tcp.Close()
			bs.Close()
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range nodes {
			if r.State() == raft.Leader {
				return r
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	tb.Fatal("rafttest: no leader elected in 20s")
	return nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// countFSM is the trivial state machine: it counts the entries applied.
type countFSM struct{ n atomic.Uint64 }

func (f *countFSM) Apply(*raft.Log) any                 { return f.n.Add(1) }
func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return countSnap(f.n.Load()), nil }
func (f *countFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type countSnap uint64

func (countSnap) Persist(s raft.SnapshotSink) error { return s.Close() }
func (countSnap) Release()                          {}

// Burst runs op from clients goroutines, each calling it again as soon as it
// returns, for d; i numbers the calls from 0. It returns the rate in calls
// per second and the median latency of one call.
func Burst(clients int, d time.Duration, op func(i int) error) (float64, time.Duration, error) {
	stop := time.Now().Add(d)
	elapsed, lat, err := Clients(clients, func(int) bool { return time.Now().Before(stop) },
		func(_, i int) error { return op(i) })
	if err != nil {
		return 0, 0, err
	}
	if len(lat) == 0 {
		return 0, 0, fmt.Errorf("rafttest: no call finished in %v", d)
	}
	return float64(len(lat)) / elapsed.Seconds(), lat[len(lat)/2], nil
}

// Clients runs op from clients goroutines, each calling it again as soon as
// it returns while more, given the next call's number (from 0), says so; op
// gets its goroutine's number c (from 0) and the call's i. It returns the
// time taken and the latency of every call, sorted, or the first error (a
// goroutine stops at its error).
func Clients(clients int, more func(i int) bool, op func(c, i int) error) (time.Duration, []time.Duration, error) {
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if !more(i) {
					return
				}
				t0 := time.Now()
				if err := op(c, i); err != nil {
					failed.Store(err)
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		return 0, nil, err
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	return elapsed, all, nil
}
