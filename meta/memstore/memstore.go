// Package memstore is an in-memory meta engine for tests and tools: an ordered
// B-tree under one lock. Update transactions work on a copy-on-write clone of the
// tree and replace it on commit, so a failed transaction leaves nothing behind and
// read points are free. Nothing is durable.
package memstore

import (
	"bytes"
	"sync"

	"github.com/google/btree"

	"github.com/skyfs/skyfs/meta"
)

type item struct{ k, v []byte }

func less(a, b item) bool { return bytes.Compare(a.k, b.k) < 0 }

// Store is an in-memory meta.Store.
type Store struct {
	wmu  sync.Mutex // serializes Update and ReplaceAll; taken before mu
	mu   sync.RWMutex
	tree *btree.BTreeG[item]
}

var _ meta.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store { return &Store{tree: btree.NewG(32, less)} }

// current returns a private clone of the committed tree.
func (s *Store) current() *btree.BTreeG[item] {
	s.mu.Lock() // Clone marks the shared nodes; it must not race other Clones
	defer s.mu.Unlock()
	return s.tree.Clone()
}

// Update runs fn on a clone of the tree and installs the clone if fn succeeds.
func (s *Store) Update(fn func(meta.Txn) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	t := &txn{tree: s.current()}
	if err := fn(t); err != nil {
		return err
	}
	s.mu.Lock()
	s.tree = t.tree
	s.mu.Unlock()
	return nil
}

// View runs fn on the committed tree at the time of the call.
func (s *Store) View(fn func(meta.Txn) error) error {
	return fn(&txn{tree: s.current(), readOnly: true})
}

// ReadPoint returns a view of the committed tree.
func (s *Store) ReadPoint() (meta.ReadPoint, error) {
	return &txn{tree: s.current(), readOnly: true}, nil
}

// ReplaceAll installs a new tree filled by fill.
func (s *Store) ReplaceAll(fill func(put func(k, v []byte) error) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	t := btree.NewG(32, less)
	err := fill(func(k, v []byte) error {
		t.ReplaceOrInsert(item{bytes.Clone(k), bytes.Clone(v)})
		return nil
	})
	s.mu.Lock()
	s.tree = t // a failed fill leaves a partial store, as on disk
	s.mu.Unlock()
	return err
}

// Sync does nothing: nothing is durable.
func (s *Store) Sync() error { return nil }

// Close does nothing.
func (s *Store) Close() error { return nil }

type txn struct {
	tree     *btree.BTreeG[item]
	readOnly bool
}

func (t *txn) Get(k []byte) ([]byte, error) {
	it, ok := t.tree.Get(item{k: k})
	if !ok {
		return nil, meta.ErrNotFound
	}
	return bytes.Clone(it.v), nil
}

func (t *txn) Set(k, v []byte) error {
	if t.readOnly {
		return meta.ErrReadOnly
	}
	t.tree.ReplaceOrInsert(item{bytes.Clone(k), bytes.Clone(v)})
	return nil
}

func (t *txn) Delete(k []byte) error {
	if t.readOnly {
		return meta.ErrReadOnly
	}
	t.tree.Delete(item{k: k})
	return nil
}

func (t *txn) Scan(start, end []byte, fn func(k, v []byte) (bool, error)) error {
	var err error
	t.tree.AscendGreaterOrEqual(item{k: start}, func(it item) bool {
		if end != nil && bytes.Compare(it.k, end) >= 0 {
			return false
		}
		var more bool
		more, err = fn(it.k, it.v)
		return more && err == nil
	})
	return err
}

func (t *txn) Release() {}
