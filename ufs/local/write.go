package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/skyfs/skyfs/ufs"
)

// writer writes a temporary file and renames it over the target on Close.
// A target with several names (hard links) is rewritten in place instead, so
// that its names stay one file: a rename would leave the other names with
// the old content.
type writer struct {
	f    *FS
	ctx  context.Context
	op   string
	path string // target
	tmp  string // root-relative name of the temporary file
	file *os.File
	done bool
	err  error
}

var _ ufs.Writer = (*writer)(nil)

// Create implements ufs.FileSystem.
func (f *FS) Create(ctx context.Context, p string) (ufs.Writer, error) {
	if err := f.check(ctx, "create", p); err != nil {
		return nil, err
	}
	return f.create(ctx, "create", p)
}

func (f *FS) create(ctx context.Context, op, p string) (*writer, error) {
	if p == "" {
		return nil, f.fail(op, p, ufs.ErrIsDir)
	}
	if err := f.mkdirParent(p); err != nil {
		return nil, f.fail(op, p, err)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := ufs.Join(ufs.Dir(p), tmpPrefix+hex.EncodeToString(rnd[:]))
	file, err := f.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, f.fail(op, p, err)
	}
	return &writer{f: f, ctx: ctx, op: op, path: p, tmp: tmp, file: file}, nil
}

// Write implements ufs.Writer.
func (w *writer) Write(b []byte) (int, error) {
	if w.done {
		return 0, w.f.fail(w.op, w.path, ufs.ErrClosed)
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.err = w.f.fail(w.op, w.path, err)
		return 0, w.err
	}
	n, err := w.file.Write(b)
	if err != nil {
		w.err = w.f.fail(w.op, w.path, err)
	}
	return n, w.err
}

// Close implements ufs.Writer: sync, move the modification time past the old
// version's, rename over the target, sync the directory.
func (w *writer) Close() (ufs.Fingerprint, error) {
	if w.done {
		return ufs.Fingerprint{}, w.f.fail(w.op, w.path, ufs.ErrClosed)
	}
	fp, err := w.commit()
	if err != nil {
		w.Abort()
		return ufs.Fingerprint{}, err
	}
	w.done = true
	return fp, nil
}

