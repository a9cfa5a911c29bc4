package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/skyfs/skyfs/internal/miniotest"
)

// A tour block is a fenced sh block of README.md right after a marker line:
//
//	<!-- tour -->                                 run it; it must succeed
//	<!-- tour: background, ready "TEXT" -->       start it, as in a terminal of its own,
//	                                              and go on once it prints TEXT
//
// Every sh block of the README must be a tour block: the README says that
// each one is run.
var (
	tourMarker   = regexp.MustCompile(`^<!-- tour(: background, ready "([^"]+)")? -->$`)
	anyTourMark  = regexp.MustCompile(`^<!--\s*tour\b`)
	exportLine   = regexp.MustCompile(`^\s*(export( [A-Za-z_][A-Za-z0-9_]*=\S*)+)\s*$`)
	errNoTour    = errors.New("no tour blocks")
	tourDeadline = 5 * time.Minute // for one block, or a background block to be ready
)

// tourBlock is one sh block of the tour.
type tourBlock struct {
	line       int    // of the opening fence, 1-based
	script     string // the block's lines
	background bool
	ready      string // what a background block prints once it is ready
}

// tourBlocks returns the tour blocks of a README in order. It fails on an
// sh block without a marker, a marker not followed by an sh block, and a
// README without tour blocks.
func tourBlocks(readme string) ([]tourBlock, error) {
	lines := strings.Split(readme, "\n")
	var blocks []tourBlock
	var marker []string // the submatches of the marker on the previous line
	for i := 0; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], " \t\r")
		if m := tourMarker.FindStringSubmatch(l); m != nil {
			marker = m
			continue
		}
		if anyTourMark.MatchString(l) {
			return nil, fmt.Errorf("README.md:%d: a tour marker is <!-- tour --> or <!-- tour: background, ready \"TEXT\" -->, not %q", i+1, l)
		}
		fence, info, isFence := strings.Cut(l, "```")
		if !isFence || strings.TrimSpace(fence) != "" {
			if marker != nil {
				return nil, fmt.Errorf("README.md:%d: a tour marker must be followed by a ```sh block", i)
			}
			continue
		}
		// An opening fence: find its end.
		end := i + 1
		for end < len(lines) && strings.TrimSpace(lines[end]) != "```" {
			end++
		}
		if end == len(lines) {
			return nil, fmt.Errorf("README.md:%d: a code block without its closing ```", i+1)
		}
		switch {
		case strings.TrimSpace(info) == "sh" && marker == nil:
			return nil, fmt.Errorf("README.md:%d: an sh block without a tour marker: every sh block of the README is run by this test (show configuration or output as text)", i+1)
		case strings.TrimSpace(info) != "sh" && marker != nil:
			return nil, fmt.Errorf("README.md:%d: a tour marker must be followed by a ```sh block, not ```%s", i+1, info)
		case marker != nil:
			blocks = append(blocks, tourBlock{
				line:       i + 1,
				script:     strings.Join(lines[i+1:end], "\n") + "\n",
				background: marker[1] != "",
				ready:      marker[2],
			})
		}
		marker = nil
		i = end
	}
	if marker != nil {
		return nil, errors.New("README.md: a tour marker at the end, without its block")
	}
	if len(blocks) == 0 {
		return nil, errNoTour
	}
	return blocks, nil
}

