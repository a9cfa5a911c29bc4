package s3_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/skyfs/skyfs/internal/miniotest"
	"github.com/skyfs/skyfs/ufs"
	ufss3 "github.com/skyfs/skyfs/ufs/s3"
)

// benchObjectsEnv sets how many objects BenchmarkList lists (default 100,000).
const benchObjectsEnv = "SKYFS_BENCH_OBJECTS"

func benchObjects(b *testing.B) int {
	if v := os.Getenv(benchObjectsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q is not a positive integer", benchObjectsEnv, v)
		}
		return n
	}
	return 100000
}

// benchMount opens a fresh bucket of the shared server for a benchmark.
func benchMount(b *testing.B, prefix string) (*ufss3.FS, *miniotest.Server, string) {
	b.Helper()
	srv := miniotest.Shared(b)
	bucket := srv.Bucket(b)
	fsys, err := ufs.Open(context.Background(), "s3://"+bucket+"/"+prefix, options(srv, ufss3.OptPartSize, strconv.Itoa(16<<20)))
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	b.Cleanup(func() { fsys.Close() })
	return fsys.(*ufss3.FS), srv, bucket
}

// putMany creates n small objects named prefix+"%07d" with minio-go, 64 at a time.
func putMany(b *testing.B, c *minio.Client, bucket, prefix string, n int) {
	b.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	next := make(chan int)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				key := fmt.Sprintf("%s%07d", prefix, i)
				if _, err := c.PutObject(context.Background(), bucket, key, io.LimitReader(zeros{}, 16), 16, minio.PutObjectOptions{}); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatalf("creating objects: %v", err)
	default:
	}
	b.Logf("created %d objects in %v", n, time.Since(start).Round(time.Millisecond))
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// BenchmarkList lists one prefix of SKYFS_BENCH_OBJECTS objects through ufs/s3
// (pages of 1000) and with a bare minio-go ListObjectsV2 loop, and reports both
// rates and their ratio.
func BenchmarkList(b *testing.B) {
	n := benchObjects(b)
	fsys, srv, bucket := benchMount(b, "bench")
	putMany(b, srv.Client(), bucket, "bench/many/", n)
	core := &minio.Core{Client: srv.Client()}
	ctx := context.Background()

	rawList := func() int {
		count := 0
		token := ""
		for {
			res, err := core.ListObjectsV2(bucket, "bench/many/", "", token, "/", 1000)
			if err != nil {
				b.Fatal(err)
			}
			count += len(res.Contents) + len(res.CommonPrefixes)
			if !res.IsTruncated {
				return count
			}
			token = res.NextContinuationToken
		}
	}
	rawList() // warm MinIO's caches so that neither side pays for it

	var ufsTime, rawTime time.Duration
	for b.Loop() {
		start := time.Now()
		count := rawList()
		rawTime += time.Since(start)
		if count != n {
			b.Fatalf("minio-go listed %d objects, want %d", count, n)
		}

		start = time.Now()
		count = 0
		opts := ufs.ListOptions{PageSize: 1000}
		for {
			page, err := fsys.List(ctx, "many", opts)
			if err != nil {
				b.Fatal(err)
			}
			count += len(page.Entries)
			if page.Next == "" {
				break
			}
			opts.Cursor = page.Next
		}
		ufsTime += time.Since(start)
		if count != n {
			b.Fatalf("ufs listed %d objects, want %d", count, n)
		}
	}
	iters := float64(b.N)
	ufsRate := float64(n) * iters / ufsTime.Seconds()
	rawRate := float64(n) * iters / rawTime.Seconds()
	b.ReportMetric(ufsRate, "ufs-objects/s")
	b.ReportMetric(rawRate, "minio-go-objects/s")
	b.ReportMetric(ufsRate/rawRate, "ufs/minio-go")
}

// BenchmarkRename renames a 1 GiB object (a multipart UploadPartCopy, the
// default, and one CopyObject with the threshold raised to 5 GiB) and a
// directory of 1,000 small objects, back and forth.
//
//	go test -run '^$' -bench Rename -benchtime 3x ./ufs/s3/
func BenchmarkRename(b *testing.B) {
	fsys, srv, bucket := benchMount(b, "r")
	ctx := context.Background()
	const size = 1 << 30
	start := time.Now()
	if _, err := srv.Client().PutObject(ctx, bucket, "r/big-a", io.LimitReader(zeros{}, size), size, minio.PutObjectOptions{PartSize: 64 << 20}); err != nil {
		b.Fatal(err)
	}
	b.Logf("created the 1 GiB object in %v", time.Since(start).Round(time.Millisecond))

	renameLoop := func(b *testing.B, from, to string) {
		for b.Loop() {
			if err := fsys.Rename(ctx, from, to); err != nil {
				b.Fatal(err)
			}
			from, to = to, from
		}
	}
	b.Run("1GiB-object", func(b *testing.B) {
		b.SetBytes(size)
		renameLoop(b, "big-a", "big-b")
	})
	b.Run("1GiB-object-single-copy", func(b *testing.B) {
		old := ufss3.MultipartCopyThreshold
		ufss3.MultipartCopyThreshold = 5 << 30
		defer func() { ufss3.MultipartCopyThreshold = old }()
		b.SetBytes(size)
		from := "big-a"
		if _, err := fsys.Stat(ctx, from); err != nil {
			from = "big-b"
		}
		renameLoop(b, from, "big-c")
	})
	b.Run("dir-1000-objects", func(b *testing.B) {
		putMany(b, srv.Client(), bucket, "r/dir-a/", 1000)
		renameLoop(b, "dir-a", "dir-b")
		b.ReportMetric(1000*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
	})
}
