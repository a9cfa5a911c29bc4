package meta

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/skyfs/skyfs/proto/metapb"
)

// Check verifies the namespace's invariants and returns the first violation
// found: every directory entry names an existing inode of the recorded type;
// every inode is reachable from the root (or from a subtree waiting to be
// purged) exactly as often as its link count says, through exactly the links
// its record lists; directories form a tree (one name each, no cycles) and count
// 2 + their subdirectories; mounts, extended attributes and counters agree with
// the inodes. It holds the whole inode table in memory: it is a consistency check
// for tests and offline repair, not for a serving master.
func Check(tx Txn) error {
	inodes := make(map[Ino]*metapb.Inode)
	var maxIno Ino
	err := tx.Scan([]byte{tabInode}, []byte{tabInode + 1}, func(k, v []byte) (bool, error) {
		n := new(metapb.Inode)
		if err := proto.Unmarshal(v, n); err != nil {
			return false, fmt.Errorf("inode key %x: %w", k, err)
		}
		if len(k) != 9 || binary.BigEndian.Uint64(k[1:]) != n.Ino {
			return false, fmt.Errorf("inode key %x holds inode %d", k, n.Ino)
		}
		inodes[n.Ino] = n
		maxIno = max(maxIno, n.Ino)
		return true, nil
	})
	if err != nil {
		return err
	}
	if len(inodes) == 0 {
		return nil // empty store: nothing applied yet
	}
	if _, ok := inodes[RootIno]; !ok {
		return fmt.Errorf("no root inode")
	}

	type link struct {
		parent Ino
		name   string
	}
	links := make(map[Ino][]link)
	children := make(map[Ino][]Ino)
	subdirs := make(map[Ino]uint32)
	start, end := []byte{tabDirent}, []byte{tabDirent + 1}
	err = tx.Scan(start, end, func(k, v []byte) (bool, error) {
		if len(k) < 10 {
			return false, fmt.Errorf("short dirent key %x", k)
		}
		parent, name := binary.BigEndian.Uint64(k[1:9]), string(k[9:])
		ino, typ, ok := decodeDirent(v)
		if !ok {
			return false, fmt.Errorf("dirent %d/%q: bad value %x", parent, name, v)
		}
		if en := CheckName([]byte(name)); en != 0 {
			return false, fmt.Errorf("dirent %d/%q: invalid name", parent, name)
		}
		p, ok := inodes[parent]
		if !ok || p.Type != metapb.FileType_DIRECTORY {
			return false, fmt.Errorf("dirent %d/%q: parent is not a directory", parent, name)
		}
		n, ok := inodes[ino]
		if !ok {
			return false, fmt.Errorf("dirent %d/%q: dangling, inode %d missing", parent, name, ino)
		}
		if FileType(n.Type) != typ {
			return false, fmt.Errorf("dirent %d/%q: type %v, inode %d is %v", parent, name, typ, ino, FileType(n.Type))
		}
		links[ino] = append(links[ino], link{parent, name})
		children[parent] = append(children[parent], ino)
		if typ == TypeDirectory {
			subdirs[parent]++
		}
		return true, nil
	})
	if err != nil {
		return err
	}

	// Roots of the walk: the namespace root and the detached subtrees.
	roots := []Ino{RootIno}
	err = tx.Scan([]byte{tabPurge}, []byte{tabPurge + 1}, func(k, v []byte) (bool, error) {
		if len(v) != 8 {
			return false, fmt.Errorf("purge entry %x: bad value", k)
		}
		ino := binary.BigEndian.Uint64(v)
		n, ok := inodes[ino]
		if !ok || n.Type != metapb.FileType_DIRECTORY || len(links[ino]) != 0 || n.Parent != 0 {
			return false, fmt.Errorf("purge entry %x: inode %d is not a detached directory", k, ino)
		}
		roots = append(roots, ino)
		return true, nil
	})
	if err != nil {
		return err
	}
	seen := make(map[Ino]bool)
	queue := slices.Clone(roots)
	for len(queue) > 0 {
		ino := queue[0]
		queue = queue[1:]
		if seen[ino] {
			return fmt.Errorf("directory %d reached twice: not a tree", ino)
		}
		seen[ino] = true
		for _, c := range children[ino] {
			if inodes[c].Type == metapb.FileType_DIRECTORY {
				queue = append(queue, c)
			} else {
				seen[c] = true
			}
		}
	}

	for ino, n := range inodes {
		if !seen[ino] {
			return fmt.Errorf("inode %d unreachable", ino)
		}
		ls := links[ino]
		want := []link{}
		if n.Parent != 0 {
			want = append(want, link{n.Parent, string(n.Name)})
		}
		for _, l := range n.ExtraLinks {
			want = append(want, link{l.Parent, string(l.Name)})
		}
		cmp := func(a, b link) int {
			if c := int64(a.parent) - int64(b.parent); c != 0 {
				return int(max(min(c, 1), -1))
			}
			return bytes.Compare([]byte(a.name), []byte(b.name))
		}
		slices.SortFunc(ls, cmp)
		slices.SortFunc(want, cmp)
		if !slices.Equal(ls, want) {
			return fmt.Errorf("inode %d: links %v, record says %v", ino, ls, want)
		}
		switch n.Type {
		case metapb.FileType_DIRECTORY:
			wantNames := 1
			if slices.Contains(roots, ino) {
				wantNames = 0
			}
			if len(ls) != wantNames {
				return fmt.Errorf("directory %d has %d names, want %d", ino, len(ls), wantNames)
			}
			if n.Nlink != 2+subdirs[ino] {
				return fmt.Errorf("directory %d: nlink %d, want %d", ino, n.Nlink, 2+subdirs[ino])
			}
		case metapb.FileType_REGULAR, metapb.FileType_SYMLINK, metapb.FileType_FIFO,
			metapb.FileType_SOCKET, metapb.FileType_CHAR_DEVICE, metapb.FileType_BLOCK_DEVICE:
			if n.Nlink == 0 || int(n.Nlink) != len(ls) {
				return fmt.Errorf("inode %d: nlink %d, %d names", ino, n.Nlink, len(ls))
			}
		default:
			return fmt.Errorf("inode %d: bad type %v", ino, n.Type)
		}
		if dev := n.Type == metapb.FileType_CHAR_DEVICE || n.Type == metapb.FileType_BLOCK_DEVICE; n.Rdev != 0 && !dev {
			return fmt.Errorf("inode %d: rdev %#x on a %v", ino, n.Rdev, n.Type)
		}
		if n.Mode&^0o7777 != 0 {
			return fmt.Errorf("inode %d: mode %o", ino, n.Mode)
		}
		if n.MountId != 0 {
			m, err := GetMount(tx, n.MountId)
			if err != nil || m.RootIno != ino {
				return fmt.Errorf("inode %d: mount %d missing or elsewhere", ino, n.MountId)
			}
		}
	}

	mounts, err := ListMounts(tx)
	if err != nil {
		return err
	}
	for _, m := range mounts {
		n, ok := inodes[m.RootIno]
		if !ok || n.MountId != m.ID {
			return fmt.Errorf("mount %d (%s): root inode %d does not carry it", m.ID, m.Path, m.RootIno)
		}
		if p, err := PathOf(tx, m.RootIno); err != nil || p != m.Path {
			return fmt.Errorf("mount %d: path %q, inode is at %q (%v)", m.ID, m.Path, p, err)
		}
	}
	err = tx.Scan([]byte{tabXattr}, []byte{tabXattr + 1}, func(k, _ []byte) (bool, error) {
		if len(k) < 10 || inodes[binary.BigEndian.Uint64(k[1:9])] == nil {
			return false, fmt.Errorf("xattr %x of a missing inode", k)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	count, err := getU64(tx, keyInodeCount)
	if err != nil {
		return err
	}
	if count != uint64(len(inodes)) {
		return fmt.Errorf("inode count %d, %d inodes stored", count, len(inodes))
	}
	next, err := getU64(tx, keyNextIno)
	if err != nil {
		return err
	}
	if next <= maxIno {
		return fmt.Errorf("next inode %d not above the largest %d", next, maxIno)
	}
	return checkSessions(tx, inodes, next)
}

// checkSessions verifies the sessions' records: every delegation names a
// directory and a session, and the index of a session's delegations agrees;
// every range lies below the counter, overlaps no other, and holds no inode
// at or above its next unspent number.
func checkSessions(tx Txn, inodes map[Ino]*metapb.Inode, next Ino) error {
	sessions := make(map[uint64]bool)
	err := tx.Scan([]byte{tabSession}, []byte{tabSession + 1}, func(k, v []byte) (bool, error) {
		rec := new(metapb.Session)
		if len(k) != 9 || proto.Unmarshal(v, rec) != nil {
			return false, fmt.Errorf("session record %x: bad", k)
		}
		sessions[binary.BigEndian.Uint64(k[1:])] = true
		return true, nil
	})
	if err != nil {
		return err
	}
	held := 0
	err = tx.Scan([]byte{tabDelegation}, []byte{tabDelegation + 1}, func(k, v []byte) (bool, error) {
		rec := new(metapb.Delegation)
		if len(k) != 9 || proto.Unmarshal(v, rec) != nil {
			return false, fmt.Errorf("delegation record %x: bad", k)
		}
		dir := binary.BigEndian.Uint64(k[1:])
		if n := inodes[dir]; n == nil || n.Type != metapb.FileType_DIRECTORY {
			return false, fmt.Errorf("delegation of %d: not a directory", dir)
		}
		if !sessions[rec.Holder] {
			return false, fmt.Errorf("delegation of %d to %d: no such session", dir, rec.Holder)
		}
		if _, err := tx.Get(heldKey(rec.Holder, dir)); err != nil {
			return false, fmt.Errorf("delegation of %d to %d: not indexed: %w", dir, rec.Holder, err)
		}
		held++
		return true, nil
	})
	if err != nil {
		return err
	}
	indexed := 0
	err = tx.Scan([]byte{tabHeld}, []byte{tabHeld + 1}, func(_, _ []byte) (bool, error) {
		indexed++
		return true, nil
	})
	if err != nil {
		return err
	}
	if indexed != held {
		return fmt.Errorf("%d delegations, %d indexed", held, indexed)
	}
	var ranges []InoRange
	err = tx.Scan([]byte{tabRange}, []byte{tabRange + 1}, func(k, v []byte) (bool, error) {
		rec := new(metapb.InoRange)
		if len(k) != 17 || proto.Unmarshal(v, rec) != nil {
			return false, fmt.Errorf("range record %x: bad", k)
		}
		holder, start := binary.BigEndian.Uint64(k[1:9]), binary.BigEndian.Uint64(k[9:])
		if !sessions[holder] {
			return false, fmt.Errorf("range at %d of %d: no such session", start, holder)
		}
		if start <= RootIno || start > rec.Next || rec.Next >= rec.End || rec.End > next {
			return false, fmt.Errorf("range [%d, %d) next %d: bad bounds (counter %d)", start, rec.End, rec.Next, next)
		}
		ranges = append(ranges, InoRange{Start: start, End: rec.End, Next: rec.Next})
		return true, nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(ranges, func(a, b InoRange) int { return cmpIno(a.Start, b.Start) })
	for i, r := range ranges {
		if i > 0 && ranges[i-1].End > r.Start {
			return fmt.Errorf("ranges [%d, %d) and [%d, %d) overlap", ranges[i-1].Start, ranges[i-1].End, r.Start, r.End)
		}
	}
	for ino := range inodes {
		i, _ := slices.BinarySearchFunc(ranges, ino, func(r InoRange, ino Ino) int { return cmpIno(r.Start, ino+1) })
		if i > 0 && ino < ranges[i-1].End && ino >= ranges[i-1].Next {
			r := ranges[i-1]
			return fmt.Errorf("inode %d lies in the unspent part of range [%d, %d) next %d", ino, r.Start, r.End, r.Next)
		}
	}
	return nil
}

func cmpIno(a, b Ino) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
