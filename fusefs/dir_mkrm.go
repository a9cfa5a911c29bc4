package fusefs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/skyfs/skyfs/meta"
)

// owner returns who owns a new inode in n: the caller, with the group of n
// when n is set-group-ID (as on Linux), and whether the new inode, if a
// directory, inherits the set-group-ID bit.
func (n *Node) owner(ctx context.Context) (Caller, bool) {
	c := callerOf(ctx)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.attr.Mode&syscall.S_ISGID != 0 {
		c.GID = n.attr.GID
		return c, true
	}
	return c, false
}

// Mkdir implements gofs.NodeMkdirer.
func (n *Node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n.m.opts.ReadOnly {
		return nil, syscall.EROFS
	}
	c, sgid := n.owner(ctx)
	mode &= 0o7777
	if sgid {
		mode |= syscall.S_ISGID
	}
	made, err := n.m.ns.Mkdir(ctx, n.ino(), name, mode, c)
	if err != nil {
		return nil, toErrno(err)
	}
	n.noteDir(made.Dir)
	return n.childNode(ctx, name, made.Attr, out), 0
}

// Rmdir implements gofs.NodeRmdirer.
func (n *Node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if n.m.opts.ReadOnly {
		return syscall.EROFS
	}
	dir, err := n.m.ns.Rmdir(ctx, n.ino(), name)
	if err != nil {
		return toErrno(err)
	}
	n.noteDir(dir)
	return 0
}

// Unlink implements gofs.NodeUnlinker.
func (n *Node) Unlink(ctx context.Context, name string) syscall.Errno {
	if n.m.opts.ReadOnly {
		return syscall.EROFS
	}
	dir, err := n.m.ns.Unlink(ctx, n.ino(), name)
	if err != nil {
		return toErrno(err)
	}
	n.noteDir(dir)
	n.dropCached(name)
	return 0
}

// dropCached drops the cached content of the file that was name, once it is
// gone: when it had no other name and no open file, nobody can read it
// again. (Open files keep reading it from the cache; what is left then goes
// with the cache's eviction.)
func (n *Node) dropCached(name string) {
	if n.m.cache == nil {
		return
	}
	ch := n.GetChild(name)
	if ch == nil {
		return
	}
	cn, ok := ch.Operations().(*Node)
	if !ok {
		return
	}
	cn.mu.Lock()
	c := cn.lastOpen
	busy := cn.ptOpens+cn.cachedOpens > 0 || cn.ws != nil || cn.attr.Nlink > 1
	cn.mu.Unlock()
	if busy || c.key.Path == "" {
		return
	}
	// Off the request: the kernel's unlink needs no wait for the cache.
	go n.m.cache.Drop(c.key, c.size)
}

// Create implements gofs.NodeCreater: the master creates the inode, and the
// returned handle writes its content (an empty file is uploaded on close).
func (n *Node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if n.m.opts.ReadOnly {
		return nil, nil, 0, syscall.EROFS
	}
	c, _ := n.owner(ctx)
	made, err := n.m.ns.Create(ctx, n.ino(), name, mode&0o7777, c)
	if isErrno(err, syscall.EEXIST) && flags&syscall.O_EXCL == 0 {
		// Created by someone else since the kernel's lookup: open it, as
		// open(2) without O_EXCL does.
		return n.openExisting(ctx, name, flags, out)
	}
	if err != nil {
		return nil, nil, 0, toErrno(err)
	}
	n.noteDir(made.Dir)
	ch := n.childNode(ctx, name, made.Attr, out)
	cn, ok := ch.Operations().(*Node)
	if !ok {
		return nil, nil, 0, syscall.EIO
	}
	h, fuseFlags, errno := cn.openWriter(ctx, flags, true, made.Loc)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	cn.fill(&out.Attr)
	return ch, h, fuseFlags, 0
}

// openExisting opens the existing file name for Create, truncating it for
// O_TRUNC (the kernel takes the file as created and does not).
func (n *Node) openExisting(ctx context.Context, name string, flags uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	a, err := n.m.ns.Lookup(ctx, n.ino(), name)
	if err != nil {
		return nil, nil, 0, toErrno(err)
	}
	if a.Type != meta.TypeRegular {
		return nil, nil, 0, syscall.EEXIST
	}
	ch := n.childNode(ctx, name, a, out)
	cn, ok := ch.Operations().(*Node)
	if !ok {
		return nil, nil, 0, syscall.EIO
	}
	fh, fuseFlags, errno := cn.Open(ctx, flags)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	if h, ok := handleOf(fh); ok && h.ws != nil && flags&syscall.O_TRUNC != 0 {
		if errno := cn.truncate(ctx, h, 0); errno != 0 {
			cn.Release(ctx, h)
			return nil, nil, 0, errno
		}
	}
	cn.fill(&out.Attr)
	return ch, fh, fuseFlags, 0
}

