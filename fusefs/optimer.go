package fusefs

import (
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Op is a FUSE operation, as reported to Options.Observe.
type Op uint8

// The FUSE operations timed. Forget and the protocol's housekeeping
// (INIT, INTERRUPT, ...) are not.
const (
	OpLookup Op = iota
	OpGetAttr
	OpSetAttr
	OpMknod
	OpMkdir
	OpUnlink
	OpRmdir
	OpRename
	OpLink
	OpSymlink
	OpReadlink
	OpAccess
	OpGetXattr
	OpListXattr
	OpSetXattr
	OpRemoveXattr
	OpCreate
	OpOpen
	OpRead
	OpWrite
	OpFlush
	OpFsync
	OpRelease
	OpFallocate
	OpCopyFileRange
	OpLseek
	OpOpenDir
	OpReadDir
	OpReadDirPlus
	OpReleaseDir
	OpStatFS
	OpStatx
	// NumOps is the number of operations: Op values are below it.
	NumOps
)

var opNames = [NumOps]string{
	"lookup", "getattr", "setattr", "mknod", "mkdir", "unlink", "rmdir", "rename", "link", "symlink",
	"readlink", "access", "getxattr", "listxattr", "setxattr", "removexattr", "create", "open", "read",
	"write", "flush", "fsync", "release", "fallocate", "copy_file_range", "lseek", "opendir", "readdir",
	"readdirplus", "releasedir", "statfs", "statx",
}

// String returns the operation's lower-case name ("lookup", "read", ...).
func (o Op) String() string {
	if o < NumOps {
		return opNames[o]
	}
	return "unknown"
}

// timedFS times the requests of the raw file system go-fuse serves and
// reports them to observe, with the errno answered (0 for success).
//
// It also makes every request it wraps uninterruptible, as on a local file
// system: the kernel sends FUSE INTERRUPT whenever the calling thread gets a
// signal (any signal, the Go runtime's own included), and a handler whose
// context were cancelled by it would answer EINTR to a stat, an open or a
// read — an error callers of a disk file system never see, and which the
// kernel does not restart. So the inner file system gets no cancel channel.
// A fatal signal still ends the caller: the kernel then drops the answer.
type timedFS struct {
	fuse.RawFileSystem
	observe func(op Op, took time.Duration, errno syscall.Errno)
}

func (t *timedFS) done(op Op, start time.Time, st fuse.Status) {
	t.observe(op, time.Since(start), syscall.Errno(st))
}

func (t *timedFS) Lookup(cancel <-chan struct{}, header *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.Lookup(nil, header, name, out)
	t.done(OpLookup, start, st)
	return st
}

func (t *timedFS) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.GetAttr(nil, in, out)
	t.done(OpGetAttr, start, st)
	return st
}

func (t *timedFS) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.SetAttr(nil, in, out)
	t.done(OpSetAttr, start, st)
	return st
}

func (t *timedFS) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.Mknod(nil, in, name, out)
	t.done(OpMknod, start, st)
	return st
}

func (t *timedFS) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.Mkdir(nil, in, name, out)
	t.done(OpMkdir, start, st)
	return st
}

func (t *timedFS) Unlink(cancel <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.Unlink(nil, header, name)
	t.done(OpUnlink, start, st)
	return st
}

func (t *timedFS) Rmdir(cancel <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.Rmdir(nil, header, name)
	t.done(OpRmdir, start, st)
	return st
}

func (t *timedFS) Rename(cancel <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.Rename(nil, in, oldName, newName)
	t.done(OpRename, start, st)
	return st
}

func (t *timedFS) Link(cancel <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.Link(nil, in, name, out)
	t.done(OpLink, start, st)
	return st
}

func (t *timedFS) Symlink(cancel <-chan struct{}, header *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.Symlink(nil, header, target, name, out)
	t.done(OpSymlink, start, st)
	return st
}

func (t *timedFS) Readlink(cancel <-chan struct{}, header *fuse.InHeader) ([]byte, fuse.Status) {
	start := time.Now()
	b, st := t.RawFileSystem.Readlink(nil, header)
	t.done(OpReadlink, start, st)
	return b, st
}

func (t *timedFS) Access(cancel <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.Access(nil, in)
	t.done(OpAccess, start, st)
	return st
}

