package meta

import (
	"bytes"
	"encoding/binary"
	"syscall"

	"github.com/skyfs/skyfs/proto/metapb"
)

// MaxPurge bounds the inodes one Purge entry deletes.
const MaxPurge = 10000

// existing looks up name in directory parent and returns both inodes.
func (a *applier) existing(parent Ino, name []byte) (p, n *metapb.Inode, err error) {
	if err := checkName(name); err != nil {
		return nil, nil, err
	}
	if p, err = a.dir(parent); err != nil {
		return nil, nil, err
	}
	if err := a.mayChange(parent); err != nil {
		return nil, nil, err
	}
	ino, _, ok, err := a.child(parent, name)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, posix(syscall.ENOENT)
	}
	if n, err = a.inode(ino); err != nil {
		return nil, nil, err
	}
	return p, n, nil
}

func (a *applier) unlink(op *metapb.Unlink) error {
	p, n, err := a.existing(op.Parent, op.Name)
	if err != nil {
		return err
	}
	if n.Type == metapb.FileType_DIRECTORY {
		return posix(syscall.EISDIR)
	}
	a.res.Ino = n.Ino
	if err := a.unlinkNode(n, p.Ino, op.Name); err != nil {
		return err
	}
	if n.Nlink > 0 {
		a.res.Attr = attrFromPB(n)
	}
	a.touch(p)
	a.res.Dir = attrFromPB(p)
	return a.put(p)
}

func (a *applier) rmdir(op *metapb.Rmdir) error {
	p, n, err := a.existing(op.Parent, op.Name)
	if err != nil {
		return err
	}
	if err := a.removableDir(n); err != nil {
		return err
	}
	a.res.Ino = n.Ino
	if err := a.tx.Delete(direntKey(p.Ino, op.Name)); err != nil {
		return err
	}
	if err := a.deleteInode(n.Ino); err != nil {
		return err
	}
	p.Nlink--
	a.touch(p)
	a.res.Dir = attrFromPB(p)
	return a.put(p)
}

// removableDir checks that n is an empty directory that is not a mount point.
func (a *applier) removableDir(n *metapb.Inode) error {
	if n.Type != metapb.FileType_DIRECTORY {
		return posix(syscall.ENOTDIR)
	}
	if n.MountId != 0 {
		return posix(syscall.EBUSY)
	}
	if err := a.mayChange(n.Ino); err != nil {
		return err
	}
	if ok, err := a.empty(n.Ino); err != nil {
		return err
	} else if !ok {
		return posix(syscall.ENOTEMPTY)
	}
	return nil
}

// purge deletes up to op.Max inodes of the subtrees detached by unmounts and
// syncs, depth first through the purge queue.
func (a *applier) purge(op *metapb.Purge) error {
	if op.Max == 0 || op.Max > MaxPurge {
		return posix(syscall.EINVAL)
	}
	budget := int(op.Max)
	for budget > 0 {
		key, ino, ok, err := a.nextPurge()
		if err != nil || !ok {
			return err
		}
		dir, err := a.inode(ino)
		if err != nil {
			return err
		}
		var children []DirEntry
		start, end := dirRange(ino)
		err = a.tx.Scan(start, end, func(k, v []byte) (bool, error) {
			cino, typ, ok := decodeDirent(v)
			if !ok {
				return false, errCorrupt("dirent in", ino)
			}
			children = append(children, DirEntry{Name: bytes.Clone(k[9:]), Ino: cino, Type: typ})
			return len(children) < budget, nil
		})
		if err != nil {
			return err
		}
		for _, c := range children {
			budget--
			n, err := a.inode(c.Ino)
			if err != nil {
				return err
			}
			if c.Type == TypeDirectory {
				if err := a.detach(dir, c.Name, n); err != nil {
					return err
				}
				continue
			}
			if err := a.unlinkNode(n, ino, c.Name); err != nil {
				return err
			}
		}
		if ok, err := a.empty(ino); err != nil || !ok {
			if err == nil {
				err = a.put(dir)
			}
			return err
		}
		budget--
		if err := a.tx.Delete(key); err != nil {
			return err
		}
		if err := a.deleteInode(ino); err != nil {
			return err
		}
	}
	return nil
}

// nextPurge returns the first queued inode, if any.
func (a *applier) nextPurge() (key []byte, ino Ino, ok bool, err error) {
	err = a.tx.Scan([]byte{tabPurge}, []byte{tabPurge + 1}, func(k, v []byte) (bool, error) {
		if len(v) != 8 {
			return false, errCorrupt("purge queue entry", 0)
		}
		key, ino, ok = bytes.Clone(k), binary.BigEndian.Uint64(v), true
		return false, nil
	})
	return key, ino, ok, err
}

// PurgePending reports whether detached inodes wait for a Purge entry.
func PurgePending(tx Txn) (bool, error) {
	found := false
	err := tx.Scan([]byte{tabPurge}, []byte{tabPurge + 1}, func(_, _ []byte) (bool, error) {
		found = true
		return false, nil
	})
	return found, err
}
