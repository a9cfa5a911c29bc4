package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skyfs/skyfs/client"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// The mountd binary, built on first use next to the binaries TestMain
// built (and removed with them), with a mount.skyfs link to it.
var mountdBin struct {
	once         sync.Once
	path, helper string
	err          error
}

// needMountd skips a test that cannot mount, and returns the paths of the
// mountd binary and of its mount.skyfs link.
func needMountd(t testing.TB) (mountd, helper string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("mounting needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	mountdBin.once.Do(func() {
		dir := filepath.Dir(bin.masterd)
		mountdBin.path = filepath.Join(dir, "mountd")
		mountdBin.helper = filepath.Join(dir, "mount.skyfs")
		cmd := exec.Command("go", "build", "-o", mountdBin.path, "github.com/skyfs/skyfs/cmd/mountd")
		if out, err := cmd.CombinedOutput(); err != nil {
			mountdBin.err = fmt.Errorf("build mountd: %v\n%s", err, out)
			return
		}
		mountdBin.err = os.Symlink("mountd", mountdBin.helper)
	})
	if mountdBin.err != nil {
		t.Fatal(mountdBin.err)
	}
	return mountdBin.path, mountdBin.helper
}

// addLocalMount adds a UFS mount of a new local directory at path, with
// options, and returns the directory.
func addLocalMount(t *testing.T, c *cluster, path string, options map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.client(client.Config{}).AddMount(ctx, &pb.AddMountRequest{Path: path, Uri: "file://" + dir, Options: options}); err != nil {
		t.Fatalf("add mount %s: %v", path, err)
	}
	return dir
}

// mounted says whether dir is a mount point, from /proc/self/mountinfo.
func mounted(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && fields[4] == dir {
			return true
		}
	}
	return false
}

// forceUnmount detaches whatever is mounted on dir (a mount whose daemon
// died stays until unmounted).
func forceUnmount(dir string) {
	for mounted(dir) {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			return
		}
	}
}

// host is one mountd process: one compute host's mount.
type host struct {
	t                   *testing.T
	name                string
	spec, mnt, cacheDir string
	opts                string
	logPath             string

	cmd    *exec.Cmd
	exited chan struct{}
}

// newHost prepares a mount of the namespace path subtree on a fresh mount
// point with its own cache directory; start mounts it. The mount is always
// unmounted at the end of the test.
func newHost(t *testing.T, c *cluster, name, path, opts string) *host {
	t.Helper()
	needMountd(t)
	dir := t.TempDir()
	h := &host{
		t: t, name: name,
		spec:     strings.Join(c.rpcAddrs(), ",") + ":" + path,
		mnt:      filepath.Join(dir, "mnt"),
		cacheDir: filepath.Join(dir, "cache"),
		opts:     c.sec.mountOpts(opts),
		logPath:  filepath.Join(dir, "mountd.log"),
	}
	if err := os.Mkdir(h.mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.cleanup)
	return h
}

// start runs mountd in the foreground and waits until it reports the mount
// ready.
func (h *host) start() {
	h.t.Helper()
	args := []string{"--cache-dir", h.cacheDir, "--cache-size", "256M"}
	if h.opts != "" {
		args = append(args, "-o", h.opts)
	}
	var line string
	h.cmd, h.exited, line = runMountd(h.t, h.logPath, append(args, h.spec, h.mnt)...)
	if line != "ready" {
		h.t.Fatalf("%s: mountd did not get ready: %q\n%s", h.name, line, h.log())
	}
}

// runMountd starts mountd with args and --ready-fd, its output appended to
// logPath, and returns the process, a channel closed when it has exited, and
// the first line it wrote to the ready pipe ("ready" once the mount is up).
func runMountd(tb testing.TB, logPath string, args ...string) (*exec.Cmd, chan struct{}, string) {
	tb.Helper()
	mountd, _ := needMountd(tb)
	pr, pw, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	defer pr.Close()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		pw.Close()
		tb.Fatal(err)
	}
	cmd := exec.Command(mountd, append([]string{"--ready-fd", "3"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{pw}
	if err := cmd.Start(); err != nil {
		pw.Close()
		logf.Close()
		tb.Fatal(err)
	}
	pw.Close()
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	line, _ := bufio.NewReader(pr).ReadString('\n')
	return cmd, exited, strings.TrimSpace(line)
}

// path returns name under the mount point.
func (h *host) path(name string) string { return filepath.Join(h.mnt, name) }

// log returns the host's mountd log.
func (h *host) log() string {
	b, _ := os.ReadFile(h.logPath)
	return string(b)
}

// kill SIGKILLs mountd and detaches its dead mount.
func (h *host) kill() {
	h.t.Helper()
	h.cmd.Process.Kill()
	<-h.exited
	h.cmd = nil
	forceUnmount(h.mnt)
}

// umount unmounts with umount(8) and waits for mountd to exit cleanly.
func (h *host) umount() {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := exec.Command("umount", h.mnt).CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) { // busy: a release still in flight
			h.t.Fatalf("umount %s: %v: %s", h.mnt, err, out)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	h.wait(20 * time.Second)
}

// wait waits for mountd to exit with status 0.
func (h *host) wait(timeout time.Duration) {
	h.t.Helper()
	select {
	case <-h.exited:
	case <-time.After(timeout):
		h.t.Fatalf("%s: mountd did not exit within %v of the unmount\n%s", h.name, timeout, h.log())
	}
	if code := h.cmd.ProcessState.ExitCode(); code != 0 {
		h.t.Fatalf("%s: mountd exited with %d\n%s", h.name, code, h.log())
	}
	h.cmd = nil
}

func (h *host) cleanup() {
	if h.cmd != nil {
		h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.exited:
		case <-time.After(20 * time.Second):
			h.t.Errorf("%s: mountd did not stop within 20s of SIGTERM", h.name)
			h.cmd.Process.Kill()
			<-h.exited
		}
	}
	forceUnmount(h.mnt)
	if h.t.Failed() || os.Getenv("SKYFS_TEST_LOGS") != "" {
		h.t.Logf("---- %s mountd log ----\n%s", h.name, tail(h.log(), 16<<10))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

// eventually polls cond until it returns nil or timeout passes, then fails
// with its last error.
func eventually(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// listNames returns the sorted names in dir.
func listNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, nil
}

// checkContent fails unless the file at p holds want.
func checkContent(t *testing.T, p string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, want %d (content differs)", p, len(got), len(want))
	}
}
