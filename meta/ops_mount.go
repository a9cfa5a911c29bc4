package meta

import (
	"bytes"
	"strings"
	"syscall"

	"google.golang.org/protobuf/proto"

	"github.com/skyfs/skyfs/proto/metapb"
)

// MaxLoadBatch bounds the children of one LoadDir entry.
const MaxLoadBatch = 4096

// SplitPath checks an absolute namespace path and returns its components. Empty
// components ("a//b", a trailing slash) are ignored; "." and ".." are refused
// (EINVAL) rather than interpreted, as are relative paths and NUL bytes. A path of
// MaxPathLen bytes or more, or a component over MaxNameLen, is ENAMETOOLONG.
func SplitPath(p string) ([]string, syscall.Errno) {
	if !strings.HasPrefix(p, "/") || strings.IndexByte(p, 0) >= 0 {
		return nil, syscall.EINVAL
	}
	if len(p) >= MaxPathLen {
		return nil, syscall.ENAMETOOLONG
	}
	var comps []string
	for c := range strings.SplitSeq(p[1:], "/") {
		if c == "" {
			continue
		}
		if en := CheckName([]byte(c)); en != 0 {
			return nil, en
		}
		comps = append(comps, c)
	}
	return comps, 0
}

// CleanPath returns the canonical form of a valid absolute path.
func CleanPath(comps []string) string { return "/" + strings.Join(comps, "/") }

