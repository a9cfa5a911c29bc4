// Package master is the skyfs master's gRPC service: the Namespace, Mounts and
// Cluster services of proto/skyfspb.
//
// It owns everything between the wire and the journal: it validates requests
// (paths must be absolute and canonical, names at most 255 bytes without NUL or
// '/', page sizes bounded), resolves paths to inodes, decides what varies between
// masters — the time, the caller's uid and gid — builds journal entries
// (metapb.Entry) carrying the caller's request id, proposes them through the
// journal, and answers. A bad request gets an errno and a one-line message and
// changes nothing.
//
// Reads pass the journal's read barrier (the leader confirms it still leads and
// has applied everything committed) and then read a local view of the namespace.
// Path resolution for a mutation reads the local view without a barrier: a
// serving leader has applied every acknowledged entry, and the state machine
// checks the entry again when it applies it, so a stale resolution yields an
// errno, never a wrong change.
//
// POSIX outcomes travel in the errno field of a response, never as gRPC status
// codes. A master that does not lead, or loses leadership while a request is in
// flight, fails the call with codes.Unavailable and a skyfspb.NotLeader detail
// naming the leader it knows of; the client retries there with the same request
// id, and the state machine answers a retry of a committed request with the
// first outcome.
//
// Decisions recorded here because the design is silent on them:
//   - Permission bits outside 07777 in a mode are ignored (FUSE passes the file
//     type bits along).
//   - Removing or renaming "/" is EBUSY; creating "/" is EEXIST.
//   - The caller's uid and gid are taken from the request as given: a mount
//     daemon speaks for the users of its host.
//
// # Authentication
//
// Auth (auth.go) is a pair of gRPC interceptors that a master installs when
// it has tokens: every call must carry "authorization: Bearer <token>" of a
// role that its method allows (RequiredRole): the mount role for namespace
// operations, reading the mount table (secrets redacted) and MountAccess;
// the admin role for everything else, and for any method not listed. A call
// without a valid token is Unauthenticated, one with too weak a token
// PermissionDenied; both are refused before the handler runs, so they
// change nothing. Tokens are compared in constant time; refusals are logged
// (rate-limited) with the method and peer, never the token. Without tokens
// the master serves everyone (cmd/masterd warns at start).
//
// MountAccess, the only answer with UFS credentials in it, is served only to
// an authenticated caller: one whose token the interceptors accepted, or
// one whose client certificate TLS verified against the cluster CA. A master
// without tokens or TLS therefore hands credentials to no one, unless
// Config.InsecureVendCredentials says to serve anyone who asks. It is served
// only over TLS or to a loopback peer, and to a scoped mount token
// (Auth.AddScopedMountToken) only for the mounts that can hold files under
// its subtrees (InScope): a host given a token for /warehouse never gets the
// keys of the bucket mounted at /finance. A scoped token limits credentials
// only; its namespace operations are those of the mount role. With Config.Sealer set, secret mount
// options (ufs.IsSecret) are sealed with the cluster key before they are
// journaled (secrets.go), so the journal, Raft log, snapshots and the store
// hold only ciphertext; the leader opens them to serve MountAccess and to
// open the UFS itself.
//
// # The UFS side
//
// Under a UFS mount, mkdir, unlink, rmdir, rename and link do their UFS part
// on the leader first (ufs_side.go) and journal only once it succeeded; a UFS
// error reaches the caller as an errno (not exist ENOENT, exists EEXIST, not
// empty ENOTEMPTY, permission EACCES, unreachable EIO, ...) with a one-line
// message free of secrets, and changes no metadata. The journal's lease is
// checked right before every UFS side effect, so a deposed leader never
// touches a UFS. A crash between the UFS part and the entry is repaired by the
// next sync. The master opens each mount's FileSystem lazily from its record
// and closes it on unmount and when it stops leading. Decisions:
//   - Create journals a pending file only: the mount daemon uploads on close
//     and calls CompleteFile. Unlink or rename of a pending file, and
//     everything about symlinks and xattrs, stays in the master.
//   - Unlink or rmdir of an object already gone from the UFS succeeds.
//   - Every mutation under a read-only mount is EROFS; RENAME_EXCHANGE under
//     a mount is EINVAL; a hard link is EPERM unless the UFS has them.
//   - AddMount lists one entry of the UFS root with the given options before
//     anything is journaled. Config.RootUFS is mounted at "/" by a leader
//     that finds the root unmounted (Run); Run also purges the subtrees that
//     unmounts detach (never touching the UFS).
//
// # Metadata sync
//
// The first Lookup, ReadDir or ResolvePath through a directory under a mount
// that is not loaded (or whose load is older than the mount's sync interval)
// loads it (sync.go): the UFS listing is read in pages and journaled in
// LoadDir entries of at most meta.MaxLoadBatch children, so memory is bounded
// by one batch. Concurrent loads of one directory are coalesced and run under
// the server's context, not the caller's. Loaded entries get mode 0644 (files)
// or 0755 (directories) and the owner of the mount options "uid" and "gid"
// (default 0); names the namespace cannot hold are skipped and logged. Sync
// (skyfs sync) forces a reload of a directory, or of a whole subtree, and
// streams its progress.
//
// # Sessions and directory delegations
//
// A mount daemon may open a session (OpenSession, renewed by calling it
// again within the lease), be granted inode numbers (GrantRange) and take
// the delegation of a directory no other live session holds (Delegate).
// It then does creates, mkdirs, unlinks and renames in that directory
// locally and journals them with Flush: one Batch entry for many
// operations, their UFS side done here first, in order (flush.go). It
// names its session on every call (HolderMetadata), and the leader never
// recalls a delegation from its own holder. Before another caller's
// lookup, listing, StatDir or mutation of a name in a delegated directory
// (a mutation that names it, or removes or replaces it) the leader recalls
// the delegation (deleg.go): it journals a Recall, asks the holder on the
// stream it keeps open (Recalls; recalls journaled before, by this leader
// or an earlier one, are sent again when the stream opens), and waits for
// the holder to flush and give it back (Undelegate); a holder that has not
// within its lease loses the delegation, the leader ending it, and what it
// had not flushed is refused. A mutation holds the delegations' gate from
// the check of its directories to its proposal and a grant takes it
// exclusively, so that no grant slips in between. RecallStats counts the
// waits. The state machine refuses (EAGAIN, not remembered) any change by
// another session of a delegated directory's names, so a request that
// races a grant is recalled for and proposed again rather than applied.
//
// The package must never mutate the namespace other than by proposing an entry,
// must never let a follower answer a namespace call, and must never import the
// client package or anything above it.
package master
