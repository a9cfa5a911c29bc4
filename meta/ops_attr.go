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
	if err := checkSetAttr(op.Caller, n, op); err != nil {
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
		mode := op.Mode & 0o7777
		gid := n.Gid
		if op.Valid&SetAttrGID != 0 {
			gid = op.Gid
		}
		if c := op.Caller; !superuser(c) && !inGroup(c, gid) && !onlyClearsSetID(n, mode) {
			mode &^= ModeSetGID
		}
		n.Mode = mode
	}
	if op.Valid&SetAttrUID != 0 {
		n.Uid = op.Uid
	}
	if op.Valid&SetAttrGID != 0 {
		n.Gid = op.Gid
	}
	// A new owner or group clears the set-id bits, unless the entry gives the
	// mode itself (the kernel sends the mode it cleared with the change).
	if op.Valid&(SetAttrUID|SetAttrGID) != 0 && op.Valid&SetAttrMode == 0 && n.Type != metapb.FileType_DIRECTORY {
		n.Mode &^= ModeSetUID
		if n.Mode&ModeGroupExec != 0 {
			n.Mode &^= ModeSetGID
		}
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

// checkSetAttr applies the ownership rules (perm.go) to a SetAttr by c of
// n: EPERM for a change only the owner or the superuser may make, EACCES for
// times set to now by a caller who may not write.
func checkSetAttr(c *metapb.Caller, n *metapb.Inode, op *metapb.SetAttr) error {
	if superuser(c) {
		return nil
	}
	owner := c.Uid == n.Uid
	if op.Valid&SetAttrUID != 0 && (!owner || op.Uid != n.Uid) {
		return posix(syscall.EPERM)
	}
	if op.Valid&SetAttrGID != 0 && (!owner || op.Gid != n.Gid && !inGroup(c, op.Gid)) {
		return posix(syscall.EPERM)
	}
	if op.Valid&SetAttrMode != 0 && !owner && !onlyClearsSetID(n, op.Mode&0o7777) {
		return posix(syscall.EPERM)
	}
	times := op.Valid & (SetAttrAtime | SetAttrMtime)
	if times == 0 || owner {
		return nil
	}
	if times == SetAttrAtime|SetAttrMtime && op.AtimeNow && op.MtimeNow {
		if !mayWrite(c, n) {
			return posix(syscall.EACCES)
		}
		return nil
	}
	return posix(syscall.EPERM)
}

// completeFile records a finished upload: the file's size and UFS fingerprint.
// The content changed when it was last written, not when the upload ended:
// mtime and ctime take the time of the last write the record carries, and a
// file closed without a write (a new empty file) keeps the times its create
// gave it, as on a local file system, where close changes no time. ctime
// never goes back and never passes the entry's time; without a time in the
// record both are the entry's time.
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
	if op.MtimeNs == 0 {
		n.MtimeNs, n.CtimeNs = a.now, a.now
	} else {
		n.MtimeNs = op.MtimeNs
		n.CtimeNs = max(n.CtimeNs, min(op.MtimeNs, a.now))
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
