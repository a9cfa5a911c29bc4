package mountd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skyfs/skyfs/client"
	"github.com/skyfs/skyfs/fusefs"
	"github.com/skyfs/skyfs/meta"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
	"github.com/skyfs/skyfs/ufs"
)

// ufsOpenTimeout bounds opening one mount's UFS (and fetching its record).
const ufsOpenTimeout = 30 * time.Second

// errNoStatDir is StatDir's answer when the masters do not know it.
var errNoStatDir = errors.New("mountd: the masters do not answer StatDir")

// namespace implements fusefs.Namespace over the gRPC client. POSIX outcomes
// come back from the client as errors that errors.As to syscall.Errno, which
// is what fusefs expects.
type namespace struct {
	c   *client.Client
	log *slog.Logger
	// wrap, when set, wraps every UFS opened (to count its calls).
	wrap func(fsys ufs.FileSystem, uri string) ufs.FileSystem

	// noStatDir is set once the masters answered that they do not know
	// StatDir (older masters): fusefs then asks for each file apart.
	noStatDir atomic.Bool

	mu     sync.Mutex
	mounts map[uint64]*ufsMount
}

// ufsMount is one UFS mount's open FileSystem, opened once from the mount
// record (with its credentials) that the master hands to mount daemons. The
// record itself is not kept: the credentials live only inside the
// FileSystem.
type ufsMount struct {
	ready    chan struct{} // closed when fs or err is set
	fs       ufs.FileSystem
	readOnly bool
	err      error
}

var _ fusefs.Namespace = (*namespace)(nil)

func newNamespace(c *client.Client, l *slog.Logger) *namespace {
	return &namespace{c: c, log: l, mounts: make(map[uint64]*ufsMount)}
}

// close closes every UFS FileSystem opened.
func (n *namespace) close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	for id, m := range n.mounts {
		select {
		case <-m.ready:
			if m.fs != nil {
				errs = append(errs, m.fs.Close())
			}
		default: // still opening; the process is exiting anyway
		}
		delete(n.mounts, id)
	}
	return errors.Join(errs...)
}

func attrMeta(a *pb.Attr) *meta.Attr {
	if a == nil {
		return nil
	}
	return &meta.Attr{
		Ino:     a.Ino,
		Type:    meta.FileType(a.Type),
		Mode:    a.Mode,
		UID:     a.Uid,
		GID:     a.Gid,
		Size:    a.Size,
		Nlink:   a.Nlink,
		Atime:   a.AtimeNs,
		Mtime:   a.MtimeNs,
		Ctime:   a.CtimeNs,
		Target:  a.SymlinkTarget,
		MountID: a.MountId,
		UFS:     fingerprintMeta(a.Ufs),
		Pending: a.Pending,
		Rdev:    a.Rdev,
	}
}

func fingerprintMeta(f *pb.Fingerprint) meta.Fingerprint {
	if f == nil {
		return meta.Fingerprint{}
	}
	return meta.Fingerprint{Size: f.Size, ETag: f.Etag, Version: f.Version, MtimeNs: f.MtimeNs}
}

func fingerprintPB(f meta.Fingerprint) *pb.Fingerprint {
	if f == (meta.Fingerprint{}) {
		return nil
	}
	return &pb.Fingerprint{Size: f.Size, Etag: f.ETag, Version: f.Version, MtimeNs: f.MtimeNs}
}

func callerPB(c fusefs.Caller) *pb.Caller {
	return &pb.Caller{Uid: c.UID, Gid: c.GID, Groups: c.Groups}
}

// entryAttr returns the attributes of the inode a mutation created or
// changed. A replayed request whose inode has changed since answers without
// attributes; they are fetched then.
func (n *namespace) entryAttr(ctx context.Context, resp *pb.EntryResponse, err error) (*meta.Attr, error) {
	if err != nil {
		return nil, err
	}
	if resp.Attr != nil {
		return attrMeta(resp.Attr), nil
	}
	return n.GetAttr(ctx, resp.Ino)
}

// made answers a call that added a name: the inode's attributes and the
// directory's, when the master reported them.
func (n *namespace) made(ctx context.Context, resp *pb.EntryResponse, err error) (fusefs.Made, error) {
	a, err := n.entryAttr(ctx, resp, err)
	if err != nil {
		return fusefs.Made{}, err
	}
	return fusefs.Made{Attr: a, Dir: attrMeta(resp.DirAttr)}, nil
}

