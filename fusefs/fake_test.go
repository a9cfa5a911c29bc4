package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/meta/memstore"
	"github.com/skyfs/skyfs/meta/metatest"
	"github.com/skyfs/skyfs/proto/metapb"
	"github.com/skyfs/skyfs/ufs"
	"github.com/skyfs/skyfs/ufs/local"
)

// fakeNS is a Namespace over an in-memory meta store, applying journal
// entries the way a master would, and doing the master's UFS side effects
// (directories, deletes, renames) on the mount's FileSystem itself.
type fakeNS struct {
	t  testing.TB
	s  *memstore.Store
	mu sync.Mutex // serialises mutations with their UFS side effects
	// now is the clock of the last entry.
	now int64

	fsMu sync.Mutex
	fs   map[uint64]ufs.FileSystem
	ro   map[uint64]bool

	// laterPages, when set, holds back every ReadDir page but the first
	// until it is closed.
	laterPages chan struct{}

	readDirs  atomic.Int64 // ReadDir calls
	lookups   atomic.Int64 // Lookup calls
	completes atomic.Int64 // CompleteFile calls
	getxattrs atomic.Int64 // GetXattr calls
	getattrs  atomic.Int64 // GetAttr calls
	locates   atomic.Int64 // Location calls
	statDirs  atomic.Int64 // StatDir calls
	statNames atomic.Int64 // names asked of StatDir
	// statDirGate, when it holds a channel, holds back every StatDir
	// until that channel is closed.
	statDirGate atomic.Pointer[chan struct{}]
}

// reads is the number of calls made to read the namespace.
func (f *fakeNS) reads() int64 {
	return f.readDirs.Load() + f.lookups.Load() + f.getattrs.Load() + f.locates.Load() + f.statDirs.Load()
}

var _ Namespace = (*fakeNS)(nil)

// newFakeNS makes a namespace whose root is a UFS mount of dir.
func newFakeNS(t testing.TB, dir string) *fakeNS {
	f := &fakeNS{t: t, s: memstore.New(), fs: map[uint64]ufs.FileSystem{}, ro: map[uint64]bool{}}
	f.addMount("/", dir, false)
	return f
}

// addMount mounts the local directory dir at path.
func (f *fakeNS) addMount(path, dir string, readOnly bool) uint64 {
	f.t.Helper()
	lfs, err := local.New(dir, ufs.Options{local.OptionCreate: "true"})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { lfs.Close() })
	res, err := f.apply(&metapb.AddMount{Path: path, Uri: "file://" + dir, ReadOnly: readOnly, Mode: 0o755})
	if err != nil || res.Errno != 0 {
		f.t.Fatalf("add mount %s: %v %v", path, err, res.Errno)
	}
	f.fsMu.Lock()
	f.fs[res.Attr.MountID] = lfs
	f.ro[res.Attr.MountID] = readOnly
	f.fsMu.Unlock()
	return res.Attr.MountID
}

// wrapFS replaces the FileSystem of a mount.
func (f *fakeNS) wrapFS(id uint64, wrap func(ufs.FileSystem) ufs.FileSystem) {
	f.fsMu.Lock()
	defer f.fsMu.Unlock()
	f.fs[id] = wrap(f.fs[id])
}

func (f *fakeNS) fsOf(id uint64) ufs.FileSystem {
	f.fsMu.Lock()
	defer f.fsMu.Unlock()
	return f.fs[id]
}

// apply applies one operation as a journal entry.
func (f *fakeNS) apply(op any) (meta.Result, error) {
	now := time.Now().UnixNano()
	if now <= f.now {
		now = f.now + 1
	}
	f.now = now
	e := metatest.Entry(now, op)
	var res meta.Result
	err := f.s.Update(func(tx meta.Txn) error {
		var err error
		res, err = meta.Apply(tx, e)
		return err
	})
	return res, err
}

