package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/skyfs/skyfs/ufs"
)

// Mkdir implements ufs.FileSystem: a zero-byte "key/" marker object.
func (f *FS) Mkdir(ctx context.Context, p string) error {
	if err := f.checkPaths(ctx, "mkdir", p); err != nil {
		return err
	}
	if p == "" {
		return f.fail("mkdir", p, ufs.ErrExist)
	}
	if _, err := f.Stat(ctx, p); err == nil {
		return f.fail("mkdir", p, ufs.ErrExist)
	} else if !errors.Is(err, ufs.ErrNotExist) {
		return err
	}
	_, err := f.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &f.bucket,
		Key:           aws.String(f.dirKey(p)),
		Body:          bytes.NewReader(nil),
		ContentLength: aws.Int64(0),
		ContentType:   aws.String("application/x-directory"),
	})
	if err != nil {
		return f.fail("mkdir", p, err)
	}
	return nil
}

// Delete implements ufs.FileSystem. S3 deletes a missing key without complaint,
// so the object (or the directory's content) is looked at first.
func (f *FS) Delete(ctx context.Context, p string) error {
	if err := f.checkPaths(ctx, "delete", p); err != nil {
		return err
	}
	if p == "" {
		return f.fail("delete", p, fmt.Errorf("%w: the root cannot be deleted", ufs.ErrInvalidPath))
	}
	key := f.Key(p)
	_, err := f.head(ctx, key)
	if err == nil {
		return f.deleteKey(ctx, "delete", p, key)
	}
	if !isNotFound(err) {
		return f.fail("delete", p, err)
	}
	dk := f.dirKey(p)
	out, err := f.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &f.bucket, Prefix: &dk, MaxKeys: aws.Int32(2)})
	if err != nil {
		return f.fail("delete", p, err)
	}
	switch {
	case len(out.Contents) == 0:
		return f.fail("delete", p, ufs.ErrNotExist)
	case len(out.Contents) > 1 || aws.ToString(out.Contents[0].Key) != dk:
		return f.fail("delete", p, ufs.ErrNotEmpty)
	}
	return f.deleteKey(ctx, "delete", p, dk)
}

func (f *FS) deleteKey(ctx context.Context, op, p, key string) error {
	if _, err := f.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &f.bucket, Key: &key}); err != nil {
		return f.fail(op, p, err)
	}
	return nil
}

// copySource is the x-amz-copy-source value of key: the bucket and the
// URL-escaped key.
func (f *FS) copySource(key string) string {
	var b strings.Builder
	b.WriteString(f.bucket)
	b.WriteByte('/')
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~', c == '/':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Copy implements ufs.FileSystem with a server-side copy.
func (f *FS) Copy(ctx context.Context, src, dst string) (ufs.Fingerprint, error) {
	if err := f.checkPaths(ctx, "copy", src, dst); err != nil {
		return ufs.Fingerprint{}, err
	}
	fi, err := f.Stat(ctx, src)
	if err != nil {
		return ufs.Fingerprint{}, err
	}
	if fi.IsDir {
		return ufs.Fingerprint{}, f.fail("copy", src, ufs.ErrIsDir)
	}
	if dst == "" {
		return ufs.Fingerprint{}, f.fail("copy", dst, ufs.ErrIsDir)
	}
	if src == dst {
		return fi.Fingerprint, nil
	}
	fp, err := f.copyObject(ctx, f.Key(src), f.Key(dst), fi.Fingerprint)
	if err != nil {
		return ufs.Fingerprint{}, f.fail("copy", src, err)
	}
	return fp, nil
}

// copyObject copies the object srcKey, whose fingerprint is fp, to dstKey: one
// CopyObject, or a multipart copy above MultipartCopyThreshold. The source must
// still have fp's ETag (If-Match), so a concurrent overwrite fails the copy
// rather than mixing versions.
func (f *FS) copyObject(ctx context.Context, srcKey, dstKey string, fp ufs.Fingerprint) (ufs.Fingerprint, error) {
	if fp.Size > MultipartCopyThreshold {
		return f.multipartCopy(ctx, srcKey, dstKey, fp)
	}
	out, err := f.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:            &f.bucket,
		Key:               &dstKey,
		CopySource:        aws.String(f.copySource(srcKey)),
		CopySourceIfMatch: ifMatch(fp.ETag),
	})
	if err != nil {
		return ufs.Fingerprint{}, err
	}
	if r := out.CopyObjectResult; r != nil && r.LastModified != nil && r.ETag != nil {
		return ufs.Fingerprint{Size: fp.Size, ETag: etag(r.ETag), ModTime: modTime(r.LastModified)}, nil
	}
	return f.head(ctx, dstKey)
}

func ifMatch(etag string) *string {
	if etag == "" {
		return nil
	}
	return aws.String("\"" + etag + "\"")
}

