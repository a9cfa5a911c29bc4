package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/skyfs/skyfs/internal/bytesize"
	"github.com/skyfs/skyfs/internal/fsbench"
)

// benchOpts are the flags of skyfs bench.
type benchOpts struct {
	size       string
	files      int
	threads    int
	json       bool
	dropCaches bool
}

var benchCmd = &command{
	name:    "bench",
	args:    "DIR [--size 1G] [--files 1000] [--threads N] [--json]",
	summary: "run the standard file system benchmarks in DIR (a skyfs mount, or any directory)",
	help: `Writes a big file of --size sequentially and reads it back cold, warm and
at 10,000 random 4 KiB offsets; then creates, stats, reads and unlinks
--files files of 4 KiB with --threads workers. Everything is written in a
new subdirectory of DIR that is removed at the end. The table gives
operations, operations and MB (10^6 bytes) per second, bytes, and the
median and 99th percentile latency of one operation (one 1 MiB read or
write for the sequential rows).

What "cold" means: the big file is written and closed, then its pages are
dropped from the kernel's page cache (fdatasync + posix_fadvise
DONTNEED). On a skyfs mount the mount daemon's block cache holds nothing
of the file at that point: writes do not go into the block cache, and the
cache is keyed by the file's UFS fingerprint, which the write changed. So
the cold read fetches every block from the UFS (check bytes from UFS with
skyfs cache stats). The UFS's own caches are not dropped: a local
directory UFS may still have the file in the host's page cache unless
--drop-caches (root; drops the page cache of the whole host) is given. On
a local disk, cold means read from the disk. "warm" is the second read:
from the block cache (or, through FUSE passthrough, the cache file).`,
	local: true,
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.StringVar(&o.bench.size, "size", "1G", "`size` of the big file: bytes, or with a K, M, G or T suffix (powers of 1024)")
		fs.IntVar(&o.bench.files, "files", 1000, "number of small files")
		fs.IntVar(&o.bench.threads, "threads", 1, "workers of the small-file benchmarks")
		fs.BoolVar(&o.bench.json, "json", false, "print the results as JSON (same as --output json)")
		fs.BoolVar(&o.bench.dropCaches, "drop-caches", false, "before the cold read also drop the page cache of the whole host (root)")
	},
	run: runBench,
}

func runBench(ctx context.Context, r *runner, args []string) error {
	bo := r.o.bench
	if len(args) != 1 {
		return usagef("bench: want DIR")
	}
	size, err := parseSize(bo.size)
	if err != nil {
		return usagef("bench: --size %q: %v", bo.size, err)
	}
	if size < 4<<10 {
		return usagef("bench: --size %q: at least 4K", bo.size)
	}
	if bo.files < 1 {
		return usagef("bench: --files must be at least 1")
	}
	if bo.threads < 1 {
		return usagef("bench: --threads must be at least 1")
	}
	dir := args[0]
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if !fi.IsDir() {
		return usagef("bench: %s is not a directory", dir)
	}
	cfg := fsbench.Config{
		Dir: dir, BigFileSize: size, SmallFiles: bo.files, Threads: bo.threads,
		DropCache: func(_ context.Context, path string) error {
			if err := fsbench.DropPageCache(path); err != nil {
				return err
			}
			if bo.dropCaches {
				return fsbench.DropAllPageCaches()
			}
			return nil
		},
	}
	rs, err := fsbench.Run(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("bench: interrupted")
		}
		return err
	}
	if bo.json || r.o.output == "json" {
		return r.printJSON(rs)
	}
	return fsbench.Table(r.env.Stdout, rs)
}

// parseSize parses a byte count with an optional K, M, G or T suffix
// (powers of 1024; "KiB", "KB" and lower case are taken the same).
func parseSize(s string) (int64, error) {
	n, err := bytesize.Parse(s)
	switch {
	case errors.Is(err, bytesize.ErrRange):
		return 0, fmt.Errorf("too large")
	case err != nil:
		return 0, fmt.Errorf("not a size")
	}
	return n, nil
}
