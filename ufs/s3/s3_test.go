package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/skyfs/skyfs/internal/miniotest"
	"github.com/skyfs/skyfs/ufs"
	ufss3 "github.com/skyfs/skyfs/ufs/s3"
	"github.com/skyfs/skyfs/ufs/ufstest"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

// options returns the mount options for the shared MinIO server.
func options(srv *miniotest.Server, extra ...string) map[string]string {
	o := map[string]string{
		ufss3.OptEndpoint:        srv.Endpoint,
		ufss3.OptRegion:          miniotest.Region,
		ufss3.OptAccessKeyID:     srv.AccessKey,
		ufss3.OptSecretAccessKey: srv.SecretKey,
		ufss3.OptPathStyle:       "true",
		ufss3.OptPartSize:        strconv.Itoa(ufss3.MinPartSize),
		ufss3.OptMaxAttempts:     "3",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		o[extra[i]] = extra[i+1]
	}
	return o
}

// mount opens s3://bucket/prefix on a fresh bucket of the shared server.
func mount(t *testing.T, prefix string, extra ...string) (*ufss3.FS, *miniotest.Server, string) {
	t.Helper()
	srv := miniotest.Shared(t)
	bucket := srv.Bucket(t)
	uri := "s3://" + bucket
	if prefix != "" {
		uri += "/" + prefix
	}
	fsys, err := ufs.Open(t.Context(), uri, options(srv, extra...))
	if err != nil {
		t.Fatalf("Open(%s): %v", uri, err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys.(*ufss3.FS), srv, bucket
}

func TestContract(t *testing.T) {
	ufstest.Run(t, func(t *testing.T) ufs.FileSystem {
		fsys, _, _ := mount(t, "mnt/root dir")
		return fsys
	})
}

func TestContractNoPrefix(t *testing.T) {
	fsys, _, _ := mount(t, "")
	ufstest.Put(t, fsys, "a/b", []byte("x"))
	page, err := fsys.List(t.Context(), "", ufs.ListOptions{})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Name != "a" || !page.Entries[0].IsDir {
		t.Fatalf("List(root) of an unprefixed mount: %+v, %v", page, err)
	}
}

func getObject(t *testing.T, c *minio.Client, bucket, key string) []byte {
	t.Helper()
	o, err := c.GetObject(t.Context(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("minio GetObject(%q): %v", key, err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("minio read %q: %v", key, err)
	}
	return b
}

func listKeys(t *testing.T, c *minio.Client, bucket string) []string {
	t.Helper()
	var keys []string
	for o := range c.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("minio ListObjects: %v", o.Err)
		}
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	return keys
}

// TestWrittenObjects checks with an independent client (minio-go) what the
// backend wrote: keys under the prefix, bytes, markers, multipart objects,
// renames.
func TestWrittenObjects(t *testing.T) {
	fsys, srv, bucket := mount(t, "pre/fix")
	c := srv.Client()
	ctx := t.Context()
	if s := fmt.Sprintf("%v %+v %#v", fsys, fsys, fsys); strings.Contains(s, srv.SecretKey) {
		t.Fatalf("printing the FS shows the secret key")
	}

	data := []byte("hello, object store")
	fp := ufstest.Put(t, fsys, "dir/é file.txt", data)
	if got := getObject(t, c, bucket, "pre/fix/dir/é file.txt"); !bytes.Equal(got, data) {
		t.Fatalf("object bytes %q, want %q", got, data)
	}
	st, err := c.StatObject(ctx, bucket, "pre/fix/dir/é file.txt", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.ETag != fp.ETag || st.Size != fp.Size || !st.LastModified.Truncate(time.Second).Equal(fp.ModTime) {
		t.Fatalf("minio sees etag=%s size=%d mtime=%v; ufs fingerprint %+v", st.ETag, st.Size, st.LastModified, fp)
	}

	if err := fsys.Mkdir(ctx, "made"); err != nil {
		t.Fatal(err)
	}
	marker, err := c.StatObject(ctx, bucket, "pre/fix/made/", minio.StatObjectOptions{})
	if err != nil || marker.Size != 0 {
		t.Fatalf("directory marker: %+v, %v", marker, err)
	}

	// A multipart object: 3 parts of 5 MiB + a tail, several in flight at once.
	big := make([]byte, 3*ufss3.MinPartSize+1234)
	rand.Read(big)
	w, err := fsys.Create(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(big); off += 300000 {
		if _, err := w.Write(big[off:min(off+300000, len(big))]); err != nil {
			t.Fatal(err)
		}
	}
	bfp, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(bfp.ETag, "-4") {
		t.Fatalf("ETag %q is not that of a 4-part multipart object", bfp.ETag)
	}
	if got := getObject(t, c, bucket, "pre/fix/big"); !bytes.Equal(got, big) {
		t.Fatalf("multipart object differs")
	}

	// Rename of a directory with a marker, a file, and an implicit subdirectory.
	ufstest.Put(t, fsys, "made/sub/x", []byte("x"))
	ufstest.Put(t, fsys, "made/y", []byte("y"))
	if err := fsys.Rename(ctx, "made", "renamed"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"pre/fix/big",
		"pre/fix/dir/é file.txt",
		"pre/fix/renamed/",
		"pre/fix/renamed/sub/x",
		"pre/fix/renamed/y",
	}
	if got := listKeys(t, c, bucket); !slices.Equal(got, want) {
		t.Fatalf("keys after rename:\n got %q\nwant %q", got, want)
	}
	// Nothing is left of the multipart uploads.
	for u := range c.ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		t.Fatalf("incomplete upload left: %s", u.Key)
	}
}

// TestObjectsMadeElsewhere checks that objects written by another tool appear:
// implicit directories and markers.
func TestObjectsMadeElsewhere(t *testing.T) {
	fsys, srv, bucket := mount(t, "")
	c := srv.Client()
	for _, key := range []string{"warehouse/t1/part-0.parquet", "warehouse/t1/part-1.parquet", "warehouse/empty/", "warehouse/a/ok", "top"} {
		if _, err := c.PutObject(t.Context(), bucket, key, strings.NewReader("z"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got := ufstest.ListAll(t, fsys, "warehouse", 1)
	var names []string
	for _, fi := range got {
		names = append(names, fi.SortKey())
	}
	if want := []string{"a/", "empty/", "t1/"}; !slices.Equal(names, want) {
		t.Fatalf("listing %q, want %q", names, want)
	}
	if fi, err := fsys.Stat(t.Context(), "warehouse/t1"); err != nil || !fi.IsDir || !fi.ModTime.IsZero() {
		t.Fatalf("Stat of an implicit directory: %+v, %v", fi, err)
	}
	if fi, err := fsys.Stat(t.Context(), "warehouse/empty"); err != nil || !fi.IsDir || fi.ModTime.IsZero() {
		t.Fatalf("Stat of a marker directory: %+v, %v", fi, err)
	}
}

// TestMultipartCopy lowers the threshold so that Copy and Rename use
// UploadPartCopy.
func TestMultipartCopy(t *testing.T) {
	oldT, oldP := ufss3.MultipartCopyThreshold, ufss3.CopyPartSize
	ufss3.MultipartCopyThreshold, ufss3.CopyPartSize = 6<<20, ufss3.MinPartSize
	t.Cleanup(func() { ufss3.MultipartCopyThreshold, ufss3.CopyPartSize = oldT, oldP })

	fsys, srv, bucket := mount(t, "m")
	data := make([]byte, 12<<20+17)
	rand.Read(data)
	ufstest.Put(t, fsys, "src", data)
	fp, err := fsys.Copy(t.Context(), "src", "copy")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(fp.ETag, "-3") || fp.Size != int64(len(data)) {
		t.Fatalf("copy fingerprint %+v, want a 3-part object of %d bytes", fp, len(data))
	}
	if err := fsys.Rename(t.Context(), "copy", "moved/here"); err != nil {
		t.Fatal(err)
	}
	if got := getObject(t, srv.Client(), bucket, "m/moved/here"); !bytes.Equal(got, data) {
		t.Fatalf("multipart copy differs from the source")
	}
	if got := listKeys(t, srv.Client(), bucket); !slices.Equal(got, []string{"m/moved/here", "m/src"}) {
		t.Fatalf("keys %q", got)
	}
}

// TestOpenErrors checks that a bad mount gives one clear line without the secret.
func TestOpenErrors(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.Bucket(t)
	const secret = "wrong-secret-value-4711"
	cases := []struct {
		name    string
		uri     string
		opts    map[string]string
		want    error
		mention string
	}{
		{"WrongSecret", "s3://" + bucket, options(srv, ufss3.OptSecretAccessKey, secret), ufs.ErrPermission, "SignatureDoesNotMatch"},
		{"WrongKeyID", "s3://" + bucket, options(srv, ufss3.OptAccessKeyID, "nobody", ufss3.OptSecretAccessKey, secret), ufs.ErrPermission, "InvalidAccessKeyId"},
		{"MissingBucket", "s3://no-such-bucket-here/p", options(srv, ufss3.OptSecretAccessKey, srv.SecretKey), ufs.ErrNotExist, "NoSuchBucket"},
		{"Refused", "s3://" + bucket, options(srv, ufss3.OptEndpoint, "http://127.0.0.1:1", ufss3.OptSecretAccessKey, secret, ufss3.OptMaxAttempts, "2", ufss3.OptMaxBackoff, "50ms"), ufs.ErrUnavailable, "connection refused"},
		{"NoBucket", "s3:///prefix", options(srv), ufs.ErrInvalid, "no bucket"},
		{"HalfCredentials", "s3://" + bucket, options(srv, ufss3.OptAccessKeyID, ""), ufs.ErrInvalid, "together"},
		{"BadPartSize", "s3://" + bucket, options(srv, ufss3.OptPartSize, "1000"), ufs.ErrInvalid, ufss3.OptPartSize},
		{"BadEndpoint", "s3://" + bucket, options(srv, ufss3.OptEndpoint, "ftp://x:"+secret+"@h"), ufs.ErrInvalid, ufss3.OptEndpoint},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			fsys, err := ufs.Open(ctx, c.uri, c.opts)
			if err == nil {
				fsys.Close()
				t.Fatalf("Open succeeded")
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			if !errors.Is(err, c.want) {
				t.Errorf("error %v, want %v", err, c.want)
			}
			if strings.Contains(msg, secret) || strings.Contains(msg, srv.SecretKey) {
				t.Errorf("error shows the secret: %s", msg)
			}
			if strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error is not one line: %q", msg)
			}
			if !strings.Contains(msg, c.mention) {
				t.Errorf("error does not mention %q: %s", c.mention, msg)
			}
		})
	}
}

// TestWriterBoundedBuffers checks that a Writer keeps writing while parts
// upload and that cancelling mid-way leaves no object and no upload behind.
func TestWriterAbortCleansUp(t *testing.T) {
	fsys, srv, bucket := mount(t, "w", ufss3.OptUploadConcurrency, "2")
	ctx := t.Context()
	w, err := fsys.Create(ctx, "aborted")
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for range 4 * ufss3.MinPartSize >> 20 {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	for u := range srv.Client().ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		t.Fatalf("incomplete upload left after Abort: %s", u.Key)
	}
	if keys := listKeys(t, srv.Client(), bucket); len(keys) != 0 {
		t.Fatalf("objects left after Abort: %q", keys)
	}
}
