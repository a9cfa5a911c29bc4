package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/skyfs/skyfs/cache"
	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/ufs"
)

// loader returns the cache loader of the file at path: ranged reads from
// the UFS, straight into the cache's block buffers.
func loader(fsys ufs.FileSystem, path string) cache.Loader {
	return func(ctx context.Context, off int64, dst []byte) (int, error) {
		r, err := fsys.Open(ctx, path, off, int64(len(dst)))
		if err != nil {
			return 0, fmt.Errorf("fusefs: read %q at %d: %w", path, off, err)
		}
		defer r.Close()
		n, err := io.ReadFull(r, dst)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("fusefs: read %q at %d: %w", path, off, err)
		}
		return n, nil
	}
}

// cacheResult answers a read with the bytes of a cache.Result: the FUSE
// server writes its slices to the kernel as they are (blocks in memory are
// not copied into the request's buffer) and calls Done once they are
// written, which releases the blocks.
type cacheResult struct{ res cache.Result }

// Slices gives go-fuse the result's slices, written with one writev.
func (r *cacheResult) Slices() ([][]byte, fuse.Status) { return r.res.Slices, fuse.OK }

// Bytes implements fuse.ReadResult for a server that needs one slice.
func (r *cacheResult) Bytes(buf []byte) ([]byte, fuse.Status) {
	if len(buf) < r.res.N {
		buf = make([]byte, r.res.N)
	}
	return r.res.Bytes(buf), fuse.OK
}

// Size implements fuse.ReadResult.
func (r *cacheResult) Size() int { return r.res.N }

// Done implements fuse.ReadResult.
func (r *cacheResult) Done() { r.res.Release() }

// Read implements gofs.NodeReader. Local writes not yet uploaded are read
// from the staging file; everything else through the block cache (or, for
// a passthrough handle the kernel did not pass through, from the cache
// file).
func (n *Node) Read(ctx context.Context, f gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, ok := handleOf(f)
	if !ok {
		return nil, syscall.EBADF
	}
	n.m.reads.Add(1)
	n.mu.Lock()
	ws := n.ws
	n.mu.Unlock()
	if ws != nil {
		if res, done, en := ws.read(dest, off); done {
			return res, en
		}
	}
	if h.pt != nil {
		m, err := h.pt.ReadAt(dest, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, toErrno(err)
		}
		return fuse.ReadResultData(dest[:m]), 0
	}
	for retried := false; ; retried = true {
		rd, c := h.reader(n)
		if off >= c.size || len(dest) == 0 {
			return fuse.ReadResultData(nil), 0
		}
		res, err := rd.Read(ctx, dest, off)
		if err == nil || errors.Is(err, io.EOF) {
			return &cacheResult{res}, 0
		}
		res.Release()
		if !retried && moved(err) {
			en := h.relocate(ctx, n, c)
			if en == 0 {
				continue
			}
			if en != syscall.EIO {
				n.m.log.Printf("fusefs: read inode %d: %v (%v)", n.ino(), err, en)
				return nil, en
			}
		}
		n.m.log.Printf("fusefs: read inode %d: %v", n.ino(), err)
		return nil, syscall.EIO
	}
}

// moved reports whether a block load failed because the UFS no longer has
// the content where it was looked for: the file was renamed, replaced or
// removed, on another host, since the mount took its location.
func moved(err error) bool {
	return errors.Is(err, ufs.ErrNotExist) || errors.Is(err, ufs.ErrStale)
}

// relocate asks the master for n's attributes and location after a load of
// the content failed, found nothing where it looked for (a rename on another
// host within the attribute timeout: see revalidate.go), holds what it
// answers, and points h at the content found there, for one more read. It
// answers ESTALE when the file is gone from the namespace (or is no longer
// a regular file), EIO when the master still names the content that was
// not found (the UFS lost it behind the master's back) or cannot be asked.
func (h *fileHandle) relocate(ctx context.Context, n *Node, failed content) syscall.Errno {
	n.m.relocations.Add(1)
	st := n.stampNow()
	a, err := n.m.ns.GetAttr(ctx, n.ino())
	if err != nil {
		return staleIfGone(err)
	}
	if a.Type != meta.TypeRegular {
		return syscall.ESTALE
	}
	loc, err := n.location(ctx)
	if err != nil {
		return staleIfGone(err)
	}
	n.setFresh(a, st)
	n.setLoc(loc, st)
	c := contentOf(loc, a)
	if c.same(failed) {
		return syscall.EIO
	}
	h.mu.Lock()
	if h.c.same(failed) {
		h.c, h.rd = c, nil
	}
	h.mu.Unlock()
	return 0
}

// staleIfGone maps the error of a call about an open file: ESTALE when the
// master no longer knows the file, EIO otherwise.
func staleIfGone(err error) syscall.Errno {
	if toErrno(err) == syscall.ENOENT {
		return syscall.ESTALE
	}
	return syscall.EIO
}

// reader returns the cache reader of the content h reads, and that
// content: the content the node last committed or opened, when newer than
// the handle's.
func (h *fileHandle) reader(n *Node) (*cache.Reader, content) {
	n.mu.Lock()
	cur := n.lastOpen
	n.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur.fs != nil && cur.key.MountID == h.c.key.MountID && cur.key.Path == h.c.key.Path && !cur.same(h.c) {
		h.c, h.rd = cur, nil
	}
	if h.rd == nil {
		h.rd = h.n.m.cache.NewReader(h.c.key, h.c.size, loader(h.c.fs, h.c.key.Path))
	}
	return h.rd, h.c
}
