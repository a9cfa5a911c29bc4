package cli

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/skyfs/skyfs/internal/mountctl"
)

// fakeDaemon answers a mount daemon's control socket in a run directory and
// records what it was asked.
type fakeDaemon struct {
	info mountctl.Info

	mu      sync.Mutex
	drops   []mountctl.DropRequest
	settles int
}

func (f *fakeDaemon) requests() ([]mountctl.DropRequest, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]mountctl.DropRequest(nil), f.drops...), f.settles
}

func startFakeDaemon(t *testing.T, runDir string, info mountctl.Info) *fakeDaemon {
	t.Helper()
	f := &fakeDaemon{info: info}
	lis, err := net.Listen("unix", mountctl.SocketPath(runDir, info.MountPoint))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+mountctl.PathInfo, func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(f.info)
	})
	mux.HandleFunc("POST "+mountctl.PathDrop, func(w http.ResponseWriter, r *http.Request) {
		var req mountctl.DropRequest
		json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		f.drops = append(f.drops, req)
		f.mu.Unlock()
		if req.Path == "/lake/missing" {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(mountctl.Error{Error: "/lake/missing: no such file or directory"})
			return
		}
		json.NewEncoder(w).Encode(mountctl.DropResult{Files: 2, Blocks: 5, UsedBytes: 4096})
	})
	mux.HandleFunc("POST "+mountctl.PathSettle, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.settles++
		f.mu.Unlock()
		w.Write([]byte("{}"))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })
	return f
}

