package meta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"google.golang.org/protobuf/proto"

	"github.com/skyfs/skyfs/proto/metapb"
)

// Bounds of sessions and inode ranges.
const (
	// MaxLease is the longest lease a session may ask for.
	MaxLease = int64(10 * 60 * 1e9)
	// MaxRangeCount is the most inode numbers one GrantRange hands out.
	MaxRangeCount = 1 << 20
	// MaxRanges is the most unspent ranges one session may hold: a holder
	// spends its ranges before it asks for more.
	MaxRanges = 16
)

// Session is a mount daemon's session as the state records it.
type Session struct {
	Holder  uint64
	LeaseNs int64
	// ExpiresNs is when the lease runs out, in entry time. A session is live
	// for entries of an earlier time only.
	ExpiresNs int64
}

// Live reports whether the session's lease still runs at time now (an
// entry's time, or the leader's clock).
func (s Session) Live(now int64) bool { return now < s.ExpiresNs }

// Delegation is a directory delegated to a session.
type Delegation struct {
	Dir        Ino
	Holder     uint64
	GrantedNs  int64
	RecalledNs int64 // zero while not recalled
}

// InoRange is a range of inode numbers granted to a session: [Start, End),
// of which the numbers below Next are spent (used, or skipped for good).
type InoRange struct {
	Start, End, Next Ino
}

// Errors of a holder's entry that it must not take for a POSIX outcome of an
// operation: they refuse the whole entry.
const (
	// ErrnoStaleLease: the holder's session is unknown or its lease ran out.
	ErrnoStaleLease = syscall.ESTALE
	// ErrnoNotHeld: a directory the entry names is not delegated to the
	// holder.
	ErrnoNotHeld = syscall.ENOLCK
	// ErrnoNotGranted: an inode number the entry brings is not an unspent
	// number of a range granted to the holder.
	ErrnoNotGranted = syscall.ERANGE
	// ErrnoDelegated: the directory is delegated to another live session;
	// the leader recalls the delegation and proposes again.
	ErrnoDelegated = syscall.EAGAIN
)

// refusal is an outcome that refuses a whole Batch, not just one of its
// operations (see Batch).
type refusal syscall.Errno

func (r refusal) Error() string { return "refused: " + syscall.Errno(r).Error() }

func sessionKey(holder uint64) []byte { return u64([]byte{tabSession}, holder) }

func delegationKey(dir Ino) []byte { return u64([]byte{tabDelegation}, dir) }

func heldKey(holder uint64, dir Ino) []byte { return u64(u64([]byte{tabHeld}, holder), dir) }

func rangeKey(holder uint64, start Ino) []byte { return u64(u64([]byte{tabRange}, holder), start) }

