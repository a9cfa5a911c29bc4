package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMakeRun runs `make run` as a newcomer would, in the background: the
// namespace is mounted at the mount point, a file written there lands in
// the local root UFS, Ctrl-C (SIGINT to make's process group) leaves
// nothing mounted or running, and a second run serves the same state.
func TestMakeRun(t *testing.T) {
	needMountd(t)
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	state, mnt := filepath.Join(dir, "state"), filepath.Join(dir, "mnt")
	port := freePortRange(t, 31)
	env := append(os.Environ(),
		"SKYFS_RUN_STATE="+state, "SKYFS_RUN_MNT="+mnt, "SKYFS_RUN_PORT="+strconv.Itoa(port))
	t.Cleanup(func() { forceUnmount(mnt); killRunDaemons(state) })

	data := randomData(7, 3<<20+11)
	r := startMakeRun(t, repo, env)
	for _, want := range []string{mnt, state, "Ctrl-C", "skyfs mount /data s3://", "SKYFS_TOKEN_FILE=" + filepath.Join(state, "secrets", "admin.token")} {
		if !strings.Contains(r.banner, want) {
			t.Errorf("make run's message does not mention %q:\n%s", want, r.banner)
		}
	}
	if err := os.WriteFile(filepath.Join(mnt, "hello.txt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	checkContent(t, filepath.Join(mnt, "hello.txt"), data)
	checkContent(t, filepath.Join(state, "ufs", "hello.txt"), data)
	if err := os.Mkdir(filepath.Join(mnt, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.interrupt(t)
	checkRunStopped(t, state, mnt)

	// Again: the same namespace, the file still readable.
	r = startMakeRun(t, repo, env)
	checkContent(t, filepath.Join(mnt, "hello.txt"), data)
	if fi, err := os.Stat(filepath.Join(mnt, "dir")); err != nil || !fi.IsDir() {
		t.Errorf("dir after a restart: %v, %v", fi, err)
	}
	r.interrupt(t)
	checkRunStopped(t, state, mnt)
}

// makeRun is one `make run` in the background.
type makeRun struct {
	cmd    *exec.Cmd
	banner string // what it printed up to "Press Ctrl-C"
	mu     sync.Mutex
	out    bytes.Buffer // everything it printed
	done   chan error
}

func (r *makeRun) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// startMakeRun starts make run in a process group of its own and waits for
// its ready message.
func startMakeRun(t *testing.T, repo string, env []string) *makeRun {
	t.Helper()
	r := &makeRun{cmd: exec.Command("make", "--no-print-directory", "run"), done: make(chan error, 1)}
	r.cmd.Dir, r.cmd.Env = repo, env
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	r.cmd.Stdout, r.cmd.Stderr = pw, pw
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait(); pw.Close() }()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		var banner strings.Builder
		sent := false
		for sc.Scan() {
			r.mu.Lock()
			r.out.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			if !sent {
				banner.WriteString(sc.Text() + "\n")
				if strings.HasPrefix(sc.Text(), "Press Ctrl-C") {
					ready <- banner.String()
					sent = true
				}
			}
		}
	}()
	select {
	case r.banner = <-ready:
	case err := <-r.done:
		t.Fatalf("make run exited before it was ready: %v\n%s", err, r.output())
	case <-time.After(3 * time.Minute):
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("make run not ready after 3 minutes:\n%s", r.output())
	}
	return r
}

// interrupt sends SIGINT to make's process group, as a Ctrl-C in its
// terminal does, and waits for make to exit.
func (r *makeRun) interrupt(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(-r.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("make run did not stop a minute after Ctrl-C:\n%s", r.output())
	}
	if out := r.output(); !strings.Contains(out, "skyfs: stopped") {
		t.Errorf("make run's output after Ctrl-C:\n%s", out)
	}
}

// checkRunStopped fails unless the mount point is unmounted and no daemon
// of the state directory is running.
func checkRunStopped(t *testing.T, state, mnt string) {
	t.Helper()
	if mounted(mnt) {
		t.Errorf("%s is still mounted after make run stopped", mnt)
	}
	if pids := runDaemons(state); len(pids) > 0 {
		t.Errorf("daemons still running after make run stopped: %v", pids)
	}
}

// runDaemons returns the processes whose command line names the state
// directory.
func runDaemons(state string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(state+"/")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func killRunDaemons(state string) {
	for _, pid := range runDaemons(state) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// freePortRange returns the first of n consecutive free loopback ports.
func freePortRange(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(10000)
		var ls []net.Listener
		ok := true
		for p := base; p < base+n && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no range of free ports")
	return 0
}
