package meta

import (
	"syscall"

	"github.com/skyfs/skyfs/proto/metapb"
)

// rename follows rename(2) and renameat2(2): an existing target is replaced when
// the types allow it (a directory only by a directory, and only if empty);
// RenameNoReplace fails with EEXIST instead; RenameExchange swaps two existing
// entries. A directory cannot move into its own subtree (EINVAL), mount points
// and directories holding them cannot move (EBUSY), and nothing moves between
// mounts (EXDEV). Renaming an entry onto another link of the same inode does
// nothing.
func (a *applier) rename(op *metapb.Rename) error {
	const known = RenameNoReplace | RenameExchange
	if op.Flags&^known != 0 || op.Flags == known {
		return posix(syscall.EINVAL)
	}
	exchange := op.Flags&RenameExchange != 0
	if err := checkName(op.NewName); err != nil {
		return err
	}
	oldP, src, err := a.existing(op.OldParent, op.OldName)
	if err != nil {
		return err
	}
	newP := oldP
	if op.NewParent != op.OldParent {
		if newP, err = a.dir(op.NewParent); err != nil {
			return err
		}
		if err := a.mayChange(newP.Ino); err != nil {
			return err
		}
	}
	dstIno, _, dstOK, err := a.child(newP.Ino, op.NewName)
	if err != nil {
		return err
	}
	switch {
	case exchange && !dstOK:
		return posix(syscall.ENOENT)
	case op.Flags&RenameNoReplace != 0 && dstOK:
		return posix(syscall.EEXIST)
	}
	if err := a.sameMount(oldP.Ino, newP.Ino); err != nil {
		return err
	}
	if dstOK && dstIno == src.Ino {
		a.res.Ino, a.res.Attr = src.Ino, attrFromPB(src)
		return nil
	}
	if err := a.movable(src, newP.Ino); err != nil {
		return err
	}
	var dst *metapb.Inode
	if dstOK {
		if dst, err = a.inode(dstIno); err != nil {
			return err
		}
		if exchange {
			if err := a.movable(dst, oldP.Ino); err != nil {
				return err
			}
		} else if err := a.replaceable(src, dst); err != nil {
			return err
		}
	}

	// Every check passed: from here on, only writes.
	isDir := func(n *metapb.Inode) bool { return n.Type == metapb.FileType_DIRECTORY }
	a.touch(oldP)
	a.touch(newP)
	if exchange {
		if err := a.setEntry(oldP.Ino, op.OldName, dst); err != nil {
			return err
		}
		moveLink(dst, newP.Ino, op.NewName, oldP.Ino, op.OldName)
		dst.CtimeNs, dst.SeenGen = a.now, oldP.SyncGen
		if isDir(dst) && oldP != newP {
			newP.Nlink--
			oldP.Nlink++
		}
		if err := a.put(dst); err != nil {
			return err
		}
	} else {
		if dst != nil {
			if isDir(dst) {
				newP.Nlink--
				if err := a.deleteInode(dst.Ino); err != nil {
					return err
				}
			} else if err := a.unlinkNode(dst, newP.Ino, op.NewName); err != nil {
				return err
			}
		}
		if err := a.tx.Delete(direntKey(oldP.Ino, op.OldName)); err != nil {
			return err
		}
	}
	if err := a.setEntry(newP.Ino, op.NewName, src); err != nil {
		return err
	}
	moveLink(src, oldP.Ino, op.OldName, newP.Ino, op.NewName)
	src.CtimeNs, src.SeenGen = a.now, newP.SyncGen
	if isDir(src) && oldP != newP {
		oldP.Nlink--
		newP.Nlink++
	}
	if err := a.put(src); err != nil {
		return err
	}
	if err := a.put(oldP); err != nil {
		return err
	}
	if oldP != newP {
		if err := a.put(newP); err != nil {
			return err
		}
	}
	a.res.Ino, a.res.Attr = src.Ino, attrFromPB(src)
	return nil
}

// movable checks that n may move into directory to.
func (a *applier) movable(n *metapb.Inode, to Ino) error {
	if n.Type != metapb.FileType_DIRECTORY {
		return nil
	}
	if ok, err := a.ancestorOrSelf(n.Ino, to); err != nil || ok {
		if err == nil {
			err = posix(syscall.EINVAL)
		}
		return err
	}
	if ok, err := a.holdsMount(n.Ino); err != nil || ok {
		if err == nil {
			err = posix(syscall.EBUSY)
		}
		return err
	}
	return nil
}

// replaceable checks that src may replace dst.
func (a *applier) replaceable(src, dst *metapb.Inode) error {
	srcDir := src.Type == metapb.FileType_DIRECTORY
	dstDir := dst.Type == metapb.FileType_DIRECTORY
	switch {
	case srcDir && !dstDir:
		return posix(syscall.ENOTDIR)
	case !srcDir && dstDir:
		return posix(syscall.EISDIR)
	case dstDir:
		return a.removableDir(dst)
	}
	return nil
}

func (a *applier) setEntry(parent Ino, name []byte, n *metapb.Inode) error {
	return a.tx.Set(direntKey(parent, name), direntValue(n.Ino, FileType(n.Type)))
}