// walk resolves path components from the root.
func (a *applier) walk(comps []string) (*metapb.Inode, error) {
	n, err := a.inode(RootIno)
	if err != nil {
		return nil, err
	}
	for _, c := range comps {
		if n.Type != metapb.FileType_DIRECTORY {
			return nil, posix(syscall.ENOTDIR)
		}
		ino, _, ok, err := a.child(n.Ino, []byte(c))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, posix(syscall.ENOENT)
		}
		if n, err = a.inode(ino); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func (a *applier) addMount(op *metapb.AddMount) error {
	comps, en := SplitPath(op.Path)
	if en != 0 {
		return posix(en)
	}
	if op.Uri == "" || op.SyncIntervalNs < 0 {
		return posix(syscall.EINVAL)
	}
	var n *metapb.Inode
	var parent *metapb.Inode
	var err error
	if len(comps) == 0 {
		if n, err = a.inode(RootIno); err != nil {
			return err
		}
	} else {
		if parent, err = a.walk(comps[:len(comps)-1]); err != nil {
			return err
		}
		if parent.Type != metapb.FileType_DIRECTORY {
			return posix(syscall.ENOTDIR)
		}
		name := []byte(comps[len(comps)-1])
		ino, _, ok, err := a.child(parent.Ino, name)
		if err != nil {
			return err
		}
		if ok {
			if n, err = a.inode(ino); err != nil {
				return err
			}
		}
	}
	if n != nil {
		if err := a.removableDir(n); err != nil {
			return err
		}
	}
	id, err := addU64(a.tx, keyNextMount, 1)
	if err != nil {
		return err
	}
	if n == nil {
		mode := op.Mode
		if mode == 0 {
			mode = 0o755
		}
		n = a.newNode(metapb.FileType_DIRECTORY, mode, op.Uid, op.Gid)
		n.Persist = metapb.PersistState_PERSISTED
		if err := a.addChild(parent, []byte(comps[len(comps)-1]), n); err != nil {
			return err
		}
	}
	n.MountId, n.Loaded, n.LoadedNs = id, false, 0
	n.CtimeNs = a.now
	if err := a.put(n); err != nil {
		return err
	}
	m := &metapb.Mount{
		Id:             id,
		Path:           CleanPath(comps),
		Uri:            op.Uri,
		Options:        op.Options,
		ReadOnly:       op.ReadOnly,
		SyncIntervalNs: op.SyncIntervalNs,
		RootIno:        n.Ino,
		CreatedNs:      a.now,
	}
	v, err := marshal.Marshal(m)
	if err != nil {
		return err
	}
	a.res.Ino, a.res.Attr = n.Ino, attrFromPB(n)
	return a.tx.Set(mountKey(id), v)
}

func (a *applier) removeMount(op *metapb.RemoveMount) error {
	comps, en := SplitPath(op.Path)
	if en != 0 {
		return posix(en)
	}
	n, err := a.walk(comps)
	if err != nil {
		return err
	}
	switch {
	case n.MountId == 0:
		return posix(syscall.EINVAL)
	case n.Ino == RootIno:
		return posix(syscall.EBUSY)
	}
	// Mounts nested below must go first.
	var nested bool
	err = a.tx.Scan([]byte{tabMount}, []byte{tabMount + 1}, func(_, v []byte) (bool, error) {
		m := new(metapb.Mount)
		if err := proto.Unmarshal(v, m); err != nil {
			return false, err
		}
		if m.RootIno != n.Ino {
			ok, err := a.ancestorOrSelf(n.Ino, m.RootIno)
			nested = ok
			return !ok, err
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if nested {
		return posix(syscall.EBUSY)
	}
	parent, err := a.inode(n.Parent)
	if err != nil {
		return err
	}
	if err := a.tx.Delete(mountKey(n.MountId)); err != nil {
		return err
	}
	a.res.Ino = n.Ino
	n.MountId = 0
	if err := a.detach(parent, []byte(comps[len(comps)-1]), n); err != nil {
		return err
	}
	return a.put(parent)
}

// loadDir merges one page of a directory's UFS listing into the namespace. New
// names become persisted inodes; a file whose fingerprint changed takes the new
// size and fingerprint; an entry whose type changed in the UFS is replaced, unless
// it is pending, a symlink or a mount point, which the namespace keeps. On the last
// page, persisted entries the load did not see are removed.
func (a *applier) loadDir(op *metapb.LoadDir) error {
	if len(op.Children) > MaxLoadBatch {
		return posix(syscall.E2BIG)
	}
	for _, c := range op.Children {
		if err := checkName(c.Name); err != nil {
			return err
		}
		switch {
		case c.Type != metapb.FileType_REGULAR && c.Type != metapb.FileType_DIRECTORY:
			return posix(syscall.EINVAL)
		case c.Ufs != nil && c.Ufs.Size < 0:
			return posix(syscall.EINVAL)
		}
	}
	dir, err := a.dir(op.Dir)
	if err != nil {
		return err
	}
	if err := a.mayChange(op.Dir); err != nil {
		return err
	}
	if op.Begin {
		dir.SyncGen++
	} else if op.Gen != dir.SyncGen {
		return posix(syscall.ESTALE)
	}
	// A load reports what is in the UFS; it does not modify the directory.
	mtime, ctime := dir.MtimeNs, dir.CtimeNs
	for _, c := range op.Children {
		if err := a.loadChild(dir, c); err != nil {
			return err
		}
	}
	if op.End {
		if err := a.prune(dir); err != nil {
			return err
		}
		dir.Loaded, dir.LoadedNs = true, a.now
	}
	dir.MtimeNs, dir.CtimeNs = mtime, ctime
	a.res = Result{Ino: dir.Ino, Attr: attrFromPB(dir), Gen: dir.SyncGen, Removed: a.res.Removed}
	return a.put(dir)
}

func (a *applier) loadChild(dir *metapb.Inode, c *metapb.LoadedChild) error {
	ino, _, ok, err := a.child(dir.Ino, c.Name)
	if err != nil {
		return err
	}
	if ok {
		n, err := a.inode(ino)
		if err != nil {
			return err
		}
		keep := n.Type == c.Type || n.Persist != metapb.PersistState_PERSISTED || n.MountId != 0
		if keep {
			n.SeenGen = dir.SyncGen
			if n.Type == metapb.FileType_REGULAR && n.Type == c.Type &&
				n.Persist == metapb.PersistState_PERSISTED && !proto.Equal(n.Ufs, c.Ufs) {
				n.Ufs, n.Size = c.Ufs, uint64(c.Ufs.GetSize())
				n.MtimeNs, n.CtimeNs = ufsTime(c.Ufs, a.now), a.now
			}
			return a.put(n)
		}
		if err := a.removeEntry(dir, c.Name, n); err != nil {
			return err
		}
	}
	n := a.newNode(c.Type, c.Mode, c.Uid, c.Gid)
	t := ufsTime(c.Ufs, a.now)
	n.AtimeNs, n.MtimeNs, n.CtimeNs = t, t, t
	n.Persist, n.Ufs, n.Size = metapb.PersistState_PERSISTED, c.Ufs, uint64(c.Ufs.GetSize())
	if c.Type == metapb.FileType_DIRECTORY {
		n.Size = 0
	}
	return a.addChild(dir, c.Name, n)
}

// ufsTime is the UFS object's mtime, or now when the UFS has none.
func ufsTime(f *metapb.Fingerprint, now int64) int64 {
	if f.GetMtimeNs() != 0 {
		return f.GetMtimeNs()
	}
	return now
}

// removeEntry removes name from dir: a non-directory is unlinked, a directory is
// detached and purged later.
func (a *applier) removeEntry(dir *metapb.Inode, name []byte, n *metapb.Inode) error {
	if n.Type == metapb.FileType_DIRECTORY {
		return a.detach(dir, name, n)
	}
	return a.unlinkNode(n, dir.Ino, name)
}

// prune removes dir's persisted entries that the current load did not see.
func (a *applier) prune(dir *metapb.Inode) error {
	type gone struct {
		name []byte
		n    *metapb.Inode
	}
	var stale []gone
	start, end := dirRange(dir.Ino)
	err := a.tx.Scan(start, end, func(k, v []byte) (bool, error) {
		ino, _, ok := decodeDirent(v)
		if !ok {
			return false, errCorrupt("dirent in", dir.Ino)
		}
		n, err := a.inode(ino)
		if err != nil {
			return false, err
		}
		if n.SeenGen != dir.SyncGen && n.Persist == metapb.PersistState_PERSISTED &&
			n.Type != metapb.FileType_SYMLINK {
			stale = append(stale, gone{bytes.Clone(k[9:]), n})
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, g := range stale {
		if g.n.Type == metapb.FileType_DIRECTORY {
			if ok, err := a.holdsMount(g.n.Ino); err != nil {
				return err
			} else if ok {
				continue
			}
		}
		if err := a.removeEntry(dir, g.name, g.n); err != nil {
			return err
		}
	}
	return nil
}
