package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skyfs/skyfs/internal/fsbench"
	"github.com/skyfs/skyfs/internal/mountctl"
)

func TestVersion(t *testing.T) {
	got := run([]string{"version"}, nil)
	if got.code != 0 || !strings.HasPrefix(got.stdout, "skyfs ") || !strings.Contains(got.stdout, runtime.Version()) {
		t.Errorf("version: %+v", got)
	}
	old := Version
	Version = "v1.2.3"
	defer func() { Version = old }()
	got = run([]string{"version", "--output", "json"}, nil)
	var v versionJSON
	if err := json.Unmarshal([]byte(got.stdout), &v); err != nil || v.Version != "v1.2.3" || v.GoVersion != runtime.Version() {
		t.Errorf("version json %q: %+v %v", got.stdout, v, err)
	}
	if got := run([]string{"version", "extra"}, nil); got.code != 2 || !strings.Contains(got.stderr, `unexpected argument "extra"`) {
		t.Errorf("version extra: %+v", got)
	}
}

// tree writes files of the given sizes under a new directory.
func tree(t *testing.T, files map[string]int) string {
	t.Helper()
	dir := t.TempDir()
	for name, size := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Repeat([]byte{'x'}, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoad(t *testing.T) {
	dir := tree(t, map[string]int{"a": 10, "b/c": 3 << 20, "b/d/e": 0, "f": 5000})
	if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "b", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	const total = 10 + 3<<20 + 5000

	got := run([]string{"load", "--recursive", "--output", "json", dir}, nil)
	var s loadJSON
	if err := json.Unmarshal([]byte(got.stdout), &s); err != nil || got.code != 0 {
		t.Fatalf("load: %+v (%v)", got, err)
	}
	if s.Files != 4 || s.FilesTotal != 4 || s.Bytes != total || s.BytesTotal != total || s.Failed != 0 || s.Interrupted {
		t.Errorf("load summary %+v", s)
	}

	got = run([]string{"load", "-r", "--threads", "1", dir, filepath.Join(dir, "a")}, nil)
	if got.code != 0 || !strings.Contains(got.stdout, "loaded 5 of 5 files") || !strings.Contains(got.stdout, "0 failed") {
		t.Errorf("load text: %+v", got)
	}
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"load", dir}, 2, "is a directory (use --recursive)"},
		{[]string{"load"}, 2, "want PATH"},
		{[]string{"load", "--threads", "0", dir}, 2, "--threads must be at least 1"},
		{[]string{"load", "--frob", dir}, 2, "flag provided but not defined: -frob"},
		{[]string{"load", filepath.Join(dir, "nope")}, 1, "no such file or directory"},
		{[]string{"load", filepath.Join(dir, "b", "fifo")}, 2, "not a regular file or directory"},
	} {
		got := run(c.args, map[string]string{mountctl.EnvRunDir: t.TempDir()})
		if got.code != c.code || !strings.Contains(got.stderr, c.stderr) || strings.Count(got.stderr, "\n") != 1 {
			t.Errorf("skyfs %s: %+v; want exit %d and %q", strings.Join(c.args, " "), got, c.code, c.stderr)
		}
	}
	if got := run([]string{"load", "--help"}, nil); got.code != 0 || !strings.Contains(got.stdout, "Usage: skyfs load") {
		t.Errorf("load --help: %+v", got)
	}
}

// slowReader delays every read.
type slowReader struct {
	io.ReadCloser
	d time.Duration
}

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(s.d)
	return s.ReadCloser.Read(p[:min(len(p), 1000)])
}

func TestLoadFailuresAndProgress(t *testing.T) {
	dir := tree(t, map[string]int{"ok1": 3000, "bad": 100, "sub/ok2": 3000})
	bad := filepath.Join(dir, "bad")
	old := openForLoad
	defer func() { openForLoad = old }()
	openForLoad = func(p string) (io.ReadCloser, error) {
		if p == bad {
			return nil, &os.PathError{Op: "open", Path: p, Err: syscall.EIO}
		}
		f, err := os.Open(p)
		return slowReader{f, 5 * time.Millisecond}, err
	}
	got := run([]string{"load", "-r", "--threads", "2", "--progress-every", "2ms", "--output", "json", dir}, nil)
	var s loadJSON
	if err := json.Unmarshal([]byte(got.stdout), &s); err != nil {
		t.Fatalf("load: %+v (%v)", got, err)
	}
	if got.code != 1 || s.Files != 2 || s.Failed != 1 || s.Bytes != 6000 || len(s.Errors) != 1 || s.Errors[0].Path != bad {
		t.Errorf("load with a bad file: exit %d, %+v", got.code, s)
	}
	if !strings.Contains(got.stderr, "skyfs: load "+bad+": open: input/output error\n") ||
		!strings.Contains(got.stderr, "files could not be read") {
		t.Errorf("stderr %q", got.stderr)
	}
	if !strings.Contains(got.stderr, "/3 files, ") || !strings.Contains(got.stderr, "ETA") {
		t.Errorf("no progress lines in %q", got.stderr)
	}

	// A cancelled run (Ctrl-C) stops and says so.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	code := Run(ctx, []string{"load", "-r", dir}, Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	if code != 1 || !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("cancelled load: exit %d, %q %q", code, out.String(), errb.String())
	}
}

func TestLoadProgressLine(t *testing.T) {
	l := &loader{}
	l.listing.Store(true)
	l.filesTotal.Store(10)
	l.bytesTotal.Store(4 << 20)
	if got := l.line(true); got != "listing: 10 files, 4.0 MiB so far" {
		t.Errorf("progress while listing %q", got)
	}
	l.listing.Store(false)
	l.startNs.Store(time.Now().Add(-2 * time.Second).UnixNano())
	l.done.Store(5)
	l.bytes.Store(2 << 20)
	got := l.line(true)
	for _, want := range []string{"[===============               ]", "5/10 files", "2.0 MiB/4.0 MiB", "ETA 2s"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress %q lacks %q", got, want)
		}
	}
}

