package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"

	"github.com/skyfs/skyfs/internal/metrics"
)

// s3Env is a three-master cluster with a MinIO server and one bucket whose
// prefixes the tests mount in the namespace.
type s3Env struct {
	*ufsRun
	bucket string
}

// newS3Env starts MinIO and a cluster, and makes the bucket.
func newS3Env(t *testing.T) *s3Env {
	t.Helper()
	u := newUFSRun(t)
	return &s3Env{ufsRun: u, bucket: u.srv.Bucket(t)}
}

// mount adds the namespace mount path of the bucket's prefix (a key
// prefix without a trailing slash).
func (e *s3Env) mount(t *testing.T, path, prefix string) {
	t.Helper()
	args := append([]string{"mount", path, "s3://" + e.bucket + "/" + prefix}, e.s3Options(e.srv.Endpoint, e.srv.SecretKey)...)
	if code, _, errs := e.c.cli(args...); code != 0 {
		t.Fatalf("skyfs mount %s: exit %d: %s", path, code, errs)
	}
}

// object returns the content of key, read with minio-go.
func (e *s3Env) object(key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	o, err := e.mc.GetObject(ctx, e.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(o)
}

// checkObject fails unless the object key holds want.
func (e *s3Env) checkObject(t *testing.T, key string, want []byte) {
	t.Helper()
	got, err := e.object(key)
	if err != nil {
		t.Fatalf("object %s: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("object %s: %d bytes, want %d (content differs)", key, len(got), len(want))
	}
}

// putObject writes key with minio-go.
func (e *s3Env) putObject(t *testing.T, key string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := e.mc.PutObject(ctx, e.bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// adminHost is a host whose mountd serves its metrics on a loopback port.
type adminHost struct {
	*host
	admin string // HOST:PORT of the admin endpoint
}

// newAdminHost prepares a host of the namespace path with the metrics
// endpoint turned on, and extra mount options.
func newAdminHost(t *testing.T, c *cluster, name, path, opts string) *adminHost {
	t.Helper()
	admin := freeAddrs(t, 1)[0]
	all := "admin_addr=" + admin
	if opts != "" {
		all += "," + opts
	}
	return &adminHost{host: newHost(t, c, name, path, all), admin: admin}
}

// metric returns the sum of every sample of the named metric that mountd
// serves (all label sets), or 0 if it has none.
func (h *adminHost) metric(t *testing.T, name string) float64 {
	t.Helper()
	v, err := scrapeSum(h.admin, name)
	if err != nil {
		t.Fatalf("%s: metrics: %v", h.name, err)
	}
	return v
}

// scrapeSum reads the /metrics page at admin and returns the sum of the
// series of the metric name (whatever their labels).
func scrapeSum(admin, name string) (float64, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, errors.New(resp.Status)
	}
	samples, err := metrics.ParseText(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	for series, v := range samples {
		if series == name || strings.HasPrefix(series, name+"{") {
			sum += v
		}
	}
	return sum, nil
}

// allocatedBytes returns the disk space allocated to dir and everything
// under it: st_blocks×512 of each file and directory, not apparent sizes.
// Entries that vanish during the walk are not counted.
func allocatedBytes(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return err
		}
		total += st.Blocks * 512
		return nil
	})
	return total, err
}

// readUncached reads the file at p through a fresh open, after telling the
// kernel to drop the pages of the file it caches, so that the read reaches
// the mount daemon (or, for a passthrough open, the cache file).
func readUncached(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return nil, fmt.Errorf("fadvise %s: %w", p, err)
	}
	return io.ReadAll(f)
}

// readDirect reads the file at p with O_DIRECT, into a page-aligned
// buffer, so that every byte comes from the mount daemon, past the kernel's
// page cache (and never through FUSE passthrough). Like the rest of package
// os, it retries calls that fail with EINTR.
func readDirect(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	const chunk = 1 << 20
	buf, err := unix.Mmap(-1, 0, chunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	defer unix.Munmap(buf)
	var out []byte
	for {
		n, err := f.ReadAt(buf, int64(len(out)))
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("O_DIRECT read: %w", err)
		}
	}
}

// sameBytes describes how got differs from want, or returns nil.
func sameBytes(got, want []byte) error {
	if bytes.Equal(got, want) {
		return nil
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d bytes, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("byte %d is %#02x, want %#02x", i, got[i], want[i])
		}
	}
	return nil
}
