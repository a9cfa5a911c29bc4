package raftjournal

import (
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
)

// tuning is the set of throughput settings of the write path. Each is measured
// by the benchmarks in bench_test.go (figures in the package comment).
type tuning struct {
	// maxAppendEntries bounds the entries of one AppendEntries RPC, of one
	// group commit on the leader (one fsync of the log for all of them) and of
	// one FSM batch (one store transaction). Stock: 64.
	maxAppendEntries int
	// batchApplyCh buffers raft's apply channel (MaxAppendEntries deep), so
	// proposers enqueue without waiting for the leader loop, which then takes
	// everything queued as one group commit.
	batchApplyCh bool
	// logCache keeps the newest entries in memory, so replication reads them
	// without a bolt transaction per entry. Zero: none.
	logCache int
	// boltFreelist stops bolt from writing its free list on every commit (it is
	// rebuilt on open). Every commit is still fsynced: NoSync stays off.
	boltFreelist bool
	// noPipeline turns off raft's pipelined replication: the leader sends a
	// follower the next AppendEntries only when the previous one was answered,
	// with every entry that arrived meanwhile, so a follower fsyncs once per
	// round trip instead of once per leader group commit.
	noPipeline bool
	// maxWaves bounds the groups of proposals in flight (see waves). Zero:
	// every Propose goes to raft at once.
	maxWaves int
}

var (
	stockTuning = tuning{maxAppendEntries: 64}
	ourTuning   = tuning{maxAppendEntries: 1024, batchApplyCh: true, logCache: 4096, boltFreelist: true, noPipeline: true, maxWaves: 1}
)

func (t tuning) raft(rc *raft.Config) {
	rc.MaxAppendEntries = t.maxAppendEntries
	rc.BatchApplyCh = t.batchApplyCh
}

func (t tuning) bolt(o *bbolt.Options) {
	if t.boltFreelist {
		o.NoFreelistSync = true
		o.FreelistType = bbolt.FreelistMapType
	}
}

func (t tuning) logStore(s raft.LogStore) (raft.LogStore, error) {
	if t.logCache == 0 {
		return s, nil
	}
	return raft.NewLogCache(t.logCache, s)
}

func (t tuning) transport(tr *raft.NetworkTransport) raft.Transport {
	if t.noPipeline {
		return noPipeline{tr}
	}
	return tr
}

// noPipeline is a transport without AppendEntries pipelining.
type noPipeline struct{ *raft.NetworkTransport }

func (noPipeline) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}
