package raftjournal

import (
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/journalpb"
	"github.com/skyfs/skyfs/proto/metapb"
)

// Type bytes that start every Raft log entry of skyfs (see the package comment).
const (
	tagMeta    byte = 0x01 // a metapb.Entry follows
	tagCommand byte = 0x02 // a journalpb.Command follows
	tagBatch   byte = 0x03 // a journalpb.Batch of metapb.Entry follows
)

// keyMemberPrefix starts the key of every member record: 'c' 'm' id. The 'c'
// table of meta's key layout is reserved for this package.
var keyMemberPrefix = []byte{'c', 'm'}

// keyPartial marks a batch log entry applied in part, because it did not fit
// in one store transaction: the log index and how many of its entries are
// applied (8 bytes each, big-endian).
var keyPartial = []byte{'c', 'p'}

func memberKey(id string) []byte {
	return append(append([]byte(nil), keyMemberPrefix...), id...)
}

// errUndecodable marks a log entry that cannot be decoded; see fatal.
var errUndecodable = errors.New("raftjournal: undecodable log entry")

// encodeMeta encodes a namespace entry as a log entry.
func encodeMeta(e *metapb.Entry) ([]byte, error) {
	b := make([]byte, 1, 1+proto.Size(e))
	b[0] = tagMeta
	return proto.MarshalOptions{}.MarshalAppend(b, e)
}

// encodeCommand encodes a journal command as a log entry.
func encodeCommand(c *journalpb.Command) ([]byte, error) {
	b := make([]byte, 1, 1+proto.Size(c))
	b[0] = tagCommand
	return proto.MarshalOptions{}.MarshalAppend(b, c)
}

// encodeBatch encodes namespace entries, each already encoded, as one log
// entry.
func encodeBatch(entries [][]byte) ([]byte, error) {
	b := &journalpb.Batch{Entries: entries}
	out := make([]byte, 1, 1+proto.Size(b))
	out[0] = tagBatch
	return proto.MarshalOptions{}.MarshalAppend(out, b)
}

// decoded is one decoded log entry: exactly one of entry, batch and cmd is
// set.
type decoded struct {
	entry *metapb.Entry
	batch []*metapb.Entry
	cmd   *journalpb.Command
}

// decode decodes a log entry. Any failure wraps errUndecodable.
func decode(data []byte) (decoded, error) {
	if len(data) == 0 {
		return decoded{}, fmt.Errorf("%w: empty", errUndecodable)
	}
	switch data[0] {
	case tagMeta:
		e, err := meta.DecodeEntry(data[1:])
		if err != nil {
			return decoded{}, fmt.Errorf("%w: %w", errUndecodable, err)
		}
		return decoded{entry: e}, nil
	case tagCommand:
		c := new(journalpb.Command)
		if err := proto.Unmarshal(data[1:], c); err != nil {
			return decoded{}, fmt.Errorf("%w: command: %w", errUndecodable, err)
		}
		if c.Op == nil {
			return decoded{}, fmt.Errorf("%w: command of unknown type", errUndecodable)
		}
		return decoded{cmd: c}, nil
	case tagBatch:
		b := new(journalpb.Batch)
		if err := proto.Unmarshal(data[1:], b); err != nil {
			return decoded{}, fmt.Errorf("%w: batch: %w", errUndecodable, err)
		}
		if len(b.Entries) == 0 {
			return decoded{}, fmt.Errorf("%w: empty batch", errUndecodable)
		}
		d := decoded{batch: make([]*metapb.Entry, len(b.Entries))}
		for i, eb := range b.Entries {
			e, err := meta.DecodeEntry(eb)
			if err != nil {
				return decoded{}, fmt.Errorf("%w: batch entry %d: %w", errUndecodable, i, err)
			}
			d.batch[i] = e
		}
		return d, nil
	}
	return decoded{}, fmt.Errorf("%w: unknown type byte %#x", errUndecodable, data[0])
}

// applyCommand applies a journal command in tx. Commands are deterministic, like
// meta.Apply.
func applyCommand(tx meta.Txn, c *journalpb.Command) error {
	switch op := c.Op.(type) {
	case *journalpb.Command_SetMember:
		if op.SetMember.GetId() == "" {
			return nil // nothing to record; never fails, so every master agrees
		}
		v, err := proto.MarshalOptions{Deterministic: true}.Marshal(op.SetMember)
		if err != nil {
			return err
		}
		return tx.Set(memberKey(op.SetMember.Id), v)
	case *journalpb.Command_RemoveMember:
		return tx.Delete(memberKey(op.RemoveMember))
	}
	return fmt.Errorf("%w: command %T", errUndecodable, c.Op)
}

// getPartial returns the batch log entry applied in part, if any.
func getPartial(tx meta.Txn) (index, count uint64, err error) {
	v, err := tx.Get(keyPartial)
	if errors.Is(err, meta.ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	if len(v) != 16 {
		return 0, 0, fmt.Errorf("raftjournal: bad partial-batch record %x", v)
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), nil
}

func setPartial(tx meta.Txn, index, count uint64) error {
	return tx.Set(keyPartial, binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, index), count))
}

// readMembers returns every member record in tx, by id.
func readMembers(tx meta.Txn) (map[string]*journalpb.Member, error) {
	out := make(map[string]*journalpb.Member)
	end := []byte{'c', 'm' + 1}
	err := tx.Scan(keyMemberPrefix, end, func(k, v []byte) (bool, error) {
		m := new(journalpb.Member)
		if err := proto.Unmarshal(v, m); err != nil {
			return false, fmt.Errorf("raftjournal: member record %q: %w", k, err)
		}
		out[m.Id] = m
		return true, nil
	})
	return out, err
}

// readMember returns one member record, or nil.
func readMember(tx meta.Txn, id string) (*journalpb.Member, error) {
	v, err := tx.Get(memberKey(id))
	if errors.Is(err, meta.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m := new(journalpb.Member)
	if err := proto.Unmarshal(v, m); err != nil {
		return nil, fmt.Errorf("raftjournal: member record %q: %w", id, err)
	}
	return m, nil
}
