package meta

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"syscall"

	"google.golang.org/protobuf/proto"

	"github.com/skyfs/skyfs/proto/metapb"
)

// MaxReadDirPage bounds the entries of one ReadDir page.
const MaxReadDirPage = 10000

// Errno returns the POSIX outcome carried by an error of this package's reads,
// and whether there is one.
func Errno(err error) (syscall.Errno, bool) {
	var p posix
	if errors.As(err, &p) {
		return syscall.Errno(p), true
	}
	return 0, false
}

// GetAttr returns the attributes of ino (ENOENT when it does not exist).
func GetAttr(tx Txn, ino Ino) (*Attr, error) {
	n, err := getInode(tx, ino)
	if err != nil {
		return nil, err
	}
	return attrFromPB(n), nil
}

// Lookup returns the attributes of name in directory parent.
func Lookup(tx Txn, parent Ino, name []byte) (*Attr, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	a := &applier{tx: tx}
	if _, err := a.dir(parent); err != nil {
		return nil, err
	}
	ino, _, ok, err := a.child(parent, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, posix(syscall.ENOENT)
	}
	return GetAttr(tx, ino)
}

// Child returns the inode and type that name has in directory parent
// (ENOENT when it holds no such name), reading only the entry: for a caller
// walking a path, which has read parent already and knows it is a directory.
func Child(tx Txn, parent Ino, name []byte) (Ino, FileType, error) {
	if err := checkName(name); err != nil {
		return 0, 0, err
	}
	ino, typ, ok, err := (&applier{tx: tx}).child(parent, name)
	if err == nil && !ok {
		err = posix(syscall.ENOENT)
	}
	return ino, typ, err
}

// ReadDir returns up to limit entries of directory dir whose names sort after
// the cursor after (nil for the first page), in name order, and whether more
// follow. The cursor is the last name of the previous page, so a listing goes on
// correctly while the directory changes. With plus set, every entry carries its
// attributes.
func ReadDir(tx Txn, dir Ino, after []byte, limit int, plus bool) ([]DirEntry, bool, error) {
	if limit <= 0 || limit > MaxReadDirPage {
		return nil, false, posix(syscall.EINVAL)
	}
	a := &applier{tx: tx}
	if _, err := a.dir(dir); err != nil {
		return nil, false, err
	}
	start, end := dirRange(dir)
	if after != nil {
		start = append(direntKey(dir, after), 0)
	}
	var out []DirEntry
	more := false
	err := tx.Scan(start, end, func(k, v []byte) (bool, error) {
		if len(out) == limit {
			more = true
			return false, nil
		}
		ino, typ, ok := decodeDirent(v)
		if !ok {
			return false, errCorrupt("dirent in", dir)
		}
		out = append(out, DirEntry{Name: bytes.Clone(k[9:]), Ino: ino, Type: typ})
		return true, nil
	})
	if err != nil {
		return nil, false, err
	}
	if plus {
		for i := range out {
			if out[i].Attr, err = GetAttr(tx, out[i].Ino); err != nil {
				return nil, false, err
			}
		}
	}
	return out, more, nil
}

// Resolve returns the attributes of the inode at an absolute path. Symlinks are
// not followed.
func Resolve(tx Txn, path string) (*Attr, error) {
	comps, en := SplitPath(path)
	if en != 0 {
		return nil, posix(en)
	}
	n, err := (&applier{tx: tx}).walk(comps)
	if err != nil {
		return nil, err
	}
	return attrFromPB(n), nil
}

// ListMounts returns the mount table ordered by mount id.
func ListMounts(tx Txn) ([]*Mount, error) {
	var out []*Mount
	err := tx.Scan([]byte{tabMount}, []byte{tabMount + 1}, func(_, v []byte) (bool, error) {
		m := new(metapb.Mount)
		if err := proto.Unmarshal(v, m); err != nil {
			return false, err
		}
		out = append(out, mountFromPB(m))
		return true, nil
	})
	return out, err
}

