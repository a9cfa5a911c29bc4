// Package local is the ufs backend on a directory of the local filesystem, for the
// single-host demo, tests, and NFS-style shared directories. It registers the
// scheme "file": file:///abs/path.
//
// Every access goes through an os.Root opened on the mount's directory, so no path
// can reach outside it, not even through a symbolic link; ufs.CheckPath refuses
// "..", NUL and absolute paths before that. Writes go to a hidden temporary file
// (".skyfs-tmp-*") next to the target, are synced, and are renamed over the target
// on Close, so a reader never sees a partial file. Listings skip those temporary
// files.
//
// A fingerprint's ETag is derived from the inode number, size and modification
// time in nanoseconds; a write through this package always moves the modification
// time forward, so the fingerprint changes even when the clock did not tick.
//
// Package local must never import anything from this module but ufs, and never
// follow a path outside its root.
package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/skyfs/skyfs/ufs"
)

// Scheme is the URI scheme of this backend.
const Scheme = "file"

// tmpPrefix starts the name of every temporary file this package writes.
const tmpPrefix = ".skyfs-tmp-"

// Option keys understood by Open.
const (
	// OptionCreate ("local.create"), when "true", creates the root directory
	// if it does not exist.
	OptionCreate = "local.create"
)

func init() {
	ufs.Register(Scheme, func(ctx context.Context, u *url.URL, opts ufs.Options) (ufs.FileSystem, error) {
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("local: %s: %w: host %q (want file:///absolute/path)", u.Redacted(), ufs.ErrInvalid, u.Host)
		}
		return New(u.Path, opts)
	})
}

// FS is a ufs.FileSystem rooted at a local directory.
type FS struct {
	root *os.Root
	dir  string
	name string // "file:///dir", for messages

	windows windowCache // listings in progress
}

var (
	_ ufs.FileSystem = (*FS)(nil)
	_ ufs.Linker     = (*FS)(nil)
)

// New opens the directory dir (an absolute path) as a FileSystem.
func New(dir string, opts ufs.Options) (*FS, error) {
	name := (&url.URL{Scheme: Scheme, Path: dir}).String()
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("local: %s: %w: the root must be an absolute path", name, ufs.ErrInvalid)
	}
	dir = filepath.Clean(dir)
	if opts.Get(OptionCreate, "false") == "true" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("local: %s: create root: %w", name, unwrapPath(err))
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("local: %s: open root: %w", name, unwrapPath(err))
	}
	return &FS{root: root, dir: dir, name: name}, nil
}

// Dir returns the absolute path of the root directory.
func (f *FS) Dir() string { return f.dir }

// Capabilities implements ufs.FileSystem.
func (f *FS) Capabilities() ufs.Capabilities {
	return ufs.Capabilities{
		AtomicRename:    true,
		HardLinks:       true,
		RealDirectories: true,
		ServerSideCopy:  false,
		MaxObjectSize:   0,
		MaxNameBytes:    ufs.MaxNameBytes,
		// Paths are opened beneath the root one component at a time
		// (os.Root): the length of the directory's own path does not count.
		MaxPathBytes: 0,
	}
}

// Close implements ufs.FileSystem.
func (f *FS) Close() error { return f.root.Close() }

// osName maps a ufs path to a name relative to the os.Root.
func osName(p string) string {
	if p == "" {
		return "."
	}
	return p
}

// fail builds the error of operation op on path p.
func (f *FS) fail(op, p string, err error) error {
	return &ufs.Error{FS: f.name, Op: op, Path: p, Err: mapErr(err)}
}

// check validates p and the context for operation op.
func (f *FS) check(ctx context.Context, op string, paths ...string) error {
	for _, p := range paths {
		if err := ufs.CheckPath(p); err != nil {
			return &ufs.Error{FS: f.name, Op: op, Err: err}
		}
	}
	if err := ctx.Err(); err != nil {
		p := ""
		if len(paths) > 0 {
			p = paths[0]
		}
		return f.fail(op, p, err)
	}
	return nil
}

// unwrapPath drops the *os.PathError or *os.LinkError around a system error: the
// ufs.Error already names the operation and the path.
func unwrapPath(err error) error {
	var pe *os.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}

// mapErr turns system errors into the ufs sentinels.
func mapErr(err error) error {
	inner := unwrapPath(err)
	switch {
	case errors.Is(inner, syscall.ENOTEMPTY):
		return ufs.ErrNotEmpty
	case errors.Is(inner, syscall.ENOTDIR):
		return ufs.ErrNotDir
	case errors.Is(inner, syscall.EISDIR):
		return ufs.ErrIsDir
	case errors.Is(inner, syscall.ENAMETOOLONG):
		return &ufs.KindError{Kind: ufs.ErrInvalidPath, Err: inner}
	case inner != nil && inner.Error() == "path escapes from parent":
		return &ufs.KindError{Kind: ufs.ErrPermission, Err: inner}
	}
	return inner
}

// info builds a FileInfo from the os.FileInfo of path p.
func info(p string, fi fs.FileInfo) ufs.FileInfo {
	out := ufs.FileInfo{Path: p, Name: ufs.Base(p), IsDir: fi.IsDir()}
	out.Fingerprint = fingerprint(fi)
	return out
}

func fingerprint(fi fs.FileInfo) ufs.Fingerprint {
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	size := fi.Size()
	if fi.IsDir() {
		size = 0
	}
	mt := fi.ModTime()
	return ufs.Fingerprint{
		Size:    size,
		ETag:    fmt.Sprintf("%x-%x-%x", ino, size, mt.UnixNano()),
		ModTime: mt,
	}
}

