package fusefs

import (
	"context"
	"strconv"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/skyfs/skyfs/cache"
	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/ufs"
)

// content is one version of a file's content: where it is cached and read
// from.
type content struct {
	key  cache.Key
	size int64
	fs   ufs.FileSystem
}

// contentOf is the content a file with attributes a has at loc.
func contentOf(loc Location, a *meta.Attr) content {
	return content{
		key:  cache.Key{MountID: loc.MountID, Path: loc.Path, Fingerprint: fingerprintKey(a.UFS)},
		size: int64(a.Size),
		fs:   loc.FS,
	}
}

// same reports whether c and d are the same version of the same file.
func (c content) same(d content) bool { return c.key == d.key && c.size == d.size }

// fingerprintKey encodes a fingerprint for the cache key: every field, so a
// change of any of them is another entry.
func fingerprintKey(f meta.Fingerprint) string {
	b := make([]byte, 0, 64)
	b = strconv.AppendInt(b, f.Size, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, f.MtimeNs, 10)
	b = append(b, '/')
	b = strconv.AppendQuote(b, f.ETag)
	b = append(b, '/')
	b = strconv.AppendQuote(b, f.Version)
	return string(b)
}

// I/O modes of a handle, as the kernel sees it.
const (
	ioCached      = iota // through the kernel's page cache
	ioDirect             // FOPEN_DIRECT_IO
	ioPassthrough        // FOPEN_PASSTHROUGH on a cache file
)

// fileHandle is one open regular file.
type fileHandle struct {
	n     *Node
	flags uint32
	mode  int
	pt    *cache.Passthrough // ioPassthrough: the pinned cache file
	ws    *writeState        // opened for writing: the node's write state

	mu  sync.Mutex
	c   content       // content rd reads
	rd  *cache.Reader // reads through the cache, made on first read
	own bool          // the handle counts in the node's open counts
}

// ptHandle is a fileHandle opened for passthrough, or for direct I/O next to
// passthrough handles. Only it offers go-fuse a backing file: go-fuse shares one registered backing file among the
// passthrough-capable handles of an inode, so a handle of the ordinary path
// offering one would be given a previous handle's cache file, whose content
// may be older, while that handle's release is still on its way.
type ptHandle struct{ *fileHandle }

var _ = (gofs.FilePassthroughFder)(ptHandle{})

// PassthroughFd implements gofs.FilePassthroughFder: go-fuse registers the
// cache file of a passthrough handle with the kernel.
func (h ptHandle) PassthroughFd() (int, bool) {
	if h.pt == nil {
		return 0, false
	}
	return h.pt.Fd(), true
}

// offered is what go-fuse gets for h: a direct I/O handle opened next to
// passthrough handles must name their backing file too (the kernel refuses
// any other open of an inode in passthrough mode), and the direct I/O flag
// keeps its reads and writes on the ordinary path; a cached handle must not.
func (h *fileHandle) offered() gofs.FileHandle {
	if h.mode == ioCached {
		return h
	}
	return ptHandle{h}
}

// handleOf returns the fileHandle behind a handle go-fuse passes back.
func handleOf(f gofs.FileHandle) (*fileHandle, bool) {
	switch h := f.(type) {
	case *fileHandle:
		return h, true
	case ptHandle:
		return h.fileHandle, true
	}
	return nil, false
}

// Open implements gofs.NodeOpener. An open for reading uses the attributes
// and location the node holds, younger than the attribute timeout, else
// asks the master (close-to-open consistency once the timeout has passed;
// see revalidate.go). An open for writing always asks.
func (n *Node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return n.openWriter(ctx, flags, false, nil)
	}
	a, loc, err := n.readState(ctx)
	if err != nil {
		return nil, 0, toErrno(err)
	}
	if a.Type != meta.TypeRegular {
		return nil, 0, syscall.EISDIR
	}
	c := contentOf(loc, a)
	h := &fileHandle{n: n, flags: flags, c: c}
	n.m.handles.Add(1)
	// A descriptor that cannot write has nothing to finish at close: the
	// kernel need not send FLUSH (locks are the kernel's own, see doc.go).
	const noFlush = fuse.FOPEN_NOFLUSH
	// O_DIRECT stays on the ordinary path: through passthrough it would
	// reach the cache file and take on its filesystem's alignment rules.
	if n.m.passthrough.Load() && c.size > 0 && flags&syscall.O_DIRECT == 0 && n.reservePassthrough(c.key) {
		pt, ok, err := n.m.cache.OpenComplete(c.key, c.size)
		if err == nil && ok {
			h.pt, h.mode, h.own = pt, ioPassthrough, true
			n.m.passthroughs.Add(1)
			n.mu.Lock()
			n.lastOpen = c
			n.mu.Unlock()
			return h.offered(), noFlush, 0
		}
		n.mu.Lock()
		n.ptOpens--
		n.mu.Unlock()
	}
	fl := n.beginOpen(h, c)
	return h.offered(), fl | noFlush, 0
}

