package raftjournal

import (
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
)

// The throughput settings. Each is measured by the benchmarks in
// bench_test.go (see the package comment for the figures); Config.stock turns
// them all off.
const (
	// maxAppendEntries bounds the entries of one AppendEntries RPC, of one
	// group commit on the leader (one fsync of the log for all of them) and of
	// one FSM batch (one store transaction). Stock: 64.
	maxAppendEntries = 1024
	// logCacheSize keeps the newest entries in memory so replication reads
	// them without a bolt transaction per entry.
	logCacheSize = 4096
)

// tuneRaft applies the tuned throughput settings to a raft config.
func tuneRaft(rc *raft.Config) {
	rc.MaxAppendEntries = maxAppendEntries
	// A buffered apply channel lets proposers enqueue without waiting for the
	// leader loop, which then takes everything queued as one group commit.
	rc.BatchApplyCh = true
}

// tuneBolt applies the tuned settings to the log store's bolt options. Every
// commit is still fsynced (NoSync stays off).
func tuneBolt(o *bbolt.Options) {
	// The free list is rebuilt on open instead of written on every commit.
	o.NoFreelistSync = true
	o.FreelistType = bbolt.FreelistMapType
}
