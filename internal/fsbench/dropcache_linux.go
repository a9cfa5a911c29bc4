package fsbench

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// DropPageCache writes path's dirty pages and asks the kernel to drop the
// file's pages from its page cache (posix_fadvise POSIX_FADV_DONTNEED), so
// that the next read goes to the file system. On a FUSE mount this drops
// the kernel's copy only: the daemon's own caches are untouched.
func DropPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fdatasync(int(f.Fd())); err != nil && err != unix.EINVAL {
		return fmt.Errorf("fdatasync %s: %w", path, err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("fadvise %s: %w", path, err)
	}
	return nil
}

// DropAllPageCaches writes every dirty page and drops the clean ones of the
// whole host (echo 1 > /proc/sys/vm/drop_caches). It needs root, and slows
// everything else on the host down for a while.
func DropAllPageCaches() error {
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("1\n"), 0); err != nil {
		return fmt.Errorf("drop page caches: %w", err)
	}
	return nil
}

// ReadThrough reads the file at path from start to end in 1 MiB reads and
// returns the number of bytes read. With drop, the file's clean pages are
// dropped from the page cache first (posix_fadvise POSIX_FADV_DONTNEED), so
// the reads reach the file system: on a FUSE mount, its daemon or the
// daemon's passthrough file.
func ReadThrough(path string, drop bool) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if drop {
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			return 0, fmt.Errorf("fadvise %s: %w", path, err)
		}
	}
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, err := f.Read(buf)
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
