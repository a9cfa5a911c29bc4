package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/ufs"
)

// stagingPrefix starts the name of every staging file.
const stagingPrefix = "stage-"

// copyChunk is the unit of copying old content into a staging file.
const copyChunk = 1 << 20

// writeState is the local content of a file being written on this host,
// shared by every handle that writes it. The staging file holds the whole
// current content once populated; while the file has been written from
// empty and in order, a streaming upload carries the same bytes, so that
// commit only has to finish it.
type writeState struct {
	n *Node

	refs int // handles and operations using the state; under n.mu

	mu        sync.RWMutex
	base      content  // the content the file had when the state was made
	f         *os.File // staging file, once populated
	populated bool     // f holds the whole current content
	dirty     bool     // the content differs from what the master records
	// canStream says the content so far was written from empty, in order.
	canStream bool
	// uncached says some of the content was written past the kernel's page
	// cache (a direct I/O handle): the pages it holds may be stale.
	uncached  bool
	stream    ufs.Writer
	streamLoc Location // where stream writes
	streamOff int64    // bytes given to stream
	cancel    context.CancelFunc
	// mtime, when not zero, is a modification time set while the content
	// was dirty; it is recorded with the upload. mtime0 is the file's
	// modification time when the state was made (for content uploaded
	// without a local change: a new empty file).
	mtime, mtime0 int64

	// The size and modification time of local content; read without mu.
	size     atomic.Int64
	modNs    atomic.Int64
	hasLocal atomic.Bool
}

// acquireWriteState returns the node's write state, making one if there is
// none, and takes a reference on it. created says the file was just created
// empty by this host.
func (n *Node) acquireWriteState(c content, created bool) *writeState {
	n.mu.Lock()
	defer n.mu.Unlock()
	ws := n.ws
	if ws == nil {
		ws = &writeState{n: n, base: c, mtime0: n.attr.Mtime}
		if created {
			ws.dirty = true // an empty file is uploaded too
		}
		n.ws = ws
	}
	ws.refs++
	return ws
}

// releaseWriteState drops a reference. The last one uploads what is still
// dirty (a failure is logged: there is no one left to tell) and removes the
// staging file.
func (n *Node) releaseWriteState(ws *writeState) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	n.mu.Lock()
	ws.refs--
	last := ws.refs == 0
	n.mu.Unlock()
	if !last {
		return
	}
	if ws.dirty {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		if en := ws.commitLocked(ctx); en != 0 {
			n.m.log.Printf("fusefs: inode %d: content written on this host is lost: upload on release failed: %v", n.ino(), en)
		}
		cancel()
	}
	n.mu.Lock()
	if ws.refs > 0 {
		// Someone opened the file meanwhile and goes on with this state.
		n.mu.Unlock()
		return
	}
	if n.ws == ws {
		n.ws = nil
	}
	n.mu.Unlock()
	ws.discardLocked()
}

// discardLocked aborts the stream and removes the staging file.
func (ws *writeState) discardLocked() {
	ws.abortStreamLocked()
	if ws.f != nil {
		name := ws.f.Name()
		ws.f.Close()
		os.Remove(name)
		ws.f = nil
	}
	ws.populated, ws.dirty = false, false
	ws.hasLocal.Store(false)
}

// localAttr returns the size and modification time of the local content,
// if there is any.
func (ws *writeState) localAttr() (size, mtime int64, ok bool) {
	if !ws.hasLocal.Load() {
		return 0, 0, false
	}
	return ws.size.Load(), ws.modNs.Load(), true
}

// touchLocked records a change of the local content.
func (ws *writeState) touchLocked() {
	ws.dirty = true
	ws.mtime = 0
	ws.modNs.Store(time.Now().UnixNano())
	ws.hasLocal.Store(true)
}

// createStagingLocked makes an empty staging file.
func (ws *writeState) createStagingLocked() error {
	if ws.f != nil {
		return nil
	}
	f, err := os.CreateTemp(ws.n.m.staging, stagingPrefix+"*")
	if err != nil {
		return fmt.Errorf("fusefs: create staging file: %w", err)
	}
	ws.f = f
	return nil
}