// Lookup implements fusefs.Namespace.
func (n *namespace) Lookup(ctx context.Context, parent meta.Ino, name string) (*meta.Attr, error) {
	a, err := n.c.Lookup(ctx, parent, name)
	if err != nil {
		return nil, err
	}
	return attrMeta(a), nil
}

// GetAttr implements fusefs.Namespace.
func (n *namespace) GetAttr(ctx context.Context, ino meta.Ino) (*meta.Attr, error) {
	a, err := n.c.GetAttr(ctx, ino)
	if err != nil {
		return nil, err
	}
	return attrMeta(a), nil
}

// ReadDir implements fusefs.Namespace.
func (n *namespace) ReadDir(ctx context.Context, dir meta.Ino, after string, limit int, plus bool) ([]meta.DirEntry, bool, error) {
	resp, err := n.c.ReadDir(ctx, &pb.ReadDirRequest{Ino: dir, Cursor: []byte(after), Limit: uint32(limit), Plus: plus})
	if err != nil {
		return nil, false, err
	}
	out := make([]meta.DirEntry, len(resp.Entries))
	for i, e := range resp.Entries {
		out[i] = meta.DirEntry{Name: e.Name, Ino: e.Ino, Type: meta.FileType(e.Type), Attr: attrMeta(e.Attr)}
	}
	return out, resp.More, nil
}

// Mkdir implements fusefs.Namespace.
func (n *namespace) Mkdir(ctx context.Context, parent meta.Ino, name string, mode uint32, c fusefs.Caller) (fusefs.Made, error) {
	resp, err := n.c.Mkdir(ctx, &pb.MkdirRequest{Caller: callerPB(c), Parent: parent, Name: []byte(name), Mode: mode})
	return n.made(ctx, resp, err)
}

// Create implements fusefs.Namespace. The master answers where the file
// lives too; when it could not say (the file is already gone), fusefs asks
// Location, which reports why.
func (n *namespace) Create(ctx context.Context, parent meta.Ino, name string, mode uint32, c fusefs.Caller) (fusefs.Made, error) {
	resp, err := n.c.Create(ctx, &pb.CreateRequest{Caller: callerPB(c), Parent: parent, Name: []byte(name), Mode: mode, WantLocation: true})
	made, err := n.made(ctx, resp, err)
	if err != nil || resp.Location == nil || resp.Location.Errno != 0 {
		return made, err
	}
	if loc, err := n.location(ctx, resp.Location); err == nil {
		made.Loc = &loc
	} // else Location will try again, and report
	return made, nil
}

// Symlink implements fusefs.Namespace.
func (n *namespace) Symlink(ctx context.Context, parent meta.Ino, name, target string, c fusefs.Caller) (fusefs.Made, error) {
	resp, err := n.c.Symlink(ctx, &pb.SymlinkRequest{Caller: callerPB(c), Parent: parent, Name: []byte(name), Target: []byte(target)})
	return n.made(ctx, resp, err)
}

// Mknod implements fusefs.Namespace.
func (n *namespace) Mknod(ctx context.Context, parent meta.Ino, name string, typ meta.FileType, mode, rdev uint32, c fusefs.Caller) (fusefs.Made, error) {
	resp, err := n.c.Mknod(ctx, &pb.MknodRequest{
		Caller: callerPB(c), Parent: parent, Name: []byte(name), Type: pb.FileType(typ), Mode: mode, Rdev: rdev,
	})
	return n.made(ctx, resp, err)
}

// Link implements fusefs.Namespace.
func (n *namespace) Link(ctx context.Context, ino, newParent meta.Ino, newName string) (fusefs.Made, error) {
	resp, err := n.c.Link(ctx, &pb.LinkRequest{Ino: ino, NewParent: newParent, NewName: []byte(newName)})
	return n.made(ctx, resp, err)
}

// Unlink implements fusefs.Namespace.
func (n *namespace) Unlink(ctx context.Context, parent meta.Ino, name string) (*meta.Attr, error) {
	resp, err := n.c.Unlink(ctx, &pb.UnlinkRequest{Parent: parent, Name: []byte(name)})
	if err != nil {
		return nil, err
	}
	return attrMeta(resp.DirAttr), nil
}