// Stat implements ufs.FileSystem.
func (f *FS) Stat(ctx context.Context, p string) (ufs.FileInfo, error) {
	if err := f.check(ctx, "stat", p); err != nil {
		return ufs.FileInfo{}, err
	}
	fi, err := f.root.Stat(osName(p))
	if err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			// A file in the middle of the path: nothing is there, as on S3.
			err = fs.ErrNotExist
		}
		return ufs.FileInfo{}, f.fail("stat", p, err)
	}
	return info(p, fi), nil
}

// Mkdir implements ufs.FileSystem.
func (f *FS) Mkdir(ctx context.Context, p string) error {
	if err := f.check(ctx, "mkdir", p); err != nil {
		return err
	}
	if p == "" {
		return f.fail("mkdir", p, ufs.ErrExist)
	}
	if err := f.mkdirParent(p); err != nil {
		return f.fail("mkdir", p, err)
	}
	if err := f.root.Mkdir(p, 0o755); err != nil {
		return f.fail("mkdir", p, err)
	}
	return nil
}

// mkdirParent creates the parent directories of p.
func (f *FS) mkdirParent(p string) error {
	if d := ufs.Dir(p); d != "" {
		return f.root.MkdirAll(d, 0o755)
	}
	return nil
}

// Delete implements ufs.FileSystem.
func (f *FS) Delete(ctx context.Context, p string) error {
	if err := f.check(ctx, "delete", p); err != nil {
		return err
	}
	if p == "" {
		return f.fail("delete", p, fmt.Errorf("%w: the root cannot be deleted", ufs.ErrInvalidPath))
	}
	if err := f.root.Remove(p); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			err = syscall.ENOTEMPTY // rmdir(2) may say either
		}
		return f.fail("delete", p, err)
	}
	return nil
}

// Rename implements ufs.FileSystem. It is one rename(2), atomic for files and
// directories alike, except that a directory replacing an existing empty directory
// first removes it (Go's rename refuses a directory target).
func (f *FS) Rename(ctx context.Context, src, dst string) error {
	dstPath := dst
	if err := f.check(ctx, "rename", src, dst); err != nil {
		return err
	}
	if src == "" || dst == "" {
		return f.fail("rename", src, fmt.Errorf("%w: the root cannot be renamed or replaced", ufs.ErrInvalidPath))
	}
	sst, err := f.root.Lstat(src)
	if err != nil {
		return f.fail("rename", src, err)
	}
	if src == dst {
		return nil
	}
	if ufs.IsWithin(dst, src) {
		return f.fail("rename", src, fmt.Errorf("%w: cannot move %q into itself", ufs.ErrInvalid, dst))
	}
	// rename(2) reports type conflicts with different errnos on different
	// filesystems; decide them here.
	if dst, err := f.root.Lstat(dst); err == nil {
		switch {
		case sst.IsDir() && !dst.IsDir():
			return f.fail("rename", src, ufs.ErrNotDir)
		case !sst.IsDir() && dst.IsDir():
			return f.fail("rename", src, ufs.ErrIsDir)
		case dst.IsDir():
			// Go's rename refuses an existing directory as the target, even
			// an empty one; remove it first (only succeeds if it is empty).
			if err := f.root.Remove(osName(dstPath)); err != nil {
				if errors.Is(err, syscall.EEXIST) {
					err = syscall.ENOTEMPTY
				}
				return f.fail("rename", dstPath, err)
			}
		}
	}
	if err := f.mkdirParent(dst); err != nil {
		return f.fail("rename", dst, err)
	}
	if err := f.root.Rename(src, dst); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			err = syscall.ENOTEMPTY
		}
		return f.fail("rename", src, err)
	}
	return nil
}

// Link implements ufs.Linker.
func (f *FS) Link(ctx context.Context, oldPath, newPath string) error {
	if err := f.check(ctx, "link", oldPath, newPath); err != nil {
		return err
	}
	if err := f.mkdirParent(newPath); err != nil {
		return f.fail("link", newPath, err)
	}
	if err := f.root.Link(osName(oldPath), osName(newPath)); err != nil {
		return f.fail("link", oldPath, err)
	}
	return nil
}

// Copy implements ufs.FileSystem. The kernel copies the bytes (copy_file_range)
// where the filesystem can.
func (f *FS) Copy(ctx context.Context, src, dst string) (ufs.Fingerprint, error) {
	if err := f.check(ctx, "copy", src, dst); err != nil {
		return ufs.Fingerprint{}, err
	}
	in, err := f.root.Open(osName(src))
	if err != nil {
		return ufs.Fingerprint{}, f.fail("copy", src, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return ufs.Fingerprint{}, f.fail("copy", src, err)
	}
	if st.IsDir() {
		return ufs.Fingerprint{}, f.fail("copy", src, ufs.ErrIsDir)
	}
	if src == dst {
		return fingerprint(st), nil
	}
	w, err := f.create(ctx, "copy", dst)
	if err != nil {
		return ufs.Fingerprint{}, err
	}
	if _, err := w.file.ReadFrom(in); err != nil {
		w.Abort()
		return ufs.Fingerprint{}, f.fail("copy", src, err)
	}
	return w.Close()
}

// touchAfter makes sure the modification time of the temporary file tmp (at
// root-relative name) is later than prev, so that the new version's fingerprint
// differs from the old one.
func (f *FS) touchAfter(tmp *os.File, name string, prev time.Time) error {
	st, err := tmp.Stat()
	if err != nil {
		return err
	}
	if st.ModTime().After(prev) {
		return nil
	}
	mt := prev.Add(time.Nanosecond)
	return f.root.Chtimes(name, mt, mt)
}
