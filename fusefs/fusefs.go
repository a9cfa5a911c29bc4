package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/skyfs/skyfs/cache"
	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/ufs"
)

// Namespace is what fusefs needs from the master. cmd/mountd implements it
// over the gRPC client. POSIX failures come back as syscall.Errno values
// (possibly wrapped); any other error is reported to the kernel as EIO.
// Names are raw bytes in Go strings.
type Namespace interface {
	// Lookup returns the attributes of name in directory parent.
	Lookup(ctx context.Context, parent meta.Ino, name string) (*meta.Attr, error)
	// GetAttr returns the current attributes of ino.
	GetAttr(ctx context.Context, ino meta.Ino) (*meta.Attr, error)
	// ReadDir returns up to limit entries of dir whose names sort after the
	// cursor after ("" for the first page), and whether more follow. With
	// plus set every entry carries its attributes.
	ReadDir(ctx context.Context, dir meta.Ino, after string, limit int, plus bool) ([]meta.DirEntry, bool, error)

	// Mkdir creates a directory owned by c.
	Mkdir(ctx context.Context, parent meta.Ino, name string, mode uint32, c Caller) (Made, error)
	// Create creates an empty regular file owned by c. Its UFS object is
	// written by fusefs when the file is first closed.
	Create(ctx context.Context, parent meta.Ino, name string, mode uint32, c Caller) (Made, error)
	// Symlink creates a symbolic link owned by c.
	Symlink(ctx context.Context, parent meta.Ino, name, target string, c Caller) (Made, error)
	// Mknod creates a special file owned by c: typ is a FIFO, a socket or a
	// device, rdev the device of a device. It lives in the namespace only,
	// whatever the UFS.
	Mknod(ctx context.Context, parent meta.Ino, name string, typ meta.FileType, mode, rdev uint32, c Caller) (Made, error)
	// Link makes newName in newParent another name of ino.
	Link(ctx context.Context, ino, newParent meta.Ino, newName string) (Made, error)
	// Unlink removes the non-directory name from parent and returns the
	// directory's attributes just after (nil when not reported).
	Unlink(ctx context.Context, parent meta.Ino, name string) (*meta.Attr, error)
	// Rmdir removes the empty directory name from parent and returns the
	// directory's attributes just after (nil when not reported).
	Rmdir(ctx context.Context, parent meta.Ino, name string) (*meta.Attr, error)
	// Rename moves oldName in oldParent to newName in newParent; flags are
	// renameat2's (meta.RenameNoReplace, meta.RenameExchange).
	Rename(ctx context.Context, oldParent meta.Ino, oldName string, newParent meta.Ino, newName string, flags uint32) error
	// SetAttr changes the attributes of ino that req selects.
	SetAttr(ctx context.Context, ino meta.Ino, req SetAttrRequest) (*meta.Attr, error)
	// CompleteFile records a finished upload of ino: its size, the
	// fingerprint of the UFS object now holding its content, and its
	// modification time (the time of the last local write, which the
	// kernel has already shown; 0 takes the master's clock).
	CompleteFile(ctx context.Context, ino meta.Ino, size uint64, fp meta.Fingerprint, mtimeNs int64) (*meta.Attr, error)

	// GetXattr returns the value of the extended attribute name of ino
	// (ENODATA when there is none).
	GetXattr(ctx context.Context, ino meta.Ino, name string) ([]byte, error)
	// SetXattr sets an extended attribute; flags are meta.XattrCreate or
	// meta.XattrReplace.
	SetXattr(ctx context.Context, ino meta.Ino, name string, value []byte, flags uint32) error
	// ListXattr returns the names of the extended attributes of ino.
	ListXattr(ctx context.Context, ino meta.Ino) ([]string, error)
	// RemoveXattr removes an extended attribute (ENODATA when there is none).
	RemoveXattr(ctx context.Context, ino meta.Ino, name string) error

	// Location says which UFS object backs ino (a file or directory).
	Location(ctx context.Context, ino meta.Ino) (Location, error)
	// StatDir returns, in one call, the current attributes of names in
	// directory dir and where dir lives.
	StatDir(ctx context.Context, dir meta.Ino, names []string) (DirStat, error)
	// StatFS returns figures about the whole namespace.
	StatFS(ctx context.Context) (StatFS, error)
}

