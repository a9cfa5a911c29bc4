package meta

import (
	"syscall"

	"github.com/skyfs/skyfs/proto/metapb"
)

// Ino is an inode number. Inode numbers are never reused.
type Ino = uint64

// RootIno is the inode number of the namespace's root directory.
const RootIno Ino = 1

// Limits of names and values, as on Linux.
const (
	MaxNameLen       = 255   // bytes in one path component (NAME_MAX)
	MaxPathLen       = 4096  // bytes in a path, with its terminating NUL (PATH_MAX)
	MaxSymlinkLen    = 4095  // bytes in a symlink target
	MaxXattrNameLen  = 255   // bytes in an extended attribute name (XATTR_NAME_MAX)
	MaxXattrValueLen = 65536 // bytes in an extended attribute value (XATTR_SIZE_MAX)
	MaxLinks         = 1 << 20
)

// FileType is the kind of an inode.
type FileType uint8

// The kinds of inode.
const (
	TypeRegular   = FileType(metapb.FileType_REGULAR)
	TypeDirectory = FileType(metapb.FileType_DIRECTORY)
	TypeSymlink   = FileType(metapb.FileType_SYMLINK)
	// Special files, which live in the namespace only (see Mknod).
	TypeFIFO        = FileType(metapb.FileType_FIFO)
	TypeSocket      = FileType(metapb.FileType_SOCKET)
	TypeCharDevice  = FileType(metapb.FileType_CHAR_DEVICE)
	TypeBlockDevice = FileType(metapb.FileType_BLOCK_DEVICE)
)

// Special reports whether t is a special file: a FIFO, a socket, or a
// character or block device.
func (t FileType) Special() bool {
	switch t {
	case TypeFIFO, TypeSocket, TypeCharDevice, TypeBlockDevice:
		return true
	}
	return false
}

func (t FileType) String() string {
	switch t {
	case TypeRegular:
		return "file"
	case TypeDirectory:
		return "dir"
	case TypeSymlink:
		return "symlink"
	case TypeFIFO:
		return "fifo"
	case TypeSocket:
		return "socket"
	case TypeCharDevice:
		return "char"
	case TypeBlockDevice:
		return "block"
	}
	return "unknown"
}

// Bits of SetAttr.valid: which attributes an entry changes.
const (
	SetAttrMode  = 1 << 0
	SetAttrUID   = 1 << 1
	SetAttrGID   = 1 << 2
	SetAttrSize  = 1 << 3
	SetAttrAtime = 1 << 4
	SetAttrMtime = 1 << 5
	setAttrAll   = 1<<6 - 1
)

// Flags of Rename, as Linux renameat2(2).
const (
	RenameNoReplace = 1 << 0
	RenameExchange  = 1 << 1
)

// Flags of SetXattr, as Linux setxattr(2).
const (
	XattrCreate  = 1
	XattrReplace = 2
)

// Fingerprint identifies one version of a UFS object.
type Fingerprint struct {
	Size    int64
	ETag    string
	Version string
	MtimeNs int64
}

// Attr is the attributes of one inode.
type Attr struct {
	Ino   Ino
	Type  FileType
	Mode  uint32 // permission bits (07777)
	UID   uint32
	GID   uint32
	Size  uint64
	Nlink uint32
	// Times in nanoseconds since the Unix epoch.
	Atime, Mtime, Ctime int64
	// Target of a symlink.
	Target []byte
	// Rdev is the device a character or block device names, in Linux's
	// encoding (stat(2)'s st_rdev).
	Rdev uint32
	// MountID is non-zero for the root directory of a UFS mount.
	MountID uint64
	// UFS is the fingerprint of the UFS object the file was loaded or written
	// with; Pending says the file's upload has not completed yet.
	UFS     Fingerprint
	Pending bool
	// Loaded says a directory's listing has been loaded from its UFS, and when.
	Loaded   bool
	LoadedNs int64
}

// DirEntry is one entry of a directory listing.
type DirEntry struct {
	Name []byte
	Ino  Ino
	Type FileType
	// Attr is set by ReadDir when it is asked for attributes (readdirplus).
	Attr *Attr
}

// Mount is one entry of the UFS mount table.
type Mount struct {
	ID   uint64
	Path string
	URI  string
	// Options may hold secrets; see Mount.Redacted.
	Options        map[string]string
	ReadOnly       bool
	SyncIntervalNs int64
	RootIno        Ino
	CreatedNs      int64
}

// Result is the outcome of one applied entry.
type Result struct {
	// Errno is the POSIX outcome; zero for success. A non-zero Errno means the
	// entry changed nothing.
	Errno syscall.Errno
	// Ino is the inode the entry created or acted on.
	Ino Ino
	// Attr is that inode's attributes after the entry, when it still exists.
	Attr *Attr
	// Dir is the attributes after the entry of the directory it added a name
	// to or removed one from (create, mkdir, symlink, link, unlink, rmdir);
	// nil for other entries and for replays.
	Dir *Attr
	// Gen is the sync generation a LoadDir entry with begin set started.
	Gen uint64
	// Removed lists inodes the entry deleted (their data may be dropped).
	Removed []Ino
	// Replayed says the entry's request had already been applied: the Result is
	// the remembered outcome of the first attempt (Errno, Ino and Removed).
	Replayed bool
	// Ops is the outcome of each operation of a Batch entry, in order (nil
	// when the whole batch was refused: Errno says why).
	Ops []Result
	// Until is the end (exclusive) of the inode range a GrantRange entry
	// granted, which starts at Ino.
	Until Ino
	// Expires is when the lease of the session an OpenSession or Delegate
	// entry renewed or used runs out (entry time).
	Expires int64
	// Holder is the session whose delegation a Recall or Undelegate entry
	// recalled or ended.
	Holder uint64
}

func fingerprintFromPB(f *metapb.Fingerprint) Fingerprint {
	if f == nil {
		return Fingerprint{}
	}
	return Fingerprint{Size: f.Size, ETag: f.Etag, Version: f.Version, MtimeNs: f.MtimeNs}
}

// PB converts a fingerprint to its journal form.
func (f Fingerprint) PB() *metapb.Fingerprint {
	if f == (Fingerprint{}) {
		return nil
	}
	return &metapb.Fingerprint{Size: f.Size, Etag: f.ETag, Version: f.Version, MtimeNs: f.MtimeNs}
}

func attrFromPB(n *metapb.Inode) *Attr {
	return &Attr{
		Ino:      n.Ino,
		Type:     FileType(n.Type),
		Mode:     n.Mode,
		UID:      n.Uid,
		GID:      n.Gid,
		Size:     n.Size,
		Nlink:    n.Nlink,
		Atime:    n.AtimeNs,
		Mtime:    n.MtimeNs,
		Ctime:    n.CtimeNs,
		Target:   n.SymlinkTarget,
		Rdev:     n.Rdev,
		MountID:  n.MountId,
		UFS:      fingerprintFromPB(n.Ufs),
		Pending:  n.Persist == metapb.PersistState_PENDING,
		Loaded:   n.Loaded,
		LoadedNs: n.LoadedNs,
	}
}

func mountFromPB(m *metapb.Mount) *Mount {
	return &Mount{
		ID:             m.Id,
		Path:           m.Path,
		URI:            m.Uri,
		Options:        m.Options,
		ReadOnly:       m.ReadOnly,
		SyncIntervalNs: m.SyncIntervalNs,
		RootIno:        m.RootIno,
		CreatedNs:      m.CreatedNs,
	}
}
