package meta

import (
	"syscall"

	"github.com/skyfs/skyfs/proto/metapb"
)

// prepareCreate checks that name can be created in parent and returns parent.
func (a *applier) prepareCreate(parent Ino, name []byte) (*metapb.Inode, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	p, err := a.dir(parent)
	if err != nil {
		return nil, err
	}
	if err := a.mayChange(parent); err != nil {
		return nil, err
	}
	if _, _, ok, err := a.child(parent, name); err != nil {
		return nil, err
	} else if ok {
		return nil, posix(syscall.EEXIST)
	}
	return p, nil
}

// prepareIno spends the inode number a create brings, if any, before
// anything else is checked: a number the holder was not given refuses its
// batch whatever the name.
func (a *applier) prepareIno(ino Ino) error {
	if ino == 0 {
		return nil
	}
	return a.takeIno(ino)
}

func (a *applier) mkdir(op *metapb.Mkdir) error {
	if err := a.prepareIno(op.Ino); err != nil {
		return err
	}
	p, err := a.prepareCreate(op.Parent, op.Name)
	if err != nil {
		return err
	}
	n := a.newNode(metapb.FileType_DIRECTORY, op.Mode, op.Uid, op.Gid)
	n.Ino = op.Ino
	n.Persist = op.Persist
	// A directory made here starts empty in its UFS too: nothing to load.
	n.Loaded, n.LoadedNs = true, a.now
	return a.addChild(p, op.Name, n)
}

func (a *applier) createFile(op *metapb.CreateFile) error {
	if err := a.prepareIno(op.Ino); err != nil {
		return err
	}
	p, err := a.prepareCreate(op.Parent, op.Name)
	if err != nil {
		return err
	}
	n := a.newNode(metapb.FileType_REGULAR, op.Mode, op.Uid, op.Gid)
	n.Ino = op.Ino
	n.Persist = op.Persist
	if op.Ufs != nil {
		if op.Ufs.Size < 0 {
			return posix(syscall.EINVAL)
		}
		n.Ufs, n.Size = op.Ufs, uint64(op.Ufs.Size)
	}
	return a.addChild(p, op.Name, n)
}

func (a *applier) symlink(op *metapb.Symlink) error {
	switch {
	case len(op.Target) == 0:
		return posix(syscall.ENOENT)
	case len(op.Target) > MaxSymlinkLen:
		return posix(syscall.ENAMETOOLONG)
	}
	for _, c := range op.Target {
		if c == 0 {
			return posix(syscall.EINVAL)
		}
	}
	p, err := a.prepareCreate(op.Parent, op.Name)
	if err != nil {
		return err
	}
	n := a.newNode(metapb.FileType_SYMLINK, 0o777, op.Uid, op.Gid)
	n.SymlinkTarget = op.Target
	n.Size = uint64(len(op.Target))
	return a.addChild(p, op.Name, n)
}

// mknod creates a special file. It lives in the namespace only, as a symlink
// does: no UFS holds it, and a sync leaves it alone. Only a device keeps
// rdev.
func (a *applier) mknod(op *metapb.Mknod) error {
	rdev := op.Rdev
	switch FileType(op.Type) {
	case TypeFIFO, TypeSocket:
		rdev = 0
	case TypeCharDevice, TypeBlockDevice:
	default:
		return posix(syscall.EINVAL)
	}
	p, err := a.prepareCreate(op.Parent, op.Name)
	if err != nil {
		return err
	}
	n := a.newNode(op.Type, op.Mode, op.Uid, op.Gid)
	n.Rdev = rdev
	return a.addChild(p, op.Name, n)
}

func (a *applier) link(op *metapb.Link) error {
	n, err := a.inode(op.Ino)
	if err != nil {
		return err
	}
	if n.Type == metapb.FileType_DIRECTORY {
		return posix(syscall.EPERM)
	}
	if n.Nlink >= MaxLinks {
		return posix(syscall.EMLINK)
	}
	p, err := a.prepareCreate(op.NewParent, op.NewName)
	if err != nil {
		return err
	}
	if err := a.sameMount(n.Parent, op.NewParent); err != nil {
		return err
	}
	n.ExtraLinks = append(n.ExtraLinks, &metapb.LinkRef{Parent: op.NewParent, Name: op.NewName})
	n.Nlink++
	n.CtimeNs = a.now
	a.touch(p)
	if err := a.tx.Set(direntKey(p.Ino, op.NewName), direntValue(n.Ino, FileType(n.Type))); err != nil {
		return err
	}
	if err := a.put(p); err != nil {
		return err
	}
	if err := a.put(n); err != nil {
		return err
	}
	a.res.Ino, a.res.Attr, a.res.Dir = n.Ino, attrFromPB(n), attrFromPB(p)
	return nil
}

// sameMount fails with EXDEV unless directories x and y lie in the same mount.
func (a *applier) sameMount(x, y Ino) error {
	mx, err := a.mountOf(x)
	if err != nil {
		return err
	}
	my, err := a.mountOf(y)
	if err != nil {
		return err
	}
	if mx != my {
		return posix(syscall.EXDEV)
	}
	return nil
}
