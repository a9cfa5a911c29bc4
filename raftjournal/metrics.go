package raftjournal

import (
	"strconv"
	"strings"
	"time"
)

// ApplyStats describes one batch of committed log entries that raft handed
// to the state machine (Config.OnApply).
type ApplyStats struct {
	// Took is the time the batch took to apply, store transactions included.
	Took time.Duration
	// Logs is the number of raft log entries in the batch; Entries the number
	// of journal entries applied (a batch log entry holds many; entries
	// applied before a restart are skipped and not counted).
	Logs, Entries int
}

// Stats are figures of the journal for monitoring: counters since Open and
// the newest snapshot. Node.Status has the Raft state and indexes.
type Stats struct {
	// EntriesApplied counts the journal entries applied since Open; Splits
	// the batches split because they outgrew one store transaction.
	EntriesApplied, Splits uint64
	// Snapshots counts the snapshots this node took since Open, and
	// SnapshotFailures those that failed; Restores the snapshots installed
	// (sent by a leader) since Open.
	Snapshots, SnapshotFailures, Restores uint64
	// LastSnapshotDuration is how long the newest snapshot taken since Open
	// took, from the state machine's Snapshot to the end of Persist (0: none
	// taken since Open).
	LastSnapshotDuration time.Duration
	// SnapshotIndex, SnapshotSize and SnapshotTime describe the newest
	// snapshot in the snapshot store (taken here or installed; zero when
	// there is none): its last log index, its size in bytes and when it was
	// started.
	SnapshotIndex uint64
	SnapshotSize  int64
	SnapshotTime  time.Time
}

// Stats returns the journal's figures. It reads the snapshot store's
// metadata: call it for monitoring, not on a request path.
func (n *Node) Stats() Stats {
	st := Stats{
		EntriesApplied:       n.fsm.entries.Load(),
		Splits:               n.fsm.splits.Load(),
		Snapshots:            n.fsm.snapshots.Load(),
		SnapshotFailures:     n.fsm.snapshotFailures.Load(),
		Restores:             n.fsm.restores.Load(),
		LastSnapshotDuration: time.Duration(n.fsm.lastSnapshotNs.Load()),
	}
	if metas, err := n.snaps.List(); err == nil && len(metas) > 0 {
		m := metas[0] // newest first
		st.SnapshotIndex, st.SnapshotSize = m.Index, m.Size
		st.SnapshotTime = snapshotTime(m.ID)
	}
	return st
}

// snapshotTime reads the creation time in a file snapshot's ID,
// "term-index-milliseconds" (zero when the ID is not of that form).
func snapshotTime(id string) time.Time {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return time.Time{}
	}
	ms, err := strconv.ParseInt(id[i+1:], 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
