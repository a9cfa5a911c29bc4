package meta

import "encoding/binary"

// Table prefixes; see the package comment.
const (
	tabInode   = 'i'
	tabDirent  = 'd'
	tabXattr   = 'x'
	tabMount   = 'm'
	tabRequest = 'r'
	tabExpiry  = 'e'
	tabPurge   = 'g'
	tabSys     = 's'
	// Sessions, delegations and inode ranges (ops_session.go).
	tabSession    = 'h'
	tabDelegation = 'v'
	tabHeld       = 'w'
	tabRange      = 'n'
)

// Counter and flag names in the 's' table.
var (
	keyNextIno    = []byte{tabSys, 'n', 'i'}
	keyNextMount  = []byte{tabSys, 'n', 'm'}
	keyNextPurge  = []byte{tabSys, 'n', 'g'}
	keyInodeCount = []byte{tabSys, 'c', 'i'}
	keyApplied    = []byte{tabSys, 'a'}
	keyRestoring  = []byte{tabSys, 'R'}
	keyExpiry     = []byte{tabSys, 'e'}
)

func u64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func inodeKey(ino uint64) []byte { return u64([]byte{tabInode}, ino) }

func direntKey(parent uint64, name []byte) []byte {
	k := make([]byte, 0, 9+len(name))
	k = append(k, tabDirent)
	k = u64(k, parent)
	return append(k, name...)
}

// dirRange returns the key range of parent's entries.
func dirRange(parent uint64) (start, end []byte) {
	start = u64([]byte{tabDirent}, parent)
	end = u64([]byte{tabDirent}, parent+1)
	return start, end
}

func xattrKey(ino uint64, name []byte) []byte {
	k := make([]byte, 0, 9+len(name))
	k = append(k, tabXattr)
	k = u64(k, ino)
	return append(k, name...)
}

func xattrRange(ino uint64) (start, end []byte) {
	return u64([]byte{tabXattr}, ino), u64([]byte{tabXattr}, ino+1)
}

func mountKey(id uint64) []byte { return u64([]byte{tabMount}, id) }

func requestKey(client, seq uint64) []byte { return u64(u64([]byte{tabRequest}, client), seq) }

func expiryKey(t int64, client, seq uint64) []byte {
	return u64(u64(u64([]byte{tabExpiry}, uint64(t)), client), seq)
}

func purgeKey(seq uint64) []byte { return u64([]byte{tabPurge}, seq) }

// prefixEnd returns the smallest key greater than every key starting with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// direntValue encodes a directory entry's value: the child and its type.
func direntValue(ino uint64, typ FileType) []byte {
	return append(u64(make([]byte, 0, 9), ino), byte(typ))
}

func decodeDirent(v []byte) (uint64, FileType, bool) {
	if len(v) != 9 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(v), FileType(v[8]), true
}
