package masterd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skyfs/skyfs/internal/secrets"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// httpGet fetches url and returns the body and status code.
func httpGet(t *testing.T, url string) (string, int) {
	t.Helper()
	c := http.Client{Timeout: 20 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return string(b), resp.StatusCode
}

// metricValue returns the value of the series written exactly as series
// (name and labels in the exposition's order) in a /metrics body.
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: value %q", series, v)
			}
			return f
		}
	}
	t.Fatalf("no series %s in /metrics", series)
	return 0
}

// TestAdminPort runs a master with an admin port and checks its metrics
// and status page over HTTP, before and after namespace operations, a UFS
// mount with a secret option and a snapshot.
func TestAdminPort(t *testing.T) {
	const secret = "s3cr3t-Value-9f8e7d"
	dir := t.TempDir()
	raft, rpc, adminAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	ufsDir := filepath.Join(dir, "ufs")
	os.MkdirAll(filepath.Join(ufsDir, "sub"), 0o755)
	os.WriteFile(filepath.Join(ufsDir, "sub", "f"), []byte("hello"), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- Run(ctx, []string{"--id", "m1", "--data-dir", filepath.Join(dir, "data"), "--raft-addr", raft,
			"--rpc-addr", rpc, "--peers", "m1=" + raft + "=" + rpc, "--heartbeat-timeout", "200ms",
			"--election-timeout", "200ms", "--lease-timeout", "100ms", "--log-level", "error",
			"--admin-addr", adminAddr, "--pprof"}, &stderr)
	}()
	c := adminClient(t, filepath.Join(dir, "data"), rpc, done)
	cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
	defer ccancel()
	if _, err := c.Mkdir(cctx, &pb.MkdirRequest{Path: "/hello", Mode: 0o755}); err != nil {
		t.Fatalf("mkdir: %v (stderr: %s)", err, stderr.String())
	}
	base := "http://" + adminAddr

	before, code := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, name := range []string{
		"skyfs_raft_term", "skyfs_raft_commit_index", "skyfs_raft_applied_index", "skyfs_raft_last_log_index",
		"skyfs_raft_serving 1", `skyfs_raft_role{role="leader"} 1`, `skyfs_raft_role{role="follower"} 0`,
		"skyfs_raft_members 1", "skyfs_journal_apply_duration_seconds_bucket", "skyfs_journal_apply_batch_logs_bucket",
		"skyfs_journal_apply_batch_entries_bucket", "skyfs_journal_entries_applied_total", "skyfs_snapshots_total 0",
		"skyfs_snapshot_last_duration_seconds", "skyfs_snapshot_index", "skyfs_namespace_inodes",
		`skyfs_rpc_duration_seconds_count{code="OK",method="/skyfs.v1.Namespace/Mkdir"}`,
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(before, "\n"+name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	// Operations move the figures: more entries, more RPCs, a UFS mount
	// whose listing reaches the UFS, a snapshot.
	for i := range 5 {
		if _, err := c.Mkdir(cctx, &pb.MkdirRequest{Path: fmt.Sprintf("/hello/d%d", i), Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AddMount(cctx, &pb.AddMountRequest{Path: "/data", Uri: "file://" + ufsDir,
		Options: map[string]string{"s3.secretAccessKey": secret, "note": "plain"}}); err != nil {
		t.Fatalf("add mount: %v", err)
	}
	for _, err := range c.List(cctx, "/data/sub", 100, false) {
		if err != nil {
			t.Fatalf("list /data/sub: %v", err)
		}
	}
	if _, err := c.Checkpoint(cctx); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	after, _ := httpGet(t, base+"/metrics")
	moved := []string{"skyfs_raft_applied_index", "skyfs_raft_commit_index", "skyfs_journal_entries_applied_total",
		"skyfs_journal_apply_duration_seconds_count", "skyfs_namespace_inodes",
		`skyfs_rpc_duration_seconds_count{code="OK",method="/skyfs.v1.Namespace/Mkdir"}`}
	for _, s := range moved {
		if b, a := metricValue(t, before, s), metricValue(t, after, s); a <= b {
			t.Errorf("%s did not grow: %v then %v", s, b, a)
		}
	}
	if n := metricValue(t, after, "skyfs_snapshots_total"); n != 1 {
		t.Errorf("skyfs_snapshots_total = %v after a checkpoint", n)
	}
	if age := metricValue(t, after, "skyfs_snapshot_age_seconds"); age < 0 || age > 600 {
		t.Errorf("skyfs_snapshot_age_seconds = %v just after a checkpoint", age)
	}
	if n := metricValue(t, after, `skyfs_ufs_calls_total{op="list",scheme="file"}`); n < 1 {
		t.Errorf("UFS listings counted: %v", n)
	}
	if n := metricValue(t, after, "skyfs_namespace_mounts"); n != 1 {
		t.Errorf("skyfs_namespace_mounts = %v", n)
	}
	if strings.Contains(after, secret) {
		t.Error("/metrics shows a mount's secret")
	}
	inodes := metricValue(t, after, "skyfs_namespace_inodes")

	page, code := httpGet(t, base+"/")
	if code != http.StatusOK {
		t.Fatalf("status page: %d", code)
	}
	for _, want := range []string{
		"<title>skyfs master m1</title>", `<td id="role">leader (serving)</td>`, "m1 at " + rpc, raft,
		`<td class="leader">leader</td>`, "/data", "file://" + ufsDir, "s3.secretAccessKey=REDACTED", "note=plain",
		fmt.Sprintf(`<td class="num" id="inodes">%d</td>`, int(inodes)), "Newest snapshot index",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(page, secret) {
		t.Error("status page shows a mount's secret")
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Error("status page refers to external assets or scripts")
	}
	if same, _ := httpGet(t, base+"/status"); !strings.Contains(same, "<title>skyfs master m1</title>") {
		t.Error("/status is not the status page")
	}
	if _, code := httpGet(t, base+"/debug/pprof/"); code != http.StatusOK {
		t.Errorf("/debug/pprof/ with --pprof: %d", code)
	}

	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Errorf("exit code %d; stderr: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("masterd did not stop")
	}
	if _, err := http.Get(base + "/metrics"); err == nil {
		t.Error("the admin port still answers after shutdown")
	}
}

func TestAdminConfig(t *testing.T) {
	if _, err := parseArgs([]string{"--pprof"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseArgs([]string{"--id", "m1", "--data-dir", "/x", "--raft-addr", "127.0.0.1:1", "--rpc-addr", "127.0.0.1:2",
		"--peers", "m1=127.0.0.1:1=127.0.0.1:2", "--pprof"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.check(); err == nil || !strings.Contains(err.Error(), "--pprof needs --admin-addr") {
		t.Errorf("--pprof without --admin-addr: %v", err)
	}
	cfg.AdminAddr = "nonsense"
	if _, err := cfg.check(); err == nil {
		t.Error("--admin-addr nonsense accepted")
	}
	cfg.AdminAddr = "127.0.0.1:0"
	if _, err := cfg.check(); err != nil {
		t.Errorf("--admin-addr 127.0.0.1:0: %v", err)
	}
}

func TestDisplayURI(t *testing.T) {
	for uri, want := range map[string]string{
		"s3://bucket/prefix":             "s3://bucket/prefix",
		"s3://user:pw@bucket/p":          "s3://bucket/p",
		"s3://bucket/p?secret=x&token=y": "s3://bucket/p?REDACTED",
		"file:///srv/data":               "file:///srv/data",
	} {
		if got := displayURI(uri); got != want {
			t.Errorf("displayURI(%q) = %q, want %q", uri, got, want)
		}
	}
}

func TestDisplayOptions(t *testing.T) {
	got := displayOptions(map[string]string{"s3.secretAccessKey": "abc", "s3.accessKeyId": "AKIA", "odd": secrets.SealedPrefix + "xyz"})
	if want := "{odd=REDACTED s3.accessKeyId=AKIA s3.secretAccessKey=REDACTED}"; got != want {
		t.Errorf("displayOptions = %q, want %q", got, want)
	}
}

// An admin port in use is a configuration error, found before the journal
// opens.
func TestAdminPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	raft, rpc := freeAddr(t), freeAddr(t)
	var stderr bytes.Buffer
	code := Run(context.Background(), []string{"--id", "m1", "--data-dir", dir, "--raft-addr", raft, "--rpc-addr", rpc,
		"--peers", "m1=" + raft + "=" + rpc, "--admin-addr", l.Addr().String()}, &stderr)
	if code != ExitConfig || !strings.Contains(stderr.String(), "--admin-addr") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "raft.db")); err == nil {
		t.Error("the journal was opened")
	}
}
