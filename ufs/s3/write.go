package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/skyfs/skyfs/ufs"
)

// partsPerSize is how many parts of one size a multipart upload sends before
// the part size doubles: with the default 8 MiB, the first 900 parts carry
// 7 GiB, and a 100 GiB file fits in about 3,500 parts, well under MaxParts
// (from the smallest part size, MaxObjectSize fits), while a small file's
// parts stay small.
const partsPerSize = 900

// MaxPartSize is the largest part S3 accepts.
const MaxPartSize = 5 << 30

// partSizeOf returns the size of part num (from 1) of a multipart upload.
func (f *FS) partSizeOf(num int32) int {
	size := int64(f.partSize) << min((num-1)/partsPerSize, 20)
	return int(min(size, MaxPartSize))
}

// unsignedPayload sends a request's body without its SHA-256 in the
// signature: the parts and objects a writer uploads carry a CRC32 checksum
// that S3 verifies, so hashing every byte again only costs CPU.
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware, markUnsigned)
}

// markUnsigned records UNSIGNED-PAYLOAD as the payload hash at the start of
// a request, so that the checksum middleware, which hashes the body for the
// signature itself when no hash is set, computes the CRC32 alone.
func markUnsigned(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("skyfsUnsignedPayload",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			return next.HandleInitialize(v4.SetPayloadHash(ctx, "UNSIGNED-PAYLOAD"), in)
		}), middleware.Before)
}

// cleanupTimeout bounds the requests that clean up after a failure (abort of a
// multipart upload), which run even when the caller's context has ended.
const cleanupTimeout = 30 * time.Second

// Open implements ufs.FileSystem with one ranged GetObject.
func (f *FS) Open(ctx context.Context, p string, offset, length int64) (io.ReadCloser, error) {
	return f.open(ctx, p, offset, length, nil)
}

// OpenIf implements ufs.ConditionalOpener: the GET carries If-Match with the
// expected ETag, so S3 itself refuses a changed object (412); size and
// Last-Modified are compared too where a HEAD was needed.
func (f *FS) OpenIf(ctx context.Context, p string, offset, length int64, want ufs.Fingerprint) (io.ReadCloser, error) {
	return f.open(ctx, p, offset, length, &want)
}

// headIf is head that also fails with ErrStale when want is set and differs.
func (f *FS) headIf(ctx context.Context, key string, want *ufs.Fingerprint) error {
	fp, err := f.head(ctx, key)
	if err != nil {
		return err
	}
	if want != nil && !fp.Equal(*want) {
		return ufs.ErrStale
	}
	return nil
}

