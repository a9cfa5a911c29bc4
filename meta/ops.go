package meta

import (
	"bytes"
	"errors"
	"strconv"
	"syscall"

	"google.golang.org/protobuf/proto"

	"github.com/skyfs/skyfs/proto/metapb"
)

// maxDepth bounds walks up the tree; a deeper walk means a corrupt tree.
const maxDepth = MaxPathLen / 2

// CheckName reports whether name can be a directory entry: EINVAL for an empty
// name, ".", "..", or a name holding '/' or NUL; ENAMETOOLONG above MaxNameLen.
func CheckName(name []byte) syscall.Errno {
	switch {
	case len(name) == 0, string(name) == ".", string(name) == "..":
		return syscall.EINVAL
	case len(name) > MaxNameLen:
		return syscall.ENAMETOOLONG
	case bytes.IndexByte(name, '/') >= 0, bytes.IndexByte(name, 0) >= 0:
		return syscall.EINVAL
	}
	return 0
}

func checkName(name []byte) error {
	if en := CheckName(name); en != 0 {
		return posix(en)
	}
	return nil
}

func (a *applier) inode(ino Ino) (*metapb.Inode, error) { return getInode(a.tx, ino) }

// dir returns a directory's inode: ENOENT if it does not exist, ENOTDIR if it is
// not a directory.
func (a *applier) dir(ino Ino) (*metapb.Inode, error) {
	n, err := a.inode(ino)
	if err != nil {
		return nil, err
	}
	if n.Type != metapb.FileType_DIRECTORY {
		return nil, posix(syscall.ENOTDIR)
	}
	return n, nil
}

// child looks name up in parent; ok is false when there is no such entry.
func (a *applier) child(parent Ino, name []byte) (ino Ino, typ FileType, ok bool, err error) {
	v, err := a.tx.Get(direntKey(parent, name))
	if errors.Is(err, ErrNotFound) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	ino, typ, ok = decodeDirent(v)
	if !ok {
		return 0, 0, false, errCorrupt("dirent", parent)
	}
	return ino, typ, true, nil
}

func (a *applier) put(n *metapb.Inode) error { return putInode(a.tx, n) }

// newIno takes the next inode number and counts the new inode.
func (a *applier) newIno() (Ino, error) {
	next, err := getU64(a.tx, keyNextIno)
	if err != nil {
		return 0, err
	}
	if err := putU64(a.tx, keyNextIno, next+1); err != nil {
		return 0, err
	}
	if _, err := addU64(a.tx, keyInodeCount, 1); err != nil {
		return 0, err
	}
	return next, nil
}

// touch sets a directory's mtime and ctime to the entry's time.
func (a *applier) touch(n *metapb.Inode) { n.MtimeNs, n.CtimeNs = a.now, a.now }

// addChild creates a new inode n named name in parent and stores both.
//
// n.Ino, when set, is a number the entry brought, already spent (see
// prepareIno); otherwise the counter gives the next one.
func (a *applier) addChild(parent *metapb.Inode, name []byte, n *metapb.Inode) error {
	ino := n.Ino
	var err error
	if ino != 0 {
		_, err = addU64(a.tx, keyInodeCount, 1)
	} else {
		ino, err = a.newIno()
	}
	if err != nil {
		return err
	}
	n.Ino, n.Parent, n.Name = ino, parent.Ino, bytes.Clone(name)
	n.SeenGen = parent.SyncGen
	if n.Type == metapb.FileType_DIRECTORY {
		parent.Nlink++
	}
	a.touch(parent)
	if err := a.tx.Set(direntKey(parent.Ino, name), direntValue(ino, FileType(n.Type))); err != nil {
		return err
	}
	if err := a.put(n); err != nil {
		return err
	}
	if err := a.put(parent); err != nil {
		return err
	}
	a.res.Ino, a.res.Attr, a.res.Dir = ino, attrFromPB(n), attrFromPB(parent)
	return nil
}

// newNode is an inode of the given type and owner with all times set to now.
func (a *applier) newNode(typ metapb.FileType, mode, uid, gid uint32) *metapb.Inode {
	n := &metapb.Inode{
		Type:    typ,
		Mode:    mode & 0o7777,
		Uid:     uid,
		Gid:     gid,
		Nlink:   1,
		AtimeNs: a.now,
		MtimeNs: a.now,
		CtimeNs: a.now,
	}
	if typ == metapb.FileType_DIRECTORY {
		n.Nlink = 2
	}
	return n
}

// dropLink removes the link (parent, name) from n's record: the primary link is
// replaced by the first extra one. It does not touch the directory entry.
func dropLink(n *metapb.Inode, parent Ino, name []byte) {
	if n.Parent == parent && bytes.Equal(n.Name, name) {
		if len(n.ExtraLinks) > 0 {
			n.Parent, n.Name = n.ExtraLinks[0].Parent, n.ExtraLinks[0].Name
			n.ExtraLinks = n.ExtraLinks[1:]
		} else {
			n.Parent, n.Name = 0, nil
		}
	} else {
		for i, l := range n.ExtraLinks {
			if l.Parent == parent && bytes.Equal(l.Name, name) {
				n.ExtraLinks = append(n.ExtraLinks[:i:i], n.ExtraLinks[i+1:]...)
				break
			}
		}
	}
	if n.Nlink > 0 {
		n.Nlink--
	}
}

