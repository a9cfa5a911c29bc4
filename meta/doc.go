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
//	'h' holder              mount daemon session (metapb.Session)
//	'v' dir                 directory delegation (metapb.Delegation)
//	'w' holder dir          index of a session's delegations (empty value)
//	'n' holder start        inode range granted to a session (metapb.InoRange)
//	'c' ...                 reserved for the journal's own records (raftjournal)
//
// A directory's entries are one contiguous, name-ordered key range, so a page of
// [ReadDir] is one range scan starting after the cursor name.
//
// # Batches, sessions and delegations
//
// A Batch entry carries many operations (creates, mkdirs, unlinks, renames,
// completions), applied in order at the entry's one time, each with its own
// request id and outcome: a failing operation changes nothing and the next
// goes on, and a retried batch answers each operation from its record.
//
// A mount daemon opens a session (OpenSession: a holder id and a lease,
// renewed by the same entry while live; a session whose lease ran out at an
// entry's time is over and cannot come back). A live session may be
// granted ranges of inode numbers (GrantRange: taken from the counter, so
// never overlapping each other or any other number; a session holds at most
// MaxRanges unspent ones) and directory delegations (Delegate: one live
// holder per directory; a delegation whose holder's lease ran out is free
// for the next). While it holds a delegation, the holder creates, removes
// and renames names of that directory locally and flushes them as a Batch
// entry that speaks for it (Entry.holder): such a batch is refused whole,
// changing nothing, when the session is not live (ErrnoStaleLease), a
// directory it changes is not delegated to it (ErrnoNotHeld), or an inode
// number it brings is not an unspent number of its ranges, spent in
// increasing order (ErrnoNotGranted). Any other entry that changes the
// names of a directory delegated to another live session — or removes or
// replaces that directory, or loads it from the UFS — fails with
// ErrnoDelegated: the leader recalls the delegation (Recall, journaled so
// that a new leader continues it), the holder flushes and gives it back
// (Undelegate as the holder), and the leader proposes again. The leader may
// end a delegation itself (Undelegate without being its holder) only once
// the holder's lease ran out or a recall went unanswered for a whole lease,
// and end an expired session (EndSession), which drops its delegations and
// unspent ranges. Every expiry is decided from entry times, so every master
// decides it the same way. Reads know nothing of delegations: the leader
// recalls before it answers a lookup or listing of a delegated directory.
//
// # Snapshots
//
// [WriteSnapshot] streams every key of a [ReadPoint] in key order, framed and
// checksummed; [RestoreSnapshot] replaces a store's whole content with such a
// stream. Engines take read points that do not block writers.
package meta