func (t *timedFS) GetXAttr(cancel <-chan struct{}, header *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := t.RawFileSystem.GetXAttr(nil, header, attr, dest)
	t.done(OpGetXattr, start, st)
	return n, st
}

func (t *timedFS) ListXAttr(cancel <-chan struct{}, header *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := t.RawFileSystem.ListXAttr(nil, header, dest)
	t.done(OpListXattr, start, st)
	return n, st
}

func (t *timedFS) SetXAttr(cancel <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.SetXAttr(nil, in, attr, data)
	t.done(OpSetXattr, start, st)
	return st
}

func (t *timedFS) RemoveXAttr(cancel <-chan struct{}, header *fuse.InHeader, attr string) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.RemoveXAttr(nil, header, attr)
	t.done(OpRemoveXattr, start, st)
	return st
}

func (t *timedFS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.Create(nil, in, name, out)
	t.done(OpCreate, start, st)
	return st
}

func (t *timedFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.Open(nil, in, out)
	t.done(OpOpen, start, st)
	return st
}

func (t *timedFS) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	start := time.Now()
	r, st := t.RawFileSystem.Read(nil, in, buf)
	t.done(OpRead, start, st)
	return r, st
}

func (t *timedFS) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := t.RawFileSystem.Write(nil, in, data)
	t.done(OpWrite, start, st)
	return n, st
}

func (t *timedFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := t.RawFileSystem.Writev(nil, in, data)
	if st != fuse.ENOSYS { // go-fuse then calls Write, timed there
		t.done(OpWrite, start, st)
	}
	return n, st
}

func (t *timedFS) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.Flush(nil, in)
	t.done(OpFlush, start, st)
	return st
}

func (t *timedFS) Fsync(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.Fsync(nil, in)
	t.done(OpFsync, start, st)
	return st
}

func (t *timedFS) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	start := time.Now()
	t.RawFileSystem.Release(nil, in)
	t.done(OpRelease, start, fuse.OK)
}

func (t *timedFS) Fallocate(cancel <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.Fallocate(nil, in)
	t.done(OpFallocate, start, st)
	return st
}

func (t *timedFS) CopyFileRange(cancel <-chan struct{}, in *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	start := time.Now()
	n, st := t.RawFileSystem.CopyFileRange(nil, in)
	t.done(OpCopyFileRange, start, st)
	return n, st
}

func (t *timedFS) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.Lseek(nil, in, out)
	t.done(OpLseek, start, st)
	return st
}

func (t *timedFS) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.OpenDir(nil, in, out)
	t.done(OpOpenDir, start, st)
	return st
}

func (t *timedFS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.ReadDir(nil, in, out)
	t.done(OpReadDir, start, st)
	return st
}

func (t *timedFS) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.ReadDirPlus(nil, in, out)
	t.done(OpReadDirPlus, start, st)
	return st
}

func (t *timedFS) ReleaseDir(in *fuse.ReleaseIn) {
	start := time.Now()
	t.RawFileSystem.ReleaseDir(in)
	t.done(OpReleaseDir, start, fuse.OK)
}

func (t *timedFS) StatFs(cancel <-chan struct{}, header *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.StatFs(nil, header, out)
	t.done(OpStatFS, start, st)
	return st
}

func (t *timedFS) Statx(cancel <-chan struct{}, in *fuse.StatxIn, out *fuse.StatxOut) fuse.Status {
	start := time.Now()
	st := t.RawFileSystem.Statx(nil, in, out)
	t.done(OpStatx, start, st)
	return st
}

// mountTimed is gofs.Mount with uninterruptible requests, each timed by
// observe when it is set.
func mountTimed(dir string, root gofs.InodeEmbedder, fo *gofs.Options, observe func(Op, time.Duration, syscall.Errno), rootSquash bool) (*fuse.Server, error) {
	raw := gofs.NewNodeFS(root, fo)
	if rootSquash {
		raw = &squashFS{RawFileSystem: raw}
	}
	if observe == nil {
		observe = func(Op, time.Duration, syscall.Errno) {}
	}
	raw = &timedFS{RawFileSystem: raw, observe: observe}
	server, err := fuse.NewServer(raw, dir, &fo.MountOptions)
	if err != nil {
		return nil, err
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		return nil, err
	}
	return server, nil
}
