package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"

	"github.com/skyfs/skyfs/cache"
	"github.com/skyfs/skyfs/internal/miniotest"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// The benchmarks of this file measure a real mount: a mountd process over
// three masterd processes, with MinIO as the UFS, each next to a baseline
// measured in the same iterations (interleaved, so that a busy moment of the
// shared machine weighs on both). Rates are medians over the iterations.
//
//	SKYFS_BENCH_SIZE=64M go test -run '^$' -bench BenchmarkMountData -benchtime 3x ./integration
//	go test -run '^$' -bench BenchmarkMountData -benchtime 3x -timeout 30m ./integration
//	go test -run '^$' -bench BenchmarkMountMeta -benchtime 1x -timeout 80m ./integration
//
// At 1 GiB BenchmarkMountData takes about 3 minutes on two cores; at
// 10,000 files per iteration BenchmarkMountMeta takes about 25 minutes, as
// long as creates run at tens per second.

// Upload settings of skyfs's S3 backend (ufs/s3 defaults), given to the
// minio-go baseline.
const (
	s3PartSize          = 8 << 20
	s3UploadConcurrency = 4
)

// benchProfileEnv names a file to write a CPU profile of mountd to, taken
// during the last cold read of BenchmarkMountData (for as long as the
// previous one took), FILE.allocs an allocation profile of the same span;
// FILE.write and FILE.analytical (and their .allocs) get those of the last
// write and the last pass of the analytical case.
const benchProfileEnv = "SKYFS_BENCH_PROFILE"

// benchFilesEnv sets how many files BenchmarkMountMeta creates, stats and
// removes per iteration (default 10,000).
const benchFilesEnv = "SKYFS_BENCH_FILES"

// s3MountArgs are the arguments of `skyfs mount` after the path, for the
// prefix of bucket on srv.
func s3MountArgs(srv *miniotest.Server, bucket, prefix string) []string {
	return []string{
		"s3://" + bucket + "/" + prefix,
		"--option", "s3.endpoint=" + srv.Endpoint,
		"--option", "s3.accessKeyId=" + srv.AccessKey,
		"--option", "s3.secretAccessKey=" + srv.SecretKey,
		"--option", "s3.pathStyle=true",
		"--option", "s3.region=" + miniotest.Region,
	}
}

