// Package badgerstore is the on-disk meta engine, on Badger v4.
//
// Commits are not fsynced one by one: the Raft log is the durable record, and the
// journal calls Sync before it takes a snapshot, so the store is never behind a
// snapshot it has handed out. After a crash the store may miss the last applied
// batches; the journal replays them from the log (meta records the applied index
// in the same transaction as each batch).
//
// Memory stays bounded whatever the namespace's size: memtables and caches are
// sized by Options, and everything else lives on disk in the LSM tree, where a
// directory's entries are one key range.
package badgerstore

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/skyfs/skyfs/meta"
)

// Options tune the engine. Zero values take the defaults.
type Options struct {
	// MemTableSize is the size of one memtable (default 32 MiB).
	MemTableSize int64
	// BlockCacheSize is the size of the block cache (default 64 MiB).
	BlockCacheSize int64
	// SyncWrites fsyncs every commit (default off; see the package comment).
	SyncWrites bool
	// InMemory keeps everything in memory (tests).
	InMemory bool
}

// Store is a meta.Store on a Badger database.
type Store struct {
	db        *badger.DB
	closeOnce sync.Once
	closeErr  error
}

var _ meta.Store = (*Store)(nil)

// Open opens or creates the store in dir.
func Open(dir string, o Options) (*Store, error) {
	if o.MemTableSize == 0 {
		o.MemTableSize = 32 << 20
	}
	if o.BlockCacheSize == 0 {
		o.BlockCacheSize = 64 << 20
	}
	bo := badger.DefaultOptions(dir).
		WithLogger(nil).
		WithSyncWrites(o.SyncWrites).
		WithMemTableSize(o.MemTableSize).
		WithNumMemtables(3).
		WithBlockCacheSize(o.BlockCacheSize).
		WithIndexCacheSize(32 << 20).
		WithNumVersionsToKeep(1).
		WithCompression(options.Snappy).
		WithValueThreshold(4 << 10).
		WithNumCompactors(2).
		WithDetectConflicts(false)
	if o.InMemory {
		bo = bo.WithDir("").WithValueDir("").WithInMemory(true)
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: open %s: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Update runs fn in one read-write transaction.
func (s *Store) Update(fn func(meta.Txn) error) error {
	t := s.db.NewTransaction(true)
	defer t.Discard()
	if err := fn(&txn{t: t}); err != nil {
		return err
	}
	return mapErr(t.Commit())
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(meta.Txn) error) error {
	t := s.db.NewTransaction(false)
	defer t.Discard()
	return fn(&txn{t: t})
}

// ReadPoint opens a read-only transaction: Badger keeps the versions it sees
// while writers go on.
func (s *Store) ReadPoint() (meta.ReadPoint, error) {
	return &txn{t: s.db.NewTransaction(false)}, nil
}

// ReplaceAll drops every key and loads what fill puts through a write batch.
func (s *Store) ReplaceAll(fill func(put func(k, v []byte) error) error) error {
	if err := s.db.DropAll(); err != nil {
		return fmt.Errorf("badgerstore: drop: %w", err)
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	err := fill(func(k, v []byte) error {
		return wb.Set(bytes.Clone(k), bytes.Clone(v))
	})
	// What fill put is kept even when it failed: the caller's own marker tells
	// a partial store from a whole one.
	if ferr := wb.Flush(); ferr != nil && err == nil {
		err = fmt.Errorf("badgerstore: restore: %w", ferr)
	}
	if serr := s.Sync(); serr != nil && err == nil {
		err = serr
	}
	return err
}

// Sync makes every commit durable.
func (s *Store) Sync() error { return s.db.Sync() }

// Close closes the database; closing again does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.db.Close() })
	return s.closeErr
}

// DB exposes the database for size reporting and maintenance.
func (s *Store) DB() *badger.DB { return s.db }

func mapErr(err error) error {
	if errors.Is(err, badger.ErrTxnTooBig) {
		return fmt.Errorf("%w: %w", meta.ErrTxnTooBig, err)
	}
	return err
}

type txn struct{ t *badger.Txn }

func (t *txn) Get(k []byte) ([]byte, error) {
	it, err := t.t.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, meta.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return it.ValueCopy(nil)
}

func (t *txn) Set(k, v []byte) error {
	err := t.t.Set(bytes.Clone(k), bytes.Clone(v))
	if errors.Is(err, badger.ErrReadOnlyTxn) {
		return meta.ErrReadOnly
	}
	return mapErr(err)
}

func (t *txn) Delete(k []byte) error {
	err := t.t.Delete(bytes.Clone(k))
	if errors.Is(err, badger.ErrReadOnlyTxn) {
		return meta.ErrReadOnly
	}
	return mapErr(err)
}

func (t *txn) Scan(start, end []byte, fn func(k, v []byte) (bool, error)) error {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchSize = 64
	if len(start) > 0 && end != nil {
		opts.Prefix = commonPrefix(start, end)
	}
	it := t.t.NewIterator(opts)
	defer it.Close()
	for it.Seek(start); it.Valid(); it.Next() {
		item := it.Item()
		k := item.Key()
		if end != nil && bytes.Compare(k, end) >= 0 {
			return nil
		}
		var more bool
		err := item.Value(func(v []byte) error {
			var err error
			more, err = fn(k, v)
			return err
		})
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (t *txn) Release() { t.t.Discard() }

// commonPrefix is the longest common prefix of two keys: iterating with it lets
// Badger skip tables that cannot hold the range.
func commonPrefix(a, b []byte) []byte {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return a[:n]
}
