package fusefs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// The user and group that root's requests are served as under
// Options.RootSquash: nobody and nogroup.
const (
	SquashUID = 65534
	SquashGID = 65534
)

// squashFS is root squashing: every request of uid 0 is served as
// SquashUID:SquashGID. Whatever root creates is owned by nobody, and since
// the kernel's default_permissions lets root through regardless of the
// mode bits, squashFS checks root's requests itself against the mode
// bits, as nobody: a 0600 file of another user cannot be read by root on
// a compute host. It reads the attributes it checks through the wrapped
// file system.
type squashFS struct {
	fuse.RawFileSystem
}

// Access bits of a mode's permission triplets.
const (
	mayRead  = 4
	mayWrite = 2
	mayExec  = 1
)

// squash rewrites a request of root to nobody and reports whether it did.
func squash(h *fuse.InHeader) bool {
	if h.Caller.Uid != 0 {
		return false
	}
	h.Caller.Uid, h.Caller.Gid = SquashUID, SquashGID
	return true
}

// attr reads the attributes of node.
func (s *squashFS) attr(cancel <-chan struct{}, h *fuse.InHeader, node uint64) (*fuse.AttrOut, fuse.Status) {
	in := fuse.GetAttrIn{InHeader: *h}
	in.NodeId = node
	var out fuse.AttrOut
	st := s.RawFileSystem.GetAttr(cancel, &in, &out)
	return &out, st
}

// may checks that nobody may access node as want (mayRead|mayWrite|mayExec).
func (s *squashFS) may(cancel <-chan struct{}, h *fuse.InHeader, node uint64, want uint32) fuse.Status {
	a, st := s.attr(cancel, h, node)
	if !st.Ok() {
		return st
	}
	return permits(a, want)
}

func permits(a *fuse.AttrOut, want uint32) fuse.Status {
	var bits uint32
	switch {
	case a.Uid == SquashUID:
		bits = a.Mode >> 6 & 7
	case a.Gid == SquashGID:
		bits = a.Mode >> 3 & 7
	default:
		bits = a.Mode & 7
	}
	if bits&want != want {
		return fuse.EACCES
	}
	return fuse.OK
}

// owns checks that nobody owns node.
func (s *squashFS) owns(cancel <-chan struct{}, h *fuse.InHeader, node uint64) fuse.Status {
	a, st := s.attr(cancel, h, node)
	if !st.Ok() {
		return st
	}
	if a.Uid != SquashUID {
		return fuse.EPERM
	}
	return fuse.OK
}

// openAccess is what open flags need.
func openAccess(flags uint32) uint32 {
	var want uint32
	switch flags & syscall.O_ACCMODE {
	case syscall.O_RDONLY:
		want = mayRead
	case syscall.O_WRONLY:
		want = mayWrite
	default:
		want = mayRead | mayWrite
	}
	if flags&syscall.O_TRUNC != 0 {
		want |= mayWrite
	}
	return want
}

func (s *squashFS) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	if squash(h) {
		if st := s.may(cancel, h, h.NodeId, mayExec); !st.Ok() {
			return st
		}
	}
	return s.RawFileSystem.Lookup(cancel, h, name, out)
}

func (s *squashFS) Access(cancel <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	if squash(&in.InHeader) {
		if st := s.may(cancel, &in.InHeader, in.NodeId, in.Mask&7); !st.Ok() {
			return st
		}
	}
	return s.RawFileSystem.Access(cancel, in)
}

func (s *squashFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if squash(&in.InHeader) {
		if st := s.may(cancel, &in.InHeader, in.NodeId, openAccess(in.Flags)); !st.Ok() {
			return st
		}
	}
	return s.RawFileSystem.Open(cancel, in, out)
}

func (s *squashFS) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if squash(&in.InHeader) {
		if st := s.may(cancel, &in.InHeader, in.NodeId, mayRead); !st.Ok() {
			return st
		}
	}
	return s.RawFileSystem.OpenDir(cancel, in, out)
}

// inDir checks a change of the entries of directory dir.
func (s *squashFS) inDir(cancel <-chan struct{}, h *fuse.InHeader, dir uint64) fuse.Status {
	if !squash(h) {
		return fuse.OK
	}
	return s.may(cancel, h, dir, mayWrite|mayExec)
}

