package cache

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// pageSize is the allocation unit assumed when reserving space.
const pageSize = 4096

// fileStat is what the cache remembers of a file: the identity fields that
// change when someone else modifies it, and its allocation.
type fileStat struct {
	ino   uint64
	size  int64
	mtime int64 // ns
	ctime int64 // ns
	alloc int64 // allocated bytes (st_blocks * 512); not part of identity
}

// same reports whether s and o describe the same, unmodified file.
func (s fileStat) same(o fileStat) bool {
	return s.ino == o.ino && s.size == o.size && s.mtime == o.mtime && s.ctime == o.ctime
}

func fromStat(st *unix.Stat_t) fileStat {
	return fileStat{
		ino:   st.Ino,
		size:  st.Size,
		mtime: st.Mtim.Nano(),
		ctime: st.Ctim.Nano(),
		alloc: st.Blocks * 512,
	}
}

func statFile(f *os.File) (fileStat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileStat{}, fmt.Errorf("cache: fstat %s: %w", f.Name(), err)
	}
	return fromStat(&st), nil
}

// statFd is statFile of a bare descriptor.
func statFd(fd int) (fileStat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fileStat{}, fmt.Errorf("cache: fstat: %w", err)
	}
	return fromStat(&st), nil
}

// openReadOnly opens path for reading, close-on-exec, as a bare descriptor:
// an os.File would also try to register it with the runtime's poller, a
// system call that a regular file always refuses.
func openReadOnly(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

func statPath(path string) (fileStat, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fileStat{}, fmt.Errorf("cache: stat %s: %w", path, err)
	}
	return fromStat(&st), nil
}

// punchHole deallocates [off, off+n) of f, keeping its size.
func punchHole(f *os.File, off, n int64) error {
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
		return fmt.Errorf("cache: punch hole: %w", err)
	}
	return nil
}

// isNotSupported reports whether err means the filesystem lacks an operation.
func isNotSupported(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS)
}

// lockDir takes an exclusive, non-blocking flock on path (created if needed).
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cache: open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("cache: lock directory: %w", err)
	}
	return f, nil
}

// syncFS flushes the filesystem holding dir.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cache: syncfs: %w", err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("cache: syncfs: %w", err)
	}
	return nil
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cache: sync directory: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cache: sync directory: %w", err)
	}
	return nil
}
