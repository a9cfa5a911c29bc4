package meta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"google.golang.org/protobuf/proto"

	"github.com/skyfs/skyfs/proto/metapb"
)

// EntryVersion is the entry format this package writes and the newest it applies.
const EntryVersion = 1

// RequestTTL is how long, in entry time, the outcome of a client request is kept
// for retries.
const RequestTTL = int64(15 * 60 * 1e9)

// Errors of Apply that are not POSIX outcomes.
var (
	// ErrUnknownEntry is returned for an entry whose operation this version does
	// not know.
	ErrUnknownEntry = errors.New("meta: unknown journal entry")
	// ErrEntryVersion is returned for an entry of an unsupported format version.
	ErrEntryVersion = errors.New("meta: unsupported journal entry version")
)

// posix is a POSIX outcome travelling as an error inside Apply. It is a type of
// its own so that an engine error wrapping a syscall.Errno is never mistaken for
// one.
type posix syscall.Errno

func (p posix) Error() string { return syscall.Errno(p).Error() }

// marshal encodes a record deterministically: every master stores the same bytes.
var marshal = proto.MarshalOptions{Deterministic: true}

// EncodeEntry encodes a journal entry.
func EncodeEntry(e *metapb.Entry) ([]byte, error) {
	return marshal.Marshal(e)
}

// DecodeEntry decodes and checks a journal entry: it must be of a known version
// and carry a known operation.
func DecodeEntry(b []byte) (*metapb.Entry, error) {
	e := new(metapb.Entry)
	if err := proto.Unmarshal(b, e); err != nil {
		return nil, fmt.Errorf("meta: decode entry: %w", err)
	}
	if err := checkEntry(e); err != nil {
		return nil, err
	}
	return e, nil
}

func checkEntry(e *metapb.Entry) error {
	if e.Version == 0 || e.Version > EntryVersion {
		return fmt.Errorf("%w: %d", ErrEntryVersion, e.Version)
	}
	if e.Op == nil {
		return ErrUnknownEntry
	}
	if b, ok := e.Op.(*metapb.Entry_Batch); ok {
		return checkBatch(b.Batch)
	}
	return nil
}

// Apply applies one journal entry in tx. It is deterministic: the same entry on
// the same state gives the same state and Result on every master. A Result with a
// non-zero Errno leaves the namespace unchanged. An error means the entry could
// not be applied at all; the caller must not go on as if it had been.
func Apply(tx Txn, e *metapb.Entry) (Result, error) {
	if err := checkEntry(e); err != nil {
		return Result{}, err
	}
	if err := ensureRoot(tx, e.TimeNs); err != nil {
		return Result{}, err
	}
	if b, ok := e.Op.(*metapb.Entry_Batch); ok {
		return applyBatch(tx, e, b.Batch)
	}
	var req *metapb.RequestID
	if e.Request != nil && e.Request.Client != 0 {
		req = e.Request
		if res, ok, err := replayed(tx, req); err != nil || ok {
			return res, err
		}
		if err := expireRequests(tx, e.TimeNs); err != nil {
			return Result{}, err
		}
	}
	ov := newOverlay(tx)
	a := &applier{tx: ov, now: e.TimeNs, holder: e.Holder}
	err := a.dispatch(e)
	var p posix
	switch {
	case errors.As(err, &p):
		a.res = Result{Errno: syscall.Errno(p)}
	case err != nil:
		return Result{}, err
	default:
		if err := ov.flush(); err != nil {
			return Result{}, err
		}
	}
	if req != nil && a.res.Errno != ErrnoDelegated {
		// ErrnoDelegated is not an outcome: the leader recalls the
		// delegation and proposes the same request again.
		if err := remember(tx, req, e.TimeNs, a.res); err != nil {
			return Result{}, err
		}
	}
	return a.res, nil
}

// applier carries one entry's application.
type applier struct {
	tx  Txn
	now int64
	res Result
	// holder is the session the entry speaks for (zero for none); flush says
	// the entry is that holder's Batch.
	holder uint64
	flush  bool
}

