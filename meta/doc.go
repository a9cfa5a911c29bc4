// Package meta is the skyfs namespace: inodes, directory entries, symlinks, extended
// attributes, the UFS mount table, per-file UFS fingerprints, and the outcomes of
// recent client requests.
//
// The namespace is a deterministic state machine. [Apply] is the only code that
// mutates it: it takes one journal entry (a [metapb.Entry]) and a transaction of a
// key-value engine, and it produces the same state and the same [Result] on every
// master. Everything that varies between masters — the time, the caller's uid and
// gid, UFS fingerprints — is decided by the leader before it proposes an entry and
// travels inside the entry; inode numbers come from a counter kept in the state.
//
// A POSIX failure (ENOENT, EEXIST, ENOTEMPTY, ...) is a Result with a non-zero
// Errno, and it changes nothing: every operation validates fully before its first
// write. A returned error is not a POSIX outcome: the engine failed, or the entry
// cannot be applied at all (an unknown operation or a newer format version). The
// caller must stop rather than skip such an entry, because skipping it would let
// this master's state diverge from the others'.
//
// Who may change what is decided here too, from the caller an entry carries
// (metapb.Caller: uid, gid, supplementary groups): the owner, set-id and
// time rules of a local Linux file system, so that every client and every
// kind of UFS behaves the same (perm.go).
//
// Reads ([GetAttr], [Lookup], [ReadDir], [Resolve], [ResolveMount], ...) run in any
// transaction, read-only or not.
//
// The package imports no Raft, no gRPC and no engine. Engines implement the small
// [Store] and [Txn] interfaces over an ordered key-value store: meta/badgerstore
// (on disk) and meta/memstore (in memory, for tests). The package metatest holds
// the conformance suite every engine runs.
//
// # Key layout
//
// Every key starts with one byte naming its table; integers are big-endian so that
// keys sort numerically:
//
//	'i' ino                 inode record (metapb.Inode)
//	'd' parent name         directory entry: child ino (8 bytes) and type (1 byte)
//	'x' ino name            extended attribute value
//	'm' id                  mount record (metapb.Mount)
//	'r' client seq          outcome of a client request (metapb.RequestRecord)
//	'e' time client seq     expiry index of request outcomes
//	'g' seq                 inode detached by an unmount, waiting to be purged
//	's' name                counters: next inode, next mount id, applied index,
//	                        where the live expiry keys begin and the next expiry scan, ...
//	'c' ...                 reserved for the journal's own records (raftjournal)
//
// A directory's entries are one contiguous, name-ordered key range, so a page of
// [ReadDir] is one range scan starting after the cursor name.
//
// # Snapshots
//
// [WriteSnapshot] streams every key of a [ReadPoint] in key order, framed and
// checksummed; [RestoreSnapshot] replaces a store's whole content with such a
// stream. Engines take read points that do not block writers.
package meta
