package fusefs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/skyfs/skyfs/meta"
)

// Linux renameat2(2) flags, as the kernel passes them.
const (
	renameNoReplace = 1 << 0
	renameExchange  = 1 << 1
)

// Rename implements gofs.NodeRenamer: rename(2) and renameat2(2) with
// RENAME_NOREPLACE and RENAME_EXCHANGE. RENAME_WHITEOUT (for overlay
// filesystems) is EINVAL. The master moves the UFS objects.
func (n *Node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if n.m.opts.ReadOnly {
		return syscall.EROFS
	}
	np, ok := newParent.(*Node)
	if !ok {
		return syscall.EXDEV
	}
	if flags&^(renameNoReplace|renameExchange) != 0 || flags == renameNoReplace|renameExchange {
		return syscall.EINVAL
	}
	var mf uint32
	if flags&renameNoReplace != 0 {
		mf |= meta.RenameNoReplace
	}
	if flags&renameExchange != 0 {
		mf |= meta.RenameExchange
	}
	// Both directories, and a directory moved (its ".." and ctime), change
	// in ways the rename does not report.
	defer func() {
		n.dropReported()
		np.dropReported()
		for _, ch := range []*gofs.Inode{n.GetChild(name), np.GetChild(newName)} {
			if ch == nil {
				continue
			}
			if cn, ok := ch.Operations().(*Node); ok {
				cn.dropReported()
			}
		}
	}()
	return toErrno(n.m.ns.Rename(ctx, n.ino(), name, np.ino(), newName, mf))
}
