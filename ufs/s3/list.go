package s3

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/skyfs/skyfs/ufs"
)

// maxListKeys is the most keys one ListObjectsV2 returns.
const maxListKeys = 1000

func etag(s *string) string { return strings.Trim(aws.ToString(s), "\"") }

// modTime truncates to whole seconds: HEAD reports Last-Modified in seconds,
// listings in milliseconds; fingerprints must agree.
func modTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Truncate(time.Second).UTC()
}

func objectFingerprint(o types.Object) ufs.Fingerprint {
	return ufs.Fingerprint{Size: aws.ToInt64(o.Size), ETag: etag(o.ETag), ModTime: modTime(o.LastModified)}
}

func headFingerprint(h *s3.HeadObjectOutput) ufs.Fingerprint {
	return ufs.Fingerprint{Size: aws.ToInt64(h.ContentLength), ETag: etag(h.ETag), ModTime: modTime(h.LastModified)}
}

// head returns the fingerprint of the object at key.
func (f *FS) head(ctx context.Context, key string) (ufs.Fingerprint, error) {
	h, err := f.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &f.bucket, Key: &key})
	if err != nil {
		return ufs.Fingerprint{}, err
	}
	return headFingerprint(h), nil
}

// Stat implements ufs.FileSystem: HEAD of the key, then, if there is no such
// object, a one-key listing of "key/" for a marker or an implicit directory.
func (f *FS) Stat(ctx context.Context, p string) (ufs.FileInfo, error) {
	if err := f.checkPaths(ctx, "stat", p); err != nil {
		return ufs.FileInfo{}, err
	}
	if p == "" {
		return ufs.FileInfo{IsDir: true}, nil
	}
	fp, err := f.head(ctx, f.Key(p))
	if err == nil {
		return ufs.FileInfo{Path: p, Name: ufs.Base(p), Fingerprint: fp}, nil
	}
	if !isNotFound(err) {
		return ufs.FileInfo{}, f.fail("stat", p, err)
	}
	fi, found, err := f.statDir(ctx, p)
	if err != nil {
		return ufs.FileInfo{}, f.fail("stat", p, err)
	}
	if !found {
		return ufs.FileInfo{}, f.fail("stat", p, ufs.ErrNotExist)
	}
	return fi, nil
}

// statDir looks for the directory p as a marker or a common prefix.
func (f *FS) statDir(ctx context.Context, p string) (ufs.FileInfo, bool, error) {
	dk := f.dirKey(p)
	out, err := f.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket:  &f.bucket,
		Prefix:  &dk,
		MaxKeys: aws.Int32(1),
	})
	if err != nil {
		return ufs.FileInfo{}, false, err
	}
	if len(out.Contents) == 0 {
		return ufs.FileInfo{}, false, nil
	}
	fi := ufs.FileInfo{Path: p, Name: ufs.Base(p), IsDir: true}
	if o := out.Contents[0]; aws.ToString(o.Key) == dk {
		fi.Fingerprint = objectFingerprint(o)
		fi.Size = 0
	}
	return fi, true, nil
}

// List implements ufs.FileSystem with ListObjectsV2 and the delimiter "/". The
// cursor is S3's continuation token. Objects and common prefixes arrive each in
// key order and are merged, which is the SortKey order.
func (f *FS) List(ctx context.Context, dir string, opts ufs.ListOptions) (ufs.Page, error) {
	if err := f.checkPaths(ctx, "list", dir); err != nil {
		return ufs.Page{}, err
	}
	pageSize := opts.PageSize
	if pageSize <= 0 {
		pageSize = ufs.DefaultPageSize
	}
	pageSize = min(pageSize, maxListKeys)
	dk := f.dirKey(dir)
	in := &s3.ListObjectsV2Input{
		Bucket:    &f.bucket,
		Prefix:    &dk,
		Delimiter: aws.String("/"),
		MaxKeys:   aws.Int32(int32(pageSize)),
	}
	if opts.Cursor != "" {
		in.ContinuationToken = aws.String(opts.Cursor)
	}
	sawAny := false // any key under dk, even one left out
	var page ufs.Page
	for {
		out, err := f.client.ListObjectsV2(ctx, in)
		if err != nil {
			return ufs.Page{}, f.fail("list", dir, err)
		}
		objs, prefixes := out.Contents, out.CommonPrefixes
		for len(objs) > 0 || len(prefixes) > 0 {
			var key string
			isDir := len(objs) == 0 || (len(prefixes) > 0 && aws.ToString(prefixes[0].Prefix) < aws.ToString(objs[0].Key))
			var fp ufs.Fingerprint
			if isDir {
				key = aws.ToString(prefixes[0].Prefix)
				prefixes = prefixes[1:]
			} else {
				key = aws.ToString(objs[0].Key)
				fp = objectFingerprint(objs[0])
				objs = objs[1:]
			}
			sawAny = true
			if key == dk {
				continue
			}
			name := strings.TrimSuffix(strings.TrimPrefix(key, dk), "/")
			if strings.Contains(name, "/") || ufs.CheckPath(name) != nil {
				continue // not representable as a ufs name
			}
			page.Entries = append(page.Entries, ufs.FileInfo{
				Path: ufs.Join(dir, name), Name: name, IsDir: isDir, Fingerprint: fp,
			})
		}
		if aws.ToBool(out.IsTruncated) {
			in.ContinuationToken = out.NextContinuationToken
			if len(page.Entries) == 0 {
				continue // a page of skipped keys only: go on
			}
			page.Next = aws.ToString(out.NextContinuationToken)
		}
		break
	}
	if opts.Cursor == "" && len(page.Entries) == 0 && dir != "" && !sawAny {
		// Nothing under "dir/": no directory, or a file.
		if _, err := f.head(ctx, f.Key(dir)); err == nil {
			return ufs.Page{}, f.fail("list", dir, ufs.ErrNotDir)
		} else if !isNotFound(err) {
			return ufs.Page{}, f.fail("list", dir, err)
		}
		return ufs.Page{}, f.fail("list", dir, ufs.ErrNotExist)
	}
	return page, nil
}

// walk calls fn for every page of keys under the directory key dk, without a
// delimiter (the whole subtree), one ListObjectsV2 page at a time.
func (f *FS) walk(ctx context.Context, dk string, fn func([]types.Object) error) error {
	in := &s3.ListObjectsV2Input{Bucket: &f.bucket, Prefix: &dk, MaxKeys: aws.Int32(maxListKeys)}
	for {
		out, err := f.client.ListObjectsV2(ctx, in)
		if err != nil {
			return err
		}
		if len(out.Contents) > 0 {
			if err := fn(out.Contents); err != nil {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}
