package raftjournal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
)

// fsm is the Raft state machine over a meta.Store. raft calls ApplyBatch,
// Snapshot and Restore from one goroutine; Persist and Release of a snapshot run
// on another, concurrently with ApplyBatch.
type fsm struct {
	store meta.Store
	log   *slog.Logger
	// fatal stops the master; it must not return. Tests replace it.
	fatal func(msg string)
	// marker, when set, is the path of the file that says a restore is under
	// way (see Restore).
	marker string

	// applied is the index of the last log entry the store holds (committed,
	// not necessarily synced). It only changes on the raft FSM goroutine.
	applied atomic.Uint64
	// entries counts the log entries applied (not skipped) since start;
	// splits the batches split because of meta.ErrTxnTooBig.
	entries, splits atomic.Uint64
	// onApply, when set, is told about every batch applied (Config.OnApply).
	onApply func(ApplyStats)
	// Snapshot figures for Stats: snapshots persisted and failed, snapshots
	// restored, and the duration of the newest one persisted.
	snapshots, snapshotFailures, restores atomic.Uint64
	lastSnapshotNs                        atomic.Int64

	mu        sync.Mutex    // guards appliedCh
	appliedCh chan struct{} // closed and replaced whenever applied advances
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(store meta.Store, log *slog.Logger) (*fsm, error) {
	f := &fsm{store: store, log: log, appliedCh: make(chan struct{})}
	f.fatal = func(msg string) {
		f.log.Error(msg)
		panic(msg)
	}
	if err := f.loadApplied(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *fsm) loadApplied() error {
	var idx uint64
	err := f.store.View(func(tx meta.Txn) error {
		var err error
		idx, err = meta.AppliedIndex(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("raftjournal: read applied index: %w", err)
	}
	f.setApplied(idx)
	return nil
}

func (f *fsm) setApplied(idx uint64) {
	f.applied.Store(idx)
	f.mu.Lock()
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
	f.mu.Unlock()
}

// waitApplied blocks until the store holds every entry up to idx.
func (f *fsm) waitApplied(done <-chan struct{}, idx uint64) bool {
	for {
		f.mu.Lock()
		ch := f.appliedCh
		f.mu.Unlock()
		if f.applied.Load() >= idx {
			return true
		}
		select {
		case <-ch:
		case <-done:
			return false
		}
	}
}

// Apply applies one log entry; raft uses ApplyBatch, this is for completeness.
func (f *fsm) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies a batch of committed entries in one store transaction,
// together with the index of the last one. Entries at or below the stored
// applied index are skipped: they were applied before a restart.
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	if f.onApply == nil {
		resp := make([]interface{}, len(logs))
		f.applyRange(logs, resp)
		return resp
	}
	start, before := time.Now(), f.entries.Load()
	resp := make([]interface{}, len(logs))
	f.applyRange(logs, resp)
	f.onApply(ApplyStats{Took: time.Since(start), Logs: len(logs), Entries: int(f.entries.Load() - before)})
	return resp
}

// applyRange applies logs in one transaction; when the transaction outgrows the
// engine it applies the two halves in sequence instead, and a single batch log
// entry in parts (see applyParts).
func (f *fsm) applyRange(logs []*raft.Log, resp []interface{}) {
	var last uint64
	var applied int
	var batch []*metapb.Entry // the last batch entry decoded, for applyParts
	err := f.store.Update(func(tx meta.Txn) error {
		stored, err := meta.AppliedIndex(tx)
		if err != nil {
			return err
		}
		pIndex, pCount, err := getPartial(tx)
		if err != nil {
			return err
		}
		last, applied = 0, 0
		for i, l := range logs {
			resp[i] = nil
			if l.Index <= stored {
				continue
			}
			last = l.Index
			if l.Type != raft.LogCommand {
				continue // configuration changes live in raft's own log
			}
			d := f.decode(l)
			batch = d.batch
			var skip uint64
			if l.Index == pIndex {
				skip = pCount
			}
			r, n, err := f.applyOne(tx, l, d, skip)
			if err != nil {
				return err
			}
			resp[i] = r
			applied += n
		}
		if last == 0 {
			return nil
		}
		if pIndex != 0 && last >= pIndex {
			if err := tx.Delete(keyPartial); err != nil {
				return err
			}
		}
		return meta.SetAppliedIndex(tx, last)
	})
	switch {
	case err == nil:
	case errors.Is(err, meta.ErrTxnTooBig) && len(logs) > 1:
		f.log.Debug("raftjournal: batch too big for one transaction, splitting",
			"entries", len(logs), "first", logs[0].Index)
		f.splits.Add(1)
		mid := len(logs) / 2
		f.applyRange(logs[:mid], resp[:mid])
		f.applyRange(logs[mid:], resp[mid:])
		return
	case errors.Is(err, meta.ErrTxnTooBig) && len(batch) > 1:
		f.splits.Add(1)
		resp[0] = f.applyParts(logs[0], batch)
		return
	default:
		f.fatal(fmt.Sprintf("raftjournal: cannot apply log entries %d..%d: %v; stopping this master rather than diverge",
			logs[0].Index, logs[len(logs)-1].Index, err))
		return
	}
	if last != 0 {
		f.entries.Add(uint64(applied))
		f.setApplied(last)
	}
}

// applyParts applies a batch log entry too big for one transaction in several,
// recording after each how many of its entries are applied (keyPartial), so
// that a restart in between goes on where it stopped.
func (f *fsm) applyParts(l *raft.Log, batch []*metapb.Entry) []meta.Result {
	results := make([]meta.Result, len(batch))
	var part func(from, to int)
	part = func(from, to int) {
		applied := 0
		err := f.store.Update(func(tx meta.Txn) error {
			applied = 0
			pIndex, pCount, err := getPartial(tx)
			if err != nil {
				return err
			}
			start := from
			if pIndex == l.Index && int(pCount) > start {
				start = int(pCount)
			}
			for j := start; j < to; j++ {
				res, err := f.applyEntry(tx, l, batch[j])
				if err != nil {
					return err
				}
				results[j] = res
				applied++
			}
			if to < len(batch) {
				return setPartial(tx, l.Index, uint64(to))
			}
			if err := tx.Delete(keyPartial); err != nil {
				return err
			}
			return meta.SetAppliedIndex(tx, l.Index)
		})
		switch {
		case err == nil:
			f.entries.Add(uint64(applied))
		case errors.Is(err, meta.ErrTxnTooBig) && to-from > 1:
			mid := from + (to-from)/2
			part(from, mid)
			part(mid, to)
		default:
			f.fatal(fmt.Sprintf("raftjournal: cannot apply entries %d..%d of batch log entry %d: %v; stopping this master rather than diverge",
				from, to-1, l.Index, err))
		}
	}
	part(0, len(batch))
	f.setApplied(l.Index)
	return results
}

// decode decodes a command log entry or stops the master.
func (f *fsm) decode(l *raft.Log) decoded {
	d, err := decode(l.Data)
	if err != nil {
		f.fatal(fmt.Sprintf("raftjournal: log entry %d (term %d): %v; stopping this master rather than skip it",
			l.Index, l.Term, err))
	}
	return d
}

// applyOne applies one decoded command log entry, skipping the first skip
// entries of a batch, and returns its response and the number of journal
// entries applied. An error is the engine's transaction limit (the caller
// splits); anything else stops the master.
func (f *fsm) applyOne(tx meta.Txn, l *raft.Log, d decoded, skip uint64) (interface{}, int, error) {
	switch {
	case d.cmd != nil:
		err := applyCommand(tx, d.cmd)
		if err != nil && !errors.Is(err, meta.ErrTxnTooBig) {
			f.fatal(fmt.Sprintf("raftjournal: journal command at %d (term %d): %v; stopping this master", l.Index, l.Term, err))
		}
		return nil, 1, err
	case d.entry != nil:
		res, err := f.applyEntry(tx, l, d.entry)
		return res, 1, err
	}
	results := make([]meta.Result, len(d.batch))
	n := 0
	for j := int(skip); j < len(d.batch); j++ {
		res, err := f.applyEntry(tx, l, d.batch[j])
		if err != nil {
			return nil, 0, err
		}
		results[j] = res
		n++
	}
	return results, n, nil
}

func (f *fsm) applyEntry(tx meta.Txn, l *raft.Log, e *metapb.Entry) (meta.Result, error) {
	res, err := meta.Apply(tx, e)
	if err != nil && !errors.Is(err, meta.ErrTxnTooBig) {
		f.fatal(fmt.Sprintf("raftjournal: meta.Apply of log entry %d (term %d): %v; stopping this master rather than diverge",
			l.Index, l.Term, err))
	}
	return res, err
}

// Snapshot makes the store durable up to the current index (raft may truncate
// the log up to it, and on restart replays only after its newest snapshot) and
// pins a read point. It does no other I/O.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.store.Sync(); err != nil {
		return nil, fmt.Errorf("raftjournal: sync before snapshot: %w", err)
	}
	rp, err := f.store.ReadPoint()
	if err != nil {
		return nil, fmt.Errorf("raftjournal: snapshot read point: %w", err)
	}
	return &snapshot{rp: rp, f: f, start: time.Now()}, nil
}

// Restore replaces the whole store with a snapshot's content.
//
// The store's own marker (meta.Restoring) tells a half-restored store from a
// whole one, but only once the stream has written it: the store is emptied
// first. A marker file beside the store, made durable before the store is
// touched and removed after, covers that gap; Open finishes the restore when
// either says one was under way.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if f.marker != "" {
		if err := writeDurable(f.marker); err != nil {
			return fmt.Errorf("raftjournal: restore snapshot: %w", err)
		}
	}
	if err := meta.RestoreSnapshot(f.store, rc); err != nil {
		return fmt.Errorf("raftjournal: restore snapshot: %w", err)
	}
	if err := f.loadApplied(); err != nil {
		return err
	}
	if f.marker != "" {
		if err := removeDurable(f.marker); err != nil {
			return fmt.Errorf("raftjournal: restore snapshot: %w", err)
		}
	}
	f.restores.Add(1)
	return nil
}

// writeDurable creates an empty file at path, durably.
func writeDurable(path string) error {
	fd, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := errors.Join(fd.Sync(), fd.Close()); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// removeDurable removes the file at path, durably.
func removeDurable(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// snapshot streams a read point of the store.
type snapshot struct {
	rp    meta.ReadPoint
	once  sync.Once
	f     *fsm      // counts the outcome
	start time.Time // when Snapshot was called
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := meta.WriteSnapshot(s.rp, sink); err != nil {
		sink.Cancel()
		s.f.snapshotFailures.Add(1)
		return fmt.Errorf("raftjournal: write snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		s.f.snapshotFailures.Add(1)
		return fmt.Errorf("raftjournal: close snapshot: %w", err)
	}
	s.f.lastSnapshotNs.Store(int64(time.Since(s.start)))
	s.f.snapshots.Add(1)
	return nil
}

func (s *snapshot) Release() { s.once.Do(s.rp.Release) }
