package hdfs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"time"

	hdfs "github.com/colinmarc/hdfs/v2"

	"github.com/skyfs/skyfs/ufs"
)

// closeTimeout bounds how long Close waits for the last block to be replicated.
const closeTimeout = 60 * time.Second

// Open implements ufs.FileSystem.
func (f *FS) Open(ctx context.Context, p string, offset, length int64) (io.ReadCloser, error) {
	return f.open(ctx, p, offset, length, nil)
}

// OpenIf implements ufs.ConditionalOpener. The fingerprint is checked on the
// status the open returned; the file ID in it changes with every rewrite through
// skyfs, and an append changes the length.
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
	r, err := f.client.Open(f.abs(p))
	if err != nil {
		return nil, f.fail("open", p, err)
	}
	st := r.Stat()
	if st.IsDir() {
		r.Close()
		return nil, f.fail("open", p, ufs.ErrIsDir)
	}
	if want != nil && !fingerprint(st).Equal(*want) {
		r.Close()
		return nil, f.fail("open", p, ufs.ErrStale)
	}
	if dl, ok := ctx.Deadline(); ok {
		r.SetDeadline(dl)
	}
	size := st.Size()
	if offset >= size || length == 0 {
		r.Close()
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if _, err := r.Seek(offset, io.SeekStart); err != nil {
		r.Close()
		return nil, f.fail("open", p, err)
	}
	n := size - offset
	if length > 0 && length < n {
		n = length
	}
	return &reader{ctx: ctx, r: io.LimitReader(r, n), c: r}, nil
}

type reader struct {
	ctx context.Context
	r   io.Reader
	c   io.Closer
}

func (r *reader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(b)
}

func (r *reader) Close() error { return r.c.Close() }

// writer writes a temporary file and renames it over the target on Close.
type writer struct {
	f    *FS
	ctx  context.Context
	op   string
	path string
	tmp  string // absolute HDFS path of the temporary file
	w    *hdfs.FileWriter
	done bool
	err  error
}

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
	dir := path.Dir(f.abs(p))
	if err := f.client.MkdirAll(dir, 0o755); err != nil {
		return nil, f.fail(op, p, err)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := path.Join(dir, tmpPrefix+hex.EncodeToString(rnd[:]))
	w, err := f.client.Create(tmp)
	if err != nil {
		return nil, f.fail(op, p, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		w.SetDeadline(dl)
	}
	return &writer{f: f, ctx: ctx, op: op, path: p, tmp: tmp, w: w}, nil
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
	n, err := w.w.Write(b)
	if err != nil {
		w.err = w.f.fail(w.op, w.path, err)
	}
	return n, w.err
}

// Close implements ufs.Writer.
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
	// Close fails with ErrReplicating while the namenode waits for the last
	// block's replicas; poll with a deadline.
	deadline := time.Now().Add(closeTimeout)
	for {
		err := w.w.Close()
		if err == nil {
			break
		}
		if !hdfs.IsErrReplicating(err) || time.Now().After(deadline) {
			return ufs.Fingerprint{}, w.f.fail(w.op, w.path, err)
		}
		select {
		case <-w.ctx.Done():
			return ufs.Fingerprint{}, w.f.fail(w.op, w.path, w.ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	w.w = nil
	target := w.f.abs(w.path)
	if st, err := w.f.client.Stat(target); err == nil && st.IsDir() {
		return ufs.Fingerprint{}, w.f.fail(w.op, w.path, ufs.ErrIsDir)
	}
	if err := w.f.client.Rename(w.tmp, target); err != nil {
		return ufs.Fingerprint{}, w.f.fail(w.op, w.path, err)
	}
	w.tmp = ""
	st, err := w.f.client.Stat(target)
	if err != nil {
		return ufs.Fingerprint{}, w.f.fail(w.op, w.path, err)
	}
	return fingerprint(st), nil
}

// Abort implements ufs.Writer.
func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	if w.w != nil {
		w.w.Close()
		w.w = nil
	}
	if w.tmp != "" {
		err := w.f.client.Remove(w.tmp)
		w.tmp = ""
		if err != nil && !errors.Is(mapErr(err), ufs.ErrNotExist) {
			return w.f.fail("abort", w.path, err)
		}
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

// Copy implements ufs.FileSystem by streaming through the client.
func (f *FS) Copy(ctx context.Context, src, dst string) (ufs.Fingerprint, error) {
	if err := f.check(ctx, "copy", src, dst); err != nil {
		return ufs.Fingerprint{}, err
	}
	st, err := f.client.Stat(f.abs(src))
	if err != nil {
		return ufs.Fingerprint{}, f.fail("copy", src, err)
	}
	if st.IsDir() {
		return ufs.Fingerprint{}, f.fail("copy", src, ufs.ErrIsDir)
	}
	if src == dst {
		return fingerprint(st), nil
	}
	r, err := f.open(ctx, src, 0, -1, nil)
	if err != nil {
		return ufs.Fingerprint{}, err
	}
	defer r.Close()
	w, err := f.create(ctx, "copy", dst)
	if err != nil {
		return ufs.Fingerprint{}, err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Abort()
		return ufs.Fingerprint{}, f.fail("copy", src, err)
	}
	return w.Close()
}
