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
//   - The caller's uid and gid are taken from the request as given; there is no
//     authentication yet.
//   - Mount records are journaled only: the UFS side of a mount comes later.
//
// The package must never mutate the namespace other than by proposing an entry,
// must never let a follower answer a namespace call, and must never import the
// client package or anything above it.
package master