func (f *FS) open(ctx context.Context, p string, offset, length int64, want *ufs.Fingerprint) (io.ReadCloser, error) {
	if err := f.checkPaths(ctx, "open", p); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, f.fail("open", p, fmt.Errorf("%w: negative offset %d", ufs.ErrInvalid, offset))
	}
	if p == "" {
		return nil, f.fail("open", p, ufs.ErrIsDir)
	}
	key := f.Key(p)
	if length == 0 {
		if err := f.headIf(ctx, key, want); err != nil {
			return nil, f.fail("open", p, err)
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	in := &s3.GetObjectInput{Bucket: &f.bucket, Key: &key}
	if want != nil {
		in.IfMatch = ifMatch(want.ETag)
	}
	switch {
	case length < 0 && offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	}
	out, err := f.client.GetObject(ctx, in)
	if err != nil {
		if isInvalidRange(err) {
			// The range starts at or past the end: read(2) gives 0 bytes.
			if herr := f.headIf(ctx, key, want); herr != nil {
				return nil, f.fail("open", p, herr)
			}
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		if want != nil && isPreconditionFailed(err) {
			return nil, f.fail("open", p, ufs.ErrStale)
		}
		return nil, f.fail("open", p, err)
	}
	return &body{f: f, p: p, rc: out.Body}, nil
}

// body maps read errors of a GetObject body to ufs errors.
type body struct {
	f  *FS
	p  string
	rc io.ReadCloser
}

func (b *body) Read(buf []byte) (int, error) {
	n, err := b.rc.Read(buf)
	if err != nil && err != io.EOF {
		err = b.f.fail("read", b.p, err)
	}
	return n, err
}

func (b *body) Close() error { return b.rc.Close() }

// Put implements ufs.FileSystem: one PutObject up to the part size, a multipart
// upload above.
func (f *FS) Put(ctx context.Context, p string, r io.Reader, size int64) (ufs.Fingerprint, error) {
	if err := f.checkPaths(ctx, "put", p); err != nil {
		return ufs.Fingerprint{}, err
	}
	if size < 0 {
		return ufs.Fingerprint{}, f.fail("put", p, fmt.Errorf("%w: negative size %d", ufs.ErrInvalid, size))
	}
	if p == "" {
		return ufs.Fingerprint{}, f.fail("put", p, ufs.ErrIsDir)
	}
	if size > MaxObjectSize {
		return ufs.Fingerprint{}, f.fail("put", p, fmt.Errorf("%w: %d bytes is over the S3 object size limit", ufs.ErrInvalid, size))
	}
	if size <= int64(f.partSize) {
		buf := bytes.NewBuffer(make([]byte, 0, size))
		if err := ufs.CopyExactly(buf, r, size); err != nil {
			return ufs.Fingerprint{}, f.fail("put", p, err)
		}
		fp, err := f.putObject(ctx, f.Key(p), buf.Bytes())
		if err != nil {
			return ufs.Fingerprint{}, f.fail("put", p, err)
		}
		return fp, nil
	}
	w := f.newWriter(ctx, "put", p)
	if err := ufs.CopyExactly(w, r, size); err != nil {
		w.Abort()
		return ufs.Fingerprint{}, f.fail("put", p, err)
	}
	return w.Close()
}

// putObject stores data at key and returns the fingerprint S3 then reports.
func (f *FS) putObject(ctx context.Context, key string, data []byte) (ufs.Fingerprint, error) {
	in := &s3.PutObjectInput{
		Bucket:            &f.bucket,
		Key:               &key,
		Body:              bytes.NewReader(data),
		ContentLength:     aws.Int64(int64(len(data))),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
	}
	if _, err := f.client.PutObject(ctx, in, unsignedPayload); err != nil {
		return ufs.Fingerprint{}, err
	}
	// PutObject does not return Last-Modified; HEAD gives the fingerprint that
	// Stat and List will report.
	return f.head(ctx, key)
}

// Create implements ufs.FileSystem.
func (f *FS) Create(ctx context.Context, p string) (ufs.Writer, error) {
	if err := f.checkPaths(ctx, "create", p); err != nil {
		return nil, err
	}
	if p == "" {
		return nil, f.fail("create", p, ufs.ErrIsDir)
	}
	return f.newWriter(ctx, "create", p), nil
}

// writer is a streaming multipart upload. Data fills buf; a full buf is handed
// to a goroutine that uploads it as one part while the caller goes on filling
// another buffer. A part's buffer is kept until S3 acknowledged the part: the
// SDK's retryer sends it again from memory after a failure (s3.maxAttempts).
// At most uploadConcurrency parts are in flight (slots), and at most
// uploadConcurrency+1 buffers exist (free): a Write that finds them all busy
// waits for an upload to finish. Parts grow with the file (partSizeOf), so
// that any object up to MaxObjectSize fits in MaxParts; buffers grow with
// them.
type writer struct {
	f      *FS
	op     string
	path   string
	key    string
	ctx    context.Context
	cancel context.CancelFunc

	buf      []byte        // the part being filled
	free     chan []byte   // buffers back from finished uploads
	slots    chan struct{} // one token per part in flight
	made     int           // buffers allocated so far
	uploadID string
	nextPart int32
	size     int64
	wg       sync.WaitGroup
	done     bool

	mu    sync.Mutex
	parts []types.CompletedPart
	err   error // first upload error
}

func (f *FS) newWriter(ctx context.Context, op, p string) *writer {
	c, cancel := context.WithCancel(ctx)
	return &writer{
		f: f, op: op, path: p, key: f.Key(p), ctx: c, cancel: cancel,
		free:  make(chan []byte, f.uploadConcurrency+1),
		slots: make(chan struct{}, f.uploadConcurrency),
	}
}

func (w *writer) setErr(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

func (w *writer) firstErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Write implements ufs.Writer.
func (w *writer) Write(b []byte) (int, error) {
	if w.done {
		return 0, w.f.fail(w.op, w.path, ufs.ErrClosed)
	}
	n := 0
	for len(b) > 0 {
		if err := w.firstErr(); err != nil {
			return n, err
		}
		if err := w.ctx.Err(); err != nil {
			return n, w.f.fail(w.op, w.path, err)
		}
		if w.buf == nil {
			buf, err := w.getBuffer(w.f.partSizeOf(w.nextPart + 1))
			if err != nil {
				return n, err
			}
			w.buf = buf
		}
		if len(w.buf) == cap(w.buf) {
			// Full, and more data follows: this is not the last part.
			if err := w.flush(); err != nil {
				return n, err
			}
			continue
		}
		c := copy(w.buf[len(w.buf):cap(w.buf)], b)
		w.buf = w.buf[:len(w.buf)+c]
		b = b[c:]
		n += c
		w.size += int64(c)
	}
	return n, nil
}

// getBuffer returns an empty part buffer of size bytes, waiting for an
// upload to finish when all of them are in use.
func (w *writer) getBuffer(size int) ([]byte, error) {
	sized := func(b []byte) []byte {
		if cap(b) != size {
			// The part size grew: this buffer is replaced.
			return make([]byte, 0, size)
		}
		return b[:0]
	}
	select {
	case b := <-w.free:
		return sized(b), nil
	default:
	}
	if w.made < cap(w.free) {
		w.made++
		return make([]byte, 0, size), nil
	}
	select {
	case b := <-w.free:
		return sized(b), nil
	case <-w.ctx.Done():
		return nil, w.f.fail(w.op, w.path, w.ctx.Err())
	}
}

// flush starts the upload of buf as the next part.
func (w *writer) flush() error {
	if w.uploadID == "" {
		out, err := w.f.client.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{
			Bucket:            &w.f.bucket,
			Key:               &w.key,
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
		})
		if err != nil {
			err = w.f.fail(w.op, w.path, err)
			w.setErr(err)
			return err
		}
		w.uploadID = aws.ToString(out.UploadId)
	}
	if w.nextPart >= MaxParts {
		err := w.f.fail(w.op, w.path, fmt.Errorf("%w: more than %d parts", ufs.ErrInvalid, MaxParts))
		w.setErr(err)
		return err
	}
	// Wait for an upload slot: at most uploadConcurrency parts in flight.
	select {
	case w.slots <- struct{}{}:
	case <-w.ctx.Done():
		return w.f.fail(w.op, w.path, w.ctx.Err())
	}
	w.nextPart++
	num, buf := w.nextPart, w.buf
	w.buf = nil
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() {
			w.free <- buf
			<-w.slots
		}()
		out, err := w.f.client.UploadPart(w.ctx, &s3.UploadPartInput{
			Bucket:            &w.f.bucket,
			Key:               &w.key,
			UploadId:          &w.uploadID,
			PartNumber:        aws.Int32(num),
			Body:              bytes.NewReader(buf),
			ContentLength:     aws.Int64(int64(len(buf))),
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
		}, unsignedPayload)
		if err != nil {
			w.setErr(w.f.fail(w.op, w.path, fmt.Errorf("part %d: %w", num, mapErr(err))))
			w.cancel()
			return
		}
		w.mu.Lock()
		w.parts = append(w.parts, types.CompletedPart{
			ETag: out.ETag, PartNumber: aws.Int32(num), ChecksumCRC32: out.ChecksumCRC32,
		})
		w.mu.Unlock()
	}()
	return nil
}

// Close implements ufs.Writer.
func (w *writer) Close() (ufs.Fingerprint, error) {
	if w.done {
		return ufs.Fingerprint{}, w.f.fail(w.op, w.path, ufs.ErrClosed)
	}
	fp, err := w.finish()
	if err != nil {
		w.Abort()
		return ufs.Fingerprint{}, err
	}
	w.done = true
	w.cancel()
	return fp, nil
}

func (w *writer) finish() (ufs.Fingerprint, error) {
	if err := w.firstErr(); err != nil {
		return ufs.Fingerprint{}, err
	}
	if err := w.ctx.Err(); err != nil {
		return ufs.Fingerprint{}, w.f.fail(w.op, w.path, err)
	}
	if w.uploadID == "" {
		// Everything fits in one part: a plain PutObject.
		fp, err := w.f.putObject(w.ctx, w.key, w.buf)
		if err != nil {
			return ufs.Fingerprint{}, w.f.fail(w.op, w.path, err)
		}
		return fp, nil
	}
	if len(w.buf) > 0 {
		if err := w.flush(); err != nil {
			return ufs.Fingerprint{}, err
		}
	}
	w.wg.Wait()
	if err := w.firstErr(); err != nil {
		return ufs.Fingerprint{}, err
	}
	slices.SortFunc(w.parts, func(a, b types.CompletedPart) int {
		return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber))
	})
	_, err := w.f.client.CompleteMultipartUpload(w.ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          &w.f.bucket,
		Key:             &w.key,
		UploadId:        &w.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts},
	})
	if err != nil {
		return ufs.Fingerprint{}, w.f.fail(w.op, w.path, err)
	}
	w.uploadID = ""
	fp, err := w.f.head(w.ctx, w.key)
	if err != nil {
		return ufs.Fingerprint{}, w.f.fail(w.op, w.path, err)
	}
	if fp.Size != w.size {
		return ufs.Fingerprint{}, w.f.fail(w.op, w.path, fmt.Errorf("object has %d bytes after the upload, %d were written (overwritten concurrently?)", fp.Size, w.size))
	}
	return fp, nil
}

// Abort implements ufs.Writer: stop the uploads in flight and abort the multipart
// upload so that S3 frees its parts.
func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.cancel()
	w.wg.Wait()
	w.buf = nil
	if w.uploadID == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), cleanupTimeout)
	defer cancel()
	_, err := w.f.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: &w.f.bucket, Key: &w.key, UploadId: &w.uploadID,
	})
	w.uploadID = ""
	if err != nil && !isNotFound(err) {
		return w.f.fail("abort", w.path, err)
	}
	return nil
}
