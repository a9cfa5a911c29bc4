package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyfs/skyfs/internal/fsbench"
)

// cacheFigures is the part of skyfs cache stats --output json the test
// checks.
type cacheFigures struct {
	UsedBytes      int64  `json:"used_bytes"`
	Files          int64  `json:"files"`
	Blocks         *int64 `json:"blocks"`
	BytesFromCache int64  `json:"bytes_from_cache"`
	BytesFromUFS   int64  `json:"bytes_from_ufs"`
	CorruptBlocks  int64  `json:"corrupt_blocks"`
}

// TestCLITools: skyfs load fills a mount daemon's block cache with a tree
// written straight into the UFS, skyfs cache stats shows it there, and
// skyfs bench runs against the mount with a cold read that comes from the
// UFS.
func TestCLITools(t *testing.T) {
	c := newCluster(t, 3)
	ufsDir := addLocalMount(t, c, "/tools", nil)
	sizes := map[string]int{"a": 5<<20 + 7, "b": 1 << 20, "c": 100_000, "sub/d": 2 << 20, "sub/deeper/e": 1}
	var total int64
	for name, n := range sizes {
		p := filepath.Join(ufsDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, randomData(uint64(n), n), 0o644); err != nil {
			t.Fatal(err)
		}
		total += int64(n)
	}
	const wantBlocks = 2 + 1 + 1 + 1 + 1 // 4 MiB blocks

	admin := freeAddrs(t, 1)[0]
	h := newHost(t, c, "A", "/tools", "admin_addr="+admin)
	h.start()
	stats := func() cacheFigures {
		t.Helper()
		code, out, errOut := c.cli("cache", "stats", "--admin-addr", admin, "--output", "json")
		var f cacheFigures
		if err := json.Unmarshal([]byte(out), &f); code != 0 || err != nil {
			t.Fatalf("skyfs cache stats: exit %d %v: %s %s", code, err, out, errOut)
		}
		return f
	}
	if f := stats(); f.BytesFromUFS != 0 || f.Files != 0 || f.Blocks == nil || *f.Blocks != 0 {
		t.Fatalf("cache before load: %+v", f)
	}

	// A directory needs --recursive.
	if code, _, errOut := c.cli("load", h.mnt); code != 2 || !strings.Contains(errOut, "use --recursive") {
		t.Errorf("load of a directory: exit %d %q", code, errOut)
	}
	type summary struct {
		Files, FilesTotal, Bytes, BytesTotal, Failed int64
	}
	load := func(p string) summary {
		t.Helper()
		code, out, errOut := c.cli("load", p, "--recursive", "--threads", "3", "--output", "json")
		var s struct {
			Files      int64 `json:"files"`
			FilesTotal int64 `json:"files_total"`
			Bytes      int64 `json:"bytes"`
			BytesTotal int64 `json:"bytes_total"`
			Failed     int64 `json:"failed"`
		}
		if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil {
			t.Fatalf("skyfs load: exit %d %v: %s %s", code, err, out, errOut)
		}
		return summary(s)
	}
	want := summary{int64(len(sizes)), int64(len(sizes)), total, total, 0}
	if s := load(h.mnt); s != want {
		t.Errorf("load summary %+v, want %+v", s, want)
	}
	// A block is handed to its reader before it is written to the cache
	// file; load returns once the last ones are stored.
	f := stats()
	if f.BytesFromUFS < total || f.UsedBytes < total || f.Files != int64(len(sizes)) || *f.Blocks != wantBlocks || f.CorruptBlocks != 0 {
		t.Fatalf("cache right after the load of %d bytes in %d blocks: %+v", total, wantBlocks, f)
	}
	// Loading again, by namespace path, reads nothing more from the UFS.
	if s := load("/tools"); s != want {
		t.Errorf("second load summary %+v, want %+v", s, want)
	}
	if g := stats(); g.BytesFromUFS != f.BytesFromUFS || *g.Blocks != wantBlocks {
		t.Errorf("second load fetched from the UFS: before %+v, after %+v", f, g)
	}
	if code, out, _ := c.cli("cache", "stats", "--admin-addr", admin); code != 0 || !strings.Contains(out, "blocks:") {
		t.Errorf("cache stats text: exit %d\n%s", code, out)
	}

	// The benchmark set against the mount; its cold read comes from the UFS.
	const size = 8 << 20
	code, out, errOut := c.cli("bench", h.mnt, "--size", "8M", "--files", "50", "--json")
	var rs []fsbench.Result
	if err := json.Unmarshal([]byte(out), &rs); code != 0 || err != nil {
		t.Fatalf("skyfs bench: exit %d %v: %s %s", code, err, out, errOut)
	}
	rows := []string{"seq-write", "seq-read-cold", "seq-read-warm", "rand-read-4k", "small-create", "small-stat", "small-read", "small-unlink"}
	if len(rs) != len(rows) {
		t.Fatalf("bench: %d rows, want %d: %s", len(rs), len(rows), out)
	}
	for i, r := range rs {
		if r.Name != rows[i] || r.Ops <= 0 || r.Secs <= 0 || r.OpsPS <= 0 || r.P50Us <= 0 || r.P99Us < r.P50Us ||
			(r.Bytes > 0) != (r.MBps > 0) {
			t.Errorf("bench row %d: %+v", i, r)
		}
	}
	for _, i := range []int{0, 1, 2} {
		if rs[i].Bytes != size || rs[i].MBps <= 0 {
			t.Errorf("bench row %s: %+v", rs[i].Name, rs[i])
		}
	}
	if g := stats(); g.BytesFromUFS-f.BytesFromUFS < size {
		t.Errorf("bench's cold read did not come from the UFS: %d bytes from the UFS during the bench", g.BytesFromUFS-f.BytesFromUFS)
	}
	var table bytes.Buffer
	fsbench.Table(&table, rs)
	t.Logf("skyfs bench %s --size 8M --files 50:\n%s", h.mnt, table.String())
	if ents, _ := os.ReadDir(ufsDir); len(ents) != 4 {
		t.Errorf("bench left files behind in the UFS: %v", ents)
	}
}
