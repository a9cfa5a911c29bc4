package fusefs

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/skyfs/skyfs/cache"
	"github.com/skyfs/skyfs/meta"
)

// Node is one inode of the namespace (a directory, a regular file, a
// symbolic link or a special file) as the kernel knows it. go-fuse drops it when the kernel
// forgets the inode.
type Node struct {
	gofs.Inode
	m *mount

	mu   sync.Mutex
	attr meta.Attr   // the last attributes seen
	ws   *writeState // local content being written, or nil
	// Open handles by kernel I/O mode: passthrough, and cached (neither
	// passthrough nor direct I/O). The kernel refuses to mix the two.
	ptOpens, cachedOpens int
	ptKey                cache.Key // content of the passthrough handles
	// lastOpen is the content the previous open saw: a cached open keeps
	// the kernel's page cache only when the content has not changed since.
	lastOpen content
	// pagesStale says writes since lastOpen went past the kernel's pages
	// (direct I/O): the next cached open must not keep them.
	pagesStale bool
	caps       *xattrCache // security.capability, cached
	dir        dirLookups  // a directory's lookups sent to the master
	// reported is when attr was set from what a change this mount made in
	// the directory reported (zero: it was not); see noteDir.
	reported time.Time
	// attrAt is when attr was asked of the master and attrGen the mount's
	// attrGen then (zero attrAt: not known); loc is where the file lives,
	// asked at locAt with attrGen locGen; nameAt, with attrGen nameGen, is
	// when the master last said that the node's name in its directory is
	// the node's. attrVer counts the changes of attr made through this
	// mount. See revalidate.go.
	attrAt, locAt, nameAt    time.Time
	attrGen, locGen, nameGen uint64
	attrVer                  uint64
	loc                      Location
	// revalidating, in a directory, is closed when the StatDir of it under
	// way ends (nil: none is).
	revalidating chan struct{}
}

// Interfaces implemented by Node.
var (
	_ = (gofs.InodeEmbedder)((*Node)(nil))
	_ = (gofs.NodeLookuper)((*Node)(nil))
	_ = (gofs.NodeGetattrer)((*Node)(nil))
	_ = (gofs.NodeSetattrer)((*Node)(nil))
	_ = (gofs.NodeStatfser)((*Node)(nil))
	_ = (gofs.NodeOpendirHandler)((*Node)(nil))
	_ = (gofs.NodeMkdirer)((*Node)(nil))
	_ = (gofs.NodeRmdirer)((*Node)(nil))
	_ = (gofs.NodeCreater)((*Node)(nil))
	_ = (gofs.NodeUnlinker)((*Node)(nil))
	_ = (gofs.NodeRenamer)((*Node)(nil))
	_ = (gofs.NodeSymlinker)((*Node)(nil))
	_ = (gofs.NodeReadlinker)((*Node)(nil))
	_ = (gofs.NodeLinker)((*Node)(nil))
	_ = (gofs.NodeMknoder)((*Node)(nil))
	_ = (gofs.NodeOpener)((*Node)(nil))
	_ = (gofs.NodeReader)((*Node)(nil))
	_ = (gofs.NodeWriter)((*Node)(nil))
	_ = (gofs.NodeFlusher)((*Node)(nil))
	_ = (gofs.NodeFsyncer)((*Node)(nil))
	_ = (gofs.NodeReleaser)((*Node)(nil))
	_ = (gofs.NodeAllocater)((*Node)(nil))
	_ = (gofs.NodeGetxattrer)((*Node)(nil))
	_ = (gofs.NodeSetxattrer)((*Node)(nil))
	_ = (gofs.NodeListxattrer)((*Node)(nil))
	_ = (gofs.NodeRemovexattrer)((*Node)(nil))
)

func (m *mount) newNode(a *meta.Attr) *Node {
	return &Node{m: m, attr: *a}
}

// ino is the node's inode number.
func (n *Node) ino() meta.Ino { return n.StableAttr().Ino }

