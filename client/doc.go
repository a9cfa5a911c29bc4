// Package client is the gRPC client of the skyfs masters, for mountd and the
// CLI.
//
// A Client is given any list of masters. It sends each call to the master it
// believes leads, follows "not leader" answers (gRPC UNAVAILABLE with a
// skyfspb.NotLeader detail) to the leader they name, and retries with
// exponential backoff across a failover: connection refused, a master that
// does not answer within the per-attempt timeout, no leader elected yet. Each
// attempt has its own deadline (Config.CallTimeout) inside the caller's ctx;
// a ctx without a deadline gets Config.RetryTimeout for all attempts. Two
// calls wait on a UFS and are bounded differently: AddMount, whose master
// first reaches the UFS, gets MountCallTimeout per attempt, and the Sync
// stream is bounded by the caller's ctx alone.
//
// Every mutation gets a request id — the client's random 64-bit id and a
// sequence number — once, before its first attempt, and keeps it across
// retries. The masters remember request outcomes, so a create retried after a
// failover returns its first outcome instead of EEXIST.
//
// A POSIX outcome comes back as an error for which errors.As(err,
// &syscall.Errno) holds: a bare syscall.Errno, or an *Error that adds the
// master's one-line explanation (for instance which name is too long). Other
// failures are gRPC status errors.
//
// The package imports only the generated protocol (proto/skyfspb) and gRPC: it
// must never import meta, raftjournal or master.
package client