// Made is what a call that adds a name to a directory answers.
type Made struct {
	// Attr is the attributes of the inode named (the new one; for Link, the
	// linked one).
	Attr *meta.Attr
	// Dir is the directory's attributes just after the name was added; nil
	// when the namespace does not report them.
	Dir *meta.Attr
	// Loc is, for Create, where the new file lives when the namespace knows
	// it without asking; nil: fusefs calls Location.
	Loc *Location
}

// DirStat is what StatDir answers.
type DirStat struct {
	// Dir is the directory's attributes.
	Dir *meta.Attr
	// Loc is where the directory lives: a file of it with one link lives
	// at ufs.Join(Loc.Path, name) in the same UFS mount.
	Loc Location
	// Attrs holds the attributes of each name asked for, in order; nil
	// where the directory holds no such name.
	Attrs []*meta.Attr
}

// Caller is the local user a request comes from; it owns what it creates.
// Groups are its supplementary groups, where the master's rules need them
// (SetAttr).
type Caller struct {
	UID, GID uint32
	Groups   []uint32
}

// Location is the UFS object behind an inode.
type Location struct {
	// MountID identifies the UFS mount (part of the cache key).
	MountID uint64
	// FS is the mount's open FileSystem.
	FS ufs.FileSystem
	// Path is the inode's path relative to the mount's root.
	Path string
	// ReadOnly is set for a read-only UFS mount: writes fail with EROFS.
	ReadOnly bool
}

// SetAttrRequest selects and carries the attributes SetAttr changes. Valid
// is a set of meta.SetAttr* bits.
type SetAttrRequest struct {
	Valid    uint32
	Mode     uint32
	UID, GID uint32
	Size     uint64
	// Times in nanoseconds since the Unix epoch; AtimeNow and MtimeNow take
	// the master's clock instead.
	AtimeNs, MtimeNs   int64
	AtimeNow, MtimeNow bool
	// UFS is the fingerprint of the UFS object after a truncate, when
	// SetAttrSize is set.
	UFS *meta.Fingerprint
	// Caller is who asks, for the master's ownership rules; nil for the
	// mount's own changes (a truncate's upload), applied as the superuser's.
	Caller *Caller
}

// StatFS holds figures about the namespace, for statfs(2).
type StatFS struct {
	// Inodes is the number of inodes in the namespace.
	Inodes uint64
	// BlockSize is the preferred block size (0: 4096).
	BlockSize uint32
	// MaxNameLen is the longest name (0: 255).
	MaxNameLen uint32
}

// Options configure a mount. StagingDir is required.
type Options struct {
	// RootIno is the directory mounted as the root of the mount (0: the
	// namespace's root, meta.RootIno). A subtree mount never shows what
	// lies above it.
	RootIno meta.Ino
	// StagingDir holds the local copies of files being written. It is
	// created if needed; files left there by a crashed process are removed
	// at Mount.
	StagingDir string
	// AllowOther lets every local user use the mount (allow_other).
	AllowOther bool
	// DefaultPermissions makes the kernel check POSIX permissions
	// (default_permissions). Without it, the master's checks are the only
	// ones.
	DefaultPermissions bool
	// ReadOnly mounts read-only.
	ReadOnly bool
	// AttrTimeout and EntryTimeout are how long the kernel caches attributes
	// and names (0: one second). NegativeTimeout caches failed lookups (0:
	// not cached).
	AttrTimeout, EntryTimeout, NegativeTimeout time.Duration
	// MaxWrite is the largest read or write request (0: 1 MiB).
	MaxWrite int
	// DisablePassthrough never opens cached files with FUSE passthrough.
	DisablePassthrough bool
	// DisableStreaming never streams a sequential write to the UFS while it
	// is written: every file is uploaded from its staging file on close.
	DisableStreaming bool
	// ReadAheadKB is the kernel's read-ahead for the mount in KiB, set
	// through sysfs after mounting (0: 4096, the default block size;
	// negative: the kernel's default, 128). FUSE reads larger than the
	// default go about 2.5 times faster.
	ReadAheadKB int
	// ReadDirPage is the number of entries fetched per ReadDir call (0: 1000).
	ReadDirPage int
	// FsName is the source shown in /proc/mounts (0: "skyfs").
	FsName string
	// Debug logs every FUSE request.
	Debug bool
	// Logger receives failures that cannot be returned (a failed upload on
	// release). Nil logs through the standard logger.
	Logger *log.Logger
	// Observe, when set, is called after every FUSE request (but Forget)
	// with its operation, its duration and the errno answered (0 for
	// success), on the goroutine that served it: it must be quick.
	Observe func(op Op, took time.Duration, errno syscall.Errno)
	// RootSquash serves the requests of uid 0 as nobody (SquashUID and
	// SquashGID): root owns nothing it creates and passes the permission
	// checks only where nobody would (squash.go).
	RootSquash bool
	// StrictOpen makes every open for reading ask the master for the
	// file's attributes and location, as NFS's close-to-open does. Without
	// it an open uses those the mount holds, younger than AttrTimeout
	// (revalidate.go).
	StrictOpen bool
}