// Symlink implements gofs.NodeSymlinker.
func (n *Node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n.m.opts.ReadOnly {
		return nil, syscall.EROFS
	}
	c, _ := n.owner(ctx)
	made, err := n.m.ns.Symlink(ctx, n.ino(), name, target, c)
	if err != nil {
		return nil, toErrno(err)
	}
	n.noteDir(made.Dir)
	return n.childNode(ctx, name, made.Attr, out), 0
}

// fileTypes maps the S_IFMT bits of mknod(2) to the special files the
// namespace holds.
var fileTypes = map[uint32]meta.FileType{
	syscall.S_IFIFO:  meta.TypeFIFO,
	syscall.S_IFSOCK: meta.TypeSocket,
	syscall.S_IFCHR:  meta.TypeCharDevice,
	syscall.S_IFBLK:  meta.TypeBlockDevice,
}

// Mknod implements gofs.NodeMknoder: FIFOs, sockets and device nodes live in
// the namespace only. The kernel opens them itself (a FIFO's pipe and a
// device's driver are local to each host); a regular file made by mknod(2)
// is an empty file, as from open(2) with O_CREAT. A mount of an object store
// holds them as any other: nothing of them is written to the UFS.
func (n *Node) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n.m.opts.ReadOnly {
		return nil, syscall.EROFS
	}
	ifmt := mode & syscall.S_IFMT
	if ifmt == syscall.S_IFREG || ifmt == 0 {
		return n.mknodRegular(ctx, name, mode, out)
	}
	typ, ok := fileTypes[ifmt]
	if !ok {
		return nil, syscall.EINVAL
	}
	c, _ := n.owner(ctx)
	made, err := n.m.ns.Mknod(ctx, n.ino(), name, typ, mode&0o7777, dev, c)
	if err != nil {
		return nil, toErrno(err)
	}
	n.noteDir(made.Dir)
	return n.childNode(ctx, name, made.Attr, out), 0
}

// mknodRegular makes an empty regular file for mknod(2): created, and closed
// at once, so that its (empty) UFS object is written as on any close.
func (n *Node) mknodRegular(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ch, fh, _, errno := n.Create(ctx, name, syscall.O_WRONLY|syscall.O_EXCL, mode&0o7777, out)
	if errno != 0 {
		return nil, errno
	}
	cn, ok := ch.Operations().(*Node)
	if !ok {
		return nil, syscall.EIO
	}
	errno = cn.Flush(ctx, fh)
	cn.Release(ctx, fh)
	if errno != 0 {
		return nil, errno
	}
	cn.fill(&out.Attr)
	return ch, 0
}

// Readlink implements gofs.NodeReadlinker. A symlink's target never
// changes, so the one seen at lookup is answered.
func (n *Node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	n.mu.Lock()
	typ, target := n.attr.Type, n.attr.Target
	n.mu.Unlock()
	if typ != meta.TypeSymlink {
		return nil, syscall.EINVAL
	}
	if len(target) == 0 {
		a, err := n.m.ns.GetAttr(ctx, n.ino())
		if err != nil {
			return nil, toErrno(err)
		}
		n.setAttr(a)
		target = a.Target
	}
	return append([]byte(nil), target...), 0
}

// Link implements gofs.NodeLinker. A UFS that cannot make hard links (an
// object store) refuses with EPERM.
func (n *Node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n.m.opts.ReadOnly {
		return nil, syscall.EROFS
	}
	tn, ok := target.(*Node)
	if !ok {
		return nil, syscall.EXDEV
	}
	loc, err := n.location(ctx)
	if err != nil {
		return nil, toErrno(err)
	}
	if !loc.FS.Capabilities().HardLinks {
		return nil, syscall.EPERM
	}
	made, err := n.m.ns.Link(ctx, tn.ino(), n.ino(), name)
	if err != nil {
		return nil, toErrno(err)
	}
	n.noteDir(made.Dir)
	return n.childNode(ctx, name, made.Attr, out), 0
}