const metricsText = `# HELP skyfs_cache_hits_total Block reads served from the cache.
# TYPE skyfs_cache_hits_total counter
skyfs_cache_hits_total 30
skyfs_cache_misses_total 10
skyfs_cache_read_bytes_total{source="cache"} 1.2e+08
skyfs_cache_read_bytes_total{source="ufs"} 4.194304e+07
skyfs_cache_loads_total 10
skyfs_cache_readaheads_total 4
skyfs_cache_evictions_total 2
skyfs_cache_corrupt_blocks_total 1
skyfs_cache_bypasses_total 0
skyfs_cache_used_bytes 4.2e+07
skyfs_cache_capacity_bytes 1.073741824e+09
skyfs_cache_entries 3
skyfs_cache_blocks 11
skyfs_cache_block_size_bytes 4.194304e+06
skyfs_fuse_op_duration_seconds_bucket{op="read",le="+Inf"} 7
go_goroutines 12
`

func TestCacheStats(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			io.WriteString(w, metricsText)
		case "/other/metrics":
			io.WriteString(w, "go_goroutines 3\n")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	got := run([]string{"cache", "stats", "--admin-addr", addr, "--output", "json"}, nil)
	var st cacheStatsJSON
	if err := json.Unmarshal([]byte(got.stdout), &st); err != nil || got.code != 0 {
		t.Fatalf("cache stats: %+v (%v)", got, err)
	}
	if st.Hits != 30 || st.Misses != 10 || st.BytesFromCache != 120e6 || st.BytesFromUFS != 40<<20 || st.Files != 3 ||
		st.Blocks == nil || *st.Blocks != 11 || st.CapacityBytes != 1<<30 || st.UsedBytes != 42e6 || st.Evictions != 2 || st.CorruptBlocks != 1 {
		t.Errorf("cache stats %+v", st)
	}
	got = run([]string{"cache", "stats", "--admin-addr", srv.URL}, nil)
	for _, want := range []string{"capacity:", "1.0 GiB", "hits:", "75.0% of block reads", "blocks:", "11 of 4.0 MiB", "bytes from UFS:", "40.0 MiB", "corrupt blocks:"} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("cache stats text lacks %q:\n%s", want, got.stdout)
		}
	}
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"cache", "stats"}, 2, "no skyfs mount daemon on this host"},
		{[]string{"cache", "stats", "--admin-addr", addr, "x"}, 2, `unexpected argument "x"`},
		{[]string{"cache", "stats", "--admin-addr", srv.URL + "/other"}, 1, "not a mount daemon's metrics: no skyfs_cache_capacity_bytes"},
		{[]string{"cache", "stats", "--admin-addr", srv.URL + "/missing"}, 1, "404 Not Found"},
		{[]string{"cache", "frob"}, 2, `unknown command "cache frob"`},
	} {
		got := run(c.args, map[string]string{mountctl.EnvRunDir: t.TempDir()})
		if got.code != c.code || !strings.Contains(got.stderr, c.stderr) || strings.Count(got.stderr, "\n") != 1 {
			t.Errorf("skyfs %s: %+v; want exit %d and %q", strings.Join(c.args, " "), got, c.code, c.stderr)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "8M": 8 << 20, "1G": 1 << 30, "1g": 1 << 30,
		"2GiB": 2 << 30, "512KB": 512 << 10, "1T": 1 << 40} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1", "1X", "1.5G", "99999999999T"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

func TestBench(t *testing.T) {
	dir := t.TempDir()
	got := run([]string{"bench", dir, "--size", "64K", "--files", "5", "--threads", "2", "--json"}, nil)
	var rs []fsbench.Result
	if err := json.Unmarshal([]byte(got.stdout), &rs); err != nil || got.code != 0 {
		t.Fatalf("bench: %+v (%v)", got, err)
	}
	if len(rs) != 8 || rs[1].Name != "seq-read-cold" || rs[1].Bytes != 64<<10 || rs[4].Ops != 5 {
		t.Errorf("bench results %+v", rs)
	}
	got = run([]string{"bench", "--size", "16K", "--files", "2", dir}, nil)
	if got.code != 0 || !strings.HasPrefix(got.stdout, "benchmark ") || !strings.Contains(got.stdout, "small-unlink") {
		t.Errorf("bench table: %+v", got)
	}
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"bench"}, 2, "want DIR"},
		{[]string{"bench", "--size", "1X", dir}, 2, `--size "1X": not a size`},
		{[]string{"bench", "--size", "1K", dir}, 2, "at least 4K"},
		{[]string{"bench", "--files", "0", dir}, 2, "--files must be at least 1"},
		{[]string{"bench", "--threads", "-1", dir}, 2, "--threads must be at least 1"},
		{[]string{"bench", file}, 2, "is not a directory"},
		{[]string{"bench", filepath.Join(dir, "nope")}, 1, "no such file or directory"},
	} {
		got := run(c.args, map[string]string{mountctl.EnvRunDir: t.TempDir()})
		if got.code != c.code || !strings.Contains(got.stderr, c.stderr) || strings.Count(got.stderr, "\n") != 1 {
			t.Errorf("skyfs %s: %+v; want exit %d and %q", strings.Join(c.args, " "), got, c.code, c.stderr)
		}
	}
	if got := run([]string{"bench", "--help"}, nil); got.code != 0 || !strings.Contains(got.stdout, `What "cold" means`) {
		t.Errorf("bench --help: %+v", got)
	}
}
