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
	"github.com/skyfs/skyfs/ufs"
)

// loader returns the cache loader of the file at path: ranged reads from
// the UFS.
func loader(fsys ufs.FileSystem, path string) cache.Loader {
	return func(ctx context.Context, off, length int64) ([]byte, error) {
		r, err := fsys.Open(ctx, path, off, length)
		if err != nil {
			return nil, fmt.Errorf("fusefs: read %q at %d: %w", path, off, err)
		}
		defer r.Close()
		buf := make([]byte, length)
		n, err := io.ReadFull(r, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("fusefs: read %q at %d: %w", path, off, err)
		}
		return buf[:n], nil
	}
}

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
		m, err := h.pt.File().ReadAt(dest, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, toErrno(err)
		}
		return fuse.ReadResultData(dest[:m]), 0
	}
	rd, size := h.reader(n)
	if off >= size || len(dest) == 0 {
		return fuse.ReadResultData(nil), 0
	}
	m, err := rd.ReadAt(ctx, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		n.m.log.Printf("fusefs: read inode %d: %v", n.ino(), err)
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:m]), 0
}

// reader returns the cache reader of the content h reads: the content the
// node last committed or opened, when newer than the handle's.
func (h *fileHandle) reader(n *Node) (*cache.Reader, int64) {
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
	return h.rd, h.c.size
}