// populateLocked makes the staging file hold the file's current content,
// copying it through the cache (read-modify-upload) unless the file is
// empty or keep bytes of it suffice (0 to copy nothing: a truncate to zero).
func (ws *writeState) populateLocked(ctx context.Context, keep int64) error {
	if ws.populated {
		return nil
	}
	if err := ws.createStagingLocked(); err != nil {
		return err
	}
	n := min(ws.base.size, keep)
	if n > 0 {
		if err := ws.copyBaseLocked(ctx, n); err != nil {
			ws.f.Truncate(0)
			return err
		}
	}
	ws.populated = true
	ws.canStream = n == 0
	ws.size.Store(n)
	ws.modNs.Store(0)
	ws.hasLocal.Store(true)
	if n < ws.base.size {
		if err := ws.f.Truncate(n); err != nil {
			return fmt.Errorf("fusefs: truncate staging file: %w", err)
		}
	}
	return nil
}

// copyBaseLocked copies the first n bytes of the base content into the
// staging file.
func (ws *writeState) copyBaseLocked(ctx context.Context, n int64) error {
	c := ws.base
	rd := ws.n.m.cache.NewReader(c.key, c.size, loader(c.fs, c.key.Path))
	buf := make([]byte, min(copyChunk, n))
	for off := int64(0); off < n; {
		m := min(int64(len(buf)), n-off)
		got, err := rd.ReadAt(ctx, buf[:m], off)
		if err != nil && !(errors.Is(err, io.EOF) && int64(got) == m) {
			return fmt.Errorf("fusefs: copy old content of %q: %w", c.key.Path, err)
		}
		if _, err := ws.f.WriteAt(buf[:m], off); err != nil {
			return fmt.Errorf("fusefs: write staging file: %w", err)
		}
		off += m
	}
	return nil
}

// abortStreamLocked drops the streaming upload, if any.
func (ws *writeState) abortStreamLocked() {
	if ws.stream != nil {
		ws.stream.Abort()
		ws.stream = nil
	}
	if ws.cancel != nil {
		ws.cancel()
		ws.cancel = nil
	}
}

