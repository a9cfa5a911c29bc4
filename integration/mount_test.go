package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// secret is a credential in a UFS mount's options: it must never leave
// mountd's memory.
const secret = "s3cr3t-Value-4242"

// TestMount runs mountd processes as compute hosts of one three-master
// cluster, each subtest on its own UFS mount (a local directory) mounted as
// the root of the FUSE mount. The leader is killed last.
func TestMount(t *testing.T) {
	needMountd(t)
	c := newCluster(t, 3)
	t.Run("TwoHosts", func(t *testing.T) { testTwoHosts(t, c) })
	t.Run("Helper", func(t *testing.T) { testHelper(t, c) })
	t.Run("KillAfterClose", func(t *testing.T) { testKillAfterClose(t, c) })
	t.Run("Terminate", func(t *testing.T) { testTerminate(t, c) })
	t.Run("LeaderKilled", func(t *testing.T) { testLeaderKilled(t, c) })
}

func randomData(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// testTwoHosts: what one host closes, another reads; names follow the
// master on both after the attribute timeout; the data is in the UFS under
// the same names; credentials stay in memory.
func testTwoHosts(t *testing.T, c *cluster) {
	ufsDir := addLocalMount(t, c, "/two", map[string]string{"local.secretToken": secret})
	opts := "attr_timeout=200ms,entry_timeout=200ms"
	a := newHost(t, c, "A", "/two", opts)
	a.start()
	b := newHost(t, c, "B", "/two", opts)
	b.start()

	// Across cache blocks (4 MiB), written on A, read on B after close.
	data := randomData(1, 5<<20+7)
	if err := os.WriteFile(a.path("f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	checkContent(t, b.path("f"), data)
	checkContent(t, filepath.Join(ufsDir, "f"), data)
	// Overwritten on B: A sees the new content at its next open once the
	// attributes it may hold are an attribute timeout old.
	data2 := randomData(2, 100_000)
	if err := os.WriteFile(b.path("f"), data2, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // attr_timeout: the promise's bound, not a wait for an event
	checkContent(t, a.path("f"), data2)
	checkContent(t, filepath.Join(ufsDir, "f"), data2)
	// Again while A holds the file's attributes from the open just made: B's
	// content, same size, is seen once they are an attribute timeout old.
	data3 := randomData(3, 100_000)
	if err := os.WriteFile(b.path("f"), data3, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	checkContent(t, a.path("f"), data3)
	// With cto, a host asks the masters at every open: it sees what B
	// closed at once, though it just read the file.
	cto := newHost(t, c, "C", "/two", opts+",cto")
	cto.start()
	checkContent(t, cto.path("f"), data3)
	if err := os.WriteFile(b.path("f"), data2, 0o644); err != nil {
		t.Fatal(err)
	}
	checkContent(t, cto.path("f"), data2)
	cto.umount()

	// A file open on B, renamed on A: B reads the blocks it has not cached
	// from where the masters say the file lives now.
	data4 := randomData(4, 5<<20+3)
	if err := os.WriteFile(a.path("r"), data4, 0o644); err != nil {
		t.Fatal(err)
	}
	rf, err := os.Open(b.path("r"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(a.path("r"), a.path("r2")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rf)
	rf.Close()
	if err != nil || !bytes.Equal(got, data4) {
		t.Fatalf("B reading a file renamed on A: %d bytes, %v (want %d)", len(got), err, len(data4))
	}
	if err := os.Remove(a.path("r2")); err != nil {
		t.Fatal(err)
	}

	// A directory made on A, a file in it.
	if err := os.Mkdir(a.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.path("d/g"), []byte("in d"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkContent(t, b.path("d/g"), []byte("in d"))
	checkContent(t, filepath.Join(ufsDir, "d", "g"), []byte("in d"))
	fi, err := os.Stat(b.path("d/g"))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 4 {
		t.Fatalf("stat on B: %v, %v", fi, err)
	}

	// A rename on A shows in B's listing once B's cached names expire.
	if err := os.Rename(a.path("f"), a.path("f2")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		names, err := listNames(b.mnt)
		if err != nil || !slices.Equal(names, []string{"d", "f2"}) {
			return fmt.Errorf("listing on B after a rename on A: %v, %v", names, err)
		}
		if _, err := os.Stat(b.path("f")); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("the old name on B: %v", err)
		}
		return nil
	})
	// An unlink on A likewise.
	if err := os.Remove(a.path("d/g")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if _, err := os.Stat(b.path("d/g")); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("d/g on B after an unlink on A: %v", err)
		}
		return nil
	})

	t.Run("UFSSideEffects", func(t *testing.T) {
		// The master performs the UFS part of rename and unlink; until it
		// does, the renamed file's object is still under its old name.
		if _, err := os.Stat(filepath.Join(ufsDir, "f2")); err != nil {
			t.Skip("the masters do not rename in the UFS yet (f2 is not in the UFS directory): reading a renamed file and UFS deletes are checked once they do")
		}
		checkContent(t, b.path("f2"), data2)
		checkContent(t, a.path("f2"), data2)
		if _, err := os.Stat(filepath.Join(ufsDir, "f")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the old name is still in the UFS: %v", err)
		}
		if _, err := os.Stat(filepath.Join(ufsDir, "d", "g")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("an unlinked file is still in the UFS: %v", err)
		}
	})

	// Credentials: not in the logs, the arguments, the environment or any
	// file of the cache directory.
	for _, h := range []*host{a, b} {
		pid := h.cmd.Process.Pid
		for _, p := range []string{fmt.Sprintf("/proc/%d/cmdline", pid), fmt.Sprintf("/proc/%d/environ", pid)} {
			if b, err := os.ReadFile(p); err != nil || bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s: %s holds the credential (%v)", h.name, p, err)
			}
		}
	}
	a.umount()
	b.umount()
	for _, h := range []*host{a, b} {
		if strings.Contains(h.log(), secret) {
			t.Errorf("%s: the mountd log holds the credential", h.name)
		}
		if !strings.Contains(h.log(), "REDACTED") {
			t.Errorf("%s: the mountd log does not show the redacted options", h.name)
		}
		filepath.WalkDir(h.cacheDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(secret)) {
					t.Errorf("%s: %s holds the credential", h.name, p)
				}
			}
			return nil
		})
	}
}

// testKillAfterClose: a file whose close returned is in the UFS even if
// mountd dies at once, and a new mountd on the same cache reads it.
func testKillAfterClose(t *testing.T, c *cluster) {
	ufsDir := addLocalMount(t, c, "/kill", nil)
	h := newHost(t, c, "A", "/kill", "")
	h.start()
	data := randomData(3, 3<<20+11)
	if err := os.WriteFile(h.path("k"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	h.kill()
	checkContent(t, filepath.Join(ufsDir, "k"), data)
	h.start()
	checkContent(t, h.path("k"), data)
	h.umount()
}

// testTerminate: SIGTERM unmounts and mountd exits 0; a busy mount is
// detached, and mountd serves the open file until it is closed, uploads it,
// and exits.
func testTerminate(t *testing.T, c *cluster) {
	ufsDir := addLocalMount(t, c, "/term", nil)
	h := newHost(t, c, "A", "/term", "")
	h.start()
	h.cmd.Process.Signal(syscall.SIGTERM)
	h.wait(20 * time.Second)
	if mounted(h.mnt) {
		t.Fatal("still mounted after SIGTERM")
	}

	h.start()
	f, err := os.Create(h.path("open"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("before ")); err != nil {
		t.Fatal(err)
	}
	h.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, 20*time.Second, "the busy mount to be detached", func() bool { return !mounted(h.mnt) })
	select {
	case <-h.exited:
		t.Fatalf("mountd exited with a file open\n%s", h.log())
	default:
	}
	if _, err := f.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	h.wait(20 * time.Second)
	checkContent(t, filepath.Join(ufsDir, "open"), []byte("before after"))
}

// testLeaderKilled: a process writes and reads files through the mount
// while the leader master is SIGKILLed. Operations may be delayed; none
// fails and no write is lost.
func testLeaderKilled(t *testing.T, c *cluster) {
	ufsDir := addLocalMount(t, c, "/leader", nil)
	h := newHost(t, c, "A", "/leader", "attr_timeout=200ms,entry_timeout=200ms")
	h.start()

	var (
		mu      sync.Mutex
		errs    []error
		written []string
		done    atomic.Int64
		slowest time.Duration
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("w%04d", i)
			data := randomData(uint64(1000+i), 64<<10+i)
			start := time.Now()
			err := os.WriteFile(h.path(name), data, 0o644)
			if err == nil {
				var got []byte
				if got, err = os.ReadFile(h.path(name)); err == nil && !bytes.Equal(got, data) {
					err = fmt.Errorf("read back %d bytes, differs", len(got))
				}
			}
			took := time.Since(start)
			mu.Lock()
			slowest = max(slowest, took)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			} else {
				written = append(written, name)
			}
			mu.Unlock()
			done.Add(1)
		}
	})
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	waitFor(t, 30*time.Second, "files written before the kill", func() bool { return done.Load() >= 5 })
	old := c.leader()
	if old == nil {
		t.Fatal("no leader")
	}
	c.kill(old)
	killedAt := done.Load()
	c.waitLeader(30 * time.Second)
	waitFor(t, 60*time.Second, "files written after the kill", func() bool { return done.Load() >= killedAt+10 })
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d files written and read back; slowest write+read %v", len(written), slowest)
	for _, err := range errs {
		t.Errorf("through the leader's death: %v", err)
	}
	for _, name := range written {
		i := 0
		fmt.Sscanf(name, "w%04d", &i)
		data := randomData(uint64(1000+i), 64<<10+i)
		checkContent(t, filepath.Join(ufsDir, name), data)
		checkContent(t, h.path(name), data)
	}
	h.umount()
}

