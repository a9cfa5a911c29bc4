package integration

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/skyfs/skyfs/client"
	"github.com/skyfs/skyfs/internal/miniotest"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// benchUFSObjectsEnv sets how many objects BenchmarkUFSLoad loads (default
// 100,000).
const benchUFSObjectsEnv = "SKYFS_BENCH_UFS_OBJECTS"

// BenchmarkUFSLoad measures the metadata load rate from MinIO: objects per
// second for one prefix of many objects loaded by `skyfs sync` on a
// three-master cluster (each iteration mounts the prefix afresh), next to a
// bare ListObjectsV2 loop over the same prefix with minio-go. The ratio of the
// two is the figure. The objects/s metrics are medians over the iterations.
//
//	go test -run '^$' -bench BenchmarkUFSLoad -benchtime 3x ./integration/
func BenchmarkUFSLoad(b *testing.B) {
	n := 100_000
	if v := os.Getenv(benchUFSObjectsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive count", benchUFSObjectsEnv, v)
		}
	}
	srv := miniotest.Start(b)
	bucket := srv.Bucket(b)
	putObjects(b, srv.Client(), bucket, "bench/", n)
	c := newCluster(b, 3)
	cl := c.client(clientConfigLong())
	opts := map[string]string{
		"s3.endpoint": srv.Endpoint, "s3.accessKeyId": srv.AccessKey, "s3.secretAccessKey": srv.SecretKey,
		"s3.pathStyle": "true", "s3.region": miniotest.Region,
	}

	b.Run("ListObjectsV2", func(b *testing.B) {
		var times []time.Duration
		for b.Loop() {
			start := time.Now()
			got := 0
			for o := range srv.Client().ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: "bench/"}) {
				if o.Err != nil {
					b.Fatal(o.Err)
				}
				got++
			}
			if got != n {
				b.Fatalf("listed %d objects, want %d", got, n)
			}
			times = append(times, time.Since(start))
		}
		b.ReportMetric(float64(n)/median(times).Seconds(), "objects/s")
	})

	var mounts atomic.Int64
	before := peakRSS(b, c)
	b.Run("skyfs-sync", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		var times []time.Duration
		for b.Loop() {
			path := fmt.Sprintf("/m%d", mounts.Add(1))
			if _, err := cl.AddMount(ctx, &pb.AddMountRequest{Path: path, Uri: "s3://" + bucket + "/bench", Options: opts}); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			p, err := cl.Sync(ctx, path, false, nil)
			if err != nil {
				b.Fatal(err)
			}
			// A sync retried on a new leader (a busy machine loses one now
			// and then) adds only what the first attempt had not: the
			// listing is what must be whole.
			if p.Entries != uint64(n) || p.Added == 0 {
				b.Fatalf("sync listed %d entries and added %d, want %d listed", p.Entries, p.Added, n)
			}
			times = append(times, time.Since(start))
		}
		b.ReportMetric(float64(n)/median(times).Seconds(), "objects/s")
		// The load streams pages: the masters' memory does not grow with
		// the size of the prefix.
		b.ReportMetric(float64(before)/(1<<20), "peak-RSS-MiB-before")
		b.ReportMetric(float64(peakRSS(b, c))/(1<<20), "peak-RSS-MiB-after")
	})
}

// peakRSS returns the largest peak resident set size (VmHWM) of the cluster's
// running masters.
func peakRSS(b *testing.B, c *cluster) int64 {
	var peak int64
	for _, nd := range c.nodes {
		nd.mu.Lock()
		cmd := nd.cmd
		nd.mu.Unlock()
		if cmd == nil || cmd.Process == nil {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(st)) {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					peak = max(peak, kb<<10)
				}
			}
		}
	}
	return peak
}

// median returns the median of xs (durations, rates).
func median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// clientConfigLong is a client whose attempts may wait for long loads.
func clientConfigLong() client.Config {
	return client.Config{CallTimeout: 10 * time.Minute, RetryTimeout: 30 * time.Minute}
}

// putObjects creates n small objects named prefix+"o%07d", 64 at a time.
func putObjects(b *testing.B, mc *minio.Client, bucket, prefix string, n int) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 64 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || failed.Load() != nil {
					return
				}
				key := fmt.Sprintf("%so%07d", prefix, i)
				if _, err := mc.PutObject(context.Background(), bucket, key, io.LimitReader(strings.NewReader(strings.Repeat("x", 16)), 16), 16, minio.PutObjectOptions{}); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatalf("put objects: %v", err)
	}
}