// typeMode is the S_IFMT bits of a file type.
func typeMode(t meta.FileType) uint32 {
	switch t {
	case meta.TypeDirectory:
		return syscall.S_IFDIR
	case meta.TypeSymlink:
		return syscall.S_IFLNK
	case meta.TypeFIFO:
		return syscall.S_IFIFO
	case meta.TypeSocket:
		return syscall.S_IFSOCK
	case meta.TypeCharDevice:
		return syscall.S_IFCHR
	case meta.TypeBlockDevice:
		return syscall.S_IFBLK
	}
	return syscall.S_IFREG
}

// setAttr records a as the node's latest attributes.
func (n *Node) setAttr(a *meta.Attr) { n.setAttrAt(a, time.Time{}, 0) }

// setAttrAt records a, asked of the master at at with the mount's attrGen
// gen, as the node's latest attributes, held until the attribute timeout
// (revalidate.go); a zero at holds them no longer than those they replace.
func (n *Node) setAttrAt(a *meta.Attr, at time.Time, gen uint64) {
	n.mu.Lock()
	n.attr = *a
	n.attrVer++
	if !at.IsZero() && !at.Before(n.attrAt) {
		n.attrAt, n.attrGen = at, gen
	}
	if !at.IsZero() && !at.Before(n.nameAt) {
		n.nameAt, n.nameGen = at, gen
	}
	n.mu.Unlock()
}

// noteDir keeps a, the attributes a change this mount made in directory n
// reported for it just after the change. The kernel drops a directory's
// attributes whenever a name in it comes or goes and asks for them again
// before the next change; Getattr answers that from a while it is younger
// than the attribute timeout, telling the kernel to keep it only for what
// remains, so nothing the kernel shows is older than with its own cache. A
// nil a, or one older than the attributes held, is ignored.
func (n *Node) noteDir(a *meta.Attr) {
	if a == nil || n.m.reportTTL == 0 {
		return
	}
	now := time.Now()
	n.mu.Lock()
	if a.Ctime >= n.attr.Ctime {
		n.attr, n.reported = *a, now
	}
	n.mu.Unlock()
}

// dropReported stops Getattr answering from reported attributes: a change
// was made that they do not show.
func (n *Node) dropReported() {
	n.mu.Lock()
	n.reported = time.Time{}
	n.mu.Unlock()
}

// reportedLeft is how much longer n's reported attributes may be answered.
func (n *Node) reportedLeft() time.Duration {
	n.mu.Lock()
	at := n.reported
	n.mu.Unlock()
	if at.IsZero() {
		return 0
	}
	return n.m.reportTTL - time.Since(at)
}

// fill writes the node's attributes to out: the last ones seen, with the
// size and modification time of local writes not yet uploaded.
func (n *Node) fill(out *fuse.Attr) {
	n.mu.Lock()
	a := n.attr
	ws := n.ws
	n.mu.Unlock()
	if ws != nil {
		if size, mtime, ok := ws.localAttr(); ok {
			a.Size = uint64(size)
			if mtime > a.Mtime {
				a.Mtime, a.Ctime = mtime, max(a.Ctime, mtime)
			}
		}
	}
	n.m.fillAttr(&a, out)
}

// fillAttr converts attributes to their FUSE form.
func (m *mount) fillAttr(a *meta.Attr, out *fuse.Attr) {
	out.Ino = a.Ino
	out.Size = a.Size
	out.Blocks = (a.Size + 511) / 512
	out.Blksize = uint32(m.opts.MaxWrite)
	out.Mode = typeMode(a.Type) | a.Mode&0o7777
	out.Nlink = a.Nlink
	out.Rdev = a.Rdev
	out.Owner = fuse.Owner{Uid: a.UID, Gid: a.GID}
	out.Atime, out.Atimensec = splitNs(a.Atime)
	out.Mtime, out.Mtimensec = splitNs(a.Mtime)
	out.Ctime, out.Ctimensec = splitNs(a.Ctime)
}

func splitNs(ns int64) (uint64, uint32) {
	if ns < 0 {
		return 0, 0
	}
	return uint64(ns / 1e9), uint32(ns % 1e9)
}

