package meta

import "errors"

// Errors of the engine layer.
var (
	// ErrNotFound is returned by Txn.Get for an absent key.
	ErrNotFound = errors.New("meta: key not found")
	// ErrReadOnly is returned by a write in a read-only transaction.
	ErrReadOnly = errors.New("meta: read-only transaction")
	// ErrTxnTooBig is returned when a transaction outgrows the engine's limit. The
	// transaction is then discarded; the caller retries with less work in it.
	ErrTxnTooBig = errors.New("meta: transaction too big")
	// ErrCorruptSnapshot is returned by RestoreSnapshot for a damaged stream.
	ErrCorruptSnapshot = errors.New("meta: corrupt snapshot")
)

// Txn is one transaction over an ordered key-value store. A Txn is used by one
// goroutine at a time.
type Txn interface {
	// Get returns a copy of the value stored under key, or ErrNotFound.
	Get(key []byte) ([]byte, error)
	// Set stores value under key. The engine may keep references to both slices
	// until the transaction ends.
	Set(key, value []byte) error
	// Delete removes key; deleting an absent key is not an error.
	Delete(key []byte) error
	// Scan calls fn for every key in [start, end) in ascending order, until fn
	// returns false or an error. key and value are valid only during the call.
	// A nil end means no upper bound.
	Scan(start, end []byte, fn func(key, value []byte) (bool, error)) error
}

// Store is an engine: an ordered key-value store with serializable transactions.
// Update transactions run one at a time.
type Store interface {
	// Update runs fn in a read-write transaction and commits it if fn returns nil.
	// If fn returns an error, nothing fn wrote is kept.
	Update(fn func(Txn) error) error
	// View runs fn in a read-only transaction that sees one consistent state.
	View(fn func(Txn) error) error
	// ReadPoint pins the current state for a long read (a snapshot) without
	// blocking writers. The caller must Release it.
	ReadPoint() (ReadPoint, error)
	// ReplaceAll drops the whole content and stores what fill puts, atomically
	// with respect to readers of this process: a crash in the middle may leave a
	// partial store, which the caller detects (see RestoreSnapshot).
	ReplaceAll(fill func(put func(key, value []byte) error) error) error
	// Sync makes every committed transaction durable.
	Sync() error
	// Close releases the store.
	Close() error
}

// ReadPoint is a consistent, read-only view of a store at one moment.
type ReadPoint interface {
	// Scan is Txn.Scan at the read point.
	Scan(start, end []byte, fn func(key, value []byte) (bool, error)) error
	// Release ends the read point.
	Release()
}