// testHelper: mount.skyfs as mount(8) runs it returns once the mount is
// ready, fails with one line, and umount(8) stops its daemon; mount -t skyfs
// end to end where a private mount namespace can show mount(8) the helper.
func testHelper(t *testing.T, c *cluster) {
	_, helper := needMountd(t)
	ufsDir := addLocalMount(t, c, "/helper", nil)
	spec := strings.Join(c.rpcAddrs(), ",") + ":/helper"
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	cacheDir := filepath.Join(dir, "cache")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { forceUnmount(mnt) })
	logPath := filepath.Join(cacheDir, "mountd.log")
	runHelper := func(args ...string) (int, string) {
		var stderr bytes.Buffer
		cmd := exec.Command(helper, args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("run mount.skyfs: %v", err)
		}
		return cmd.ProcessState.ExitCode(), stderr.String()
	}
	// Every log run ends with this line once the daemon has stopped.
	stops := func() int { b, _ := os.ReadFile(logPath); return strings.Count(string(b), "mountd: stopped") }

	opts := c.sec.mountOpts("cache_dir=" + cacheDir + ",cache_size=64M,attr_timeout=0.2,defaults,_netdev,nofail,noatime")
	code, stderr := runHelper(spec, mnt, "-o", opts)
	if code != 0 {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("mount.skyfs: exit %d: %s\n%s", code, stderr, b)
	}
	if !mounted(mnt) {
		t.Fatal("mount.skyfs returned before the mount was there")
	}
	if err := os.WriteFile(filepath.Join(mnt, "h"), []byte("via helper"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkContent(t, filepath.Join(ufsDir, "h"), []byte("via helper"))
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v: %s", err, out)
	}
	waitFor(t, 20*time.Second, "the daemon to stop after umount", func() bool { return stops() == 1 })

	// Read-only.
	if code, stderr := runHelper(spec, mnt, "-o", opts+",ro"); code != 0 {
		t.Fatalf("mount.skyfs -o ro: exit %d: %s", code, stderr)
	}
	checkContent(t, filepath.Join(mnt, "h"), []byte("via helper"))
	if err := os.WriteFile(filepath.Join(mnt, "h2"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("create on a read-only mount: %v, want EROFS", err)
	}
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v: %s", err, out)
	}
	waitFor(t, 20*time.Second, "the daemon to stop after umount", func() bool { return stops() == 2 })

	// Failures: one line, a non-zero exit, nothing mounted.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing path", []string{strings.Join(c.rpcAddrs(), ",") + ":/nope", mnt, "-o", opts}, "no such file"},
		{"file as root", []string{strings.Join(c.rpcAddrs(), ",") + ":/helper/h", mnt, "-o", opts}, "not a directory"},
		{"no mount point", []string{spec, filepath.Join(dir, "absent"), "-o", opts}, "mount point"},
		{"bad option", []string{spec, mnt, "-o", "cache_size=huge"}, "option cache_size"},
		{"no masters", []string{"127.0.0.1:1:/helper", mnt, "-o", opts + ",mount_timeout=1s"}, "deadline"},
		{"bad token file", []string{spec, mnt, "-o", opts + ",token_file=" + filepath.Join(dir, "absent")}, "token_file"},
	} {
		code, stderr := runHelper(tc.args...)
		if code == 0 || strings.Count(stderr, "\n") != 1 || !strings.Contains(strings.ToLower(stderr), tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want a non-zero exit and one line with %q", tc.name, code, stderr, tc.want)
		}
		if mounted(mnt) {
			t.Fatalf("%s: mounted anyway", tc.name)
		}
	}

	t.Run("MountT", func(t *testing.T) { testMountT(t, spec, ufsDir, helper, c.sec.mountOpts("_netdev")) })
}