// removes checks that nobody may remove name from directory dir (unlink,
// rmdir, and both names of a rename: the one moved and the one it
// replaces): write and search permission on dir and, when dir is sticky
// (S_ISVTX), ownership of dir or of name's inode, as the kernel's
// check_sticky wants of anyone but root.
func (s *squashFS) removes(cancel <-chan struct{}, h *fuse.InHeader, dir uint64, name string) fuse.Status {
	d, st := s.attr(cancel, h, dir)
	if !st.Ok() {
		return st
	}
	if st := permits(d, mayWrite|mayExec); !st.Ok() {
		return st
	}
	if d.Mode&syscall.S_ISVTX == 0 || d.Uid == SquashUID {
		return fuse.OK
	}
	lh := *h
	lh.NodeId = dir
	var out fuse.EntryOut
	st = s.RawFileSystem.Lookup(cancel, &lh, name, &out)
	if out.NodeId != 0 {
		// The lookup counted a reference the kernel does not hold.
		s.RawFileSystem.Forget(out.NodeId, 1)
	}
	switch {
	case st == fuse.ENOENT:
		return fuse.OK // nothing to remove: the operation answers
	case !st.Ok():
		return st
	case out.Uid != SquashUID:
		return fuse.EPERM
	}
	return fuse.OK
}

func (s *squashFS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	if st := s.inDir(cancel, &in.InHeader, in.NodeId); !st.Ok() {
		return st
	}
	return s.RawFileSystem.Create(cancel, in, name, out)
}

func (s *squashFS) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	if st := s.inDir(cancel, &in.InHeader, in.NodeId); !st.Ok() {
		return st
	}
	return s.RawFileSystem.Mkdir(cancel, in, name, out)
}

func (s *squashFS) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	if st := s.inDir(cancel, &in.InHeader, in.NodeId); !st.Ok() {
		return st
	}
	return s.RawFileSystem.Mknod(cancel, in, name, out)
}

func (s *squashFS) Symlink(cancel <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	if st := s.inDir(cancel, h, h.NodeId); !st.Ok() {
		return st
	}
	return s.RawFileSystem.Symlink(cancel, h, target, name, out)
}

func (s *squashFS) Link(cancel <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	if st := s.inDir(cancel, &in.InHeader, in.NodeId); !st.Ok() {
		return st
	}
	return s.RawFileSystem.Link(cancel, in, name, out)
}

func (s *squashFS) Unlink(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	if squash(h) {
		if st := s.removes(cancel, h, h.NodeId, name); !st.Ok() {
			return st
		}
	}
	return s.RawFileSystem.Unlink(cancel, h, name)
}

func (s *squashFS) Rmdir(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	if squash(h) {
		if st := s.removes(cancel, h, h.NodeId, name); !st.Ok() {
			return st
		}
	}
	return s.RawFileSystem.Rmdir(cancel, h, name)
}

func (s *squashFS) Rename(cancel <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	if squash(&in.InHeader) {
		if st := s.removes(cancel, &in.InHeader, in.NodeId, oldName); !st.Ok() {
			return st
		}
		if st := s.removes(cancel, &in.InHeader, in.Newdir, newName); !st.Ok() {
			return st
		}
	}
	return s.RawFileSystem.Rename(cancel, in, oldName, newName)
}

func (s *squashFS) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	if squash(&in.InHeader) {
		a, st := s.attr(cancel, &in.InHeader, in.NodeId)
		if !st.Ok() {
			return st
		}
		owner := a.Uid == SquashUID
		v := in.Valid
		switch {
		case v&(fuse.FATTR_MODE|fuse.FATTR_UID|fuse.FATTR_GID) != 0 && !owner:
			return fuse.EPERM
		case v&(fuse.FATTR_ATIME|fuse.FATTR_MTIME) != 0 && v&(fuse.FATTR_ATIME_NOW|fuse.FATTR_MTIME_NOW) == 0 && !owner:
			return fuse.EPERM
		case v&fuse.FATTR_SIZE != 0 && in.Valid&fuse.FATTR_FH == 0:
			if st := permits(a, mayWrite); !st.Ok() {
				return st
			}
		case v&(fuse.FATTR_ATIME_NOW|fuse.FATTR_MTIME_NOW) != 0 && !owner:
			if st := permits(a, mayWrite); !st.Ok() {
				return st
			}
		}
	}
	return s.RawFileSystem.SetAttr(cancel, in, out)
}

func (s *squashFS) GetXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	if squash(h) {
		if st := s.may(cancel, h, h.NodeId, mayRead); !st.Ok() {
			return 0, st
		}
	}
	return s.RawFileSystem.GetXAttr(cancel, h, attr, dest)
}

func (s *squashFS) ListXAttr(cancel <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	if squash(h) {
		if st := s.may(cancel, h, h.NodeId, mayRead); !st.Ok() {
			return 0, st
		}
	}
	return s.RawFileSystem.ListXAttr(cancel, h, dest)
}

func (s *squashFS) SetXAttr(cancel <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	if squash(&in.InHeader) {
		if st := s.may(cancel, &in.InHeader, in.NodeId, mayWrite); !st.Ok() {
			return st
		}
	}
	return s.RawFileSystem.SetXAttr(cancel, in, attr, data)
}

func (s *squashFS) RemoveXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string) fuse.Status {
	if squash(h) {
		if st := s.may(cancel, h, h.NodeId, mayWrite); !st.Ok() {
			return st
		}
	}
	return s.RawFileSystem.RemoveXAttr(cancel, h, attr)
}
