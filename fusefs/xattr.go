package fusefs

import (
	"context"
	"strings"
	"syscall"
	"time"

	"github.com/skyfs/skyfs/meta"
)

// capsName is the attribute the kernel reads before every write to a file
// (to drop file capabilities). Its value is cached per node for the
// attribute timeout, so that writes do not each cost a call to the master.
const capsName = "security.capability"

// xattrCache is a node's cached value of capsName.
type xattrCache struct {
	value   []byte
	errno   syscall.Errno
	expires time.Time
}

// getCaps returns the value of capsName, from the node's cache when fresh.
func (n *Node) getCaps(ctx context.Context) ([]byte, syscall.Errno) {
	now := time.Now()
	n.mu.Lock()
	c := n.caps
	n.mu.Unlock()
	if c != nil && now.Before(c.expires) {
		return c.value, c.errno
	}
	v, err := n.m.ns.GetXattr(ctx, n.ino(), capsName)
	en := toErrno(err)
	if en == 0 || en == syscall.ENODATA {
		n.mu.Lock()
		n.caps = &xattrCache{value: v, errno: en, expires: now.Add(n.m.opts.AttrTimeout)}
		n.mu.Unlock()
	}
	return v, en
}

// forgetCaps drops the cached value of capsName after a change of it.
func (n *Node) forgetCaps(attr string) {
	if attr == capsName {
		n.mu.Lock()
		n.caps = nil
		n.mu.Unlock()
	}
}

// Getxattr implements gofs.NodeGetxattrer. An empty dest asks for the size.
func (n *Node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	var v []byte
	if attr == capsName {
		var en syscall.Errno
		if v, en = n.getCaps(ctx); en != 0 {
			return 0, en
		}
	} else {
		var err error
		if v, err = n.m.ns.GetXattr(ctx, n.ino(), attr); err != nil {
			return 0, toErrno(err)
		}
	}
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

// Setxattr implements gofs.NodeSetxattrer.
func (n *Node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if n.m.opts.ReadOnly {
		return syscall.EROFS
	}
	if flags&^(meta.XattrCreate|meta.XattrReplace) != 0 {
		return syscall.EINVAL
	}
	if strings.HasPrefix(attr, "system.posix_acl_") {
		// The mount does not ask the kernel for ACL support: stored, an
		// ACL would be shown but not enforced.
		return syscall.EOPNOTSUPP
	}
	defer n.forgetCaps(attr)
	defer n.dropReported() // the ctime moves
	return toErrno(n.m.ns.SetXattr(ctx, n.ino(), attr, data, flags))
}

// Listxattr implements gofs.NodeListxattrer: the names, each followed by a
// NUL byte. An empty dest asks for the size.
func (n *Node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	names, err := n.m.ns.ListXattr(ctx, n.ino())
	if err != nil {
		return 0, toErrno(err)
	}
	size := 0
	for _, nm := range names {
		size += len(nm) + 1
	}
	if len(dest) == 0 {
		return uint32(size), 0
	}
	if len(dest) < size {
		return uint32(size), syscall.ERANGE
	}
	pos := 0
	for _, nm := range names {
		pos += copy(dest[pos:], nm)
		dest[pos] = 0
		pos++
	}
	return uint32(size), 0
}

// Removexattr implements gofs.NodeRemovexattrer.
func (n *Node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if n.m.opts.ReadOnly {
		return syscall.EROFS
	}
	defer n.forgetCaps(attr)
	defer n.dropReported() // the ctime moves
	return toErrno(n.m.ns.RemoveXattr(ctx, n.ino(), attr))
}