// mutate applies op and returns its attributes or errno.
// result applies op and answers its outcome, a POSIX one as an error.
func (f *fakeNS) result(op any) (meta.Result, error) {
	res, err := f.apply(op)
	if err == nil && res.Errno != 0 {
		err = res.Errno
	}
	return res, err
}

func (f *fakeNS) mutate(op any) (*meta.Attr, error) {
	res, err := f.result(op)
	return res.Attr, err
}

// made applies op, which adds a name, and answers as the master does.
func (f *fakeNS) made(op any) (Made, error) {
	res, err := f.result(op)
	if err != nil {
		return Made{}, err
	}
	return Made{Attr: res.Attr, Dir: res.Dir}, nil
}

// removed applies op, which removes a name, and answers as the master does.
func (f *fakeNS) removed(op any) (*meta.Attr, error) {
	res, err := f.result(op)
	return res.Dir, err
}

func posixErr(err error) error {
	if en, ok := meta.Errno(err); ok {
		return en
	}
	return err
}

func (f *fakeNS) view(fn func(tx meta.Txn) error) error {
	return posixErr(f.s.View(fn))
}

// where returns the mount and UFS path of name in dir (of dir itself for
// name ""), and fails with EROFS on a read-only mount when write is set.
func (f *fakeNS) where(dir meta.Ino, name string, write bool) (ufs.FileSystem, string, error) {
	var m *meta.Mount
	var p string
	err := f.view(func(tx meta.Txn) error {
		var err error
		m, p, err = meta.MountOf(tx, dir)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	f.fsMu.Lock()
	ro := f.ro[m.ID]
	f.fsMu.Unlock()
	if write && ro {
		return nil, "", syscall.EROFS
	}
	if name != "" {
		p = ufs.Join(p, name)
	}
	return f.fsOf(m.ID), p, nil
}

// ufsErr maps a UFS failure of a side effect to an errno.
func ufsErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ufs.ErrInvalidPath):
		return syscall.EINVAL
	case errors.Is(err, fs.ErrNotExist):
		return syscall.ENOENT
	}
	return fmt.Errorf("fake master: %w", err)
}

func (f *fakeNS) Lookup(ctx context.Context, parent meta.Ino, name string) (*meta.Attr, error) {
	f.lookups.Add(1)
	var a *meta.Attr
	err := f.view(func(tx meta.Txn) error {
		var err error
		a, err = meta.Lookup(tx, parent, []byte(name))
		return err
	})
	return a, err
}

func (f *fakeNS) GetAttr(ctx context.Context, ino meta.Ino) (*meta.Attr, error) {
	f.getattrs.Add(1)
	var a *meta.Attr
	err := f.view(func(tx meta.Txn) error {
		var err error
		a, err = meta.GetAttr(tx, ino)
		return err
	})
	return a, err
}

