package master

import (
	"bytes"
	"strings"
	"syscall"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// checkName explains why name cannot be a directory entry, if it cannot.
func checkName(name []byte) error {
	switch {
	case len(name) == 0:
		return fail(syscall.EINVAL, "empty name")
	case string(name) == "." || string(name) == "..":
		return fail(syscall.EINVAL, "name %q is not allowed", name)
	case len(name) > meta.MaxNameLen:
		return fail(syscall.ENAMETOOLONG, "name of %d bytes is longer than %d", len(name), meta.MaxNameLen)
	case bytes.IndexByte(name, 0) >= 0:
		return fail(syscall.EINVAL, "name contains a NUL byte")
	case bytes.IndexByte(name, '/') >= 0:
		return fail(syscall.EINVAL, "name %q contains '/'", name)
	}
	return nil
}

// splitPath checks an absolute path and returns its components, explaining why
// it is refused: relative, NUL bytes, "." or ".." components, too long.
func splitPath(p string) ([]string, error) {
	switch {
	case p == "":
		return nil, fail(syscall.EINVAL, "empty path")
	case !strings.HasPrefix(p, "/"):
		return nil, fail(syscall.EINVAL, "path %q is not absolute", p)
	case strings.IndexByte(p, 0) >= 0:
		return nil, fail(syscall.EINVAL, "path contains a NUL byte")
	case len(p) >= meta.MaxPathLen:
		return nil, fail(syscall.ENAMETOOLONG, "path of %d bytes is longer than %d", len(p), meta.MaxPathLen-1)
	}
	var comps []string
	for c := range strings.SplitSeq(p[1:], "/") {
		if c == "" {
			continue
		}
		if c == "." || c == ".." {
			return nil, fail(syscall.EINVAL, "path %q has a %q component; paths must be canonical", p, c)
		}
		if len(c) > meta.MaxNameLen {
			return nil, fail(syscall.ENAMETOOLONG, "path component of %d bytes is longer than %d", len(c), meta.MaxNameLen)
		}
		comps = append(comps, c)
	}
	return comps, nil
}

// walk resolves components from the root (no symlinks followed) and returns the
// inode's attributes.
func walk(tx meta.Txn, comps []string) (*meta.Attr, error) {
	a, err := meta.GetAttr(tx, meta.RootIno)
	if err != nil {
		return nil, err
	}
	for i, c := range comps {
		if a.Type != meta.TypeDirectory {
			return nil, fail(syscall.ENOTDIR, "%s is not a directory", meta.CleanPath(comps[:i]))
		}
		if a, err = lookupIn(tx, a, c); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// lookupIn returns the attributes of name in directory dir, whose own
// attributes the caller holds: one read of the entry and one of the child's
// inode.
func lookupIn(tx meta.Txn, dir *meta.Attr, name string) (*meta.Attr, error) {
	ino, _, err := meta.Child(tx, dir.Ino, []byte(name))
	if err != nil {
		return nil, err
	}
	return meta.GetAttr(tx, ino)
}

// entryRef names a directory entry: by parent inode and name, or by path.
type entryRef struct {
	parent uint64
	name   []byte
	path   string
}

// isRoot reports whether the reference is the path "/" (which names no entry).
func (r entryRef) isRoot() bool {
	if r.path == "" {
		return false
	}
	comps, err := splitPath(r.path)
	return err == nil && len(comps) == 0
}

// locate resolves r to a parent directory and a checked name. rootErr is the
// outcome when the path is "/".
func locate(tx meta.Txn, r entryRef, rootErr error) (uint64, []byte, error) {
	if r.path == "" {
		if r.parent == 0 {
			return 0, nil, fail(syscall.EINVAL, "neither a parent inode nor a path given")
		}
		return r.parent, r.name, checkName(r.name)
	}
	comps, err := splitPath(r.path)
	if err != nil {
		return 0, nil, err
	}
	if len(comps) == 0 {
		return 0, nil, rootErr
	}
	dir, err := walk(tx, comps[:len(comps)-1])
	if err != nil {
		return 0, nil, err
	}
	if dir.Type != meta.TypeDirectory {
		return 0, nil, fail(syscall.ENOTDIR, "%s is not a directory", meta.CleanPath(comps[:len(comps)-1]))
	}
	return dir.Ino, []byte(comps[len(comps)-1]), nil
}

// inodeOf resolves an inode named by number or, when path is set, by path.
func inodeOf(tx meta.Txn, ino uint64, path string) (*meta.Attr, error) {
	if path == "" {
		if ino == 0 {
			return nil, fail(syscall.EINVAL, "neither an inode nor a path given")
		}
		return meta.GetAttr(tx, ino)
	}
	comps, err := splitPath(path)
	if err != nil {
		return nil, err
	}
	return walk(tx, comps)
}

// callerOf returns the uid and gid of a request's caller (root when absent).
func callerOf(c *pb.Caller) (uid, gid uint32) {
	if c == nil {
		return 0, 0
	}
	return c.Uid, c.Gid
}

// callerMeta is c as a journal entry records it, for the ownership rules
// meta applies; no caller stays nil (meta applies it as the superuser's).
func callerMeta(c *pb.Caller) *metapb.Caller {
	if c == nil {
		return nil
	}
	return &metapb.Caller{Uid: c.Uid, Gid: c.Gid, Groups: c.Groups}
}
