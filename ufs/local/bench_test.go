package local_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/skyfs/skyfs/ufs"
)

// BenchmarkList lists a directory of SKYFS_BENCH_FILES files (default 100,000)
// in pages of 1000. Each page scans the directory once (see List), so this
// shows the cost of bounded memory on a large local directory.
func BenchmarkList(b *testing.B) {
	n := 100000
	if v := os.Getenv("SKYFS_BENCH_FILES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("SKYFS_BENCH_FILES=%q", v)
		}
	}
	dir := b.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "many"), 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, "many", fmt.Sprintf("f%07d", i)), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	fsys, err := ufs.Open(b.Context(), "file://"+dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer fsys.Close()
	for b.Loop() {
		count := 0
		opts := ufs.ListOptions{PageSize: 1000}
		for {
			page, err := fsys.List(b.Context(), "many", opts)
			if err != nil {
				b.Fatal(err)
			}
			count += len(page.Entries)
			if page.Next == "" {
				break
			}
			opts.Cursor = page.Next
		}
		if count != n {
			b.Fatalf("listed %d, want %d", count, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
}