func (f *fakeNS) ReadDir(ctx context.Context, dir meta.Ino, after string, limit int, plus bool) ([]meta.DirEntry, bool, error) {
	f.readDirs.Add(1)
	if after != "" && f.laterPages != nil {
		select {
		case <-f.laterPages:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	var ents []meta.DirEntry
	var more bool
	var cursor []byte
	if after != "" {
		cursor = []byte(after)
	}
	err := f.view(func(tx meta.Txn) error {
		var err error
		ents, more, err = meta.ReadDir(tx, dir, cursor, limit, plus)
		return err
	})
	return ents, more, err
}

func (f *fakeNS) Mkdir(ctx context.Context, parent meta.Ino, name string, mode uint32, c Caller) (Made, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fsys, p, err := f.where(parent, name, true)
	if err != nil {
		return Made{}, err
	}
	made, err := f.made(&metapb.Mkdir{Parent: parent, Name: []byte(name), Mode: mode, Uid: c.UID, Gid: c.GID})
	if err != nil {
		return Made{}, err
	}
	if err := fsys.Mkdir(ctx, p); err != nil && !errors.Is(err, fs.ErrExist) {
		f.mutate(&metapb.Rmdir{Parent: parent, Name: []byte(name)})
		return Made{}, ufsErr(err)
	}
	return made, nil
}

// Create answers where the file lives, as the master does.
func (f *fakeNS) Create(ctx context.Context, parent meta.Ino, name string, mode uint32, c Caller) (Made, error) {
	made, err := f.create(parent, name, mode, c)
	if err != nil {
		return Made{}, err
	}
	loc, err := f.Location(ctx, made.Attr.Ino)
	if err != nil {
		return Made{}, err
	}
	made.Loc = &loc
	return made, nil
}

func (f *fakeNS) create(parent meta.Ino, name string, mode uint32, c Caller) (Made, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, _, err := f.where(parent, name, true); err != nil {
		return Made{}, err
	}
	return f.made(&metapb.CreateFile{Parent: parent, Name: []byte(name), Mode: mode, Uid: c.UID, Gid: c.GID})
}

func (f *fakeNS) Symlink(ctx context.Context, parent meta.Ino, name, target string, c Caller) (Made, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, _, err := f.where(parent, name, true); err != nil {
		return Made{}, err
	}
	return f.made(&metapb.Symlink{Parent: parent, Name: []byte(name), Target: []byte(target), Uid: c.UID, Gid: c.GID})
}

// Mknod makes a special file in the namespace only, as the master does.
func (f *fakeNS) Mknod(ctx context.Context, parent meta.Ino, name string, typ meta.FileType, mode, rdev uint32, c Caller) (Made, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, _, err := f.where(parent, name, true); err != nil {
		return Made{}, err
	}
	return f.made(&metapb.Mknod{Parent: parent, Name: []byte(name), Type: metapb.FileType(typ), Mode: mode, Uid: c.UID, Gid: c.GID, Rdev: rdev})
}

func (f *fakeNS) Link(ctx context.Context, ino, newParent meta.Ino, newName string) (Made, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fsys, newPath, err := f.where(newParent, newName, true)
	if err != nil {
		return Made{}, err
	}
	_, oldPath, err := f.where(ino, "", false)
	if err != nil {
		return Made{}, err
	}
	made, err := f.made(&metapb.Link{Ino: ino, NewParent: newParent, NewName: []byte(newName)})
	if err != nil {
		return Made{}, err
	}
	if l, ok := fsys.(ufs.Linker); ok {
		if err := l.Link(ctx, oldPath, newPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Made{}, ufsErr(err)
		}
	}
	return made, nil
}

func (f *fakeNS) Unlink(ctx context.Context, parent meta.Ino, name string) (*meta.Attr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fsys, p, err := f.where(parent, name, true)
	if err != nil {
		return nil, err
	}
	dir, err := f.removed(&metapb.Unlink{Parent: parent, Name: []byte(name)})
	if err != nil {
		return nil, err
	}
	if err := fsys.Delete(ctx, p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, ufsErr(err)
	}
	return dir, nil
}

func (f *fakeNS) Rmdir(ctx context.Context, parent meta.Ino, name string) (*meta.Attr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fsys, p, err := f.where(parent, name, true)
	if err != nil {
		return nil, err
	}
	dir, err := f.removed(&metapb.Rmdir{Parent: parent, Name: []byte(name)})
	if err != nil {
		return nil, err
	}
	if err := fsys.Delete(ctx, p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, ufsErr(err)
	}
	return dir, nil
}

func (f *fakeNS) Rename(ctx context.Context, oldParent meta.Ino, oldName string, newParent meta.Ino, newName string, flags uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fsys, oldPath, err := f.where(oldParent, oldName, true)
	if err != nil {
		return err
	}
	_, newPath, err := f.where(newParent, newName, true)
	if err != nil {
		return err
	}
	if _, err := f.mutate(&metapb.Rename{OldParent: oldParent, OldName: []byte(oldName), NewParent: newParent, NewName: []byte(newName), Flags: flags}); err != nil {
		return err
	}
	if oldPath == newPath {
		return nil
	}
	_, srcErr := fsys.Stat(ctx, oldPath)
	_, dstErr := fsys.Stat(ctx, newPath)
	switch {
	case flags&meta.RenameExchange != 0:
		tmp := ufs.Join(ufs.Dir(newPath), ".skyfs-xchg")
		if srcErr == nil {
			fsys.Rename(ctx, oldPath, tmp)
		}
		if dstErr == nil {
			fsys.Rename(ctx, newPath, oldPath)
		}
		if srcErr == nil {
			fsys.Rename(ctx, tmp, newPath)
		}
	case srcErr != nil:
		// Nothing in the UFS (a symlink, a file never uploaded): what
		// was replaced goes.
		if dstErr == nil {
			fsys.Delete(ctx, newPath)
		}
	default:
		if err := fsys.Rename(ctx, oldPath, newPath); err != nil {
			return ufsErr(err)
		}
	}
	return nil
}

func (f *fakeNS) SetAttr(ctx context.Context, ino meta.Ino, req SetAttrRequest) (*meta.Attr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	op := &metapb.SetAttr{Ino: ino, Valid: req.Valid, Mode: req.Mode, Uid: req.UID, Gid: req.GID,
		Size: req.Size, AtimeNs: req.AtimeNs, MtimeNs: req.MtimeNs}
	if req.UFS != nil {
		op.Ufs = req.UFS.PB()
	}
	now := time.Now().UnixNano()
	if req.AtimeNow {
		op.AtimeNs = now
	}
	if req.MtimeNow {
		op.MtimeNs = now
	}
	return f.mutate(op)
}

// CompleteFile records the upload and then the modification time (a master
// would do both in one entry).
func (f *fakeNS) CompleteFile(ctx context.Context, ino meta.Ino, size uint64, fp meta.Fingerprint, mtimeNs int64) (*meta.Attr, error) {
	f.completes.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.mutate(&metapb.CompleteFile{Ino: ino, Size: size, Ufs: fp.PB()})
	if err != nil || mtimeNs == 0 {
		return a, err
	}
	return f.mutate(&metapb.SetAttr{Ino: ino, Valid: meta.SetAttrMtime, MtimeNs: mtimeNs})
}

func (f *fakeNS) GetXattr(ctx context.Context, ino meta.Ino, name string) ([]byte, error) {
	f.getxattrs.Add(1)
	var v []byte
	err := f.view(func(tx meta.Txn) error {
		var err error
		v, err = meta.GetXattr(tx, ino, []byte(name))
		return err
	})
	return v, err
}

func (f *fakeNS) SetXattr(ctx context.Context, ino meta.Ino, name string, value []byte, flags uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.mutate(&metapb.SetXattr{Ino: ino, Name: []byte(name), Value: value, Flags: flags})
	return err
}

func (f *fakeNS) ListXattr(ctx context.Context, ino meta.Ino) ([]string, error) {
	var names [][]byte
	err := f.view(func(tx meta.Txn) error {
		var err error
		names, err = meta.ListXattr(tx, ino)
		return err
	})
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = string(n)
	}
	return out, err
}

func (f *fakeNS) RemoveXattr(ctx context.Context, ino meta.Ino, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.mutate(&metapb.RemoveXattr{Ino: ino, Name: []byte(name)})
	return err
}

func (f *fakeNS) Location(ctx context.Context, ino meta.Ino) (Location, error) {
	f.locates.Add(1)
	return f.location(ino)
}

func (f *fakeNS) location(ino meta.Ino) (Location, error) {
	var m *meta.Mount
	var p string
	err := f.view(func(tx meta.Txn) error {
		var err error
		m, p, err = meta.MountOf(tx, ino)
		return err
	})
	if err != nil {
		return Location{}, err
	}
	f.fsMu.Lock()
	defer f.fsMu.Unlock()
	return Location{MountID: m.ID, FS: f.fs[m.ID], Path: p, ReadOnly: f.ro[m.ID]}, nil
}

func (f *fakeNS) StatDir(ctx context.Context, dir meta.Ino, names []string) (DirStat, error) {
	f.statDirs.Add(1)
	f.statNames.Add(int64(len(names)))
	if gate := f.statDirGate.Load(); gate != nil {
		select {
		case <-*gate:
		case <-ctx.Done():
			return DirStat{}, ctx.Err()
		}
	}
	ds := DirStat{Attrs: make([]*meta.Attr, len(names))}
	err := f.view(func(tx meta.Txn) error {
		var err error
		if ds.Dir, err = meta.GetAttr(tx, dir); err != nil {
			return err
		}
		for i, name := range names {
			a, err := meta.Lookup(tx, dir, []byte(name))
			if en, ok := meta.Errno(err); ok && en == syscall.ENOENT {
				continue
			}
			if err != nil {
				return err
			}
			ds.Attrs[i] = a
		}
		return nil
	})
	if err != nil {
		return DirStat{}, err
	}
	if ds.Loc, err = f.location(dir); err != nil {
		return DirStat{}, err
	}
	return ds, nil
}

func (f *fakeNS) StatFS(ctx context.Context) (StatFS, error) {
	var n uint64
	err := f.view(func(tx meta.Txn) error {
		var err error
		n, err = meta.InodeCount(tx)
		return err
	})
	return StatFS{Inodes: n}, err
}

// populate creates count empty files named by name(i) in directory dir
// directly in the namespace, without FUSE.
func (f *fakeNS) populate(dir meta.Ino, count int, name func(int) string) {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range count {
		if _, err := f.mutate(&metapb.CreateFile{Parent: dir, Name: []byte(name(i)), Mode: 0o644}); err != nil {
			f.t.Fatalf("populate %s: %v", name(i), err)
		}
	}
}

// failFS is a FileSystem whose uploads fail while fail is set.
type failFS struct {
	ufs.FileSystem
	fail atomic.Bool
}

var errInjected = errors.New("injected upload failure")

func (f *failFS) Put(ctx context.Context, p string, r io.Reader, size int64) (ufs.Fingerprint, error) {
	if f.fail.Load() {
		return ufs.Fingerprint{}, &ufs.Error{FS: "fail://", Op: "put", Path: p, Err: errInjected}
	}
	return f.FileSystem.Put(ctx, p, r, size)
}

func (f *failFS) Create(ctx context.Context, p string) (ufs.Writer, error) {
	w, err := f.FileSystem.Create(ctx, p)
	if err != nil {
		return nil, err
	}
	return &failWriter{Writer: w, fs: f}, nil
}

type failWriter struct {
	ufs.Writer
	fs *failFS
}

func (w *failWriter) Close() (ufs.Fingerprint, error) {
	if w.fs.fail.Load() {
		w.Writer.Abort()
		return ufs.Fingerprint{}, errInjected
	}
	return w.Writer.Close()
}

// joinName builds a name of n bytes from a prefix.
func joinName(prefix string, n int) string {
	return prefix + strings.Repeat("x", n-len(prefix))
}

// readOnlyFile records a file that already exists in the UFS (as a listing load
// would) as name in dir.
func (f *fakeNS) readOnlyFile(t testing.TB, dir meta.Ino, name, ufsDir string) {
	t.Helper()
	fsys, p, err := f.where(dir, name, false)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := fsys.Stat(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fp := &metapb.Fingerprint{Size: fi.Size, Etag: fi.ETag, MtimeNs: fi.ModTime.UnixNano()}
	if _, err := f.mutate(&metapb.CreateFile{Parent: dir, Name: []byte(name), Mode: 0o644, Persist: metapb.PersistState_PERSISTED, Ufs: fp}); err != nil {
		t.Fatal(err)
	}
}