// reservePassthrough counts a passthrough open of content key if the kernel
// would accept one: no cached open of the file, no local writes, and any
// other passthrough open on the same content.
func (n *Node) reservePassthrough(key cache.Key) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ws != nil || n.cachedOpens > 0 || (n.ptOpens > 0 && n.ptKey != key) {
		return false
	}
	n.ptOpens++
	n.ptKey = key
	return true
}

// beginOpen counts a handle that is not passthrough and returns its open
// flags: direct I/O while passthrough handles are open, otherwise cached,
// keeping the kernel's pages when the content has not changed since the
// previous open.
func (n *Node) beginOpen(h *fileHandle, c content) uint32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	h.own = true
	if n.ptOpens > 0 {
		h.mode = ioDirect
		return fuse.FOPEN_DIRECT_IO
	}
	h.mode = ioCached
	n.cachedOpens++
	var flags uint32
	if n.lastOpen.same(c) && !n.pagesStale {
		flags |= fuse.FOPEN_KEEP_CACHE
	}
	n.lastOpen, n.pagesStale = c, false
	return flags
}

// openWriter opens n for writing. created says n was just created by this
// handle's Create; loc, when not nil, is where the namespace said then that
// the file lives.
func (n *Node) openWriter(ctx context.Context, flags uint32, created bool, loc *Location) (gofs.FileHandle, uint32, syscall.Errno) {
	if n.m.opts.ReadOnly {
		return nil, 0, syscall.EROFS
	}
	var a *meta.Attr
	if created {
		n.mu.Lock()
		cp := n.attr
		n.mu.Unlock()
		a = &cp
	} else {
		var err error
		if a, err = n.m.ns.GetAttr(ctx, n.ino()); err != nil {
			return nil, 0, toErrno(err)
		}
		n.setAttr(a)
	}
	if a.Type != meta.TypeRegular {
		return nil, 0, syscall.EISDIR
	}
	if loc == nil {
		l, err := n.location(ctx)
		if err != nil {
			return nil, 0, toErrno(err)
		}
		loc = &l
	}
	if loc.ReadOnly {
		return nil, 0, syscall.EROFS
	}
	c := contentOf(*loc, a)
	h := &fileHandle{n: n, flags: flags, c: c}
	n.m.handles.Add(1)
	h.ws = n.acquireWriteState(c, created)
	fl := n.beginOpen(h, c)
	return h.offered(), fl, 0
}

// Release implements gofs.NodeReleaser. The last writer of a file uploads
// what is still not uploaded (close normally did) and drops the staging
// file.
func (n *Node) Release(ctx context.Context, f gofs.FileHandle) syscall.Errno {
	h, ok := handleOf(f)
	if !ok {
		return 0
	}
	n.m.releasing.Add(1)
	defer n.m.releasing.Add(-1)
	if h.ws != nil {
		n.releaseWriteState(h.ws)
	}
	if h.pt != nil {
		h.pt.Release()
	}
	n.mu.Lock()
	if h.own {
		switch h.mode {
		case ioPassthrough:
			n.ptOpens--
		case ioCached:
			n.cachedOpens--
		}
		h.own = false
	}
	n.mu.Unlock()
	n.m.handles.Add(-1)
	return 0
}

// Flush implements gofs.NodeFlusher: close(2) of a descriptor that wrote
// finishes the upload and records the file with the master.
func (n *Node) Flush(ctx context.Context, f gofs.FileHandle) syscall.Errno {
	h, ok := handleOf(f)
	if !ok || h.ws == nil {
		return 0
	}
	return h.ws.sync(ctx)
}

// Fsync implements gofs.NodeFsyncer: like Flush, the data is in the UFS and
// recorded with the master when it returns.
func (n *Node) Fsync(ctx context.Context, f gofs.FileHandle, flags uint32) syscall.Errno {
	h, ok := handleOf(f)
	if !ok {
		return 0
	}
	if h.ws == nil {
		// A read-only descriptor may still fsync a file another descriptor
		// wrote.
		n.mu.Lock()
		ws := n.ws
		n.mu.Unlock()
		if ws == nil {
			return 0
		}
		return ws.sync(ctx)
	}
	return h.ws.sync(ctx)
}
