package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// warmFileSize is the size of each file of BenchmarkMountWarmOpen.
const warmFileSize = 4 << 10

// BenchmarkMountWarmOpen measures the metadata cost of scanning files that
// are already wholly in mountd's cache (a query engine opening every file
// of a table again): open (O_RDONLY), fstat and close of each of
// SKYFS_BENCH_FILES files (default 1,000) of 4 KiB in one directory of a
// local-directory UFS, through a mount with the default timeouts (1s)
// whose cache holds every file (each open is passthrough), against the same
// through go-fuse's loopback over the UFS directory with the same kernel
// timeouts, in the same iterations (x-loopback: the mount's rate over the
// loopback's). With SKYFS_BENCH_PROFILE=FILE, FILE.warm gets a CPU profile
// of mountd taken during further passes of attrs=fresh.
//
//   - attrs=fresh: the passes run back to back, mostly within the attribute
//     timeout of the previous one.
//
//   - attrs=expired: each pass starts once the timeouts of the previous one
//     have passed, so every name and attribute the kernel (and mountd)
//     holds has expired: a query run every few seconds.
//
//     go test -run '^$' -bench BenchmarkMountWarmOpen -benchtime 10x ./integration
func BenchmarkMountWarmOpen(b *testing.B) {
	files := 1000
	if v := os.Getenv(benchFilesEnv); v != "" {
		if _, err := fmt.Sscan(v, &files); err != nil || files <= 0 {
			b.Fatalf("%s=%q: want a positive count", benchFilesEnv, v)
		}
	}
	needMountd(b)
	c := newCluster(b, 3)
	localDir := b.TempDir()
	ufsDir := filepath.Join(localDir, "warm")
	if err := os.Mkdir(ufsDir, 0o755); err != nil {
		b.Fatal(err)
	}
	data := benchData(warmFileSize)
	names := make([]string, files)
	for i := range names {
		names[i] = fmt.Sprintf("f%06d", i)
		if err := os.WriteFile(filepath.Join(ufsDir, names[i]), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.client(clientConfigLong()).AddMount(ctx, &pb.AddMountRequest{Path: "/local", Uri: "file://" + localDir}); err != nil {
		b.Fatal(err)
	}
	const ttl = time.Second // mountd's default timeouts
	mopts := ""
	if os.Getenv(benchProfileEnv) != "" {
		mopts = "pprof"
	}
	m := newBenchMount(b, c, "/local", mopts, 1<<30)
	m.start(true)
	loopback := mountLoopbackTTL(b, localDir, ttl)
	skyDir, lbDir := m.path("warm"), filepath.Join(loopback, "warm")
	warmFiles(b, m, skyDir, names)
	readFiles(b, lbDir, names)

	for _, expired := range []bool{false, true} {
		b.Run(fmt.Sprintf("attrs=%s", map[bool]string{false: "fresh", true: "expired"}[expired]), func(b *testing.B) {
			var lb, sky []time.Duration
			var lbEnd, skyEnd time.Time
			pass := func(dir string, end *time.Time, took *[]time.Duration) func() {
				return func() {
					if expired {
						time.Sleep(time.Until(end.Add(ttl + 100*time.Millisecond))) // the timeouts of the previous pass run out
					}
					*took = append(*took, openStatClose(b, dir, names))
					*end = time.Now()
				}
			}
			pt0 := m.passthroughOpens()
			for i := 0; b.Loop(); i++ {
				interleave(i, pass(lbDir, &lbEnd, &lb), pass(skyDir, &skyEnd, &sky))
			}
			pt := (m.passthroughOpens() - pt0) / float64(len(sky)*files)
			if file := os.Getenv(benchProfileEnv); file != "" && !expired {
				// Passes through the mount while mountd is profiled.
				done := m.profile(b, file+".warm", 3*time.Second)
				for waiting := true; waiting; {
					openStatClose(b, skyDir, names)
					select {
					case <-done:
						waiting = false
					default:
					}
				}
			}
			l, s := float64(files)/median(lb).Seconds(), float64(files)/median(sky).Seconds()
			reportAgainst(b, "ops/s", s, "loopback", l)
			b.ReportMetric(pt, "passthrough/open")
			b.Logf("FUSE requests served by mountd since it started: %v", m.opLatencies())
		})
	}
}

// openStatClose opens, fstats and closes every file names of dir, in order,
// and returns how long that took.
func openStatClose(b *testing.B, dir string, names []string) time.Duration {
	b.Helper()
	dfd := openDir(b, dir)
	defer unix.Close(dfd)
	start := time.Now()
	for _, name := range names {
		var fd int
		err := ignoringEINTR(func() (err error) {
			fd, err = unix.Openat(dfd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			return err
		})
		if err != nil {
			b.Fatalf("open %s: %v", name, err)
		}
		var st unix.Stat_t
		err = ignoringEINTR(func() error { return unix.Fstat(fd, &st) })
		unix.Close(fd)
		if err != nil || st.Size != warmFileSize {
			b.Fatalf("fstat %s: size %d, %v", name, st.Size, err)
		}
	}
	return time.Since(start)
}

// readFiles reads every file names of dir whole.
func readFiles(b *testing.B, dir string, names []string) {
	b.Helper()
	for _, name := range names {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || len(got) != warmFileSize {
			b.Fatalf("read %s: %d bytes, %v", name, len(got), err)
		}
	}
}

// warmFiles reads the files names of dir through mount m until a pass
// opens each with passthrough, which mountd does once a file is wholly in
// its cache; it gives up after a minute.
func warmFiles(b *testing.B, m *benchMount, dir string, names []string) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		before := m.passthroughOpens()
		readFiles(b, dir, names)
		if m.passthroughOpens()-before >= float64(len(names)) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("mountd does not open every file with passthrough (%v of %d in the last pass)", m.passthroughOpens()-before, len(names))
		}
	}
}