// multipartCopy copies a large object part by part with UploadPartCopy, up to
// copyConcurrency parts at once.
func (f *FS) multipartCopy(ctx context.Context, srcKey, dstKey string, fp ufs.Fingerprint) (ufs.Fingerprint, error) {
	partSize := max(CopyPartSize, MinPartSize)
	if n := (fp.Size + partSize - 1) / partSize; n > MaxParts {
		partSize = (fp.Size + MaxParts - 1) / MaxParts
	}
	nParts := int((fp.Size + partSize - 1) / partSize)
	created, err := f.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &f.bucket, Key: &dstKey})
	if err != nil {
		return ufs.Fingerprint{}, err
	}
	uploadID := created.UploadId
	abort := func() {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		f.client.AbortMultipartUpload(c, &s3.AbortMultipartUploadInput{Bucket: &f.bucket, Key: &dstKey, UploadId: uploadID})
	}
	parts := make([]types.CompletedPart, nParts)
	err = f.parallel(ctx, nParts, func(ctx context.Context, i int) error {
		first := int64(i) * partSize
		last := min(first+partSize, fp.Size) - 1
		out, err := f.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket:            &f.bucket,
			Key:               &dstKey,
			UploadId:          uploadID,
			PartNumber:        aws.Int32(int32(i + 1)),
			CopySource:        aws.String(f.copySource(srcKey)),
			CopySourceRange:   aws.String(fmt.Sprintf("bytes=%d-%d", first, last)),
			CopySourceIfMatch: ifMatch(fp.ETag),
		})
		if err != nil {
			return fmt.Errorf("copy part %d: %w", i+1, err)
		}
		parts[i] = types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(int32(i + 1))}
		return nil
	})
	if err != nil {
		abort()
		return ufs.Fingerprint{}, err
	}
	_, err = f.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &f.bucket, Key: &dstKey, UploadId: uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		abort()
		return ufs.Fingerprint{}, err
	}
	return f.head(ctx, dstKey)
}

// parallel runs fn(0..n-1) with at most copyConcurrency calls at once and returns
// the first error; the first error cancels the calls not yet started.
func (f *FS) parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, f.copyConcurrency)
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// Rename implements ufs.FileSystem: copy then delete. A directory is moved one
// listing page at a time: the page's objects are copied in parallel, then
// deleted with one DeleteObjects. It is not atomic.
func (f *FS) Rename(ctx context.Context, src, dst string) error {
	if err := f.checkPaths(ctx, "rename", src, dst); err != nil {
		return err
	}
	if src == "" || dst == "" {
		return f.fail("rename", src, fmt.Errorf("%w: the root cannot be renamed or replaced", ufs.ErrInvalidPath))
	}
	sfi, err := f.Stat(ctx, src)
	if err != nil {
		return err
	}
	if src == dst {
		return nil
	}
	if ufs.IsWithin(dst, src) {
		return f.fail("rename", src, fmt.Errorf("%w: cannot move %q into itself", ufs.ErrInvalid, dst))
	}
	dfi, err := f.Stat(ctx, dst)
	switch {
	case errors.Is(err, ufs.ErrNotExist):
	case err != nil:
		return err
	case sfi.IsDir && !dfi.IsDir:
		return f.fail("rename", src, ufs.ErrNotDir)
	case !sfi.IsDir && dfi.IsDir:
		return f.fail("rename", src, ufs.ErrIsDir)
	case sfi.IsDir:
		if err := f.checkEmpty(ctx, dst); err != nil {
			return f.fail("rename", dst, err)
		}
	}
	if !sfi.IsDir {
		if _, err := f.copyObject(ctx, f.Key(src), f.Key(dst), sfi.Fingerprint); err != nil {
			return f.fail("rename", src, err)
		}
		return f.deleteKey(ctx, "rename", src, f.Key(src))
	}
	if len(dst) > len(src) {
		if err := f.checkMovedKeys(ctx, f.dirKey(src), f.dirKey(dst)); err != nil {
			return f.fail("rename", src, err)
		}
	}
	if err := f.renameDir(ctx, f.dirKey(src), f.dirKey(dst)); err != nil {
		return f.fail("rename", src, err)
	}
	return nil
}

// checkMovedKeys fails with ErrNameTooLong, before anything is copied, when
// a key under srcDK would be longer under dstDK than checkPaths takes.
func (f *FS) checkMovedKeys(ctx context.Context, srcDK, dstDK string) error {
	return f.walk(ctx, srcDK, func(objs []types.Object) error {
		for _, o := range objs {
			key := dstDK + strings.TrimPrefix(aws.ToString(o.Key), srcDK)
			if n := len(strings.TrimSuffix(key, "/")); n+1 > maxKeyBytes {
				return fmt.Errorf("%w: %w: a key below would have %d bytes, more than %d", ufs.ErrInvalidPath, ufs.ErrNameTooLong, n, maxKeyBytes-1)
			}
		}
		return nil
	})
}

// checkEmpty returns ErrNotEmpty if the directory p has any child.
func (f *FS) checkEmpty(ctx context.Context, p string) error {
	dk := f.dirKey(p)
	out, err := f.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &f.bucket, Prefix: &dk, MaxKeys: aws.Int32(2)})
	if err != nil {
		return err
	}
	for _, o := range out.Contents {
		if aws.ToString(o.Key) != dk {
			return ufs.ErrNotEmpty
		}
	}
	return nil
}

// renameDir moves every key under srcDK to the same name under dstDK.
func (f *FS) renameDir(ctx context.Context, srcDK, dstDK string) error {
	return f.walk(ctx, srcDK, func(objs []types.Object) error {
		err := f.parallel(ctx, len(objs), func(ctx context.Context, i int) error {
			o := objs[i]
			key := aws.ToString(o.Key)
			_, err := f.copyObject(ctx, key, dstDK+strings.TrimPrefix(key, srcDK), objectFingerprint(o))
			return err
		})
		if err != nil {
			return err
		}
		return f.deleteKeys(ctx, objs)
	})
}

// deleteKeys deletes up to 1000 objects with one DeleteObjects.
func (f *FS) deleteKeys(ctx context.Context, objs []types.Object) error {
	ids := make([]types.ObjectIdentifier, 0, len(objs))
	for _, o := range objs {
		ids = append(ids, types.ObjectIdentifier{Key: o.Key})
	}
	for batch := range slices.Chunk(ids, maxListKeys) {
		out, err := f.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: &f.bucket,
			Delete: &types.Delete{Objects: batch, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return err
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("delete %q: %s: %s (%d keys not deleted)", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message), len(out.Errors))
		}
	}
	return nil
}
