package integration

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/skyfs/skyfs/internal/bytesize"
	"github.com/skyfs/skyfs/internal/fsbench"
)

// benchSizeEnv sets the size of the big file of BenchmarkMountData: bytes,
// or a number with K, M or G (default 1G).
const benchSizeEnv = "SKYFS_BENCH_SIZE"

// benchFileSize returns the size SKYFS_BENCH_SIZE asks for, 1 GiB without it.
func benchFileSize(tb testing.TB) int64 {
	v := os.Getenv(benchSizeEnv)
	if v == "" {
		return 1 << 30
	}
	n, err := bytesize.Parse(v)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive size (bytes, or with K, M or G)", benchSizeEnv, v)
	}
	return n
}

// benchMount is one mountd process of a benchmark, serving a namespace
// subtree with an admin port whose metrics tell how files were opened. It
// can be stopped and started again, with a fresh cache or the same one.
type benchMount struct {
	tb        testing.TB
	spec, mnt string
	opts      string
	cacheSize int64
	dir       string // holds the cache directories and logs
	cacheDir  string
	admin     string
	gen       int

	cmd    *exec.Cmd
	exited chan struct{}
}

// newBenchMount prepares a mount of the namespace path of c on a new mount
// point, with mount options opts (besides cache and admin settings). It is
// unmounted when the benchmark ends.
func newBenchMount(tb testing.TB, c *cluster, path, opts string, cacheSize int64) *benchMount {
	tb.Helper()
	needMountd(tb)
	dir := tb.TempDir()
	m := &benchMount{
		tb: tb, spec: strings.Join(c.rpcAddrs(), ",") + ":" + path,
		mnt: filepath.Join(dir, "mnt"), opts: c.sec.mountOpts(opts), cacheSize: cacheSize, dir: dir,
	}
	if err := os.Mkdir(m.mnt, 0o755); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		m.stop()
		forceUnmount(m.mnt)
	})
	return m
}

// ensureStarted starts mountd with a fresh cache unless it runs.
func (m *benchMount) ensureStarted() {
	m.tb.Helper()
	if m.cmd == nil {
		m.start(true)
	}
}

// start runs mountd and waits until the mount is ready. fresh gives it a new,
// empty cache directory (the old one is removed); otherwise it keeps the
// cache of the previous run.
func (m *benchMount) start(fresh bool) {
	m.tb.Helper()
	if fresh || m.cacheDir == "" {
		if m.cacheDir != "" {
			if err := os.RemoveAll(m.cacheDir); err != nil {
				m.tb.Fatal(err)
			}
		}
		m.gen++
		m.cacheDir = filepath.Join(m.dir, fmt.Sprintf("cache%d", m.gen))
	}
	m.admin = freeAddrs(m.tb, 1)[0]
	opts := "admin_addr=" + m.admin
	if m.opts != "" {
		opts += "," + m.opts
	}
	var line string
	m.cmd, m.exited, line = runMountd(m.tb, filepath.Join(m.dir, "mountd.log"),
		"--cache-dir", m.cacheDir, "--cache-size", strconv.FormatInt(m.cacheSize, 10), "-o", opts, m.spec, m.mnt)
	if line != "ready" {
		m.tb.Fatalf("mountd did not get ready: %q\n%s", line, m.log())
	}
}