// Rmdir implements fusefs.Namespace.
func (n *namespace) Rmdir(ctx context.Context, parent meta.Ino, name string) (*meta.Attr, error) {
	resp, err := n.c.Rmdir(ctx, &pb.RmdirRequest{Parent: parent, Name: []byte(name)})
	if err != nil {
		return nil, err
	}
	return attrMeta(resp.DirAttr), nil
}

// Rename implements fusefs.Namespace.
func (n *namespace) Rename(ctx context.Context, oldParent meta.Ino, oldName string, newParent meta.Ino, newName string, flags uint32) error {
	_, err := n.c.Rename(ctx, &pb.RenameRequest{
		OldParent: oldParent, OldName: []byte(oldName),
		NewParent: newParent, NewName: []byte(newName), Flags: flags,
	})
	return err
}

// SetAttr implements fusefs.Namespace.
func (n *namespace) SetAttr(ctx context.Context, ino meta.Ino, req fusefs.SetAttrRequest) (*meta.Attr, error) {
	r := &pb.SetAttrRequest{
		Ino: ino, Valid: req.Valid, Mode: req.Mode, Uid: req.UID, Gid: req.GID, Size: req.Size,
		AtimeNs: req.AtimeNs, MtimeNs: req.MtimeNs, AtimeNow: req.AtimeNow, MtimeNow: req.MtimeNow,
	}
	if req.UFS != nil {
		r.Ufs = fingerprintPB(*req.UFS)
	}
	if req.Caller != nil {
		r.Caller = callerPB(*req.Caller)
	}
	resp, err := n.c.SetAttr(ctx, r)
	return n.entryAttr(ctx, resp, err)
}

// CompleteFile implements fusefs.Namespace: one journaled call records size,
// fingerprint and modification time.
func (n *namespace) CompleteFile(ctx context.Context, ino meta.Ino, size uint64, fp meta.Fingerprint, mtimeNs int64) (*meta.Attr, error) {
	resp, err := n.c.CompleteFile(ctx, &pb.CompleteFileRequest{Ino: ino, Size: size, Ufs: fingerprintPB(fp), MtimeNs: mtimeNs})
	return n.entryAttr(ctx, resp, err)
}

// GetXattr implements fusefs.Namespace.
func (n *namespace) GetXattr(ctx context.Context, ino meta.Ino, name string) ([]byte, error) {
	return n.c.GetXattr(ctx, &pb.GetXattrRequest{Ino: ino, Name: []byte(name)})
}

// SetXattr implements fusefs.Namespace.
func (n *namespace) SetXattr(ctx context.Context, ino meta.Ino, name string, value []byte, flags uint32) error {
	return n.c.SetXattr(ctx, &pb.SetXattrRequest{Ino: ino, Name: []byte(name), Value: value, Flags: flags})
}

// ListXattr implements fusefs.Namespace.
func (n *namespace) ListXattr(ctx context.Context, ino meta.Ino) ([]string, error) {
	names, err := n.c.ListXattr(ctx, &pb.ListXattrRequest{Ino: ino})
	if err != nil {
		return nil, err
	}
	out := make([]string, len(names))
	for i, b := range names {
		out[i] = string(b)
	}
	return out, nil
}

// RemoveXattr implements fusefs.Namespace.
func (n *namespace) RemoveXattr(ctx context.Context, ino meta.Ino, name string) error {
	return n.c.RemoveXattr(ctx, &pb.RemoveXattrRequest{Ino: ino, Name: []byte(name)})
}

// StatFS implements fusefs.Namespace.
func (n *namespace) StatFS(ctx context.Context) (fusefs.StatFS, error) {
	resp, err := n.c.StatFS(ctx)
	if err != nil {
		return fusefs.StatFS{}, err
	}
	return fusefs.StatFS{Inodes: resp.Inodes, BlockSize: resp.BlockSize, MaxNameLen: resp.MaxNameLen}, nil
}

// Location implements fusefs.Namespace: the master says which mount holds
// ino and where; the mount's FileSystem is opened on first use and kept.
func (n *namespace) Location(ctx context.Context, ino meta.Ino) (fusefs.Location, error) {
	loc, err := n.c.Locate(ctx, ino)
	if err != nil {
		return fusefs.Location{}, err
	}
	return n.location(ctx, loc)
}