// moveLink renames the link (fromParent, fromName) of n to (toParent, toName).
func moveLink(n *metapb.Inode, fromParent Ino, fromName []byte, toParent Ino, toName []byte) {
	toName = bytes.Clone(toName)
	if n.Parent == fromParent && bytes.Equal(n.Name, fromName) {
		n.Parent, n.Name = toParent, toName
		return
	}
	for _, l := range n.ExtraLinks {
		if l.Parent == fromParent && bytes.Equal(l.Name, fromName) {
			l.Parent, l.Name = toParent, toName
			return
		}
	}
}

// unlinkNode removes the entry (parent, name) naming the non-directory n, and n
// itself when that was its last link.
func (a *applier) unlinkNode(n *metapb.Inode, parent Ino, name []byte) error {
	if err := a.tx.Delete(direntKey(parent, name)); err != nil {
		return err
	}
	dropLink(n, parent, name)
	if n.Nlink == 0 {
		return a.deleteInode(n.Ino)
	}
	n.CtimeNs = a.now
	return a.put(n)
}

// deleteInode removes an inode record and its extended attributes.
func (a *applier) deleteInode(ino Ino) error {
	if err := a.tx.Delete(inodeKey(ino)); err != nil {
		return err
	}
	if err := a.forgetDelegation(ino); err != nil {
		return err
	}
	start, end := xattrRange(ino)
	if err := deleteRange(a.tx, start, end); err != nil {
		return err
	}
	if _, err := addU64(a.tx, keyInodeCount, -1); err != nil {
		return err
	}
	a.res.Removed = append(a.res.Removed, ino)
	return nil
}

func deleteRange(tx Txn, start, end []byte) error {
	var keys [][]byte
	err := tx.Scan(start, end, func(k, _ []byte) (bool, error) {
		keys = append(keys, bytes.Clone(k))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := tx.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// empty reports whether directory ino has no entries.
func (a *applier) empty(ino Ino) (bool, error) {
	start, end := dirRange(ino)
	found := false
	err := a.tx.Scan(start, end, func(_, _ []byte) (bool, error) {
		found = true
		return false, nil
	})
	return !found, err
}

// ancestorOrSelf reports whether anc is ino or one of its ancestors.
func (a *applier) ancestorOrSelf(anc, ino Ino) (bool, error) {
	for range maxDepth {
		if ino == anc {
			return true, nil
		}
		if ino == RootIno || ino == 0 {
			return false, nil
		}
		n, err := a.inode(ino)
		if err != nil {
			return false, err
		}
		ino = n.Parent
	}
	return false, errCorrupt("tree too deep at", ino)
}

// mountOf returns the id of the mount that directory ino lies in (zero when no
// mount covers it).
func (a *applier) mountOf(ino Ino) (uint64, error) {
	for range maxDepth {
		n, err := a.inode(ino)
		if err != nil {
			return 0, err
		}
		if n.MountId != 0 || ino == RootIno || n.Parent == 0 {
			return n.MountId, nil
		}
		ino = n.Parent
	}
	return 0, errCorrupt("tree too deep at", ino)
}

// holdsMount reports whether directory ino is the root of a mount or an ancestor
// of one.
func (a *applier) holdsMount(ino Ino) (bool, error) {
	var roots []Ino
	err := a.tx.Scan([]byte{tabMount}, []byte{tabMount + 1}, func(_, v []byte) (bool, error) {
		m := new(metapb.Mount)
		if err := proto.Unmarshal(v, m); err != nil {
			return false, err
		}
		roots = append(roots, m.RootIno)
		return true, nil
	})
	if err != nil {
		return false, err
	}
	for _, r := range roots {
		if ok, err := a.ancestorOrSelf(ino, r); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// detach unlinks directory n from its parent and queues its subtree for Purge.
func (a *applier) detach(parent *metapb.Inode, name []byte, n *metapb.Inode) error {
	if err := a.tx.Delete(direntKey(parent.Ino, name)); err != nil {
		return err
	}
	parent.Nlink--
	a.touch(parent)
	n.Parent, n.Name = 0, nil
	if err := a.put(n); err != nil {
		return err
	}
	seq, err := addU64(a.tx, keyNextPurge, 1)
	if err != nil {
		return err
	}
	return a.tx.Set(purgeKey(seq), u64(nil, n.Ino))
}

type corruptError struct {
	what string
	ino  Ino
}

func (e corruptError) Error() string {
	return "meta: corrupt state: " + e.what + " " + strconv.FormatUint(e.ino, 10)
}

func errCorrupt(what string, ino Ino) error { return corruptError{what, ino} }
