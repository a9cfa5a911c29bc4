package meta

import (
	"errors"
	"syscall"

	"github.com/skyfs/skyfs/proto/metapb"
)

// MaxFileSize is the largest size SetAttr and CompleteFile accept (the kernel's
// MAX_LFS_FILESIZE).
const MaxFileSize = 1<<63 - 1

func (a *applier) setAttr(op *metapb.SetAttr) error {
	if op.Valid&^setAttrAll != 0 || op.Valid == 0 {
		return posix(syscall.EINVAL)
	}
	n, err := a.inode(op.Ino)
	if err != nil {
		return err
	}
	if op.Valid&SetAttrSize != 0 {
		switch {
		case n.Type == metapb.FileType_DIRECTORY:
			return posix(syscall.EISDIR)
		case n.Type != metapb.FileType_REGULAR:
			return posix(syscall.EINVAL)
		case op.Size > MaxFileSize:
			return posix(syscall.EFBIG)
		}
		if op.Size != n.Size {
			n.MtimeNs = a.now
		}
		n.Size = op.Size
		if op.Ufs != nil {
			n.Ufs = op.Ufs
		}
	}
	if op.Valid&SetAttrMode != 0 {
		n.Mode = op.Mode & 0o7777
	}
	if op.Valid&SetAttrUID != 0 {
		n.Uid = op.Uid
	}
	if op.Valid&SetAttrGID != 0 {
		n.Gid = op.Gid
	}
	if op.Valid&SetAttrAtime != 0 {
		n.AtimeNs = op.AtimeNs
	}
	if op.Valid&SetAttrMtime != 0 {
		n.MtimeNs = op.MtimeNs
	}
	n.CtimeNs = a.now
	a.res.Ino, a.res.Attr = n.Ino, attrFromPB(n)
	return a.put(n)
}

// completeFile records a finished upload: the file's size and UFS fingerprint.
func (a *applier) completeFile(op *metapb.CompleteFile) error {
	n, err := a.inode(op.Ino)
	if err != nil {
		return err
	}
	switch {
	case n.Type == metapb.FileType_DIRECTORY:
		return posix(syscall.EISDIR)
	case n.Type != metapb.FileType_REGULAR:
		return posix(syscall.EINVAL)
	case op.Size > MaxFileSize:
		return posix(syscall.EFBIG)
	}
	n.Size, n.Ufs = op.Size, op.Ufs
	n.Persist = metapb.PersistState_PERSISTED
	n.MtimeNs, n.CtimeNs = a.now, a.now
	if op.MtimeNs != 0 {
		n.MtimeNs = op.MtimeNs
	}
	a.res.Ino, a.res.Attr = n.Ino, attrFromPB(n)
	return a.put(n)
}

func checkXattrName(name []byte) error {
	if len(name) == 0 || len(name) > MaxXattrNameLen {
		return posix(syscall.ERANGE)
	}
	for _, c := range name {
		if c == 0 {
			return posix(syscall.EINVAL)
		}
	}
	return nil
}

func (a *applier) setXattr(op *metapb.SetXattr) error {
	if err := checkXattrName(op.Name); err != nil {
		return err
	}
	if len(op.Value) > MaxXattrValueLen {
		return posix(syscall.E2BIG)
	}
	if op.Flags&^(XattrCreate|XattrReplace) != 0 || op.Flags == XattrCreate|XattrReplace {
		return posix(syscall.EINVAL)
	}
	n, err := a.inode(op.Ino)
	if err != nil {
		return err
	}
	key := xattrKey(op.Ino, op.Name)
	_, err = a.tx.Get(key)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	switch {
	case op.Flags == XattrCreate && exists:
		return posix(syscall.EEXIST)
	case op.Flags == XattrReplace && !exists:
		return posix(syscall.ENODATA)
	}
	if err := a.tx.Set(key, op.Value); err != nil {
		return err
	}
	n.CtimeNs = a.now
	a.res.Ino = n.Ino
	return a.put(n)
}

func (a *applier) removeXattr(op *metapb.RemoveXattr) error {
	if err := checkXattrName(op.Name); err != nil {
		return err
	}
	n, err := a.inode(op.Ino)
	if err != nil {
		return err
	}
	key := xattrKey(op.Ino, op.Name)
	if _, err := a.tx.Get(key); errors.Is(err, ErrNotFound) {
		return posix(syscall.ENODATA)
	} else if err != nil {
		return err
	}
	if err := a.tx.Delete(key); err != nil {
		return err
	}
	n.CtimeNs = a.now
	a.res.Ino = n.Ino
	return a.put(n)
}
