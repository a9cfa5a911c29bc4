package fusefs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/skyfs/skyfs/meta"
)

// Setattr implements gofs.NodeSetattrer: chmod, chown, utimens go to the
// master; a truncate changes the content. Through a descriptor open for
// writing (ftruncate, open with O_TRUNC) or while this host writes the file,
// the truncate is local and uploaded on close like a write; otherwise the
// truncated content is uploaded at once.
func (n *Node) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if n.m.opts.ReadOnly {
		return syscall.EROFS
	}
	size, hasSize := in.GetSize()
	if hasSize {
		n.mu.Lock()
		typ := n.attr.Type
		n.mu.Unlock()
		switch {
		case typ == meta.TypeDirectory:
			return syscall.EISDIR
		case typ != meta.TypeRegular:
			return syscall.EINVAL
		case size > meta.MaxFileSize:
			return syscall.EFBIG
		}
		if en := n.truncate(ctx, f, int64(size)); en != 0 {
			return en
		}
	}

	var req SetAttrRequest
	if mode, ok := in.GetMode(); ok {
		req.Valid |= meta.SetAttrMode
		req.Mode = mode
	}
	if uid, ok := in.GetUID(); ok {
		req.Valid |= meta.SetAttrUID
		req.UID = uid
	}
	if gid, ok := in.GetGID(); ok {
		req.Valid |= meta.SetAttrGID
		req.GID = gid
	}
	// A truncate records its own modification time: "now" times that come
	// with it (open with O_TRUNC, truncate(2)) need no extra call.
	timesNowOnly := hasSize && in.Valid&(fuse.FATTR_ATIME|fuse.FATTR_ATIME_NOW) != fuse.FATTR_ATIME &&
		in.Valid&(fuse.FATTR_MTIME|fuse.FATTR_MTIME_NOW) != fuse.FATTR_MTIME
	if !timesNowOnly {
		if in.Valid&fuse.FATTR_ATIME != 0 {
			req.Valid |= meta.SetAttrAtime
			if in.Valid&fuse.FATTR_ATIME_NOW != 0 {
				req.AtimeNow = true
			} else {
				req.AtimeNs = int64(in.Atime)*1e9 + int64(in.Atimensec)
			}
		}
		if in.Valid&fuse.FATTR_MTIME != 0 {
			req.Valid |= meta.SetAttrMtime
			if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
				req.MtimeNow = true
			} else {
				req.MtimeNs = int64(in.Mtime)*1e9 + int64(in.Mtimensec)
			}
		}
	}
	if req.Valid != 0 {
		c := requestCaller(ctx)
		req.Caller = &c
		a, err := n.m.ns.SetAttr(ctx, n.ino(), req)
		if err != nil {
			return toErrno(err)
		}
		n.setAttr(a)
		if req.Valid&meta.SetAttrMtime != 0 {
			n.keepMtime(a.Mtime)
		}
	}
	n.fill(&out.Attr)
	return 0
}

// keepMtime remembers an explicit modification time while local content is
// dirty, so that the upload on close does not replace it.
func (n *Node) keepMtime(mtime int64) {
	n.mu.Lock()
	ws := n.ws
	if ws != nil {
		ws.refs++
	}
	n.mu.Unlock()
	if ws == nil {
		return
	}
	ws.mu.Lock()
	if ws.dirty {
		ws.mtime = mtime
		ws.modNs.Store(0)
	}
	ws.mu.Unlock()
	n.releaseWriteState(ws)
}

// truncate sets the size of n's content.
func (n *Node) truncate(ctx context.Context, f gofs.FileHandle, size int64) syscall.Errno {
	if h, ok := handleOf(f); ok && h.ws != nil {
		h.ws.mu.Lock()
		defer h.ws.mu.Unlock()
		return n.logErr("truncate", h.ws.truncateLocked(ctx, size))
	}
	n.mu.Lock()
	ws := n.ws
	if ws != nil {
		ws.refs++
	}
	n.mu.Unlock()
	if ws != nil {
		// Another descriptor writes the file: truncate its content; it is
		// uploaded when that descriptor closes.
		ws.mu.Lock()
		err := ws.truncateLocked(ctx, size)
		ws.mu.Unlock()
		n.releaseWriteState(ws)
		return n.logErr("truncate", err)
	}

	a, err := n.m.ns.GetAttr(ctx, n.ino())
	if err != nil {
		return toErrno(err)
	}
	n.setAttr(a)
	if int64(a.Size) == size {
		return 0
	}
	loc, err := n.location(ctx)
	if err != nil {
		return toErrno(err)
	}
	if loc.ReadOnly {
		return syscall.EROFS
	}
	ws = n.acquireWriteState(contentOf(loc, a), false)
	ws.mu.Lock()
	en := n.logErr("truncate", ws.truncateLocked(ctx, size))
	if en == 0 {
		en = ws.commitLocked(ctx)
	}
	ws.mu.Unlock()
	n.releaseWriteState(ws)
	return en
}

// logErr logs a failure of the data path and maps it to an errno: EIO
// unless it carries one.
func (n *Node) logErr(op string, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	n.m.log.Printf("fusefs: %s inode %d: %v", op, n.ino(), err)
	return toErrno(err)
}