// BenchmarkMountData measures big-file I/O through a mount of an S3 (MinIO)
// UFS, a file of SKYFS_BENCH_SIZE bytes (default 1 GiB), read and written in
// 1 MiB calls:
//
//   - seq-read-cold: the first read, from MinIO, by a mountd with an empty
//     cache (restarted on a fresh cache directory before each pass, MinIO's
//     files dropped from the page cache), against a minio-go GetObject of
//     the object and a read through go-fuse's loopback without passthrough
//     of a plain copy on the same disk (its pages dropped). x-baseline is
//     the mount's rate over the lower of the two baseline rates.
//     ranged-get is a third reference, not in x-baseline: the object read
//     with GetObject of 4 MiB ranges, three in flight, as the mountd cache
//     loads a sequentially read file.
//   - seq-read-warm/passthrough: the whole file cached, opened with FUSE
//     passthrough, against a plain read of the same bytes from a file on the
//     cache's disk; pagecache=warm keeps both backing files in the page
//     cache, pagecache=dropped drops both before each pass (in a virtual
//     machine the host may still cache the disk, so those rates vary).
//   - seq-read-warm/fuse: the whole file cached, read through mountd (an
//     O_DIRECT descriptor held open keeps mountd from answering with
//     passthrough), against the loopback without passthrough; the FUSE
//     pages of both are dropped before each pass, their backing files stay
//     in the page cache.
//   - rand-read-4k/passthrough and /fuse: random aligned 4 KiB reads,
//     read-ahead off, in the same two modes, against the loopback.
//   - seq-write: create, write and close (close returns once the object is
//     in MinIO) against a minio-go multipart PutObject of the same bytes with
//     skyfs's part size and concurrency.
func BenchmarkMountData(b *testing.B) {
	size := benchFileSize(b)
	needMountd(b)
	srv := miniotest.Start(b)
	bucket := srv.Bucket(b)
	mc := srv.Client()
	c := newCluster(b, 3)
	ctx := context.Background()
	data := benchData(size)
	put := minio.PutObjectOptions{PartSize: s3PartSize, NumThreads: s3UploadConcurrency}
	if _, err := mc.PutObject(ctx, bucket, "data/big", bytes.NewReader(data), size, put); err != nil {
		b.Fatal(err)
	}
	an := newAnalytical(size)
	for i := range an.files {
		part := data[int64(i)*an.fileSize%(size-an.fileSize+1):][:an.fileSize]
		if _, err := mc.PutObject(ctx, bucket, "data/"+an.name(i), bytes.NewReader(part), an.fileSize, put); err != nil {
			b.Fatal(err)
		}
	}
	c.mustCLI(append([]string{"mount", "/data"}, s3MountArgs(srv, bucket, "data")...)...)
	c.mustCLI("sync", "/data")

	plainDir := b.TempDir()
	plain := filepath.Join(plainDir, "big")
	if err := os.WriteFile(plain, data, 0o644); err != nil {
		b.Fatal(err)
	}
	dropPages(b, plain) // also writes it back
	lbBig := filepath.Join(mountLoopback(b, plainDir), "big")
	mopts := ""
	if os.Getenv(benchProfileEnv) != "" {
		mopts = "pprof"
	}
	m := newBenchMount(b, c, "/data", mopts, max(4<<30, 3*size+(1<<30)))
	big := m.path("big")

	b.Run("seq-read-cold", func(b *testing.B) {
		var get, ranged, lb, sky []time.Duration
		var rss int64
		for i := 0; b.Loop(); i++ {
			interleave(i,
				func() {
					dropTree(b, srv.Dir)
					get = append(get, getObject(b, mc, bucket, "data/big", size))
				},
				func() {
					dropTree(b, srv.Dir)
					ranged = append(ranged, getRanges(b, mc, bucket, "data/big", size))
				},
				func() {
					dropPages(b, plain)
					lb = append(lb, readSeq(b, lbBig, size, true))
				},
				func() {
					m.stop()
					m.start(true)
					dropTree(b, srv.Dir)
					var profiled chan struct{}
					if len(sky) > 0 {
						profiled = m.profile(b, os.Getenv(benchProfileEnv), sky[len(sky)-1])
					}
					sky = append(sky, readSeq(b, big, size, true))
					rss = max(rss, m.peakRSS())
					if profiled != nil {
						<-profiled
					}
				})
		}
		b.ReportMetric(float64(rss)/(1<<20), "mountd-peak-RSS-MiB")
		g, l, s := mbps(size, median(get)), mbps(size, median(lb)), mbps(size, median(sky))
		b.ReportMetric(s, "MB/s")
		b.ReportMetric(g, "get-MB/s")
		b.ReportMetric(l, "loopback-fuse-MB/s")
		b.ReportMetric(s/min(g, l), "x-baseline")
		r := mbps(size, median(ranged))
		b.ReportMetric(r, "ranged-get-MB/s")
		b.ReportMetric(s/r, "x-ranged-get")
	})

	b.Run("analytical", func(b *testing.B) {
		var direct, sky []time.Duration
		var asked, fetched int64
		var rss int64
		for i := 0; b.Loop(); i++ {
			ranges := an.ranges(uint64(i + 1))
			interleave(i,
				func() {
					dropTree(b, srv.Dir)
					direct = append(direct, an.run(b, ranges, func(f int, off, n int64, buf []byte) error {
						var opts minio.GetObjectOptions
						if err := opts.SetRange(off, off+n-1); err != nil {
							return err
						}
						obj, err := mc.GetObject(ctx, bucket, "data/"+an.name(f), opts)
						if err != nil {
							return err
						}
						defer obj.Close()
						_, err = io.ReadFull(obj, buf[:n])
						return err
					}))
				},
				func() {
					m.stop()
					m.start(true)
					dropTree(b, srv.Dir)
					before := m.ufsBytes()
					var profiled chan struct{}
					if len(sky) > 0 && os.Getenv(benchProfileEnv) != "" {
						profiled = m.profile(b, os.Getenv(benchProfileEnv)+".analytical", sky[len(sky)-1])
					}
					files := make([]*os.File, an.files)
					for f := range files {
						var err error
						if files[f], err = os.Open(m.path(an.name(f))); err != nil {
							b.Fatal(err)
						}
					}
					sky = append(sky, an.run(b, ranges, func(f int, off, n int64, buf []byte) error {
						_, err := files[f].ReadAt(buf[:n], off)
						return err
					}))
					for _, f := range files {
						f.Close()
					}
					if profiled != nil {
						<-profiled
					}
					fetched += m.ufsBytes() - before
					asked += an.asked(ranges)
					rss = max(rss, m.peakRSS())
				})
		}
		d, s := median(direct), median(sky)
		b.ReportMetric(s.Seconds()/d.Seconds(), "x-time-direct-get")
		b.ReportMetric(float64(fetched)/float64(asked), "x-bytes-fetched")
		b.ReportMetric(float64(s.Milliseconds()), "ms")
		b.ReportMetric(float64(d.Milliseconds()), "direct-get-ms")
		b.ReportMetric(float64(rss)/(1<<20), "mountd-peak-RSS-MiB")
	})

	b.Run("seq-read-warm", func(b *testing.B) {
		m.ensureStarted()
		warmCache(b, m, big, size)
		b.Run("passthrough", func(b *testing.B) {
			for _, drop := range []bool{false, true} {
				name := "pagecache=warm"
				if drop {
					name = "pagecache=dropped"
				}
				b.Run(name, func(b *testing.B) {
					readSeq(b, plain, size, false)
					readSeq(b, big, size, false)
					pt0 := m.passthroughOpens()
					var base, sky []time.Duration
					for i := 0; b.Loop(); i++ {
						interleave(i,
							func() {
								if drop {
									dropPages(b, plain)
								}
								base = append(base, readSeq(b, plain, size, false))
							},
							func() {
								if drop {
									dropTree(b, m.cacheDir)
								}
								sky = append(sky, readSeq(b, big, size, false))
							})
					}
					p, s := mbps(size, median(base)), mbps(size, median(sky))
					reportAgainst(b, "MB/s", s, "plain", p)
					b.ReportMetric((m.passthroughOpens()-pt0)/float64(len(sky)), "passthrough-opens/op")
				})
			}
		})
		b.Run("fuse", func(b *testing.B) {
			release := holdDirect(b, big)
			defer release()
			readSeq(b, plain, size, false)
			readSeq(b, big, size, true) // the cache file into the page cache
			pt0 := m.passthroughOpens()
			var lb, sky []time.Duration
			for i := 0; b.Loop(); i++ {
				interleave(i,
					func() { lb = append(lb, readSeq(b, lbBig, size, true)) },
					func() { sky = append(sky, readSeq(b, big, size, true)) })
			}
			l, s := mbps(size, median(lb)), mbps(size, median(sky))
			reportAgainst(b, "MB/s", s, "loopback-fuse", l)
			b.ReportMetric((m.passthroughOpens()-pt0)/float64(len(sky)), "passthrough-opens/op")
		})
	})

	b.Run("rand-read-4k", func(b *testing.B) {
		m.ensureStarted()
		warmCache(b, m, big, size)
		n := int(min(size/4096, 20000))
		for _, mode := range []string{"passthrough", "fuse"} {
			b.Run(mode, func(b *testing.B) {
				if mode == "fuse" {
					release := holdDirect(b, big)
					defer release()
				}
				readSeq(b, plain, size, false)
				readSeq(b, big, size, true)
				pt0 := m.passthroughOpens()
				var lb, sky []time.Duration
				for i := 0; b.Loop(); i++ {
					seed := uint64(i + 2)
					interleave(i,
						func() { lb = append(lb, readRandom4K(b, lbBig, size, n, seed)) },
						func() { sky = append(sky, readRandom4K(b, big, size, n, seed)) })
				}
				l, s := float64(n)/median(lb).Seconds(), float64(n)/median(sky).Seconds()
				reportAgainst(b, "ops/s", s, "loopback-fuse", l)
				b.ReportMetric((m.passthroughOpens()-pt0)/float64(len(sky)), "passthrough-opens/op")
			})
		}
	})

	b.Run("seq-write", func(b *testing.B) {
		m.ensureStarted()
		var base, sky []time.Duration
		var rss int64
		for i := 0; b.Loop(); i++ {
			interleave(i,
				func() {
					start := time.Now()
					if _, err := mc.PutObject(ctx, bucket, "baseline/put", bytes.NewReader(data), size, put); err != nil {
						b.Fatal(err)
					}
					base = append(base, time.Since(start))
					if err := mc.RemoveObject(ctx, bucket, "baseline/put", minio.RemoveObjectOptions{}); err != nil {
						b.Fatal(err)
					}
				},
				func() {
					p := m.path("written" + strconv.Itoa(i))
					var profiled chan struct{}
					if len(sky) > 0 && os.Getenv(benchProfileEnv) != "" {
						profiled = m.profile(b, os.Getenv(benchProfileEnv)+".write", sky[len(sky)-1])
					}
					m.resetPeakRSS()
					sky = append(sky, writeSeq(b, p, data))
					rss = max(rss, m.peakRSS())
					if profiled != nil {
						<-profiled
					}
					if err := os.Remove(p); err != nil {
						b.Fatal(err)
					}
				})
		}
		p, s := mbps(size, median(base)), mbps(size, median(sky))
		reportAgainst(b, "MB/s", s, "put", p)
		b.ReportMetric(float64(rss)/(1<<20), "mountd-peak-RSS-MiB")
	})
}

