package master

import (
	"context"
	"errors"
	"syscall"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
	"github.com/skyfs/skyfs/ufs"
)

// The planners below run inside the view in which a mutation is built. Each
// returns the UFS side effect of the mutation, or nil when it has none: outside
// every mount, for what lives only in the master (symlinks, pending files), and
// whenever the namespace already shows that the entry will fail or is a retry
// of an applied request (the name to create exists, the name to remove does
// not), so that the state machine gives its answer without the UFS being
// touched twice.

// fitPath plans the check that p, the UFS path of a name to be made under
// mount m, is no longer than m's UFS takes (Capabilities.MaxPathBytes; S3's
// 1,024-byte keys): ENAMETOOLONG otherwise, before anything changes. Every
// name under a mount is checked, those that live in the namespace only
// (symlinks, special files) too, so that one rule holds for all. When m's
// UFS is open it decides at once; otherwise it returns the check as a side
// effect, which opens the UFS first.
func (s *Server) fitPath(m *meta.Mount, p string) (sideEffect, error) {
	if fsys, ok := s.ufs.opened(m.ID); ok {
		return nil, pathFits(m, fsys, p)
	}
	return func(ctx context.Context) error {
		fsys, err := s.ufs.get(ctx, m)
		if err != nil {
			return err
		}
		return pathFits(m, fsys, p)
	}, nil
}

// pathFits fails with ENAMETOOLONG when p is longer than fsys takes.
func pathFits(m *meta.Mount, fsys ufs.FileSystem, p string) error {
	if max := fsys.Capabilities().MaxPathBytes; max > 0 && len(p) > max {
		return fail(syscall.ENAMETOOLONG, "%s takes paths of at most %d bytes below its root; this one has %d",
			ufs.RedactURI(m.URI), max, len(p))
	}
	return nil
}

// then runs a, then b unless a failed; either may be nil.
func then(a, b sideEffect) sideEffect {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(ctx context.Context) error {
		if err := a(ctx); err != nil {
			return err
		}
		return b(ctx)
	}
}

// createSide plans the checks of a name made under a mount without a UFS
// call of its own (a pending file, a symlink, a special file): the mount is
// writable and the name's UFS path fits.
func (s *Server) createSide(tx meta.Txn, parent uint64, name []byte) (sideEffect, error) {
	m, rel, err := under(tx, parent)
	if m == nil || err != nil {
		return nil, err
	}
	return s.createSideIn(tx, m, rel, parent, name)
}

// createSideIn is createSide for a parent whose mount m and UFS path rel the
// caller found. The name is looked up only when its path does not fit, so
// that an existing name is EEXIST rather than ENAMETOOLONG.
func (s *Server) createSideIn(tx meta.Txn, m *meta.Mount, rel string, parent uint64, name []byte) (sideEffect, error) {
	if err := writable(m); err != nil {
		return nil, err
	}
	side, err := s.fitPath(m, ufs.Join(rel, string(name)))
	if err == nil && side == nil {
		return nil, nil
	}
	if _, exists := childOf(tx, parent, name); exists {
		return nil, nil
	}
	return side, err
}

// mkdirSide plans the UFS directory of a Mkdir and marks it persisted.
func (s *Server) mkdirSide(tx meta.Txn, op *metapb.Mkdir) (sideEffect, error) {
	m, rel, err := under(tx, op.Parent)
	if m == nil || err != nil {
		return nil, err
	}
	if err := writable(m); err != nil {
		return nil, err
	}
	if _, exists := childOf(tx, op.Parent, op.Name); exists {
		return nil, nil
	}
	p := ufs.Join(rel, string(op.Name))
	fit, err := s.fitPath(m, p)
	if err != nil {
		return nil, err
	}
	op.Persist = metapb.PersistState_PERSISTED
	return then(fit, func(ctx context.Context) error {
		fsys, err := s.ufs.get(ctx, m)
		if err != nil {
			return err
		}
		return ufsFail(m, fsys.Mkdir(ctx, p))
	}), nil
}

// unlinkSide plans the deletion of a persisted file's UFS object. An object
// already gone from the UFS is no failure: the name goes.
func (s *Server) unlinkSide(tx meta.Txn, parent uint64, name []byte) (sideEffect, error) {
	m, rel, err := under(tx, parent)
	if m == nil || err != nil {
		return nil, err
	}
	if err := writable(m); err != nil {
		return nil, err
	}
	a, ok := childOf(tx, parent, name)
	if !ok || a.Type != meta.TypeRegular || a.Pending {
		return nil, nil
	}
	p := ufs.Join(rel, string(name))
	return func(ctx context.Context) error {
		fsys, err := s.ufs.get(ctx, m)
		if err != nil {
			return err
		}
		if err := fsys.Delete(ctx, p); err != nil && !errors.Is(err, ufs.ErrNotExist) {
			return ufsFail(m, err)
		}
		return nil
	}, nil
}