// testMountT runs mount -t skyfs with opts and umount in a private mount
// namespace where /usr/sbin (mount(8)'s fixed helper directory) holds
// mount.skyfs.
func testMountT(t *testing.T, spec, ufsDir, helper, opts string) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare(1)")
	}
	dir := t.TempDir()
	sbin, mnt, cacheDir := filepath.Join(dir, "sbin"), filepath.Join(dir, "mnt"), filepath.Join(dir, "cache")
	for _, d := range []string{sbin, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	target, err := filepath.EvalSymlinks(helper)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(sbin, "mount.skyfs")); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("unshare", "--mount", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make a mount namespace: %v: %s", err, out)
	}
	script := fmt.Sprintf(`set -e
mount --bind %[1]s /usr/sbin
mount -t skyfs -o cache_dir=%[2]s,cache_size=64M,%[5]s %[3]s %[4]s
echo "mount -t" > %[4]s/t
cat %[4]s/t
umount %[4]s
`, sbin, cacheDir, spec, mnt, opts)
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script).CombinedOutput()
	logPath := filepath.Join(cacheDir, "mountd.log")
	if err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("mount -t skyfs: %v: %s\n%s", err, out, b)
	}
	if string(out) != "mount -t\n" {
		t.Fatalf("read back through mount -t: %q", out)
	}
	checkContent(t, filepath.Join(ufsDir, "t"), []byte("mount -t\n"))
	waitFor(t, 20*time.Second, "the daemon to stop after umount", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "mountd: stopped")
	})
}