// stop unmounts and waits for mountd to exit; it does nothing when mountd
// is not running.
func (m *benchMount) stop() {
	if m.cmd == nil {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for mounted(m.mnt) && time.Now().Before(deadline) {
		if exec.Command("umount", m.mnt).Run() == nil {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling interval: a release still in flight
	}
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		m.cmd.Process.Kill()
		<-m.exited
		m.tb.Errorf("mountd did not exit within 30s of the unmount\n%s", m.log())
	}
	m.cmd = nil
}

// path returns name under the mount point.
func (m *benchMount) path(name string) string { return filepath.Join(m.mnt, name) }

// log returns the end of mountd's log.
func (m *benchMount) log() string {
	b, _ := os.ReadFile(filepath.Join(m.dir, "mountd.log"))
	return tail(string(b), 8<<10)
}

// passthroughOpens returns skyfs_fuse_passthrough_opens_total from the
// admin port, or -1 when it cannot be read.
func (m *benchMount) passthroughOpens() float64 {
	v, err := scrapeSum(m.admin, "skyfs_fuse_passthrough_opens_total")
	if err != nil {
		return -1
	}
	return v
}

// profile starts a CPU profile of mountd for d (at least a second), written
// to file, and an allocation profile of the same span, written to
// file.allocs, and returns a channel closed when both are done. It does
// nothing and returns nil when file is empty.
func (m *benchMount) profile(tb testing.TB, file string, d time.Duration) chan struct{} {
	if file == "" {
		return nil
	}
	done := make(chan struct{})
	secs := max(1, int(d.Seconds()))
	var wg sync.WaitGroup
	for _, p := range []struct{ kind, out string }{{"profile", file}, {"allocs", file + ".allocs"}} {
		url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", m.admin, p.kind, secs)
		wg.Go(func() {
			resp, err := http.Get(url)
			if err != nil {
				tb.Logf("profile: %v", err)
				return
			}
			defer resp.Body.Close()
			out, err := os.Create(p.out)
			if err != nil {
				tb.Logf("profile: %v", err)
				return
			}
			defer out.Close()
			if _, err := io.Copy(out, resp.Body); err != nil {
				tb.Logf("profile: %v", err)
			}
		})
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// ufsBytes returns the bytes mountd's cache loaded from the UFS
// (skyfs_cache_read_bytes_total{source="ufs"}), or -1.
func (m *benchMount) ufsBytes() int64 {
	v, err := scrapeSum(m.admin, `skyfs_cache_read_bytes_total{source="ufs"}`)
	if err != nil {
		return -1
	}
	return int64(v)
}

// resetPeakRSS starts a new measure of mountd's peak resident memory
// (clear_refs 5 resets VmHWM).
func (m *benchMount) resetPeakRSS() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", m.cmd.Process.Pid), []byte("5"), 0)
}

// peakRSS returns mountd's peak resident memory (VmHWM) since it started or
// since the last resetPeakRSS, or 0 when it cannot be read.
func (m *benchMount) peakRSS() int64 {
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(st)) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// opLatencies returns the mean latency and count of each FUSE operation
// mountd served (skyfs_fuse_op_duration_seconds), as "op n×meanµs" items,
// or nil when the admin port cannot be read.
func (m *benchMount) opLatencies() []string {
	resp, err := http.Get("http://" + m.admin + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	sums, counts := map[string]float64{}, map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		name, labels, ok := strings.Cut(f[0], "{op=\"")
		if !ok {
			continue
		}
		op := strings.TrimSuffix(labels, "\"}")
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch name {
		case "skyfs_fuse_op_duration_seconds_sum":
			sums[op] = v
		case "skyfs_fuse_op_duration_seconds_count":
			counts[op] = v
		}
	}
	var out []string
	for op, n := range counts {
		if n > 0 {
			out = append(out, fmt.Sprintf("%s %.0f×%.0fµs", op, n, sums[op]/n*1e6))
		}
	}
	slices.Sort(out)
	return out
}

// dropPages writes back and drops the page-cache pages of the file at path
// (posix_fadvise DONTNEED). On a FUSE file it drops the kernel's pages of
// the FUSE inode, not those of the daemon's backing file.
func dropPages(tb testing.TB, path string) {
	tb.Helper()
	if err := fsbench.DropPageCache(path); err != nil {
		tb.Fatal(err)
	}
}

// dropTree drops the pages of every regular file under dir.
func dropTree(tb testing.TB, dir string) {
	tb.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // a temporary file went away
			}
			return err
		}
		if d.Type().IsRegular() {
			_ = fsbench.DropPageCache(p) // a file may go meanwhile
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// readSeq reads the file at path from start to end in 1 MiB reads and
// returns how long it took. With dropFUSE the file's own pages are dropped
// first (on a FUSE mount: the reads then reach the daemon or its
// passthrough file).
func readSeq(tb testing.TB, path string, want int64, dropFUSE bool) time.Duration {
	tb.Helper()
	start := time.Now()
	n, err := fsbench.ReadThrough(path, dropFUSE)
	took := time.Since(start)
	if err != nil {
		tb.Fatal(err)
	}
	if n != want {
		tb.Fatalf("read %d bytes of %s, want %d", n, path, want)
	}
	return took
}

// readRandom4K makes n 4 KiB reads of the file at path at random aligned
// offsets (no offset twice while n is below the number of pages), with
// read-ahead off, after dropping the file's own pages. It returns how long
// the reads took.
func readRandom4K(tb testing.TB, path string, size int64, n int, seed uint64) time.Duration {
	tb.Helper()
	const page = 4096
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM)
	perm := rand.New(rand.NewPCG(seed, 7)).Perm(int(size / page))
	buf := make([]byte, page)
	start := time.Now()
	for i := range n {
		if _, err := f.ReadAt(buf, int64(perm[i%len(perm)])*page); err != nil {
			tb.Fatal(err)
		}
	}
	return time.Since(start)
}

// holdDirect opens path with O_DIRECT and keeps it open until the returned
// function runs. While a skyfs file has such an open, mountd answers other
// opens of it without passthrough (the kernel cannot mix the two modes on
// one inode), so their reads go through the daemon.
func holdDirect(tb testing.TB, path string) func() {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return func() { f.Close() }
}

// mountLoopback mounts go-fuse's loopback file system over root at a new
// directory, without passthrough, with the read-ahead mountd sets (4 MiB),
// and returns the mount point. It is unmounted when the benchmark ends.
// The kernel caches nothing of it (go-fuse's default timeouts are zero).
func mountLoopback(tb testing.TB, root string) string {
	tb.Helper()
	return mountLoopbackTTL(tb, root, 0)
}

// mountLoopbackTTL is mountLoopback with the kernel caching names and
// attributes for ttl, as it does a skyfs mount's for its timeouts.
func mountLoopbackTTL(tb testing.TB, root string, ttl time.Duration) string {
	tb.Helper()
	mnt := filepath.Join(tb.TempDir(), "loopback")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		tb.Fatal(err)
	}
	node, err := gofs.NewLoopbackRoot(root)
	if err != nil {
		tb.Fatal(err)
	}
	opts := &gofs.Options{MountOptions: fuse.MountOptions{
		DirectMount: true, MaxWrite: 1 << 20, DisableSplice: true,
		DisabledCapabilities: fuse.CAP_PASSTHROUGH, FsName: "bench-loopback",
	}}
	if ttl > 0 {
		opts.AttrTimeout, opts.EntryTimeout = &ttl, &ttl
	}
	srv, err := gofs.Mount(mnt, node, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		srv.Unmount()
		srv.Wait()
		forceUnmount(mnt)
	})
	var st syscall.Stat_t
	if err := syscall.Stat(mnt, &st); err != nil {
		tb.Fatal(err)
	}
	ra := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := os.WriteFile(ra, []byte("4096"), 0); err != nil {
		tb.Logf("loopback read-ahead left at the kernel's default: %v", err)
	}
	return mnt
}

// benchData returns size pseudo-random bytes (incompressible, fixed seed).
func benchData(size int64) []byte {
	data := make([]byte, size)
	r := rand.NewChaCha8([32]byte{'s', 'k', 'y', 'f', 's'})
	r.Read(data)
	return data
}

// mbps is a rate in MB/s (10^6 bytes per second).
func mbps(bytes int64, d time.Duration) float64 {
	return float64(bytes) / d.Seconds() / 1e6
}
