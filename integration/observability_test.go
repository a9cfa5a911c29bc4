package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skyfs/skyfs/client"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// newAdminCluster is newCluster with an admin port on every master; it
// returns the admin addresses by node id.
func newAdminCluster(t *testing.T, n int) (*cluster, map[string]string) {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir()}
	c.flags = secureByDefault(nil, filepath.Join(c.dir, "secrets"))
	c.sec = securityOf(c.flags)
	addrs := freeAddrs(t, 3*n)
	admin := make(map[string]string)
	var peers []string
	for i := range n {
		nd := &node{id: fmt.Sprintf("m%d", i+1), raft: addrs[3*i], rpc: addrs[3*i+1]}
		nd.dir = filepath.Join(c.dir, nd.id)
		nd.logPath = filepath.Join(c.dir, nd.id+".log")
		admin[nd.id] = addrs[3*i+2]
		peers = append(peers, nd.id+"="+nd.raft+"="+nd.rpc)
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		nd.extra = []string{"--peers", strings.Join(peers, ","), "--admin-addr", admin[nd.id]}
	}
	t.Cleanup(c.shutdown)
	for _, nd := range c.nodes {
		c.start(nd)
	}
	c.waitLeader(30 * time.Second)
	return c, admin
}

// fetch GETs url and returns the body and status code.
func fetch(t *testing.T, url string) (string, int) {
	t.Helper()
	cl := http.Client{Timeout: 30 * time.Second}
	resp, err := cl.Get(url)
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

// series returns the value of one series of a /metrics body, written as
// the exposition writes it (labels sorted by name); ok is false when the
// series is absent.
func series(body, s string) (float64, bool) {
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, s+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// mustSeries is series, failing the test when the series is absent.
func mustSeries(t *testing.T, body, s string) float64 {
	t.Helper()
	v, ok := series(body, s)
	if !ok {
		t.Fatalf("no series %s in /metrics", s)
	}
	return v
}

// TestObservability runs three masters and a mount daemon with admin ports
// and checks, over HTTP, the masters' status pages and the metrics of both
// kinds of daemon before and after file operations. A UFS mount has a
// secret option, which must show nowhere.
func TestObservability(t *testing.T) {
	needMountd(t)
	const secret = "Obs-S3cret-Value-4b1d"
	c, admin := newAdminCluster(t, 3)
	ufsDir := addLocalMount(t, c, "/data", map[string]string{"s3.secretAccessKey": secret})
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	if err := os.WriteFile(filepath.Join(ufsDir, "pre.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}

	// Status pages: every master shows the three members, the same leader
	// and the mount, redacted.
	leader := c.waitLeader(30 * time.Second)
	for _, nd := range c.nodes {
		var page string
		// A follower applies the mount a little after the leader.
		// The role shown must agree with what the master answers over RPC
		// (asked just before: leadership may move on a loaded machine).
		waitFor(t, 20*time.Second, nd.id+"'s status page with the mount and its role", func() bool {
			m := c.status(nd)
			if m == nil {
				return false
			}
			var code int
			page, code = fetch(t, "http://"+admin[nd.id]+"/")
			role := `<td id="role">follower</td>`
			if m.Role == "leader" {
				role = `<td id="role">leader (serving)</td>`
			}
			return code == http.StatusOK && strings.Contains(page, "/data") && strings.Contains(page, role) &&
				strings.Count(page, `<td class="leader">leader</td>`) == 1
		})
		for _, want := range []string{"<title>skyfs master " + nd.id + "</title>", "m1", "m2", "m3", nd.raft,
			"/data", "file://" + ufsDir, "s3.secretAccessKey=REDACTED", `id="inodes"`} {
			if !strings.Contains(page, want) {
				t.Errorf("%s status page lacks %q", nd.id, want)
			}
		}
		if strings.Contains(page, secret) {
			t.Errorf("%s status page shows the mount's secret", nd.id)
		}
	}
	masterBefore, _ := fetch(t, "http://"+admin[leader.id]+"/metrics")
	if v := mustSeries(t, masterBefore, `skyfs_raft_role{role="leader"}`); v != 1 {
		t.Errorf("leader's skyfs_raft_role{role=leader} = %v", v)
	}

	// A mount daemon with an admin port and pprof.
	mountAdmin := freeAddrs(t, 1)[0]
	h := newHost(t, c, "A", "/", "admin_addr="+mountAdmin+",pprof")
	h.start()
	mountURL := "http://" + mountAdmin
	before, code := fetch(t, mountURL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("mountd /metrics: %d", code)
	}
	for _, name := range []string{
		"skyfs_cache_hits_total", "skyfs_cache_misses_total", `skyfs_cache_read_bytes_total{source="cache"}`,
		"skyfs_cache_evictions_total", "skyfs_cache_corrupt_blocks_total", "skyfs_cache_used_bytes",
		"skyfs_cache_capacity_bytes", "skyfs_fuse_open_handles", "skyfs_fuse_releases_in_progress",
		"go_goroutines",
	} {
		mustSeries(t, before, name)
	}
	if _, code := fetch(t, mountURL+"/debug/pprof/"); code != http.StatusOK {
		t.Errorf("mountd /debug/pprof/ with pprof: %d", code)
	}

	// A cold read (from the UFS), a warm one (from the kernel's page cache,
	// or the block cache, or passthrough: not necessarily the daemon), a
	// write.
	for range 2 {
		got, err := os.ReadFile(h.path("data/pre.bin"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read pre.bin: %d bytes, %v", len(got), err)
		}
	}
	if err := os.WriteFile(h.path("data/new.bin"), data[:300<<10], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.path("data/missing")); err == nil {
		t.Fatal("stat of a missing file succeeded")
	}
	after, _ := fetch(t, mountURL+"/metrics")
	for _, s := range []string{
		`skyfs_fuse_op_duration_seconds_count{op="lookup"}`, `skyfs_fuse_op_duration_seconds_count{op="read"}`,
		`skyfs_fuse_op_duration_seconds_count{op="write"}`, `skyfs_fuse_op_duration_seconds_count{op="create"}`,
		`skyfs_fuse_op_duration_seconds_count{op="open"}`, "skyfs_cache_misses_total",
		`skyfs_cache_read_bytes_total{source="ufs"}`,
	} {
		b, _ := series(before, s)
		if a := mustSeries(t, after, s); a <= b {
			t.Errorf("mountd %s did not grow: %v then %v", s, b, a)
		}
	}
	if n := mustSeries(t, after, `skyfs_ufs_read_bytes_total{scheme="file"}`); n < float64(len(data)) {
		t.Errorf("UFS bytes read %v, want at least %d", n, len(data))
	}
	if n := mustSeries(t, after, `skyfs_ufs_written_bytes_total{scheme="file"}`); n < 300<<10 {
		t.Errorf("UFS bytes written %v, want at least %d", n, 300<<10)
	}
	if n := mustSeries(t, after, `skyfs_ufs_call_duration_seconds_count{op="open",scheme="file"}`); n < 1 {
		t.Errorf("UFS opens timed: %v", n)
	}
	if strings.Contains(after, secret) {
		t.Error("mountd /metrics shows the mount's secret")
	}

	// The leader answered the mount's RPCs and listed the UFS.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.client(client.Config{}).Mkdir(ctx, &pb.MkdirRequest{Path: "/obs", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	leader = c.waitLeader(30 * time.Second)
	masterAfter, _ := fetch(t, "http://"+admin[leader.id]+"/metrics")
	b, _ := series(masterBefore, "skyfs_raft_applied_index")
	if a := mustSeries(t, masterAfter, "skyfs_raft_applied_index"); a <= b {
		t.Errorf("applied index did not move: %v then %v", b, a)
	}
	// Summed over the masters: leadership may have moved meanwhile.
	var lookups, listings float64
	for _, nd := range c.nodes {
		body, _ := fetch(t, "http://"+admin[nd.id]+"/metrics")
		if strings.Contains(body, secret) {
			t.Errorf("%s /metrics shows the mount's secret", nd.id)
		}
		n, _ := series(body, `skyfs_rpc_duration_seconds_count{code="OK",method="/skyfs.v1.Namespace/Lookup"}`)
		lookups += n
		n, _ = series(body, `skyfs_ufs_calls_total{op="list",scheme="file"}`)
		listings += n
		if _, code := fetch(t, "http://"+admin[nd.id]+"/debug/pprof/"); code != http.StatusNotFound {
			t.Errorf("%s serves /debug/pprof/ without --pprof: %d", nd.id, code)
		}
	}
	if lookups < 1 || listings < 1 {
		t.Errorf("the masters timed %v lookups and counted %v UFS listings", lookups, listings)
	}
	h.umount()
}
