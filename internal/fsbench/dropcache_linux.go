package fsbench

import (
	"fmt"
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