// StatDir implements fusefs.Namespace: one call for the attributes of
// names in dir and where dir lives.
func (n *namespace) StatDir(ctx context.Context, dir meta.Ino, names []string) (fusefs.DirStat, error) {
	if n.noStatDir.Load() {
		return fusefs.DirStat{}, errNoStatDir
	}
	raw := make([][]byte, len(names))
	for i, name := range names {
		raw[i] = []byte(name)
	}
	resp, err := n.c.StatDir(ctx, dir, raw)
	if status.Code(err) == codes.Unimplemented {
		n.noStatDir.Store(true)
		n.log.Warn("mountd: the masters do not answer StatDir; files are revalidated one by one", "err", err)
		return fusefs.DirStat{}, errNoStatDir
	}
	if err != nil {
		return fusefs.DirStat{}, err
	}
	if len(resp.Entries) != len(names) {
		return fusefs.DirStat{}, fmt.Errorf("statdir: %d entries answered for %d names", len(resp.Entries), len(names))
	}
	loc, err := n.location(ctx, &pb.LocateResponse{MountId: resp.MountId, UfsPath: resp.UfsPath, ReadOnly: resp.ReadOnly})
	if err != nil {
		return fusefs.DirStat{}, err
	}
	ds := fusefs.DirStat{Dir: attrMeta(resp.DirAttr), Loc: loc, Attrs: make([]*meta.Attr, len(names))}
	for i, e := range resp.Entries {
		if e.Errno == 0 {
			ds.Attrs[i] = attrMeta(e.Attr)
		}
	}
	return ds, nil
}

// location turns the master's answer to Locate into a fusefs.Location.
func (n *namespace) location(ctx context.Context, loc *pb.LocateResponse) (fusefs.Location, error) {
	m, err := n.mount(ctx, loc.MountId)
	if err != nil {
		return fusefs.Location{}, err
	}
	return fusefs.Location{MountID: loc.MountId, FS: m.fs, Path: loc.UfsPath, ReadOnly: loc.ReadOnly || m.readOnly}, nil
}

// mount returns the open FileSystem of mount id, opening it once. A failed
// open is not remembered: the next call tries again.
func (n *namespace) mount(ctx context.Context, id uint64) (*ufsMount, error) {
	for {
		n.mu.Lock()
		m, ok := n.mounts[id]
		if !ok {
			m = &ufsMount{ready: make(chan struct{})}
			n.mounts[id] = m
			n.mu.Unlock()
			n.open(ctx, id, m)
		} else {
			n.mu.Unlock()
		}
		select {
		case <-m.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if m.err == nil {
			return m, nil
		}
		n.mu.Lock()
		if n.mounts[id] == m {
			delete(n.mounts, id)
			n.mu.Unlock()
			return nil, m.err
		}
		n.mu.Unlock() // another caller is trying again
	}
}

// open fills m with the FileSystem of mount id. The record carries the
// credentials: it is used here and dropped, and neither the URI nor the
// options reach a message unredacted.
func (n *namespace) open(ctx context.Context, id uint64, m *ufsMount) {
	defer close(m.ready)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ufsOpenTimeout)
	defer cancel()
	rec, err := n.c.MountAccess(ctx, id)
	if status.Code(err) == codes.PermissionDenied {
		// The token does not serve this mount: the caller gets EACCES.
		err = fmt.Errorf("%w: %s", fs.ErrPermission, status.Convert(err).Message())
	}
	if err != nil {
		m.err = fmt.Errorf("mount %d: %w", id, err)
		n.log.Error("mountd: cannot open UFS mount", "err", m.err)
		return
	}
	opts := ufs.Options(rec.Options)
	fsys, err := ufs.Open(ctx, rec.Uri, opts)
	if err != nil {
		m.err = fmt.Errorf("mount %d (%s at %s): %w", id, ufs.RedactURI(rec.Uri), rec.Path, opts.Scrub(err))
		n.log.Error("mountd: cannot open UFS mount", "err", m.err)
		return
	}
	if n.wrap != nil {
		fsys = n.wrap(fsys, rec.Uri)
	}
	m.fs, m.readOnly = fsys, rec.ReadOnly
	n.log.Info("mountd: opened UFS mount", "id", id, "uri", ufs.RedactURI(rec.Uri), "path", rec.Path, "options", opts.String())
}
