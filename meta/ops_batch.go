package meta

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/skyfs/skyfs/proto/metapb"
)

// MaxBatchOps bounds the operations of one Batch entry.
const MaxBatchOps = 1024

// applyBatch applies a Batch entry: its operations in order, each in an
// overlay of its own (a failing one leaves nothing behind and the next goes
// on), each answered from its request's record when that request was
// applied before. All of it is written through one more overlay, so that a
// refusal of the whole batch (see metapb.Batch) leaves nothing either, not
// even the records of the operations before it.
func applyBatch(tx Txn, e *metapb.Entry, b *metapb.Batch) (Result, error) {
	if (e.Request != nil && e.Request.Client != 0) || len(b.Ops) == 0 || len(b.Ops) > MaxBatchOps {
		return Result{Errno: syscall.EINVAL}, nil
	}
	batch := newOverlay(tx)
	res := Result{Ops: make([]Result, len(b.Ops))}
	expired, checked := false, false
	for i, op := range b.Ops {
		req := op.Request
		if req != nil && req.Client != 0 {
			r, ok, err := replayed(batch, req)
			if err != nil {
				return Result{}, err
			}
			if ok {
				res.Ops[i] = r
				continue
			}
			if !expired {
				if err := expireRequests(batch, e.TimeNs); err != nil {
					return Result{}, err
				}
				expired = true
			}
		} else {
			req = nil
		}
		ov := newOverlay(batch)
		a := &applier{tx: ov, now: e.TimeNs, holder: e.Holder, flush: e.Holder != 0}
		if a.flush && !checked {
			if _, err := a.liveSession(e.Holder); err != nil {
				return refused(err)
			}
			checked = true
		}
		err := a.dispatchBatchOp(op)
		var p posix
		var r refusal
		switch {
		case errors.As(err, &r):
			return Result{Errno: syscall.Errno(r)}, nil
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
			if err := remember(batch, req, e.TimeNs, a.res); err != nil {
				return Result{}, err
			}
		}
		res.Ops[i] = a.res
	}
	if err := batch.flush(); err != nil {
		return Result{}, err
	}
	return res, nil
}

// refused turns a POSIX outcome of a batch-wide check into the batch's
// refusal.
func refused(err error) (Result, error) {
	var p posix
	if errors.As(err, &p) {
		return Result{Errno: syscall.Errno(p)}, nil
	}
	return Result{}, err
}

func (a *applier) dispatchBatchOp(op *metapb.BatchOp) error {
	switch o := op.Op.(type) {
	case *metapb.BatchOp_CreateFile:
		return a.createFile(o.CreateFile)
	case *metapb.BatchOp_Mkdir:
		return a.mkdir(o.Mkdir)
	case *metapb.BatchOp_Unlink:
		return a.unlink(o.Unlink)
	case *metapb.BatchOp_Rename:
		return a.rename(o.Rename)
	case *metapb.BatchOp_CompleteFile:
		return a.completeFile(o.CompleteFile)
	}
	return fmt.Errorf("%w: batch operation %T", ErrUnknownEntry, op.Op)
}

// checkBatch checks that every operation of a batch is of a known kind.
func checkBatch(b *metapb.Batch) error {
	for i, op := range b.Ops {
		if op.GetOp() == nil {
			return fmt.Errorf("%w: batch operation %d", ErrUnknownEntry, i)
		}
	}
	return nil
}
