package fsbench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunOnLocalDisk(t *testing.T) {
	dir := t.TempDir()
	dropped := false
	rs, err := Run(context.Background(), Config{
		Dir: dir, BigFileSize: 3<<20 + 17, BlockSize: 64 << 10, RandomReads: 50,
		SmallFiles: 40, SmallFileSize: 100, Threads: 3,
		DropCache: func(_ context.Context, path string) error {
			dropped = filepath.Dir(filepath.Dir(path)) == dir
			return DropPageCache(path)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"seq-write", "seq-read-cold", "seq-read-warm", "rand-read-4k", "small-create", "small-stat", "small-read", "small-unlink"}
	if len(rs) != len(want) {
		t.Fatalf("%d results, want %d", len(rs), len(want))
	}
	for i, r := range rs {
		if r.Name != want[i] || r.Ops <= 0 || r.Secs <= 0 || r.OpsPS <= 0 || r.P50Us > r.P99Us {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if rs[0].Bytes != 3<<20+17 || rs[1].Bytes != 3<<20+17 || rs[4].Ops != 40 || rs[7].Ops != 40 {
		t.Errorf("byte or op counts: %+v", rs)
	}
	if !dropped {
		t.Error("DropCache not called before the cold read")
	}
	// The benchmark cleans up after itself.
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
	var buf bytes.Buffer
	if err := Table(&buf, rs); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(buf.String(), "\n"); lines != len(want)+1 {
		t.Errorf("table of %d lines:\n%s", lines, buf.String())
	}
}

func TestRunFailsClearly(t *testing.T) {
	_, err := Run(context.Background(), Config{Dir: filepath.Join(t.TempDir(), "missing")})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("error %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, Config{Dir: t.TempDir(), BigFileSize: 1 << 20}); err == nil {
		t.Fatal("cancelled run succeeded")
	}
}