// rmdirSide plans the deletion of a directory's UFS directory (marker). The
// caller loaded the directory's listing first, so a directory that still has
// children in the UFS is not empty here either, or the UFS refuses it.
func (s *Server) rmdirSide(tx meta.Txn, parent uint64, name []byte) (sideEffect, error) {
	m, rel, err := under(tx, parent)
	if m == nil || err != nil {
		return nil, err
	}
	if err := writable(m); err != nil {
		return nil, err
	}
	a, ok := childOf(tx, parent, name)
	if !ok || a.Type != meta.TypeDirectory || a.MountID != 0 {
		return nil, nil
	}
	if ents, _, err := meta.ReadDir(tx, a.Ino, nil, 1, false); err != nil || len(ents) > 0 {
		return nil, nil
	}
	p := ufs.Join(rel, string(name))
	return func(ctx context.Context) error {
		fsys, err := s.ufs.get(ctx, m)
		if err != nil {
			return err
		}
		if err := fsys.Delete(ctx, p); err != nil && !errors.Is(err, ufs.ErrNotExist) {
			return ufsFail(m, err)
		}
		return nil
	}, nil
}

// renameSide plans the UFS rename of a persisted file or directory within one
// mount. Renames across mounts are left to the state machine (EXDEV).
func (s *Server) renameSide(tx meta.Txn, op *metapb.Rename) (sideEffect, error) {
	ms, srel, err := under(tx, op.OldParent)
	if err != nil {
		return nil, err
	}
	md, drel, err := under(tx, op.NewParent)
	if err != nil {
		return nil, err
	}
	if err := writable(ms); err != nil {
		return nil, err
	}
	if err := writable(md); err != nil {
		return nil, err
	}
	if ms == nil || md == nil || ms.ID != md.ID {
		return nil, nil
	}
	if op.Flags&meta.RenameExchange != 0 {
		return nil, fail(syscall.EINVAL, "RENAME_EXCHANGE is not supported under a UFS mount")
	}
	src, ok := childOf(tx, op.OldParent, op.OldName)
	if !ok || src.MountID != 0 {
		return nil, nil
	}
	dst, exists := childOf(tx, op.NewParent, op.NewName)
	if exists {
		switch {
		case dst.Ino == src.Ino, op.Flags&meta.RenameNoReplace != 0, dst.MountID != 0:
			return nil, nil
		case src.Type == meta.TypeDirectory && dst.Type != meta.TypeDirectory:
			return nil, nil // ENOTDIR
		case src.Type != meta.TypeDirectory && dst.Type == meta.TypeDirectory:
			return nil, nil // EISDIR
		case dst.Type == meta.TypeDirectory:
			if ents, _, err := meta.ReadDir(tx, dst.Ino, nil, 1, false); err != nil || len(ents) > 0 {
				return nil, nil // ENOTEMPTY
			}
		}
	}
	from, to := ufs.Join(srel, string(op.OldName)), ufs.Join(drel, string(op.NewName))
	if from == to {
		return nil, nil
	}
	m := ms
	fit, err := s.fitPath(m, to)
	if err != nil {
		return nil, err
	}
	if src.Type == meta.TypeSymlink || src.Type.Special() || src.Pending {
		// Nothing of src is in the UFS; a persisted file it replaces goes.
		if !exists || dst.Type != meta.TypeRegular || dst.Pending {
			return fit, nil
		}
		return then(fit, func(ctx context.Context) error {
			fsys, err := s.ufs.get(ctx, m)
			if err != nil {
				return err
			}
			if err := fsys.Delete(ctx, to); err != nil && !errors.Is(err, ufs.ErrNotExist) {
				return ufsFail(m, err)
			}
			return nil
		}), nil
	}
	return then(fit, func(ctx context.Context) error {
		fsys, err := s.ufs.get(ctx, m)
		if err != nil {
			return err
		}
		return ufsFail(m, fsys.Rename(ctx, from, to))
	}), nil
}

// mknodSide plans no UFS call: a special file lives in the namespace only,
// under every kind of UFS (an object store too), as a symlink does. Its name
// is checked as any other (createSide).
func (s *Server) mknodSide(tx meta.Txn, op *metapb.Mknod) (sideEffect, error) {
	return s.createSide(tx, op.Parent, op.Name)
}

// linkSide refuses hard links under a mount whose UFS has none, and makes the
// link in a UFS that has them.
func (s *Server) linkSide(tx meta.Txn, op *metapb.Link) (sideEffect, error) {
	md, drel, err := under(tx, op.NewParent)
	if err != nil {
		return nil, err
	}
	ms, srel, err := meta.MountOf(tx, op.Ino)
	if en, ok := meta.Errno(err); ok && en == syscall.ENOENT {
		ms, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := writable(md); err != nil {
		return nil, err
	}
	if md == nil || ms == nil || md.ID != ms.ID {
		return nil, nil // EXDEV, or no UFS at all
	}
	a, err := meta.GetAttr(tx, op.Ino)
	if err != nil || a.Type == meta.TypeDirectory {
		return nil, nil
	}
	if _, exists := childOf(tx, op.NewParent, op.NewName); exists {
		return nil, nil
	}
	m, to, pending := md, ufs.Join(drel, string(op.NewName)), a.Pending
	if a.Type != meta.TypeRegular {
		// A symlink or special file: a name in the namespace only.
		return s.fitPath(m, to)
	}
	return func(ctx context.Context) error {
		fsys, err := s.ufs.get(ctx, m)
		if err != nil {
			return err
		}
		l, ok := fsys.(ufs.Linker)
		if !ok || !fsys.Capabilities().HardLinks || pending {
			return fail(syscall.EPERM, "%s does not support hard links", ufs.RedactURI(m.URI))
		}
		if err := pathFits(m, fsys, to); err != nil {
			return err
		}
		return ufsFail(m, l.Link(ctx, srel, to))
	}, nil
}