// The host commands find this host's mount daemons through their control
// sockets: namespace paths map to local ones, load waits for the daemon to
// store what it read, cache drop and cache stats reach the right daemon.
func TestHostCommands(t *testing.T) {
	runDir, err := os.MkdirTemp("", "skyfs-run") // short: a socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	mnt := tree(t, map[string]int{"a": 100, "sub/b": 5000})
	other := tree(t, map[string]int{"x": 1})
	lake := startFakeDaemon(t, runDir, mountctl.Info{PID: 10, MountPoint: mnt, Masters: []string{"m1:7700"}, Path: "/lake",
		Cache: mountctl.CacheStats{CapacityBytes: 1 << 30, UsedBytes: 3 << 20, Files: 2, Blocks: 2, BlockSize: 4 << 20, Hits: 3, Misses: 1}})
	whole := startFakeDaemon(t, runDir, mountctl.Info{PID: 11, MountPoint: other, Masters: []string{"m9:7700"}, Path: "/"})
	// A socket left by a daemon that died is skipped.
	if l, err := net.Listen("unix", mountctl.SocketPath(runDir, "/gone")); err != nil {
		t.Fatal(err)
	} else {
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		l.Close()
	}
	env := map[string]string{mountctl.EnvRunDir: runDir}

	// A namespace path loads through the mount serving it, deepest first.
	got := run([]string{"load", "/lake/sub", "-r", "--output", "json"}, env)
	var s loadJSON
	if err := json.Unmarshal([]byte(got.stdout), &s); err != nil || got.code != 0 || s.Files != 1 || s.Bytes != 5000 {
		t.Fatalf("load /lake/sub: %+v (%v)", got, err)
	}
	if _, settles := lake.requests(); settles != 1 {
		t.Errorf("load did not wait for the daemon to store its blocks: %d settles", settles)
	}
	// A local path in the mount: the same daemon.
	if got := run([]string{"load", filepath.Join(mnt, "a")}, env); got.code != 0 || !strings.Contains(got.stdout, "loaded 1 of 1 files") {
		t.Errorf("load of a local path: %+v", got)
	}
	if _, settles := lake.requests(); settles != 2 {
		t.Errorf("after a local load: %d settles", settles)
	}
	// --masters picks the cluster: m9 mounts "/", which holds /lake too.
	if got := run([]string{"--masters", "m9:7700", "load", "/lake/x"}, env); got.code != 1 || !strings.Contains(got.stderr, "load: /lake/x (through the mount on "+other+"): no such file or directory") {
		t.Errorf("load /lake/x of m9's cluster: %+v", got)
	}

	// cache stats PATH, and without PATH when two daemons run.
	got = run([]string{"cache", "stats", "/lake", "--output", "json"}, env)
	var st cacheStatsJSON
	if err := json.Unmarshal([]byte(got.stdout), &st); err != nil || got.code != 0 || st.MountPoint != mnt || st.UsedBytes != 3<<20 || *st.Blocks != 2 {
		t.Errorf("cache stats /lake: %+v (%v)", got, err)
	}
	if got := run([]string{"cache", "stats", mnt}, env); got.code != 0 || !strings.Contains(got.stdout, "mount:") || !strings.Contains(got.stdout, "75.0% of block reads") {
		t.Errorf("cache stats text: %+v", got)
	}

	// cache drop: a subtree, a mount point, everything, a shrink.
	for _, c := range []struct {
		args       []string
		lake, root []mountctl.DropRequest
		stdout     string
	}{
		{args: []string{"/lake/sub"}, lake: []mountctl.DropRequest{{Path: "/lake/sub"}}, stdout: "dropped the cache of /lake/sub: 2 files, 5 blocks"},
		{args: []string{filepath.Join(mnt, "sub")}, lake: []mountctl.DropRequest{{Path: "/lake/sub"}}},
		{args: []string{mnt}, lake: []mountctl.DropRequest{{}}, stdout: mnt + ": dropped the cache: 2 files"},
		{args: nil, lake: []mountctl.DropRequest{{}}, root: []mountctl.DropRequest{{}}},
		{args: []string{"--to", "1G", mnt}, lake: []mountctl.DropRequest{{To: ptr(int64(1 << 30))}}},
	} {
		lake.mu.Lock()
		lake.drops = nil
		lake.mu.Unlock()
		whole.mu.Lock()
		whole.drops = nil
		whole.mu.Unlock()
		got := run(append([]string{"cache", "drop"}, c.args...), env)
		lakeDrops, _ := lake.requests()
		rootDrops, _ := whole.requests()
		if got.code != 0 || !strings.Contains(got.stdout, c.stdout) || !sameDrops(lakeDrops, c.lake) || !sameDrops(rootDrops, c.root) {
			t.Errorf("cache drop %q: %+v; asked %+v and %+v, want %+v and %+v", c.args, got, lakeDrops, rootDrops, c.lake, c.root)
		}
	}

	// Bad input: one line, non-zero, and nothing dropped.
	lake.mu.Lock()
	lake.drops = nil
	lake.mu.Unlock()
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		// Of m1's cluster only /lake is mounted here.
		{[]string{"--masters", "m1:7700", "load", "/elsewhere/x"}, 1, "no skyfs mount on this host serves it as a namespace path"},
		{[]string{"--masters", "m1:7700", "cache", "drop", "/lake/a", "/elsewhere"}, 1, "/elsewhere: no such file or directory here"},
		{[]string{"cache", "drop", t.TempDir()}, 1, "is not in a skyfs mount of this host"},
		{[]string{"cache", "drop", "--to", "lots", mnt}, 2, `--to "lots": not a size`},
		{[]string{"cache", "drop", "--to", "1G", "/lake/sub"}, 2, "--to shrinks a whole cache"},
		{[]string{"cache", "drop", "relative/path"}, 1, "lstat relative/path: no such file or directory"},
		{[]string{"cache", "stats"}, 2, "2 mount daemons on this host"},
		{[]string{"cache", "stats", "/a", "/b"}, 2, "one PATH"},
	} {
		got := run(c.args, env)
		if got.code != c.code || !strings.Contains(got.stderr, c.stderr) || strings.Count(got.stderr, "\n") != 1 {
			t.Errorf("skyfs %s: %+v; want exit %d and %q", strings.Join(c.args, " "), got, c.code, c.stderr)
		}
	}
	if drops, _ := lake.requests(); len(drops) != 0 {
		t.Errorf("bad input dropped: %+v", drops)
	}
	// A path the daemon cannot resolve: its one-line answer.
	if got := run([]string{"cache", "drop", "/lake/missing"}, env); got.code != 1 || !strings.Contains(got.stderr, "/lake/missing: no such file or directory") {
		t.Errorf("cache drop of a missing path: %+v", got)
	}
}

func ptr[T any](v T) *T { return &v }

func sameDrops(got, want []mountctl.DropRequest) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].Path != want[i].Path || (got[i].To == nil) != (want[i].To == nil) || got[i].To != nil && *got[i].To != *want[i].To {
			return false
		}
	}
	return true
}

// Every command group answers with its subcommands, alone (a usage error)
// or with --help.
func TestGroupHelp(t *testing.T) {
	for _, g := range []string{"cluster", "journal", "cache"} {
		got := run([]string{g, "--help"}, nil)
		if got.code != 0 || !strings.Contains(got.stdout, "Usage: skyfs "+g+" SUBCOMMAND") {
			t.Errorf("%s --help: %+v", g, got)
		}
		for _, c := range commands() {
			if sub, ok := strings.CutPrefix(c.name, g+" "); ok && !strings.Contains(got.stdout, "  "+sub) {
				t.Errorf("%s --help lacks %s:\n%s", g, sub, got.stdout)
			}
		}
		if h := run([]string{"help", g}, nil); h.stdout != got.stdout {
			t.Errorf("help %s: %+v", g, h)
		}
		got = run([]string{g}, nil)
		if got.code != 2 || !strings.Contains(got.stderr, "Usage: skyfs "+g) || !strings.HasSuffix(got.stderr, "skyfs: "+g+": want a subcommand (see skyfs "+g+" --help)\n") {
			t.Errorf("%s alone: %+v", g, got)
		}
	}
	if got := run([]string{"cache", "drop", "--help"}, nil); got.code != 0 || !strings.Contains(got.stdout, "Usage: skyfs cache drop") {
		t.Errorf("cache drop --help: %+v", got)
	}
}

