package raftjournal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/skyfs/skyfs/meta"
)

// fsm is the Raft state machine over a meta.Store. raft calls ApplyBatch,
// Snapshot and Restore from one goroutine; Persist and Release of a snapshot run
// on another, concurrently with ApplyBatch.
type fsm struct {
	store meta.Store
	log   *slog.Logger
	// fatal stops the master; it must not return. Tests replace it.
	fatal func(msg string)

	// applied is the index of the last log entry the store holds (committed,
	// not necessarily synced). It only changes on the raft FSM goroutine.
	applied atomic.Uint64
	// entries counts the log entries applied (not skipped) since start;
	// splits the batches split because of meta.ErrTxnTooBig.
	entries, splits atomic.Uint64

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

// Apply applies one entry; raft uses ApplyBatch, this is for completeness.
func (f *fsm) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies a batch of committed entries in one store transaction,
// together with the index of the last one. Entries at or below the stored
// applied index are skipped: they were applied before a restart.
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	resp := make([]interface{}, len(logs))
	f.applyRange(logs, resp)
	return resp
}

// applyRange applies logs in one transaction; when the transaction outgrows the
// engine it applies the two halves in sequence instead.
func (f *fsm) applyRange(logs []*raft.Log, resp []interface{}) {
	var last uint64
	var applied int
	err := f.store.Update(func(tx meta.Txn) error {
		stored, err := meta.AppliedIndex(tx)
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
			applied++
			r, err := f.applyOne(tx, l)
			if err != nil {
				return err
			}
			resp[i] = r
		}
		if last == 0 {
			return nil
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

// applyOne applies one command entry. An error is either the engine's
// transaction limit (the caller splits) or fatal.
func (f *fsm) applyOne(tx meta.Txn, l *raft.Log) (interface{}, error) {
	d, err := decode(l.Data)
	if err != nil {
		f.fatal(fmt.Sprintf("raftjournal: log entry %d (term %d): %v; stopping this master rather than skip it",
			l.Index, l.Term, err))
		return nil, err
	}
	if d.cmd != nil {
		err = applyCommand(tx, d.cmd)
		if err != nil && !errors.Is(err, meta.ErrTxnTooBig) {
			f.fatal(fmt.Sprintf("raftjournal: journal command at %d (term %d): %v; stopping this master", l.Index, l.Term, err))
		}
		return nil, err
	}
	res, err := meta.Apply(tx, d.entry)
	if err != nil && !errors.Is(err, meta.ErrTxnTooBig) {
		f.fatal(fmt.Sprintf("raftjournal: meta.Apply of entry %d (term %d): %v; stopping this master rather than diverge",
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
	return &snapshot{rp: rp}, nil
}

// Restore replaces the whole store with a snapshot's content.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := meta.RestoreSnapshot(f.store, rc); err != nil {
		return fmt.Errorf("raftjournal: restore snapshot: %w", err)
	}
	return f.loadApplied()
}

// snapshot streams a read point of the store.
type snapshot struct {
	rp   meta.ReadPoint
	once sync.Once
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := meta.WriteSnapshot(s.rp, sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("raftjournal: write snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("raftjournal: close snapshot: %w", err)
	}
	return nil
}

func (s *snapshot) Release() { s.once.Do(s.rp.Release) }