// childNode returns the node for attributes a found under name, reusing the
// node the kernel already knows when there is one, and fills out.
func (n *Node) childNode(ctx context.Context, name string, a *meta.Attr, out *fuse.EntryOut) *gofs.Inode {
	return n.childNodeAt(ctx, name, a, time.Time{}, 0, out)
}

// childNodeAt is childNode for attributes asked of the master by name at
// at, with the mount's attrGen gen (a zero at: not held, see setAttrAt).
func (n *Node) childNodeAt(ctx context.Context, name string, a *meta.Attr, at time.Time, gen uint64, out *fuse.EntryOut) *gofs.Inode {
	var ch *gofs.Inode
	if old := n.GetChild(name); old != nil && old.StableAttr().Ino == a.Ino && old.StableAttr().Mode == typeMode(a.Type) {
		ch = old
	} else {
		ch = n.NewInode(ctx, n.m.newNode(a), gofs.StableAttr{Mode: typeMode(a.Type), Ino: a.Ino})
	}
	if cn, ok := ch.Operations().(*Node); ok {
		cn.setAttrAt(a, at, gen)
		cn.fill(&out.Attr)
	} else {
		n.m.fillAttr(a, &out.Attr)
	}
	return ch
}

// Lookup implements gofs.NodeLookuper.
func (n *Node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if ch, ok := n.heldLookup(name, out); ok {
		return ch, 0
	}
	if ch, ok := n.cachedLookup(ctx, name, out); ok {
		return ch, 0
	}
	at, gen := n.m.now(), n.m.attrGen.Load()
	a, err := n.m.ns.Lookup(ctx, n.ino(), name)
	if err != nil {
		return nil, toErrno(err)
	}
	n.lookupMissed()
	return n.childNodeAt(ctx, name, a, at, gen, out), 0
}

// Getattr implements gofs.NodeGetattrer. The attributes come from the
// master: those a file holds (revalidate.go), else from a revalidation of
// its directory, else asked for it alone. A file that has been removed
// while still open answers its last attributes with a link count of zero,
// as on a local filesystem.
func (n *Node) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if left := n.reportedLeft(); left > 0 {
		n.m.reportedAttrs.Add(1)
		n.fill(&out.Attr)
		out.SetTimeout(left)
		return 0
	}
	if !n.IsDir() && n.m.heldTTL > 0 {
		_, left := n.heldAttr()
		if left <= 0 {
			n.revalidate(ctx)
			_, left = n.heldAttr()
		} else {
			n.m.heldAttrs.Add(1)
		}
		if left > 0 {
			n.fill(&out.Attr)
			out.SetTimeout(left)
			return 0
		}
	}
	st := n.stampNow()
	a, err := n.m.ns.GetAttr(ctx, n.ino())
	if err != nil {
		en := toErrno(err)
		if en != syscall.ENOENT || f == nil {
			return en
		}
		n.mu.Lock()
		n.attr.Nlink = 0
		n.mu.Unlock()
	} else {
		n.setFresh(a, st)
	}
	n.fill(&out.Attr)
	return 0
}

// Statfs implements gofs.NodeStatfser. Object stores have no capacity to
// report: the figures say plenty of room.
func (n *Node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	st, err := n.m.ns.StatFS(ctx)
	if err != nil {
		return toErrno(err)
	}
	bs := st.BlockSize
	if bs == 0 {
		bs = 4096
	}
	nameLen := st.MaxNameLen
	if nameLen == 0 {
		nameLen = meta.MaxNameLen
	}
	const room = 1 << 50 // bytes reported free: 1 PiB
	out.Bsize = bs
	out.Frsize = bs
	out.Blocks = room / uint64(bs)
	out.Bfree = out.Blocks
	out.Bavail = out.Blocks
	out.Files = st.Inodes + 1<<32
	out.Ffree = 1 << 32
	out.NameLen = nameLen
	return 0
}

// location returns the UFS object behind n.
func (n *Node) location(ctx context.Context) (Location, error) {
	return n.m.ns.Location(ctx, n.ino())
}

// isErrno reports whether err carries the errno en.
func isErrno(err error, en syscall.Errno) bool {
	var e syscall.Errno
	return errors.As(err, &e) && e == en
}
