package fusefs

import (
	"context"
	"syscall"

	"github.com/skyfs/skyfs/meta"
)

// Getxattr implements gofs.NodeGetxattrer. An empty dest asks for the size.
func (n *Node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	v, err := n.m.ns.GetXattr(ctx, n.ino(), attr)
	if err != nil {
		return 0, toErrno(err)
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
	return toErrno(n.m.ns.RemoveXattr(ctx, n.ino(), attr))
}