// Defaults of Options.
const (
	DefaultMaxWrite    = 1 << 20
	DefaultReadDirPage = 1000
	defaultTimeout     = time.Second
)

// ErrInvalidOptions is returned by Mount for unusable Options.
var ErrInvalidOptions = errors.New("fusefs: invalid options")

// mount is the state shared by every node of one mount.
type mount struct {
	ns      Namespace
	cache   *cache.Cache
	opts    Options
	log     *log.Logger
	staging string
	// passthrough is false when passthrough is disabled or the kernel did not
	// offer it. Set once serving has started.
	passthrough atomic.Bool
	server      *fuse.Server
	// gen counts the changes asked for through this mount (changeCounter);
	// listings are the directory listings lookups are answered from.
	gen      atomic.Uint64
	listings *listings
	// reportTTL is how long a directory's attributes reported by a change
	// made here answer Getattr (Node.noteDir); 0: never.
	reportTTL time.Duration
	// heldTTL is how long a file's attributes and location asked of the
	// master are held (revalidate.go); 0: never. attrGen counts the changes
	// made here that may change the attributes of nodes they do not answer
	// for (changeCounter). skew is added to the clock they are timed with
	// (tests move it on).
	heldTTL time.Duration
	attrGen atomic.Uint64
	skew    atomic.Int64

	// Counters for tests and benchmarks.
	reads        atomic.Int64 // FUSE read requests served
	passthroughs atomic.Int64 // opens answered with passthrough
	handles      atomic.Int64 // file handles open
	releasing    atomic.Int64 // Release calls in progress
	// reportedAttrs counts Getattr calls answered from reported attributes.
	reportedAttrs atomic.Int64
	// heldOpens, heldAttrs and heldLookups count the opens, Getattr and
	// Lookup calls answered from held attributes without a call;
	// revalidations the StatDir calls that answered; revalidationWaits the
	// revalidations that waited for another of the same directory.
	heldOpens, heldAttrs, heldLookups, revalidations, revalidationWaits atomic.Int64
	// relocations counts the reads that asked the master where a file
	// lives now after the UFS no longer had it where it was held.
	relocations atomic.Int64
}

// Mount mounts the namespace ns on dir, reading file content through c, and
// starts serving. The caller unmounts with the returned server's Unmount (and
// may Wait for the serve loop to end).
func Mount(dir string, ns Namespace, c *cache.Cache, opts Options) (*fuse.Server, error) {
	srv, _, err := mountFS(dir, ns, c, opts)
	return srv, err
}