func (a *applier) dispatch(e *metapb.Entry) error {
	switch op := e.Op.(type) {
	case *metapb.Entry_Mkdir:
		return a.mkdir(op.Mkdir)
	case *metapb.Entry_CreateFile:
		return a.createFile(op.CreateFile)
	case *metapb.Entry_CompleteFile:
		return a.completeFile(op.CompleteFile)
	case *metapb.Entry_Unlink:
		return a.unlink(op.Unlink)
	case *metapb.Entry_Rmdir:
		return a.rmdir(op.Rmdir)
	case *metapb.Entry_Rename:
		return a.rename(op.Rename)
	case *metapb.Entry_SetAttr:
		return a.setAttr(op.SetAttr)
	case *metapb.Entry_Symlink:
		return a.symlink(op.Symlink)
	case *metapb.Entry_Link:
		return a.link(op.Link)
	case *metapb.Entry_Mknod:
		return a.mknod(op.Mknod)
	case *metapb.Entry_SetXattr:
		return a.setXattr(op.SetXattr)
	case *metapb.Entry_RemoveXattr:
		return a.removeXattr(op.RemoveXattr)
	case *metapb.Entry_AddMount:
		return a.addMount(op.AddMount)
	case *metapb.Entry_RemoveMount:
		return a.removeMount(op.RemoveMount)
	case *metapb.Entry_LoadDir:
		return a.loadDir(op.LoadDir)
	case *metapb.Entry_Purge:
		return a.purge(op.Purge)
	case *metapb.Entry_OpenSession:
		return a.openSession(op.OpenSession)
	case *metapb.Entry_EndSession:
		return a.endSession(op.EndSession)
	case *metapb.Entry_GrantRange:
		return a.grantRange(op.GrantRange)
	case *metapb.Entry_Delegate:
		return a.delegate(op.Delegate)
	case *metapb.Entry_Recall:
		return a.recall(op.Recall)
	case *metapb.Entry_Undelegate:
		return a.undelegate(op.Undelegate)
	}
	return fmt.Errorf("%w: %T", ErrUnknownEntry, e.Op)
}

// ensureRoot creates the root directory the first time an entry is applied.
func ensureRoot(tx Txn, now int64) error {
	if _, err := tx.Get(inodeKey(RootIno)); !errors.Is(err, ErrNotFound) {
		return err
	}
	root := newRoot()
	root.AtimeNs, root.MtimeNs, root.CtimeNs = now, now, now
	if err := putInode(tx, root); err != nil {
		return err
	}
	if err := putU64(tx, keyNextIno, RootIno+1); err != nil {
		return err
	}
	return putU64(tx, keyInodeCount, 1)
}

// newRoot is the root directory of an empty namespace.
func newRoot() *metapb.Inode {
	return &metapb.Inode{
		Ino:    RootIno,
		Type:   metapb.FileType_DIRECTORY,
		Mode:   0o755,
		Nlink:  2,
		Loaded: true,
	}
}

// Replayed returns the remembered outcome of the request (client, seq) and
// true when an entry carrying it has been applied, as Apply would answer a
// retry of it. A master checks it before it plans a retried mutation's UFS
// side effect: the first attempt already made it.
func Replayed(tx Txn, client, seq uint64) (Result, bool, error) {
	return replayed(tx, &metapb.RequestID{Client: client, Seq: seq})
}

func replayed(tx Txn, req *metapb.RequestID) (Result, bool, error) {
	v, err := tx.Get(requestKey(req.Client, req.Seq))
	if errors.Is(err, ErrNotFound) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, err
	}
	rec := new(metapb.RequestRecord)
	if err := proto.Unmarshal(v, rec); err != nil {
		return Result{}, false, fmt.Errorf("meta: request record: %w", err)
	}
	return Result{Errno: syscall.Errno(rec.Errno), Ino: rec.Ino, Removed: rec.Removed, Replayed: true}, true, nil
}

func remember(tx Txn, req *metapb.RequestID, now int64, res Result) error {
	rec, err := marshal.Marshal(&metapb.RequestRecord{Errno: int32(res.Errno), Ino: res.Ino, TimeNs: now, Removed: res.Removed})
	if err != nil {
		return err
	}
	if err := tx.Set(requestKey(req.Client, req.Seq), rec); err != nil {
		return err
	}
	return tx.Set(expiryKey(now, req.Client, req.Seq), nil)
}