func TestTourBlocks(t *testing.T) {
	const sh = "```sh\n"
	const end = "```\n"
	good := "intro\n<!-- tour: background, ready \"Press Ctrl-C\" -->\n" + sh + "make run\n" + end +
		"text\n```text\nfstab line\n" + end +
		"<!-- tour -->\n" + sh + "echo a\necho b\n" + end
	blocks, err := tourBlocks(good)
	if err != nil {
		t.Fatal(err)
	}
	want := []tourBlock{
		{line: 3, script: "make run\n", background: true, ready: "Press Ctrl-C"},
		{line: 11, script: "echo a\necho b\n"},
	}
	if fmt.Sprint(blocks) != fmt.Sprint(want) {
		t.Errorf("tourBlocks:\n got %+v\nwant %+v", blocks, want)
	}
	for _, tc := range []struct{ name, readme, want string }{
		{"no blocks", "# skyfs\n```text\nx\n" + end, "no tour blocks"},
		{"sh without marker", "<!-- tour -->\n" + sh + "true\n" + end + sh + "rm -rf /\n" + end, "without a tour marker"},
		{"marker before text", "<!-- tour -->\n```text\nx\n" + end, "not ```text"},
		{"marker before prose", "<!-- tour -->\nprose\n" + sh + "true\n" + end, "must be followed"},
		{"marker at the end", "<!-- tour -->\n" + sh + "true\n" + end + "<!-- tour -->", "at the end"},
		{"marker before the end", "<!-- tour -->\n" + sh + "true\n" + end + "<!-- tour -->\n", "must be followed"},
		{"unclosed", "<!-- tour -->\n" + sh + "true\n", "closing"},
		{"misspelt marker", "<!-- tour: background -->\n" + sh + "true\n" + end, "a tour marker is"},
	} {
		if _, err := tourBlocks(tc.readme); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

// TestReadme runs the README's tour as written, block by block, with bash
// -euo pipefail, as a newcomer would at the repository's root: background
// blocks as in terminals of their own, the export lines they print (make
// run's `export SKYFS_MASTERS=...`) pasted into every later block, and a real
// MinIO bucket in MINIO_ENDPOINT, MINIO_BUCKET, MINIO_ACCESS_KEY and
// MINIO_SECRET_KEY. Any failing command fails the test; so does a README
// without a tour.
//
// The blocks run in a temporary directory that stands for the repository's
// root, so that the tour's state, mount points and ports are its own: bin is
// a link to the repository's bin, its Makefile runs `make run` in the
// repository with SKYFS_RUN_STATE, SKYFS_RUN_MNT and SKYFS_RUN_PORT pointing
// at ./.skyfs, ./mnt and free ports. At the end, Ctrl-C (SIGINT) stops the
// background blocks, last first, and nothing may stay mounted or running.
func TestReadme(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	for _, tool := range []string{"make", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := tourBlocks(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t)

	root := t.TempDir()
	if err := os.Symlink(filepath.Join(repo, "bin"), filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	makefile := fmt.Sprintf(".PHONY: run\nrun:\n\t@$(MAKE) --no-print-directory -C %s run\n", repo)
	if err := os.WriteFile(filepath.Join(root, "Makefile"), []byte(makefile), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"SKYFS_RUN_STATE=" + filepath.Join(root, ".skyfs"),
		"SKYFS_RUN_MNT=" + filepath.Join(root, "mnt"),
		"SKYFS_RUN_PORT=" + strconv.Itoa(freePortRange(t, 31)),
		"MINIO_ENDPOINT=" + srv.Endpoint,
		"MINIO_BUCKET=" + bucket,
		"MINIO_ACCESS_KEY=" + srv.AccessKey,
		"MINIO_SECRET_KEY=" + srv.SecretKey,
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SKYFS_") && !strings.HasPrefix(kv, "MINIO_") && !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}

	var bg []*tourProc
	t.Cleanup(func() {
		for _, p := range bg {
			p.kill()
		}
		killRunDaemons(root)
		for _, m := range mountsUnder(root) {
			forceUnmount(m)
		}
	})
	var exports []string // what the background blocks asked to export
	for _, b := range blocks {
		script := "set -euo pipefail\n" + strings.Join(exports, "\n") + "\n" + b.script
		if !b.background {
			out, err := runTourBlock(root, env, script)
			t.Logf("README.md:%d:\n%s%s", b.line, b.script, out)
			if err != nil {
				t.Fatalf("README.md:%d: the tour block failed: %v\n%s\n%s", b.line, err, b.script, out)
			}
			continue
		}
		p, err := startTourBlock(root, env, script, b)
		if p != nil {
			bg = append(bg, p)
		}
		if err != nil {
			t.Fatalf("README.md:%d: %v\n%s\n%s", b.line, err, b.script, p.output())
		}
		for _, l := range strings.Split(p.output(), "\n") {
			if m := exportLine.FindStringSubmatch(l); m != nil {
				exports = append(exports, m[1])
			}
		}
	}

	// The tour mounted the bucket and wrote through skyfs: the bucket has it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var objects []string
	for o := range srv.Client().ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list the bucket: %v", o.Err)
		}
		objects = append(objects, o.Key)
	}
	if len(objects) == 0 {
		t.Error("the tour left nothing in its MinIO bucket; it is meant to write a file there")
	}

	// Ctrl-C in each terminal, the last started first.
	for i := len(bg) - 1; i >= 0; i-- {
		if err := bg[i].interrupt(time.Minute); err != nil {
			t.Errorf("README.md:%d: %v\n%s", bg[i].block.line, err, bg[i].output())
		}
	}
	if m := mountsUnder(root); len(m) > 0 {
		t.Errorf("still mounted after the tour stopped: %v", m)
	}
	if pids := runDaemons(root); len(pids) > 0 {
		t.Errorf("daemons still running after the tour stopped: %v", pids)
	}
}

// runTourBlock runs script with bash in dir and returns what it printed.
func runTourBlock(dir string, env []string, script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), tourDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second // a daemon it left holding the output
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("not done after %v", tourDeadline)
	}
	return string(out), err
}

// tourProc is a background tour block: a bash in a process group of its
// own, as in a terminal.
type tourProc struct {
	block tourBlock
	cmd   *exec.Cmd
	done  chan struct{} // closed when it has exited and its output is read
	mu    sync.Mutex
	out   bytes.Buffer
}

// startTourBlock starts script, b's with what precedes it, with bash in dir
// and waits until it prints b.ready. On an error the process, if one
// started, is returned too.
func startTourBlock(dir string, env []string, script string, b tourBlock) (*tourProc, error) {
	ready := b.ready
	p := &tourProc{block: b, cmd: exec.Command("bash", "-c", script), done: make(chan struct{})}
	p.cmd.Dir, p.cmd.Env = dir, env
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.WaitDelay = 10 * time.Second
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	isReady := make(chan struct{})
	go func() { p.cmd.Wait(); pw.Close() }()
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if !sent && strings.Contains(sc.Text(), ready) {
				close(isReady)
				sent = true
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case <-isReady:
		return p, nil
	case <-p.done:
		return p, fmt.Errorf("exited (%v) before it printed %q", p.cmd.ProcessState, ready)
	case <-time.After(tourDeadline):
		return p, fmt.Errorf("did not print %q within %v", ready, tourDeadline)
	}
}

func (p *tourProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// interrupt sends SIGINT to the process group, as Ctrl-C in its terminal
// does, and waits for it to exit.
func (p *tourProc) interrupt(timeout time.Duration) error {
	select {
	case <-p.done:
		return fmt.Errorf("exited (%v) before the end of the tour", p.cmd.ProcessState)
	default:
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("still running %v after Ctrl-C", timeout)
	}
}

// kill ends what is left of the process group.
func (p *tourProc) kill() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
	}
}

// mountsUnder returns the mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var ms []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			ms = append([]string{f[4]}, ms...)
		}
	}
	return ms
}

func TestExportLine(t *testing.T) {
	for line, want := range map[string]string{
		"  export SKYFS_MASTERS=127.0.0.1:7701,127.0.0.1:7702":       "export SKYFS_MASTERS=127.0.0.1:7701,127.0.0.1:7702",
		"  export SKYFS_MASTERS=a:1 SKYFS_TOKEN_FILE=/s/admin.token": "export SKYFS_MASTERS=a:1 SKYFS_TOKEN_FILE=/s/admin.token",
		"  echo hello > /mnt/hello.txt":                              "",
		"  export SKYFS_MASTERS=a:1 && rm -rf /":                     "",
		"Mount a bucket: export is done by make run":                 "",
	} {
		got := ""
		if m := exportLine.FindStringSubmatch(line); m != nil {
			got = m[1]
		}
		if got != want {
			t.Errorf("%q: %q, want %q", line, got, want)
		}
	}
}