// mountFS is Mount, also returning the mount's state (for tests).
func mountFS(dir string, ns Namespace, c *cache.Cache, opts Options) (*fuse.Server, *mount, error) {
	if ns == nil || c == nil || opts.StagingDir == "" {
		return nil, nil, fmt.Errorf("%w: a namespace, a cache and a staging directory are required", ErrInvalidOptions)
	}
	if opts.MaxWrite == 0 {
		opts.MaxWrite = DefaultMaxWrite
	}
	if opts.ReadDirPage <= 0 {
		opts.ReadDirPage = DefaultReadDirPage
	}
	if opts.ReadDirPage > meta.MaxReadDirPage {
		opts.ReadDirPage = meta.MaxReadDirPage
	}
	if opts.FsName == "" {
		opts.FsName = "skyfs"
	}
	if opts.AttrTimeout == 0 {
		opts.AttrTimeout = defaultTimeout
	}
	if opts.EntryTimeout == 0 {
		opts.EntryTimeout = defaultTimeout
	}
	if opts.RootIno == 0 {
		opts.RootIno = meta.RootIno
	}
	m := &mount{cache: c, opts: opts, log: opts.Logger, staging: opts.StagingDir}
	m.ns = changeCounter{Namespace: ns, gen: &m.gen, attrGen: &m.attrGen}
	if opts.AttrTimeout >= minLocalTTL {
		m.reportTTL = opts.AttrTimeout
		m.heldTTL = opts.AttrTimeout
	}
	m.listings = newListings(opts, &m.gen)
	if m.log == nil {
		m.log = log.Default()
	}
	if err := prepareStaging(opts.StagingDir); err != nil {
		return nil, nil, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rootAttr, err := ns.GetAttr(ctx, opts.RootIno)
	if err != nil {
		return nil, nil, fmt.Errorf("fusefs: root attributes: %w", err)
	}
	if rootAttr.Type != meta.TypeDirectory {
		return nil, nil, fmt.Errorf("%w: inode %d is not a directory", ErrInvalidOptions, opts.RootIno)
	}
	root := m.newNode(rootAttr)

	mo := fuse.MountOptions{
		AllowOther:  opts.AllowOther,
		MaxWrite:    opts.MaxWrite,
		FsName:      opts.FsName,
		Name:        "skyfs",
		DirectMount: true,
		Debug:       opts.Debug,
		// The kernel uses READDIRPLUS only when the listing is followed by
		// lookups (ls -l), so a plain listing of a big directory does not
		// instantiate a node per entry.
		ExtraCapabilities: fuse.CAP_READDIRPLUS_AUTO,
		// Asynchronous requests (read-ahead) in flight at once.
		MaxBackground: 64,
		// Replies are memory buffers: splicing gains nothing, and go-fuse
		// cannot splice a reply larger than a pipe.
		DisableSplice: true,
	}
	if opts.DefaultPermissions {
		mo.Options = append(mo.Options, "default_permissions")
	}
	if opts.ReadOnly {
		mo.Options = append(mo.Options, "ro")
		mo.DirectMountFlags = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_RDONLY
	}
	attrTO, entryTO := opts.AttrTimeout, opts.EntryTimeout
	fo := &gofs.Options{
		MountOptions:    mo,
		AttrTimeout:     &attrTO,
		EntryTimeout:    &entryTO,
		NullPermissions: true,
		RootStableAttr:  &gofs.StableAttr{Ino: opts.RootIno},
	}
	if opts.NegativeTimeout > 0 {
		negTO := opts.NegativeTimeout
		fo.NegativeTimeout = &negTO
	}
	server, err := mountTimed(dir, root, fo, opts.Observe, opts.RootSquash)
	if err != nil {
		return nil, nil, fmt.Errorf("fusefs: mount %s: %w", dir, err)
	}
	m.server = server
	if opts.ReadAheadKB >= 0 {
		kb := opts.ReadAheadKB
		if kb == 0 {
			kb = cache.DefaultBlockSize >> 10
		}
		if err := setReadAhead(dir, kb); err != nil {
			m.log.Printf("fusefs: %v", err)
		}
	}
	m.passthrough.Store(!opts.DisablePassthrough && server.KernelSettings().Flags64()&fuse.CAP_PASSTHROUGH != 0)
	return server, m, nil
}

// setReadAhead sets the read-ahead of the filesystem mounted at dir.
func setReadAhead(dir string, kb int) error {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return fmt.Errorf("set read-ahead: %w", err)
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := os.WriteFile(p, []byte(strconv.Itoa(kb)), 0); err != nil {
		return fmt.Errorf("set read-ahead: %w", err)
	}
	return nil
}

// prepareStaging creates the staging directory and removes what a previous
// process left in it.
func prepareStaging(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("fusefs: staging directory: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("fusefs: staging directory: %w", err)
	}
	for _, e := range ents {
		if len(e.Name()) > len(stagingPrefix) && e.Name()[:len(stagingPrefix)] == stagingPrefix {
			os.Remove(dir + "/" + e.Name())
		}
	}
	return nil
}

// toErrno maps an error to the errno answered to the kernel. It is the only
// place errors cross the FUSE edge.
func toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	switch {
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, context.DeadlineExceeded):
		return syscall.ETIMEDOUT
	case errors.Is(err, fs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, fs.ErrPermission):
		return syscall.EACCES
	case errors.Is(err, ufs.ErrUnsupported):
		return syscall.EOPNOTSUPP
	}
	return syscall.EIO
}

// callerOf returns the uid and gid of the process a request comes from.
func callerOf(ctx context.Context) Caller {
	if c, ok := fuse.FromContext(ctx); ok {
		return Caller{UID: c.Uid, GID: c.Gid}
	}
	return Caller{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
}
