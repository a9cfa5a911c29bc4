package csi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// exitPoll is how often a wait for a process's exit looks at its context;
// the exit itself is an event on the process's pidfd.
const exitPoll = 100 * time.Millisecond

// memFile returns a memory file (memfd) holding data, mode 0600, for a child
// to inherit: mountd opens it as /proc/self/fd/N, a root-only regular file,
// and nothing of it reaches a disk.
func memFile(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("memfd: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("memfd: %w", err)
	}
	return f, nil
}

// mountdArgs are the arguments of the mount daemon of rec, whose secrets are
// inherited as descriptors: fd 3 is the ready pipe, then the memory files of
// cred in the order token, CA, certificate, key.
func mountdArgs(rec *record, cred Credentials, mountTimeout time.Duration) []string {
	args := []string{"--ready-fd", "3", "--cache-dir", rec.CacheDir, "--mount-timeout", mountTimeout.String()}
	if rec.Attrs.CacheSize > 0 {
		args = append(args, "--cache-size", strconv.FormatInt(rec.Attrs.CacheSize, 10))
	}
	fd := 4
	next := func() string {
		p := "/proc/self/fd/" + strconv.Itoa(fd)
		fd++
		return p
	}
	if len(cred.Token) > 0 {
		args = append(args, "--token-file", next())
	}
	if cred.tlsEnabled() {
		args = append(args, "--tls-ca-file", next(), "--tls-cert-file", next(), "--tls-key-file", next())
	}
	if len(rec.Options) > 0 {
		args = append(args, "-o", strings.Join(rec.Options, ","))
	}
	if rec.ReadOnly {
		args = append(args, "--ro")
	}
	return append(args, strings.Join(rec.Attrs.Masters, ",")+":"+rec.Attrs.Path, rec.Target)
}

// startMountd starts rec's mount daemon in a session of its own, its output
// appended to rec.LogFile, and fills rec.PID, rec.StartTime and rec.Args.
// It returns the read end of the ready pipe and a channel closed once the
// daemon has exited, while this plugin is its parent.
func (n *nodeServer) startMountd(rec *record, cred Credentials) (io.ReadCloser, <-chan struct{}, error) {
	rec.Args = mountdArgs(rec, cred, n.d.cfg.MountTimeout)
	var inherit []*os.File
	defer func() {
		for _, f := range inherit {
			f.Close()
		}
	}()
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	inherit = append(inherit, pw)
	for _, s := range []struct {
		name string
		data []byte
		on   bool
	}{
		{"token", cred.Token, len(cred.Token) > 0},
		{"ca.crt", cred.CA, cred.tlsEnabled()},
		{"tls.crt", cred.Cert, cred.tlsEnabled()},
		{"tls.key", cred.Key, cred.tlsEnabled()},
	} {
		if !s.on {
			continue
		}
		f, err := memFile(s.name, s.data)
		if err != nil {
			pr.Close()
			return nil, nil, err
		}
		inherit = append(inherit, f)
	}
	logf, err := os.OpenFile(rec.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		pr.Close()
		return nil, nil, err
	}
	defer logf.Close()
	cmd := exec.Command(n.d.cfg.MountdPath, rec.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = mountdEnv(os.Environ())
	cmd.ExtraFiles = inherit
	cmd.Dir = "/"
	// A session of its own: no signal meant for the plugin's process group
	// reaches it, and it stays when the plugin exits.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		pr.Close()
		return nil, nil, fmt.Errorf("start mountd: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait() // reaps it while this plugin is its parent
		close(exited)
	}()
	rec.PID = cmd.Process.Pid
	start, _, err := procStartTime(rec.PID)
	if err != nil {
		// It has exited already; the ready pipe says so.
		start = 0
	}
	rec.StartTime = start
	return pr, exited, nil
}

// mountdEnv is the environment of a mount daemon: the plugin's without
// the SKYFS_ variables, so that a volume's credentials are those of its
// request only (mountd reads $SKYFS_TOKEN_FILE when given no token file).
func mountdEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "SKYFS_") {
			out = append(out, kv)
		}
	}
	return out
}

// readReady waits for the daemon's first line on the ready pipe: nil for
// "ready", else its error. ctx bounds the wait.
func readReady(ctx context.Context, pr io.ReadCloser) error {
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(pr).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		pr.Close()
		switch {
		case s == "ready":
			return nil
		case strings.HasPrefix(s, "error: "):
			return errors.New(strings.TrimPrefix(s, "error: "))
		case s == "":
			return errors.New("mountd exited before the mount was ready")
		}
		return fmt.Errorf("mountd said %q", s)
	case <-ctx.Done():
		pr.Close() // ends the reader
		return ctx.Err()
	}
}

// waitExit waits until process pid, started at start, has exited: an event
// on its pidfd, which works for a daemon a previous run of the plugin
// started as well as for a child.
func waitExit(ctx context.Context, pid int, start uint64) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(fd)
	// Checked after opening the pidfd, which pins the process: a later
	// process with the same id is not the daemon.
	if s, zombie, err := procStartTime(pid); err != nil || zombie || s != start {
		return nil
	}
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(exitPoll/time.Millisecond))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll pidfd: %w", err)
		}
		if n > 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// signalDaemon sends sig to the daemon of rec if it still runs.
func signalDaemon(rec *record, sig syscall.Signal) {
	fd, err := unix.PidfdOpen(rec.PID, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if s, _, err := procStartTime(rec.PID); err != nil || s != rec.StartTime {
		return
	}
	unix.PidfdSendSignal(fd, sig, nil, 0)
}

// logTail returns the last line of a daemon's log, for an error message
// (mountd logs no secret).
func logTail(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 512 {
		s = s[len(s)-512:]
	}
	return s
}
