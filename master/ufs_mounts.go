package master

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/skyfs/skyfs/internal/secrets"
	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
	"github.com/skyfs/skyfs/ufs"
)

// Timeouts of the UFS calls the master makes on its own behalf.
const (
	// ufsOpenTimeout bounds opening a mount's UFS.
	ufsOpenTimeout = 20 * time.Second
	// mountCheckTimeout bounds the reachability check of AddMount.
	mountCheckTimeout = 20 * time.Second
)

// Mount options the master itself reads (backends ignore them).
const (
	// OptUID and OptGID are the owner recorded for entries loaded from the
	// UFS (default 0).
	OptUID = "uid"
	OptGID = "gid"
)

// Modes of entries loaded from a UFS.
const (
	loadedFileMode = 0o644
	loadedDirMode  = 0o755
)

// ufsTable holds the opened FileSystem of each mount, opened lazily from the
// mount record and closed on unmount. Mount ids are never reused.
type ufsTable struct {
	sealer *secrets.Sealer // opens sealed options (secrets.go)

	mu   sync.Mutex
	fss  map[uint64]ufs.FileSystem
	wrap func(ufs.FileSystem, string) ufs.FileSystem // Config.WrapUFS
}

// get returns the opened UFS of m, opening it on first use.
func (t *ufsTable) get(ctx context.Context, m *meta.Mount) (ufs.FileSystem, error) {
	t.mu.Lock()
	fsys, ok := t.fss[m.ID]
	t.mu.Unlock()
	if ok {
		return fsys, nil
	}
	om, err := openMount(t.sealer, m)
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, ufsOpenTimeout)
	defer cancel()
	fsys, err = ufs.Open(octx, om.URI, om.Options)
	if err != nil {
		return nil, ufsFail(om, fmt.Errorf("open: %w", err))
	}
	if t.wrap != nil {
		fsys = t.wrap(fsys, m.URI)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fss == nil {
		t.fss = make(map[uint64]ufs.FileSystem)
	}
	if other, ok := t.fss[m.ID]; ok {
		fsys.Close()
		return other, nil
	}
	t.fss[m.ID] = fsys
	return fsys, nil
}

// opened returns the UFS of mount id if it is open already.
func (t *ufsTable) opened(id uint64) (ufs.FileSystem, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fsys, ok := t.fss[id]
	return fsys, ok
}

// drop closes the UFS of mount id, if it is open.
func (t *ufsTable) drop(id uint64) {
	t.mu.Lock()
	fsys, ok := t.fss[id]
	delete(t.fss, id)
	t.mu.Unlock()
	if ok {
		fsys.Close()
	}
}

// closeAll closes every opened UFS.
func (t *ufsTable) closeAll() {
	t.mu.Lock()
	fss := t.fss
	t.fss = nil
	t.mu.Unlock()
	for _, fsys := range fss {
		fsys.Close()
	}
}

// ufsErrno is the POSIX outcome of a UFS error.
func ufsErrno(err error) syscall.Errno {
	switch {
	case errors.Is(err, ufs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, ufs.ErrExist):
		return syscall.EEXIST
	case errors.Is(err, ufs.ErrNotEmpty):
		return syscall.ENOTEMPTY
	case errors.Is(err, ufs.ErrPermission):
		return syscall.EACCES
	case errors.Is(err, ufs.ErrNotDir):
		return syscall.ENOTDIR
	case errors.Is(err, ufs.ErrIsDir):
		return syscall.EISDIR
	case errors.Is(err, ufs.ErrNameTooLong):
		return syscall.ENAMETOOLONG
	case errors.Is(err, ufs.ErrInvalidPath), errors.Is(err, ufs.ErrInvalid):
		return syscall.EINVAL
	case errors.Is(err, ufs.ErrUnsupported):
		return syscall.ENOTSUP
	case errors.Is(err, ufs.ErrUnknownScheme):
		return syscall.EINVAL
	}
	return syscall.EIO // ErrUnavailable, timeouts, anything unexpected
}

// ufsFail turns a UFS error into a POSIX outcome with a one-line message that
// holds no secret of the mount (nil stays nil).
func ufsFail(m *meta.Mount, err error) error {
	if err == nil {
		return nil
	}
	var pe *posixError
	if errors.As(err, &pe) {
		return err
	}
	en := ufsErrno(err)
	msg := ufs.Options(m.Options).Scrub(err).Error()
	return fail(en, "ufs %s: %s", ufs.RedactURI(m.URI), oneLine(msg))
}

// oneLine replaces line breaks so that a message stays on one line.
func oneLine(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
	return string(b)
}

// checkUFS opens a UFS and lists one entry of its root, so that a mount that
// cannot work (wrong credentials, missing bucket or directory, unreachable
// endpoint) is refused before anything is journaled.
func checkUFS(ctx context.Context, uri string, options map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, mountCheckTimeout)
	defer cancel()
	m := &meta.Mount{URI: uri, Options: options}
	fsys, err := ufs.Open(ctx, uri, options)
	if err != nil {
		return ufsFail(m, err)
	}
	defer fsys.Close()
	if _, err := fsys.List(ctx, "", ufs.ListOptions{PageSize: 1}); err != nil {
		return ufsFail(m, err)
	}
	return nil
}

// checkMountOptions checks the options the master reads itself.
func checkMountOptions(options map[string]string) error {
	for _, k := range []string{OptUID, OptGID} {
		if v, ok := options[k]; ok {
			if _, err := strconv.ParseUint(v, 10, 32); err != nil {
				return fail(syscall.EINVAL, "mount option %s=%q is not a number", k, v)
			}
		}
	}
	return nil
}

// owner returns the uid and gid recorded for entries loaded from m.
func owner(m *meta.Mount) (uid, gid uint32) {
	u, _ := strconv.ParseUint(m.Options[OptUID], 10, 32)
	g, _ := strconv.ParseUint(m.Options[OptGID], 10, 32)
	return uint32(u), uint32(g)
}

// fingerprintOf converts a UFS fingerprint to its journal form.
func fingerprintOf(f ufs.Fingerprint) *metapb.Fingerprint {
	fp := &metapb.Fingerprint{Size: f.Size, Etag: f.ETag}
	if !f.ModTime.IsZero() {
		fp.MtimeNs = f.ModTime.UnixNano()
	}
	return fp
}

// under returns the mount covering directory ino and the directory's UFS path;
// nil when no mount covers it (or ino is gone, which the entry will report).
func under(tx meta.Txn, ino uint64) (*meta.Mount, string, error) {
	m, rel, err := meta.MountOf(tx, ino)
	if en, ok := meta.Errno(err); ok && en == syscall.ENOENT {
		return nil, "", nil
	}
	return m, rel, err
}

// childOf returns the attributes of name in dir, if it exists.
func childOf(tx meta.Txn, dir uint64, name []byte) (*meta.Attr, bool) {
	a, err := meta.Lookup(tx, dir, name)
	if err != nil {
		return nil, false
	}
	return a, true
}

// writable refuses a mutation under a read-only mount.
func writable(m *meta.Mount) error {
	if m != nil && m.ReadOnly {
		return fail(syscall.EROFS, "%s is a read-only mount", m.Path)
	}
	return nil
}

// checkWritable refuses a mutation of inode ino under a read-only mount.
func checkWritable(tx meta.Txn, ino uint64) error {
	m, _, err := under(tx, ino)
	if err != nil {
		return err
	}
	return writable(m)
}