// interleave runs the passes of iteration i, rotating their order from one
// iteration to the next so that none is always first or last.
func interleave(i int, passes ...func()) {
	for k := range passes {
		passes[(i+k)%len(passes)]()
	}
}

// getObject reads the object to io.Discard with minio-go and returns how
// long it took.
func getObject(b *testing.B, mc *minio.Client, bucket, key string, want int64) time.Duration {
	b.Helper()
	start := time.Now()
	obj, err := mc.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer obj.Close()
	n, err := io.CopyBuffer(io.Discard, obj, make([]byte, 1<<20))
	took := time.Since(start)
	if err != nil || n != want {
		b.Fatalf("get %s: %d bytes, %v", key, n, err)
	}
	return took
}

// getRanges reads the object to io.Discard the way the mountd cache loads a
// sequentially read file: one GetObject per cache block
// (cache.DefaultBlockSize), in order, with as many in flight as the cache
// keeps (the block being read and cache.DefaultReadAheadBlocks ahead of it).
// It returns how long it took.
func getRanges(b *testing.B, mc *minio.Client, bucket, key string, size int64) time.Duration {
	b.Helper()
	const block = cache.DefaultBlockSize
	sem := make(chan struct{}, cache.DefaultReadAheadBlocks+1)
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for off := int64(0); off < size && failed.Load() == nil; off += block {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			want := min(off+block, size) - off
			var opts minio.GetObjectOptions
			if err := opts.SetRange(off, off+want-1); err != nil {
				failed.Store(err)
				return
			}
			obj, err := mc.GetObject(context.Background(), bucket, key, opts)
			if err != nil {
				failed.Store(err)
				return
			}
			defer obj.Close()
			if n, err := io.Copy(io.Discard, obj); err != nil || n != want {
				failed.Store(fmt.Errorf("get %s at %d: %d bytes, %v", key, off, n, err))
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	return took
}

// writeSeq creates the file at path, writes data to it in 1 MiB writes and
// closes it, and returns how long that took.
func writeSeq(b *testing.B, path string, data []byte) time.Duration {
	b.Helper()
	start := time.Now()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	for off := 0; off < len(data); off += 1 << 20 {
		if _, err := f.Write(data[off:min(off+1<<20, len(data))]); err != nil {
			f.Close()
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// warmCache reads the file through the mount until mountd opens it with
// passthrough, which it does once the whole file is in its cache; it logs
// when that does not happen within a minute.
func warmCache(b *testing.B, m *benchMount, path string, size int64) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		before := m.passthroughOpens()
		readSeq(b, path, size, true)
		if m.passthroughOpens() > before {
			return
		}
		if time.Now().After(deadline) {
			b.Logf("mountd does not open %s with passthrough (passthrough opens: %v)", path, m.passthroughOpens())
			return
		}
	}
}

// BenchmarkMountMeta measures small-file metadata operations through mounts
// of an S3 (MinIO) UFS and of a local-directory UFS: each iteration creates
// (openat O_CREAT|O_EXCL, close), stats (fstatat) and removes (unlinkat)
// SKYFS_BENCH_FILES empty files (default 10,000) in a new directory, from 1
// and from 16 goroutines, each with its own files. Creates and removes go
// through a mount with the default kernel cache timeouts (1s). stat goes
// through a second mount with the default timeouts that has not seen the
// files (the kernel asks mountd for each name, which finds most in the
// directory's listing); stat-remote through a third with
// attr_timeout=0,entry_timeout=0, so every stat asks the master;
// stat-cached through a fourth with one-hour timeouts, on its second pass
// over the files (the kernel's cache). Rates (ops/s) are medians over the
// iterations; latencies (p50-µs) are over every operation.
func BenchmarkMountMeta(b *testing.B) {
	files := 10000
	if v := os.Getenv(benchFilesEnv); v != "" {
		var err error
		if files, err = strconv.Atoi(v); err != nil || files <= 0 {
			b.Fatalf("%s=%q: want a positive count", benchFilesEnv, v)
		}
	}
	needMountd(b)
	srv := miniotest.Start(b)
	bucket := srv.Bucket(b)
	c := newCluster(b, 3)
	c.mustCLI(append([]string{"mount", "/s3"}, s3MountArgs(srv, bucket, "meta")...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	localDir := b.TempDir()
	if _, err := c.client(clientConfigLong()).AddMount(ctx, &pb.AddMountRequest{Path: "/local", Uri: "file://" + localDir}); err != nil {
		b.Fatal(err)
	}
	var dirs atomic.Int64
	for _, ufs := range []string{"s3", "local"} {
		b.Run("ufs="+ufs, func(b *testing.B) {
			def := newBenchMount(b, c, "/"+ufs, "", 1<<30)
			fresh := newBenchMount(b, c, "/"+ufs, "", 1<<30)
			uncached := newBenchMount(b, c, "/"+ufs, "attr_timeout=0,entry_timeout=0", 1<<30)
			cached := newBenchMount(b, c, "/"+ufs, "attr_timeout=1h,entry_timeout=1h", 1<<30)
			mounts := []*benchMount{def, fresh, uncached, cached}
			for _, m := range mounts {
				m.start(true)
			}
			loopback := ""
			if ufs == "local" {
				loopback = mountLoopback(b, localDir)
			}
			for _, procs := range []int{1, 16} {
				b.Run(fmt.Sprintf("procs=%d", procs), func(b *testing.B) {
					rates := map[string][]float64{}
					lats := map[string][]time.Duration{}
					record := func(phase string, rate float64, l []time.Duration) {
						rates[phase] = append(rates[phase], rate)
						lats[phase] = append(lats[phase], l...)
					}
					for b.Loop() {
						metaIteration(b, fmt.Sprintf("d%d", dirs.Add(1)), procs, files, mounts, loopback, record)
					}
					for i, m := range mounts {
						b.Logf("FUSE requests served by the %s mount since it started: %s",
							[]string{"default", "fresh", "uncached", "cached"}[i], strings.Join(m.opLatencies(), ", "))
					}
					for _, phase := range []string{"create", "stat", "stat-remote", "stat-cached", "stat-loopback", "unlink"} {
						if len(rates[phase]) == 0 {
							continue
						}
						b.ReportMetric(median(rates[phase]), phase+"-ops/s")
						l := lats[phase]
						slices.Sort(l)
						b.ReportMetric(float64(l[len(l)/2].Nanoseconds())/1e3, phase+"-p50-µs")
					}
				})
			}
		})
	}
}

// metaIteration creates, stats and removes files in a new directory dir
// through mounts (default, fresh, uncached, cached): creates and removes
// through default, stats through fresh, uncached and (twice) cached, and,
// when loopback is not empty, through go-fuse's loopback mounted at it over
// the UFS directory (stat-loopback, the FUSE baseline). record receives
// each measured phase.
func metaIteration(b *testing.B, dir string, procs, files int, mounts []*benchMount, loopback string, record func(string, float64, []time.Duration)) {
	b.Helper()
	def := mounts[0]
	if err := os.Mkdir(def.path(dir), 0o755); err != nil {
		b.Fatal(err)
	}
	fds := make([]int, len(mounts))
	for i, m := range mounts {
		fds[i] = openDir(b, m.path(dir))
		defer unix.Close(fds[i])
	}
	dfd, ffd, ufd, cfd := fds[0], fds[1], fds[2], fds[3]
	record(metaPhase(b, "create", procs, files, func(name string) error {
		var fd int
		err := retryingEINTR(func() (err error) {
			fd, err = unix.Openat(dfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
			return err
		}, unix.EEXIST)
		if err != nil || fd < 0 {
			return err
		}
		return unix.Close(fd)
	}))
	stat := func(fd int) func(string) error {
		return func(name string) error {
			var st unix.Stat_t
			return ignoringEINTR(func() error { return unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) })
		}
	}
	record(metaPhase(b, "stat", procs, files, stat(ffd)))
	record(metaPhase(b, "stat-remote", procs, files, stat(ufd)))
	metaPhase(b, "stat", procs, files, stat(cfd))
	record(metaPhase(b, "stat-cached", procs, files, stat(cfd)))
	if loopback != "" {
		lfd := openDir(b, filepath.Join(loopback, dir))
		record(metaPhase(b, "stat-loopback", procs, files, stat(lfd)))
		unix.Close(lfd)
	}
	record(metaPhase(b, "unlink", procs, files, func(name string) error {
		return retryingEINTR(func() error { return unix.Unlinkat(dfd, name, 0) }, unix.ENOENT)
	}))
	if err := os.Remove(def.path(dir)); err != nil {
		b.Fatal(err)
	}
}

// ignoringEINTR runs op again while it fails with EINTR: a FUSE request is
// interrupted by any signal, the Go runtime's preemption signal included.
func ignoringEINTR(op func() error) error { return retryingEINTR(op, 0) }

// retryingEINTR is ignoringEINTR for an op that changes something: once it
// was interrupted, a later attempt failing with done (EEXIST for a create,
// ENOENT for a removal) means an interrupted one took effect, and counts as
// success.
func retryingEINTR(op func() error, done unix.Errno) error {
	retried := false
	for {
		err := op()
		switch {
		case err == unix.EINTR:
			retried = true
		case retried && done != 0 && err == done:
			return nil
		default:
			return err
		}
	}
}

// openDir opens a directory for the *at calls.
func openDir(b *testing.B, path string) int {
	b.Helper()
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return fd
}

// metaPhase runs op on files names from procs goroutines, goroutine g
// taking the names "gG-I" for every I with I mod procs = g, and returns the
// phase name, the rate in ops/s and the latency of each operation.
func metaPhase(b *testing.B, phase string, procs, files int, op func(name string) error) (string, float64, []time.Duration) {
	b.Helper()
	lat := make([][]time.Duration, procs)
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for g := range procs {
		wg.Go(func() {
			for i := g; i < files; i += procs {
				t0 := time.Now()
				if err := op(fmt.Sprintf("g%02d-%06d", g, i)); err != nil {
					failed.Store(fmt.Errorf("%s g%02d-%06d: %w", phase, g, i, err))
					return
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	return phase, float64(files) / elapsed.Seconds(), slices.Concat(lat...)
}

// reportAgainst reports skyfs's figure in unit, the baseline's (as
// base-unit) and their ratio (x-base).
func reportAgainst(b *testing.B, unit string, sky float64, base string, baseline float64) {
	b.ReportMetric(sky, unit)
	b.ReportMetric(baseline, base+"-"+unit)
	b.ReportMetric(sky/baseline, "x-"+base)
}

// analytical is the read pattern of a columnar query: files (32 of 64 MiB
// for a 1 GiB SKYFS_BENCH_SIZE, smaller in proportion), each read as its
// footer (the last 64 KiB), then 4 ranges of 2-8 MiB (in proportion) at
// random offsets, files taken by 4 goroutines.
type analytical struct {
	files    int
	fileSize int64
}

// A read of the analytical pattern: file f, n bytes at off.
type anRange struct {
	f      int
	off, n int64
}

func newAnalytical(size int64) analytical {
	return analytical{files: 32, fileSize: max(size/16, 1<<20)}
}

func (a analytical) name(f int) string { return fmt.Sprintf("an/f%02d.parquet", f) }

// ranges returns each file's reads, footer first, drawn from seed.
func (a analytical) ranges(seed uint64) [][]anRange {
	r := rand.New(rand.NewPCG(seed, 99))
	footer := min(64<<10, a.fileSize)
	out := make([][]anRange, a.files)
	for f := range out {
		out[f] = append(out[f], anRange{f, a.fileSize - footer, footer})
		for range 4 {
			n := a.fileSize/32 + r.Int64N(a.fileSize/8-a.fileSize/32+1)
			out[f] = append(out[f], anRange{f, r.Int64N(a.fileSize - n + 1), n})
		}
	}
	return out
}

// asked is the bytes the ranges read.
func (a analytical) asked(ranges [][]anRange) int64 {
	var n int64
	for _, rs := range ranges {
		for _, g := range rs {
			n += g.n
		}
	}
	return n
}

// run reads the ranges with read from 4 goroutines, a file at a time each,
// and returns how long it took.
func (a analytical) run(b *testing.B, ranges [][]anRange, read func(f int, off, n int64, buf []byte) error) time.Duration {
	b.Helper()
	next := make(chan []anRange, len(ranges))
	for _, rs := range ranges {
		next <- rs
	}
	close(next)
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for range 4 {
		wg.Go(func() {
			buf := make([]byte, a.fileSize/8+1)
			for rs := range next {
				for _, g := range rs {
					if err := read(g.f, g.off, g.n, buf); err != nil {
						failed.Store(fmt.Errorf("file %d at %d: %w", g.f, g.off, err))
						return
					}
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	return took
}