func (w *writer) commit() (ufs.Fingerprint, error) {
	if w.err != nil {
		return ufs.Fingerprint{}, w.err
	}
	if err := w.ctx.Err(); err != nil {
		return ufs.Fingerprint{}, w.f.fail(w.op, w.path, err)
	}
	if err := w.file.Sync(); err != nil {
		return ufs.Fingerprint{}, w.f.fail(w.op, w.path, err)
	}
	prev := time.Time{}
	if st, err := w.f.root.Lstat(w.path); err == nil {
		if st.IsDir() {
			return ufs.Fingerprint{}, w.f.fail(w.op, w.path, ufs.ErrIsDir)
		}
		prev = st.ModTime()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Nlink > 1 && st.Mode().IsRegular() {
			return w.commitInPlace(prev)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return ufs.Fingerprint{}, w.f.fail(w.op, w.path, err)
	}
	if err := w.f.touchAfter(w.file, w.tmp, prev); err != nil {
		return ufs.Fingerprint{}, w.f.fail(w.op, w.path, err)
	}
	st, err := w.file.Stat()
	if err != nil {
		return ufs.Fingerprint{}, w.f.fail(w.op, w.path, err)
	}
	if err := w.file.Close(); err != nil {
		return ufs.Fingerprint{}, w.f.fail(w.op, w.path, err)
	}
	w.file = nil
	if err := w.f.root.Rename(w.tmp, w.path); err != nil {
		return ufs.Fingerprint{}, w.f.fail(w.op, w.path, err)
	}
	w.tmp = ""
	if d, err := w.f.root.Open(osName(ufs.Dir(w.path))); err == nil {
		d.Sync()
		d.Close()
	}
	return fingerprint(st), nil
}

// commitInPlace copies the temporary file over the content of the target,
// which has other names, and removes it. Readers of the target may see a
// partial content meanwhile, as with any write in place.
func (w *writer) commitInPlace(prev time.Time) (ufs.Fingerprint, error) {
	fail := func(err error) (ufs.Fingerprint, error) { return ufs.Fingerprint{}, w.f.fail(w.op, w.path, err) }
	src, err := w.f.root.Open(w.tmp)
	if err != nil {
		return fail(err)
	}
	defer src.Close()
	dst, err := w.f.root.OpenFile(w.path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fail(err)
	}
	_, err = io.Copy(dst, src)
	if err == nil {
		err = dst.Sync()
	}
	if err == nil {
		err = w.f.touchAfter(dst, w.path, prev)
	}
	var st fs.FileInfo
	if err == nil {
		st, err = dst.Stat()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	if err := w.file.Close(); err != nil {
		return fail(err)
	}
	w.file = nil
	if err := w.f.root.Remove(w.tmp); err != nil {
		return fail(err)
	}
	w.tmp = ""
	return fingerprint(st), nil
}

// Abort implements ufs.Writer.
func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	if w.file != nil {
		w.file.Close()
		w.file = nil
	}
	if w.tmp != "" {
		if err := w.f.root.Remove(w.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return w.f.fail("abort", w.path, err)
		}
		w.tmp = ""
	}
	return nil
}

// Put implements ufs.FileSystem.
func (f *FS) Put(ctx context.Context, p string, r io.Reader, size int64) (ufs.Fingerprint, error) {
	if err := f.check(ctx, "put", p); err != nil {
		return ufs.Fingerprint{}, err
	}
	if size < 0 {
		return ufs.Fingerprint{}, f.fail("put", p, fmt.Errorf("%w: negative size %d", ufs.ErrInvalid, size))
	}
	w, err := f.create(ctx, "put", p)
	if err != nil {
		return ufs.Fingerprint{}, err
	}
	if err := ufs.CopyExactly(w, r, size); err != nil {
		w.Abort()
		return ufs.Fingerprint{}, f.fail("put", p, err)
	}
	return w.Close()
}

// Open implements ufs.FileSystem.
func (f *FS) Open(ctx context.Context, p string, offset, length int64) (io.ReadCloser, error) {
	return f.open(ctx, p, offset, length, nil)
}

// OpenIf implements ufs.ConditionalOpener: the fingerprint is checked on the
// opened file (fstat), so the reader reads the version that was checked unless
// another program rewrites the file in place.
func (f *FS) OpenIf(ctx context.Context, p string, offset, length int64, want ufs.Fingerprint) (io.ReadCloser, error) {
	return f.open(ctx, p, offset, length, &want)
}

func (f *FS) open(ctx context.Context, p string, offset, length int64, want *ufs.Fingerprint) (io.ReadCloser, error) {
	if err := f.check(ctx, "open", p); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, f.fail("open", p, fmt.Errorf("%w: negative offset %d", ufs.ErrInvalid, offset))
	}
	file, err := f.root.Open(osName(p))
	if err != nil {
		return nil, f.fail("open", p, err)
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, f.fail("open", p, err)
	}
	if st.IsDir() {
		file.Close()
		return nil, f.fail("open", p, ufs.ErrIsDir)
	}
	if want != nil && !fingerprint(st).Equal(*want) {
		file.Close()
		return nil, f.fail("open", p, ufs.ErrStale)
	}
	size := st.Size()
	n := int64(0)
	if offset < size {
		n = size - offset
		if length >= 0 && length < n {
			n = length
		}
	}
	return &reader{ctx: ctx, r: io.NewSectionReader(file, offset, n), file: file}, nil
}

// reader reads a section of a file and stops when its context ends.
type reader struct {
	ctx  context.Context
	r    io.Reader
	file *os.File
}

func (r *reader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(b)
}

func (r *reader) Close() error { return r.file.Close() }
