package meta

import (
	"slices"

	"github.com/skyfs/skyfs/proto/metapb"
)

// Mode bits beyond the nine permission bits.
const (
	ModeSetUID = 0o4000 // S_ISUID
	ModeSetGID = 0o2000 // S_ISGID
	ModeSticky = 0o1000 // S_ISVTX
	// ModeGroupExec is S_IXGRP: with it, S_ISGID means set-group-ID on
	// execution (and is cleared as S_ISUID is); without it, mandatory
	// locking, which a change of owner keeps.
	ModeGroupExec = 0o010
)

// The rules of who may do what follow Linux's for a local file system (its
// setattr_prepare and notify_change), so that a mount with or without the
// kernel's default_permissions, and every other client, see one behaviour:
//
//   - The superuser (uid 0) may change anything; an entry that names no
//     caller is the superuser's (administrators' tools, and entries written
//     before callers were recorded).
//   - Only the owner may change the mode or set the times to given values.
//     Setting both times to now needs the owner or write permission.
//   - Only the superuser may give a file away; the owner may change its group
//     to one of the caller's groups, or leave it as it is.
//   - A change of mode by a caller who is not in the file's group (after the
//     change) clears S_ISGID from the new mode.
//   - A change of owner or group of anything but a directory clears S_ISUID,
//     and S_ISGID when S_IXGRP is set, whoever asks (unless the same entry
//     sets the mode: the kernel sends the mode it cleared with the change).
//   - Anyone may clear a file's set-id bits and change nothing else: the
//     kernel does so for a write or truncate by a caller who may write.

// superuser reports whether c is the superuser's (nil is).
func superuser(c *metapb.Caller) bool { return c == nil || c.Uid == 0 }

// inGroup reports whether gid is c's group or one of its supplementary
// groups.
func inGroup(c *metapb.Caller, gid uint32) bool {
	return c.Gid == gid || slices.Contains(c.Groups, gid)
}

// ownerOrSuperuser reports whether c owns n or is the superuser.
func ownerOrSuperuser(c *metapb.Caller, n *metapb.Inode) bool {
	return superuser(c) || c.Uid == n.Uid
}

// mayWrite reports whether n's mode lets c write it: the owner's bits for
// its owner, the group's for a member of its group, the others' for anyone
// else; the superuser always may.
func mayWrite(c *metapb.Caller, n *metapb.Inode) bool {
	switch {
	case superuser(c):
		return true
	case c.Uid == n.Uid:
		return n.Mode&0o200 != 0
	case inGroup(c, n.Gid):
		return n.Mode&0o020 != 0
	}
	return n.Mode&0o002 != 0
}

// onlyClearsSetID reports whether mode is n's mode with some of its set-id
// bits cleared and nothing else changed.
func onlyClearsSetID(n *metapb.Inode, mode uint32) bool {
	return mode&^(ModeSetUID|ModeSetGID) == n.Mode&^(ModeSetUID|ModeSetGID) && mode&^n.Mode == 0
}