// The bash completion script is valid bash and completes commands,
// subcommands and flags.
func TestCompletion(t *testing.T) {
	got := run([]string{"completion", "bash"}, nil)
	if got.code != 0 {
		t.Fatalf("completion bash: %+v", got)
	}
	script := filepath.Join(t.TempDir(), "skyfs.bash")
	if err := os.WriteFile(script, []byte(got.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ line, want string }{
		{"skyfs ca", "cache"},
		{"skyfs cache ", "stats drop --help"},
		{"skyfs --masters m1:7700 cl", "cluster"},
		{"skyfs cache drop --t", "--timeout --tls-ca-file --tls-cert-file --tls-key-file --to --token-file"},
		{"skyfs ls --output ", "text json"},
		{"skyfs completion ", "bash zsh"},
		{"skyfs --output json st", "stat status"},
		{"skyfs load --threads ", ""},
	} {
		cmd := execBash(t, script, c.line)
		if cmd != c.want {
			t.Errorf("%q completes to %q, want %q", c.line, cmd, c.want)
		}
	}
	if got := run([]string{"completion", "zsh"}, nil); got.code != 0 || !strings.Contains(got.stdout, "bashcompinit") {
		t.Errorf("completion zsh: %+v", got)
	}
	if got := run([]string{"completion", "fish"}, nil); got.code != 2 || !strings.Contains(got.stderr, `"fish": want bash or zsh`) {
		t.Errorf("completion fish: %+v", got)
	}
}

// execBash runs the completion function of script on line (completing its
// last word) and returns the candidates.
func execBash(t *testing.T, script, line string) string {
	t.Helper()
	prog := `source "$1"
read -ra COMP_WORDS <<<"$2"
[[ $2 == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_skyfs
echo "${COMPREPLY[*]}"`
	out, err := exec.Command("bash", "-c", prog, "bash", script, line).Output()
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// skyfs status: the masters, the namespace and this host's mount daemons;
// the masters come from the daemons when none are given.
func TestStatus(t *testing.T) {
	addr := startMaster(t)
	runDir, err := os.MkdirTemp("", "skyfs-run")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	env := map[string]string{mountctl.EnvRunDir: runDir}
	if got := run([]string{"status"}, env); got.code != 2 || !strings.Contains(got.stderr, "status: no masters") {
		t.Errorf("status without masters or daemons: %+v", got)
	}
	if got := run([]string{"mount", "/w", "file://" + t.TempDir()}, map[string]string{EnvMasters: addr}); got.code != 0 {
		t.Fatalf("mount: %+v", got)
	}
	mnt := t.TempDir()
	startFakeDaemon(t, runDir, mountctl.Info{PID: 10, MountPoint: mnt, Masters: []string{addr}, Path: "/w", Started: "2026-01-02T03:04:05Z",
		Cache: mountctl.CacheStats{CapacityBytes: 1 << 30, UsedBytes: 256 << 20, Files: 7}})

	got := run([]string{"status", "--output", "json"}, env)
	var st statusJSON
	if err := json.Unmarshal([]byte(got.stdout), &st); err != nil || got.code != 0 {
		t.Fatalf("status: %+v (%v)", got, err)
	}
	if st.Leader != "m1" || len(st.Masters) != 1 || st.Masters[0].Role != "leader" || st.Masters[0].Lag == nil || *st.Masters[0].Lag != 0 ||
		st.Inodes < 2 || len(st.Mounts) != 1 || st.Mounts[0].Path != "/w" ||
		len(st.MountDaemons) != 1 || st.MountDaemons[0].MountPoint != mnt || st.MountDaemons[0].Cache.Files != 7 || len(st.Errors) != 0 {
		t.Errorf("status: %+v", st)
	}
	got = run([]string{"status"}, env)
	for _, want := range []string{"Masters: 1, leader m1 (" + addr + ")", "Namespace:", "1 UFS mounts", "This host: 1 mount daemons", mnt, "256.0 MiB of 1.0 GiB (25%)"} {
		if got.code != 0 || !strings.Contains(got.stdout, want) {
			t.Errorf("status text lacks %q: %+v", want, got)
		}
	}
	// Masters that do not answer: the host part is still shown, and the
	// exit code says something is wrong.
	got = run([]string{"status", "--masters", freeAddr(t), "--timeout", "1s"}, env)
	if got.code != 1 || !strings.Contains(got.stdout, mnt) || !strings.Contains(got.stderr, "status: masters:") || strings.Count(got.stderr, "\n") != 1 {
		t.Errorf("status with masters down: %+v", got)
	}
}
