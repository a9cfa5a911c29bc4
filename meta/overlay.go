package meta

import (
	"bytes"
	"slices"
)

// overlay buffers the writes of one entry over the batch's transaction, so that an
// entry that ends in a POSIX error leaves nothing behind even though the batch's
// transaction goes on. Reads see the buffered writes.
type overlay struct {
	base   Txn
	writes map[string][]byte // a nil value is a deletion
}

func newOverlay(base Txn) *overlay {
	return &overlay{base: base, writes: make(map[string][]byte)}
}

func (o *overlay) Get(key []byte) ([]byte, error) {
	if v, ok := o.writes[string(key)]; ok {
		if v == nil {
			return nil, ErrNotFound
		}
		return bytes.Clone(v), nil
	}
	return o.base.Get(key)
}

func (o *overlay) Set(key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	o.writes[string(key)] = value
	return nil
}

func (o *overlay) Delete(key []byte) error {
	o.writes[string(key)] = nil
	return nil
}

// Scan merges the buffered writes in [start, end) with the base's keys.
func (o *overlay) Scan(start, end []byte, fn func(key, value []byte) (bool, error)) error {
	var pending []string
	for k := range o.writes {
		if k >= string(start) && (end == nil || k < string(end)) {
			pending = append(pending, k)
		}
	}
	if len(pending) == 0 {
		return o.base.Scan(start, end, fn)
	}
	slices.Sort(pending)
	stopped := false
	// emit sends the buffered keys below limit (all of them if limit is nil).
	emit := func(limit []byte) (bool, error) {
		for len(pending) > 0 && (limit == nil || pending[0] < string(limit)) {
			k := pending[0]
			pending = pending[1:]
			if v := o.writes[k]; v != nil {
				if more, err := fn([]byte(k), v); err != nil || !more {
					return false, err
				}
			}
		}
		return true, nil
	}
	err := o.base.Scan(start, end, func(key, value []byte) (bool, error) {
		if more, err := emit(key); err != nil || !more {
			stopped = true
			return false, err
		}
		if len(pending) > 0 && pending[0] == string(key) {
			return true, nil // shadowed: emitted (or deleted) with the next batch
		}
		more, err := fn(key, value)
		if !more {
			stopped = true
		}
		return more, err
	})
	if err != nil || stopped {
		return err
	}
	_, err = emit(nil)
	return err
}

// flush writes the buffered changes into the base transaction in key order.
func (o *overlay) flush() error {
	keys := make([]string, 0, len(o.writes))
	for k := range o.writes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var err error
		if v := o.writes[k]; v == nil {
			err = o.base.Delete([]byte(k))
		} else {
			err = o.base.Set([]byte(k), v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Scratch returns a transaction over base whose writes are never written
// through: reads see them, and they are dropped with it. A master applies
// entries in one to learn what state they would leave, without changing
// anything (base may be read-only).
func Scratch(base Txn) Txn { return newOverlay(base) }