// streamLocked gives p, just written at off, to the streaming upload when
// the content is still written in order from empty; otherwise it drops the
// stream. A failing stream is dropped too: the staging file has the data.
func (ws *writeState) streamLocked(p []byte, off int64) {
	if !ws.canStream || ws.n.m.opts.DisableStreaming {
		ws.canStream = false
		ws.abortStreamLocked()
		return
	}
	if off != ws.streamOff {
		ws.canStream = false
		ws.abortStreamLocked()
		return
	}
	if ws.stream == nil {
		if off != 0 || ws.base.fs == nil {
			ws.canStream = false
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		w, err := ws.base.fs.Create(ctx, ws.base.key.Path)
		if err != nil {
			cancel()
			ws.canStream = false
			return
		}
		ws.stream, ws.cancel = w, cancel
		ws.streamLoc = Location{MountID: ws.base.key.MountID, FS: ws.base.fs, Path: ws.base.key.Path}
	}
	if _, err := ws.stream.Write(p); err != nil {
		ws.canStream = false
		ws.abortStreamLocked()
		return
	}
	ws.streamOff += int64(len(p))
}

// Write implements gofs.NodeWriter.
func (n *Node) Write(ctx context.Context, f gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	h, ok := handleOf(f)
	if !ok || h.ws == nil {
		return 0, syscall.EBADF
	}
	ws := h.ws
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if err := ws.populateLocked(ctx, ws.base.size); err != nil {
		n.m.log.Printf("fusefs: write inode %d: %v", n.ino(), err)
		return 0, syscall.EIO
	}
	if _, err := ws.f.WriteAt(data, off); err != nil {
		return 0, toErrno(err)
	}
	if h.mode != ioCached {
		ws.uncached = true
	}
	end := off + int64(len(data))
	seq := off == ws.size.Load()
	if end > ws.size.Load() {
		ws.size.Store(end)
	}
	if seq {
		ws.streamLocked(data, off)
	} else {
		ws.canStream = false
		ws.abortStreamLocked()
	}
	ws.touchLocked()
	return uint32(len(data)), 0
}

// truncateLocked sets the size of the local content.
func (ws *writeState) truncateLocked(ctx context.Context, size int64) error {
	if err := ws.populateLocked(ctx, size); err != nil {
		return err
	}
	if size == ws.size.Load() && ws.dirty {
		return nil
	}
	if err := ws.f.Truncate(size); err != nil {
		return fmt.Errorf("fusefs: truncate staging file: %w", err)
	}
	ws.size.Store(size)
	if size != ws.streamOff || size != 0 {
		// Only a truncate to zero of a file written from empty keeps the
		// stream possible (from scratch).
		ws.abortStreamLocked()
		ws.streamOff = 0
		ws.canStream = size == 0
	}
	ws.touchLocked()
	return nil
}

// Allocate implements gofs.NodeAllocater: fallocate(2) on the staging file.
func (n *Node) Allocate(ctx context.Context, f gofs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	h, ok := handleOf(f)
	if !ok || h.ws == nil {
		return syscall.EBADF
	}
	ws := h.ws
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if err := ws.populateLocked(ctx, ws.base.size); err != nil {
		n.m.log.Printf("fusefs: fallocate inode %d: %v", n.ino(), err)
		return syscall.EIO
	}
	if err := unix.Fallocate(int(ws.f.Fd()), mode, int64(off), int64(size)); err != nil {
		return toErrno(err)
	}
	if st, err := ws.f.Stat(); err == nil && st.Size() != ws.size.Load() {
		ws.size.Store(st.Size())
	}
	ws.canStream = false
	ws.abortStreamLocked()
	ws.touchLocked()
	return 0
}

// read serves a read from the staging file when it holds the content; done
// is false when it does not (the read goes to the cache).
func (ws *writeState) read(dest []byte, off int64) (res fuse.ReadResult, done bool, en syscall.Errno) {
	ws.mu.RLock()
	defer ws.mu.RUnlock()
	if !ws.populated || ws.f == nil {
		return nil, false, 0
	}
	size := ws.size.Load()
	if off >= size {
		return fuse.ReadResultData(nil), true, 0
	}
	want := dest[:min(int64(len(dest)), size-off)]
	m, err := ws.f.ReadAt(want, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, true, toErrno(err)
	}
	return fuse.ReadResultData(want[:m]), true, 0
}

// sync uploads the content if it is dirty and records it with the master.
func (ws *writeState) sync(ctx context.Context) syscall.Errno {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.commitLocked(ctx)
}

// commitLocked finishes the upload of dirty content (the stream, or a Put of
// the staging file) and then records size and fingerprint with the master.
// An upload failure is EIO; the content stays dirty.
func (ws *writeState) commitLocked(ctx context.Context) syscall.Errno {
	if !ws.dirty {
		return 0
	}
	n := ws.n
	if err := ws.populateLocked(ctx, ws.base.size); err != nil {
		n.m.log.Printf("fusefs: upload inode %d: %v", n.ino(), err)
		return syscall.EIO
	}
	loc, err := n.location(ctx)
	if isErrno(err, syscall.ENOENT) {
		// Removed meanwhile: the content goes with it.
		ws.abortStreamLocked()
		ws.dirty = false
		return 0
	}
	if err != nil {
		return toErrno(err)
	}
	if loc.ReadOnly {
		return syscall.EROFS
	}
	size := ws.size.Load()
	var fp ufs.Fingerprint
	uploaded := false
	if ws.stream != nil && ws.canStream && ws.streamOff == size &&
		ws.streamLoc.MountID == loc.MountID && ws.streamLoc.Path == loc.Path {
		w := ws.stream
		ws.stream = nil
		if fp, err = w.Close(); err == nil {
			uploaded = true
		} else {
			n.m.log.Printf("fusefs: inode %d: streaming upload failed, uploading the staged copy: %v", n.ino(), err)
		}
	}
	ws.abortStreamLocked()
	if !uploaded {
		fp, err = loc.FS.Put(ctx, loc.Path, io.NewSectionReader(ws.f, 0, size), size)
		if err != nil {
			n.m.log.Printf("fusefs: upload inode %d: %v", n.ino(), err)
			return syscall.EIO
		}
	}
	mtime := ws.mtime
	if mtime == 0 {
		mtime = ws.modNs.Load()
	}
	if mtime == 0 {
		mtime = ws.mtime0
	}
	a, err := n.m.ns.CompleteFile(ctx, n.ino(), uint64(size), meta.Fingerprint{
		Size: fp.Size, ETag: fp.ETag, MtimeNs: fp.ModTime.UnixNano(),
	}, mtime)
	if isErrno(err, syscall.ENOENT) {
		ws.dirty = false
		return 0
	}
	if err != nil {
		n.m.log.Printf("fusefs: complete inode %d: %v", n.ino(), err)
		return toErrno(err)
	}
	ws.mtime, ws.mtime0 = 0, a.Mtime
	ws.dirty = false
	ws.canStream = false
	ws.streamOff = 0
	ws.base = contentOf(loc, a)
	ws.modNs.Store(a.Mtime)
	n.mu.Lock()
	n.attr = *a
	n.attrVer++
	// The kernel's pages hold what was just written and stay valid, unless
	// some writes bypassed them.
	n.lastOpen = ws.base
	n.pagesStale = n.pagesStale || ws.uncached
	n.mu.Unlock()
	ws.uncached = false
	return 0
}