// GetMount returns one mount by id (ENOENT when there is none).
func GetMount(tx Txn, id uint64) (*Mount, error) {
	v, err := tx.Get(mountKey(id))
	if errors.Is(err, ErrNotFound) {
		return nil, posix(syscall.ENOENT)
	}
	if err != nil {
		return nil, err
	}
	m := new(metapb.Mount)
	if err := proto.Unmarshal(v, m); err != nil {
		return nil, err
	}
	return mountFromPB(m), nil
}

// ResolveMount returns the mount with the longest path that is a prefix of path,
// and path relative to that mount's root ("" for the root itself). The path need
// not exist. ENOENT when no mount covers it.
func ResolveMount(tx Txn, path string) (*Mount, string, error) {
	comps, en := SplitPath(path)
	if en != 0 {
		return nil, "", posix(en)
	}
	mounts, err := ListMounts(tx)
	if err != nil {
		return nil, "", err
	}
	var best *Mount
	bestLen := -1
	for _, m := range mounts {
		mc, _ := SplitPath(m.Path)
		if len(mc) > bestLen && len(mc) <= len(comps) && slices.Equal(mc, comps[:len(mc)]) {
			best, bestLen = m, len(mc)
		}
	}
	if best == nil {
		return nil, "", posix(syscall.ENOENT)
	}
	return best, strings.Join(comps[bestLen:], "/"), nil
}

// MountOf returns the mount that inode ino lies in and its path relative to the
// mount's root. ENOENT when the inode is gone or no mount covers it.
func MountOf(tx Txn, ino Ino) (*Mount, string, error) {
	var names []string
	a := &applier{tx: tx}
	for range maxDepth {
		n, err := a.inode(ino)
		if err != nil {
			return nil, "", err
		}
		if n.MountId != 0 {
			m, err := GetMount(tx, n.MountId)
			if err != nil {
				return nil, "", err
			}
			slices.Reverse(names)
			return m, strings.Join(names, "/"), nil
		}
		if n.Parent == 0 {
			return nil, "", posix(syscall.ENOENT)
		}
		names = append(names, string(n.Name))
		ino = n.Parent
	}
	return nil, "", errCorrupt("tree too deep at", ino)
}

// PathOf returns the absolute path of ino through its first link. ENOENT when
// the inode is gone or detached from the tree.
func PathOf(tx Txn, ino Ino) (string, error) {
	var names []string
	a := &applier{tx: tx}
	for range maxDepth {
		if ino == RootIno {
			slices.Reverse(names)
			return "/" + strings.Join(names, "/"), nil
		}
		n, err := a.inode(ino)
		if err != nil {
			return "", err
		}
		if n.Parent == 0 {
			return "", posix(syscall.ENOENT)
		}
		names = append(names, string(n.Name))
		ino = n.Parent
	}
	return "", errCorrupt("tree too deep at", ino)
}

// GetXattr returns the value of an extended attribute (ENODATA when unset).
func GetXattr(tx Txn, ino Ino, name []byte) ([]byte, error) {
	if err := checkXattrName(name); err != nil {
		return nil, err
	}
	if _, err := getInode(tx, ino); err != nil {
		return nil, err
	}
	v, err := tx.Get(xattrKey(ino, name))
	if errors.Is(err, ErrNotFound) {
		return nil, posix(syscall.ENODATA)
	}
	return v, err
}

// ListXattr returns the names of ino's extended attributes in order.
func ListXattr(tx Txn, ino Ino) ([][]byte, error) {
	if _, err := getInode(tx, ino); err != nil {
		return nil, err
	}
	var names [][]byte
	start, end := xattrRange(ino)
	err := tx.Scan(start, end, func(k, _ []byte) (bool, error) {
		names = append(names, bytes.Clone(k[9:]))
		return true, nil
	})
	return names, err
}

// InodeCount returns the number of inodes in the namespace.
func InodeCount(tx Txn) (uint64, error) {
	n, err := getU64(tx, keyInodeCount)
	if err == nil && n == 0 {
		n = 1 // an empty store still has its root
	}
	return n, err
}
