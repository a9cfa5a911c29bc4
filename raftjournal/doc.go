// Package raftjournal replicates the skyfs namespace (package meta) with
// hashicorp/raft: it owns the Raft log and stable store (raft-boltdb/v2 in
// Dir/raft.db), the snapshot store (Dir/snapshots), the Raft TCP transport, the
// state machine adapter over a meta.Store (Badger in Dir/meta), leadership
// transitions, leases, linearizable read barriers and membership changes.
//
// It must never: decide anything that varies between masters (the leader
// decides times, owners and fingerprints before it proposes an entry), skip or
// reorder a committed entry, acknowledge a write that is not committed on a
// quorum, or let a node that does not hold leadership and a lease pass
// CheckLease. It imports no gRPC: package master maps its errors.
//
// # Log entries
//
// A log entry is one type byte and a protobuf message: 0x01 and a
// skyfs.meta.v1.Entry (a namespace operation, applied by meta.Apply); 0x03 and
// a skyfs.journal.v1.Batch of such entries, proposed together (see
// Throughput) and applied in order, each with its own result; or 0x02 and a
// skyfs.journal.v1.Command (proto/journalpb), the journal's own records. The
// journal keeps its records in the store under keys starting with 'c' (the
// table meta reserves for this package): 'c' 'm' id, each member's client RPC
// address, so that any master can tell a client where the leader is; 'c' 'p',
// a batch entry applied in part (below). An entry that cannot be decoded, or
// that meta.Apply refuses with an error (rather than an errno in its Result),
// stops the master with a panic naming the index: skipping it would let this
// master diverge.
//
// # The state machine contract
//
//   - ApplyBatch is deterministic. It applies a batch of committed entries in
//     one store transaction, with meta.SetAppliedIndex(last index) in the same
//     transaction; entries at or below the stored applied index are skipped,
//     so replaying the log after a restart applies nothing twice. When the
//     transaction outgrows the engine (meta.ErrTxnTooBig) the batch is split in
//     halves applied in sequence; a single batch entry too big is applied in
//     parts, each transaction recording how far it got ('c' 'p'), so a restart
//     in between resumes. The ApplyFuture's response is the entry's
//     meta.Result ([]meta.Result for a batch entry; nil for a command).
//   - Snapshot is cheap: it syncs the store (so the store is never behind a
//     snapshot raft records; see below) and pins a read point. Writes go on.
//   - Persist does the I/O: it streams the read point with meta.WriteSnapshot.
//   - Restore replaces the whole store with meta.RestoreSnapshot. A restore that
//     a crash interrupted leaves a mark in the store, and a marker file
//     (Dir/restoring) made durable before the store is emptied covers the
//     moment before the stream writes that mark; Open restores again from
//     the newest local snapshot (the one raft installed) before starting raft.
//
// # Restart and durability
//
// The store commits without fsync; the raft log is fsynced on a quorum before
// an entry commits. Raft runs with NoSnapshotRestoreOnStart: at start it takes
// the newest snapshot's index as applied and replays the log after it. The
// store is therefore never allowed behind a snapshot (Snapshot syncs it first),
// and it may be ahead: the entries it already holds are skipped by index. A
// crash that loses the store's unsynced tail loses only entries after the
// newest snapshot, which the log still holds and replays.
//
// # Leadership
//
// A node serves (Serving, LeaderChanges) only after raft made it leader, a
// Barrier applied everything committed before, and its own member record was
// committed and applied in its term. It stops serving the moment raft leaves
// the leader state (Serving asks raft on every call), when a leadership
// transfer begins, or on Close. Propose, ReadBarrier and CheckLease fail with
// a *NotLeaderError naming the leader when this node does not serve. Reads
// are answered from the leader's lease while it is valid, the lease being
// renewed by committed proposals and by a background VerifyLeader round, and
// otherwise share VerifyLeader rounds (ReadBarrier); side effects outside the
// journal check the lease first (CheckLease, whose comment says what it
// relies on).
//
// # Lock order
//
// Node.storeMu is held shared for the length of a View (and of the store reads
// in Leader and Status) and exclusively by Close once raft has stopped: take
// it before anything else, and never call Close inside View. Node.mu,
// verifier.mu and fsm.mu are leaves: none is held while another is taken, nor
// across a call into raft or the store, except that Node.mu is held while
// reading raft's state and term (raft's own atomics and leaf locks).
//
// # Monitoring
//
// Status gives the Raft state (role, term, log, commit and applied indexes,
// members); Stats the counters since Open and the newest snapshot's index,
// size and time (it reads the snapshot store's metadata: for a scrape, not a
// request path). Config.OnApply is called once per batch raft applies, with
// its duration and sizes: two clock reads per batch, nothing per entry.
//
// # Throughput
//
// Every log entry is fsynced on a quorum (raft-boltdb's NoSync stays off), so
// on one disk the rate of log commits bounds throughput, and raft alone makes
// one commit per leader group commit on every node. The settings in tuning.go
// cut commits per entry: concurrent Propose calls are grouped into waves, one
// wave in flight, each sent as a single batch log entry (waves.go); larger
// AppendEntries and group commits (MaxAppendEntries 1024, BatchApplyCh);
// replication without pipelining, so a follower commits once per round trip;
// an in-memory log cache; bolt without a synced free list. The FSM applies a
// whole raft batch in one Badger transaction.
//
// Medians of three runs of
//
//	go test -run '^$' -bench 'BareRaft|NodeCreate' -benchtime 2s -count 3 ./raftjournal/
//
// on the 2-core development machine (shared and noisy: figures move by 2x
// with other work on it; BenchmarkInterleaved alternates clusters to compare
// them under the same noise). Bare is hashicorp/raft alone (3 nodes,
// raft-boltdb, counting FSM, 100-byte commands); Node proposes meta creates
// into Badger. ops/s, median latency, and log-store commits (each one fsynced
// bolt transaction) per op, summed over the 3 nodes:
//
//	clients  bare stock            bare tuned            Node stock            Node tuned
//	1          559/s 1.6ms 3.0       619/s 1.4ms 3.0       437/s 2.1ms 3.0       550/s 1.7ms 3.0
//	16        2096/s 6.6ms 0.85     2704/s 5.2ms 0.71     1282/s  13ms 1.5      4803/s 3.0ms 0.37
//	64        7616/s 7.6ms 0.21     8054/s 7.2ms 0.18     2458/s  18ms 0.74    13375/s 4.3ms 0.093
//	256      16029/s  15ms 0.063   25609/s 9.6ms 0.045   10561/s  18ms 0.097   26977/s 8.4ms 0.023
//
// At one client nothing can be grouped: latency is a leader commit, a round
// trip and a follower commit, plus the FSM's Badger transaction. Interleaved,
// 15 rounds at one client: bare stock 495/s (median 1.76 ms), Node tuned
// 479/s (1.92 ms), 97% of the bare rate.
package raftjournal