// expiryCheckEvery is how often, in entry time, expireRequests looks for
// outcomes to forget once it has caught up.
const expiryCheckEvery = int64(1e9)

// expireRequests forgets a bounded number of request outcomes older than
// RequestTTL, so that the table stays small without a sweep of its own.
//
// A scan of the expiry table costs far more than the entry it rides on, so the
// state remembers (keyExpiry) where the table's live keys begin and when the
// next scan is due: a scan that leaves nothing expired behind schedules the
// next one expiryCheckEvery later, and starts past the keys it deleted, whose
// tombstones the store would otherwise walk again. An outcome is therefore
// forgotten up to expiryCheckEvery late. Entry times come from the leaders'
// clocks; an outcome recorded by a leader whose clock ran more than
// RequestTTL behind an earlier leader's is kept until the table is restored.
func expireRequests(tx Txn, now int64) error {
	const perEntry = 8
	from, next, err := expiryState(tx)
	if err != nil || now < next {
		return err
	}
	cutoff := max(now-RequestTTL, 0)
	var expired [][]byte
	if cutoff > from {
		err = tx.Scan(expiryKey(from, 0, 0), expiryKey(cutoff, 0, 0), func(k, _ []byte) (bool, error) {
			expired = append(expired, append([]byte(nil), k...))
			return len(expired) < perEntry, nil
		})
		if err != nil {
			return err
		}
	}
	for _, k := range expired {
		if len(k) != 25 {
			return fmt.Errorf("meta: bad expiry key %x", k)
		}
		client, seq := binary.BigEndian.Uint64(k[9:]), binary.BigEndian.Uint64(k[17:])
		if err := tx.Delete(k); err != nil {
			return err
		}
		if err := tx.Delete(requestKey(client, seq)); err != nil {
			return err
		}
	}
	if len(expired) == perEntry {
		// More may be due: start at the last one deleted, scan again next entry.
		from, next = int64(binary.BigEndian.Uint64(expired[perEntry-1][1:9])), now
	} else {
		from, next = max(from, cutoff), now+expiryCheckEvery
	}
	v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(from)), uint64(next))
	return tx.Set(keyExpiry, v)
}

// expiryState returns where the live keys of the expiry table begin and the
// entry time of the next scan (zeros before the first).
func expiryState(tx Txn) (from, next int64, err error) {
	v, err := tx.Get(keyExpiry)
	if errors.Is(err, ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	if len(v) != 16 {
		return 0, 0, fmt.Errorf("meta: expiry state: bad length %d", len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:])), nil
}

// SetAppliedIndex records the Raft index of the last applied entry; the journal
// stores it in the same transaction as the entries up to that index.
func SetAppliedIndex(tx Txn, index uint64) error { return putU64(tx, keyApplied, index) }

// AppliedIndex returns the index recorded by SetAppliedIndex, or zero.
func AppliedIndex(tx Txn) (uint64, error) { return getU64(tx, keyApplied) }

func getU64(tx Txn, key []byte) (uint64, error) {
	v, err := tx.Get(key)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("meta: counter %q: bad length %d", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func putU64(tx Txn, key []byte, v uint64) error { return tx.Set(key, u64(nil, v)) }

func addU64(tx Txn, key []byte, delta int64) (uint64, error) {
	v, err := getU64(tx, key)
	if err != nil {
		return 0, err
	}
	v = uint64(int64(v) + delta)
	return v, putU64(tx, key, v)
}

func getInode(tx Txn, ino Ino) (*metapb.Inode, error) {
	v, err := tx.Get(inodeKey(ino))
	if errors.Is(err, ErrNotFound) {
		if ino == RootIno {
			return newRoot(), nil
		}
		return nil, posix(syscall.ENOENT)
	}
	if err != nil {
		return nil, err
	}
	n := new(metapb.Inode)
	if err := proto.Unmarshal(v, n); err != nil {
		return nil, fmt.Errorf("meta: inode %d: %w", ino, err)
	}
	return n, nil
}

func putInode(tx Txn, n *metapb.Inode) error {
	v, err := marshal.Marshal(n)
	if err != nil {
		return err
	}
	return tx.Set(inodeKey(n.Ino), v)
}