func getRecord(tx Txn, key []byte, m proto.Message) (bool, error) {
	v, err := tx.Get(key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := proto.Unmarshal(v, m); err != nil {
		return false, fmt.Errorf("meta: record %x: %w", key, err)
	}
	return true, nil
}

func putRecord(tx Txn, key []byte, m proto.Message) error {
	v, err := marshal.Marshal(m)
	if err != nil {
		return err
	}
	return tx.Set(key, v)
}

// SessionOf returns the session holder, if the state has one.
func SessionOf(tx Txn, holder uint64) (Session, bool, error) {
	rec := new(metapb.Session)
	ok, err := getRecord(tx, sessionKey(holder), rec)
	if !ok || err != nil {
		return Session{}, false, err
	}
	return Session{Holder: holder, LeaseNs: rec.LeaseNs, ExpiresNs: rec.ExpiresNs}, true, nil
}

// DelegationOf returns the delegation of directory dir, if there is one.
func DelegationOf(tx Txn, dir Ino) (Delegation, bool, error) {
	rec := new(metapb.Delegation)
	ok, err := getRecord(tx, delegationKey(dir), rec)
	if !ok || err != nil {
		return Delegation{}, false, err
	}
	return Delegation{Dir: dir, Holder: rec.Holder, GrantedNs: rec.GrantedNs, RecalledNs: rec.RecalledNs}, true, nil
}

// DelegatedTo returns the directories delegated to session holder, in
// order.
func DelegatedTo(tx Txn, holder uint64) ([]Ino, error) {
	var dirs []Ino
	prefix := u64([]byte{tabHeld}, holder)
	err := tx.Scan(prefix, prefixEnd(prefix), func(k, _ []byte) (bool, error) {
		if len(k) != 17 {
			return false, fmt.Errorf("meta: bad held key %x", k)
		}
		dirs = append(dirs, binary.BigEndian.Uint64(k[9:]))
		return true, nil
	})
	return dirs, err
}

// RangesOf returns the unspent inode ranges granted to session holder, in
// order.
func RangesOf(tx Txn, holder uint64) ([]InoRange, error) {
	var out []InoRange
	prefix := u64([]byte{tabRange}, holder)
	err := tx.Scan(prefix, prefixEnd(prefix), func(k, v []byte) (bool, error) {
		if len(k) != 17 {
			return false, fmt.Errorf("meta: bad range key %x", k)
		}
		rec := new(metapb.InoRange)
		if err := proto.Unmarshal(v, rec); err != nil {
			return false, fmt.Errorf("meta: range record %x: %w", k, err)
		}
		out = append(out, InoRange{Start: binary.BigEndian.Uint64(k[9:]), End: rec.End, Next: rec.Next})
		return true, nil
	})
	return out, err
}

// liveSession returns holder's session when it is live at the entry's time,
// and ErrnoStaleLease otherwise.
func (a *applier) liveSession(holder uint64) (*metapb.Session, error) {
	rec := new(metapb.Session)
	ok, err := getRecord(a.tx, sessionKey(holder), rec)
	if err != nil {
		return nil, err
	}
	if !ok || a.now >= rec.ExpiresNs {
		return nil, posix(ErrnoStaleLease)
	}
	return rec, nil
}

// mayChange checks that the entry may change the names of directory dir:
// in a holder's Batch, dir must be delegated to the holder (or the whole
// batch is refused); otherwise dir must not be delegated to another live
// session.
func (a *applier) mayChange(dir Ino) error {
	d, ok, err := DelegationOf(a.tx, dir)
	if err != nil {
		return err
	}
	if a.flush {
		if !ok || d.Holder != a.holder {
			return refusal(ErrnoNotHeld)
		}
		return nil
	}
	if !ok || (a.holder != 0 && d.Holder == a.holder) {
		return nil
	}
	s, ok, err := SessionOf(a.tx, d.Holder)
	if err != nil {
		return err
	}
	if ok && s.Live(a.now) {
		return posix(ErrnoDelegated)
	}
	return nil
}

// takeIno spends inode number ino of a range granted to the flushing holder.
// Numbers are spent in increasing order: ino must not be below the range's
// next unspent number.
func (a *applier) takeIno(ino Ino) error {
	if !a.flush {
		return posix(syscall.EINVAL)
	}
	prefix := u64([]byte{tabRange}, a.holder)
	var key []byte
	rec := new(metapb.InoRange)
	err := a.tx.Scan(prefix, prefixEnd(prefix), func(k, v []byte) (bool, error) {
		if len(k) != 17 {
			return false, fmt.Errorf("meta: bad range key %x", k)
		}
		start := binary.BigEndian.Uint64(k[9:])
		if start > ino {
			return false, nil
		}
		r := new(metapb.InoRange)
		if err := proto.Unmarshal(v, r); err != nil {
			return false, fmt.Errorf("meta: range record %x: %w", k, err)
		}
		if ino < r.End {
			key, rec = bytes.Clone(k), r
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if key == nil || ino < rec.Next {
		return refusal(ErrnoNotGranted)
	}
	rec.Next = ino + 1
	if rec.Next == rec.End {
		return a.tx.Delete(key)
	}
	return putRecord(a.tx, key, rec)
}

func (a *applier) openSession(op *metapb.OpenSession) error {
	if op.Holder == 0 || op.LeaseNs <= 0 || op.LeaseNs > MaxLease {
		return posix(syscall.EINVAL)
	}
	rec := new(metapb.Session)
	ok, err := getRecord(a.tx, sessionKey(op.Holder), rec)
	if err != nil {
		return err
	}
	if ok && a.now >= rec.ExpiresNs {
		return posix(ErrnoStaleLease) // over: a new session takes a new holder id
	}
	rec.LeaseNs, rec.ExpiresNs = op.LeaseNs, a.now+op.LeaseNs
	a.res.Expires = rec.ExpiresNs
	return putRecord(a.tx, sessionKey(op.Holder), rec)
}

func (a *applier) endSession(op *metapb.EndSession) error {
	rec := new(metapb.Session)
	ok, err := getRecord(a.tx, sessionKey(op.Holder), rec)
	if err != nil {
		return err
	}
	if !ok {
		return posix(ErrnoStaleLease)
	}
	if a.holder != op.Holder && a.now < rec.ExpiresNs {
		return posix(syscall.EBUSY)
	}
	dirs, err := DelegatedTo(a.tx, op.Holder)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := a.dropDelegation(op.Holder, d); err != nil {
			return err
		}
	}
	prefix := u64([]byte{tabRange}, op.Holder)
	if err := deleteRange(a.tx, prefix, prefixEnd(prefix)); err != nil {
		return err
	}
	return a.tx.Delete(sessionKey(op.Holder))
}

func (a *applier) grantRange(op *metapb.GrantRange) error {
	if op.Count == 0 || op.Count > MaxRangeCount {
		return posix(syscall.EINVAL)
	}
	if _, err := a.liveSession(op.Holder); err != nil {
		return err
	}
	ranges, err := RangesOf(a.tx, op.Holder)
	if err != nil {
		return err
	}
	if len(ranges) >= MaxRanges {
		return posix(syscall.ENOSPC)
	}
	start, err := getU64(a.tx, keyNextIno)
	if err != nil {
		return err
	}
	end := start + uint64(op.Count)
	if err := putU64(a.tx, keyNextIno, end); err != nil {
		return err
	}
	a.res.Ino, a.res.Until = start, end
	return putRecord(a.tx, rangeKey(op.Holder, start), &metapb.InoRange{End: end, Next: start})
}

func (a *applier) delegate(op *metapb.Delegate) error {
	s, err := a.liveSession(op.Holder)
	if err != nil {
		return err
	}
	if _, err := a.dir(op.Dir); err != nil {
		return err
	}
	d, ok, err := DelegationOf(a.tx, op.Dir)
	if err != nil {
		return err
	}
	if ok {
		switch {
		case d.Holder == op.Holder && d.RecalledNs != 0:
			return posix(syscall.EBUSY) // give it back first
		case d.Holder == op.Holder:
			a.res.Ino, a.res.Expires = op.Dir, s.ExpiresNs
			return nil
		}
		other, live, err := SessionOf(a.tx, d.Holder)
		if err != nil {
			return err
		}
		if live && other.Live(a.now) {
			return posix(syscall.EBUSY)
		}
		// The other holder's lease ran out: its delegation is over.
		if err := a.dropDelegation(d.Holder, op.Dir); err != nil {
			return err
		}
	}
	if err := putRecord(a.tx, delegationKey(op.Dir), &metapb.Delegation{Holder: op.Holder, GrantedNs: a.now}); err != nil {
		return err
	}
	a.res.Ino, a.res.Expires = op.Dir, s.ExpiresNs
	return a.tx.Set(heldKey(op.Holder, op.Dir), nil)
}

func (a *applier) recall(op *metapb.Recall) error {
	rec := new(metapb.Delegation)
	ok, err := getRecord(a.tx, delegationKey(op.Dir), rec)
	if err != nil {
		return err
	}
	if !ok {
		return posix(syscall.ENOENT)
	}
	a.res.Ino, a.res.Holder = op.Dir, rec.Holder
	if rec.RecalledNs != 0 {
		return nil
	}
	rec.RecalledNs = a.now
	return putRecord(a.tx, delegationKey(op.Dir), rec)
}

func (a *applier) undelegate(op *metapb.Undelegate) error {
	d, ok, err := DelegationOf(a.tx, op.Dir)
	if err != nil {
		return err
	}
	if !ok || d.Holder != op.Holder {
		return posix(ErrnoNotHeld)
	}
	if a.holder != op.Holder {
		// The leader revokes: only once the holder's lease ran out, or a
		// recall went unanswered for a whole lease.
		s, ok, err := SessionOf(a.tx, op.Holder)
		if err != nil {
			return err
		}
		expired := !ok || !s.Live(a.now)
		unanswered := ok && d.RecalledNs != 0 && a.now >= d.RecalledNs+s.LeaseNs
		if !expired && !unanswered {
			return posix(syscall.EBUSY)
		}
	}
	a.res.Ino, a.res.Holder = op.Dir, op.Holder
	return a.dropDelegation(op.Holder, op.Dir)
}

func (a *applier) dropDelegation(holder uint64, dir Ino) error {
	if err := a.tx.Delete(delegationKey(dir)); err != nil {
		return err
	}
	return a.tx.Delete(heldKey(holder, dir))
}

// forgetDelegation drops the delegation of a directory being deleted.
func (a *applier) forgetDelegation(dir Ino) error {
	d, ok, err := DelegationOf(a.tx, dir)
	if err != nil || !ok {
		return err
	}
	return a.dropDelegation(d.Holder, dir)
}
