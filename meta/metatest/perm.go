package metatest

import (
	"syscall"
	"testing"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
)

// Callers of the ownership tests: the file's owner (uid 10, gid 20, also in
// group 30), a member of its group, a stranger, and root.
var (
	owner    = &metapb.Caller{Uid: 10, Gid: 20, Groups: []uint32{30}}
	member   = &metapb.Caller{Uid: 11, Gid: 21, Groups: []uint32{20}}
	stranger = &metapb.Caller{Uid: 12, Gid: 22}
	root     = &metapb.Caller{Uid: 0, Gid: 0}
)

// testOwnership checks who may change which attributes, and what a change
// does to the set-id bits (meta/perm.go), case by case on a fresh file or
// directory owned by uid 10, gid 20.
func testOwnership(t *testing.T, open func(testing.TB) meta.Store) {
	const (
		both = meta.SetAttrAtime | meta.SetAttrMtime
		own  = meta.SetAttrUID | meta.SetAttrGID
	)
	cases := []struct {
		name string
		dir  bool
		mode uint32 // of the inode before
		op   *metapb.SetAttr
		want syscall.Errno
		// Attributes after a success.
		wantMode, wantUID, wantGID uint32
	}{
		{"owner chmod", false, 0o644, &metapb.SetAttr{Caller: owner, Valid: meta.SetAttrMode, Mode: 0o4755}, 0, 0o4755, 10, 20},
		{"stranger chmod", false, 0o644, &metapb.SetAttr{Caller: stranger, Valid: meta.SetAttrMode, Mode: 0o777}, syscall.EPERM, 0, 0, 0},
		{"group member chmod", false, 0o664, &metapb.SetAttr{Caller: member, Valid: meta.SetAttrMode, Mode: 0o666}, syscall.EPERM, 0, 0, 0},
		{"no caller chmod", false, 0o644, &metapb.SetAttr{Valid: meta.SetAttrMode, Mode: 0o2700}, 0, 0o2700, 10, 20},
		{"root chmod", false, 0o644, &metapb.SetAttr{Caller: root, Valid: meta.SetAttrMode, Mode: 0o6777}, 0, 0o6777, 10, 20},
		// S_ISGID stays only for a caller in the file's group.
		{"owner setgid in group", false, 0o755, &metapb.SetAttr{Caller: owner, Valid: meta.SetAttrMode, Mode: 0o2755}, 0, 0o2755, 10, 20},
		{"owner setgid outside group", false, 0o755, &metapb.SetAttr{Caller: &metapb.Caller{Uid: 10, Gid: 99}, Valid: meta.SetAttrMode, Mode: 0o6755}, 0, 0o4755, 10, 20},
		{"owner setgid on dir outside group", true, 0o755, &metapb.SetAttr{Caller: &metapb.Caller{Uid: 10, Gid: 99}, Valid: meta.SetAttrMode, Mode: 0o2755}, 0, 0o755, 10, 20},
		{"owner setgid in new group", false, 0o755, &metapb.SetAttr{Caller: owner, Valid: meta.SetAttrMode | meta.SetAttrGID, Mode: 0o2755, Gid: 30}, 0, 0o2755, 10, 30},
		// Clearing set-id bits is anyone's (the kernel's kill on write).
		{"stranger clears setid", false, 0o6755, &metapb.SetAttr{Caller: stranger, Valid: meta.SetAttrMode, Mode: 0o755}, 0, 0o755, 10, 20},
		{"stranger clears suid only", false, 0o6755, &metapb.SetAttr{Caller: stranger, Valid: meta.SetAttrMode, Mode: 0o2755}, 0, 0o2755, 10, 20},
		{"stranger clears setid and more", false, 0o6755, &metapb.SetAttr{Caller: stranger, Valid: meta.SetAttrMode, Mode: 0o700}, syscall.EPERM, 0, 0, 0},
		{"stranger sets setid", false, 0o755, &metapb.SetAttr{Caller: stranger, Valid: meta.SetAttrMode, Mode: 0o4755}, syscall.EPERM, 0, 0, 0},
		// Owners.
		{"root chown", false, 0o644, &metapb.SetAttr{Caller: root, Valid: own, Uid: 5, Gid: 6}, 0, 0o644, 5, 6},
		{"owner gives away", false, 0o644, &metapb.SetAttr{Caller: owner, Valid: meta.SetAttrUID, Uid: 11}, syscall.EPERM, 0, 0, 0},
		{"owner keeps uid", false, 0o644, &metapb.SetAttr{Caller: owner, Valid: meta.SetAttrUID, Uid: 10}, 0, 0o644, 10, 20},
		{"stranger sets same uid", false, 0o644, &metapb.SetAttr{Caller: stranger, Valid: meta.SetAttrUID, Uid: 10}, syscall.EPERM, 0, 0, 0},
		{"owner chgrp to own group", false, 0o644, &metapb.SetAttr{Caller: owner, Valid: meta.SetAttrGID, Gid: 30}, 0, 0o644, 10, 30},
		{"owner chgrp to primary group", false, 0o644, &metapb.SetAttr{Caller: &metapb.Caller{Uid: 10, Gid: 40}, Valid: meta.SetAttrGID, Gid: 40}, 0, 0o644, 10, 40},
		{"owner chgrp to other group", false, 0o644, &metapb.SetAttr{Caller: owner, Valid: meta.SetAttrGID, Gid: 31}, syscall.EPERM, 0, 0, 0},
		{"owner chgrp to same group", false, 0o644, &metapb.SetAttr{Caller: &metapb.Caller{Uid: 10, Gid: 99}, Valid: own, Uid: 10, Gid: 20}, 0, 0o644, 10, 20},
		{"member chgrp", false, 0o664, &metapb.SetAttr{Caller: member, Valid: meta.SetAttrGID, Gid: 21}, syscall.EPERM, 0, 0, 0},
		// A change of owner clears S_ISUID, and S_ISGID with S_IXGRP, of
		// anything but a directory, whoever asks.
		{"root chown clears setid", false, 0o6755, &metapb.SetAttr{Caller: root, Valid: meta.SetAttrUID, Uid: 5}, 0, 0o755, 5, 20},
		{"chown keeps setgid without group exec", false, 0o6745, &metapb.SetAttr{Caller: root, Valid: meta.SetAttrGID, Gid: 6}, 0, 0o2745, 10, 6},
		{"owner chgrp clears setid", false, 0o6755, &metapb.SetAttr{Caller: owner, Valid: meta.SetAttrGID, Gid: 30}, 0, 0o755, 10, 30},
		{"no caller chown clears setid", false, 0o4700, &metapb.SetAttr{Valid: meta.SetAttrUID, Uid: 10}, 0, 0o700, 10, 20},
		{"chown of dir keeps setid", true, 0o6755, &metapb.SetAttr{Caller: root, Valid: own, Uid: 5, Gid: 6}, 0, 0o6755, 5, 6},
		// Times: given values are the owner's; now is anyone's who may write.
		{"owner sets times", false, 0o444, &metapb.SetAttr{Caller: owner, Valid: both, AtimeNs: 1, MtimeNs: 2}, 0, 0o444, 10, 20},
		{"stranger sets times", false, 0o666, &metapb.SetAttr{Caller: stranger, Valid: both, AtimeNs: 1, MtimeNs: 2}, syscall.EPERM, 0, 0, 0},
		{"writer touches", false, 0o646, &metapb.SetAttr{Caller: stranger, Valid: both, AtimeNow: true, MtimeNow: true}, 0, 0o646, 10, 20},
		{"group writer touches", false, 0o660, &metapb.SetAttr{Caller: member, Valid: both, AtimeNow: true, MtimeNow: true}, 0, 0o660, 10, 20},
		{"reader touches", false, 0o644, &metapb.SetAttr{Caller: stranger, Valid: both, AtimeNow: true, MtimeNow: true}, syscall.EACCES, 0, 0, 0},
		{"others' bits do not serve the group", false, 0o606, &metapb.SetAttr{Caller: member, Valid: both, AtimeNow: true, MtimeNow: true}, syscall.EACCES, 0, 0, 0},
		{"owner touches without write", false, 0o444, &metapb.SetAttr{Caller: owner, Valid: both, AtimeNow: true, MtimeNow: true}, 0, 0o444, 10, 20},
		{"writer touches one time", false, 0o666, &metapb.SetAttr{Caller: stranger, Valid: meta.SetAttrMtime, MtimeNow: true}, syscall.EPERM, 0, 0, 0},
		{"writer sets one time now one given", false, 0o666, &metapb.SetAttr{Caller: stranger, Valid: both, AtimeNow: true, MtimeNs: 5}, syscall.EPERM, 0, 0, 0},
		{"root sets times", false, 0o000, &metapb.SetAttr{Caller: root, Valid: both, AtimeNs: 1, MtimeNs: 2}, 0, 0o000, 10, 20},
		// The size is not the ownership rules' business (the kernel checks
		// write access when the file is opened).
		{"stranger truncates", false, 0o644, &metapb.SetAttr{Caller: stranger, Valid: meta.SetAttrSize, Size: 3}, 0, 0o644, 10, 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := NewH(t, open(t))
			var ino meta.Ino
			if tc.dir {
				ino = h.Must(&metapb.Mkdir{Parent: meta.RootIno, Name: []byte("x"), Mode: tc.mode, Uid: 10, Gid: 20}).Ino
			} else {
				ino = h.Must(&metapb.CreateFile{Parent: meta.RootIno, Name: []byte("x"), Mode: tc.mode, Uid: 10, Gid: 20}).Ino
			}
			before := h.Attr(ino)
			op := tc.op
			op.Ino = ino
			h.Expect(tc.want, op)
			a := h.Attr(ino)
			if tc.want != 0 {
				if a.Ctime != before.Ctime {
					t.Fatalf("a refused change moved ctime")
				}
				return
			}
			if a.Mode != tc.wantMode || a.UID != tc.wantUID || a.GID != tc.wantGID {
				t.Fatalf("mode %#o uid %d gid %d, want %#o %d %d", a.Mode, a.UID, a.GID, tc.wantMode, tc.wantUID, tc.wantGID)
			}
			if a.Ctime != h.Clock {
				t.Fatalf("ctime %d, want the entry's time %d", a.Ctime, h.Clock)
			}
		})
	}
}
