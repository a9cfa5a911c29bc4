// Package fusefs presents the skyfs namespace through FUSE: go-fuse v2 nodes
// whose inode numbers are the master's, with file content read through the
// local block cache and written to the under file system (UFS) by this
// process.
//
// # What it owns
//
//   - The FUSE side of every namespace operation. Namespace operations go to
//     the master through the [Namespace] interface, which cmd/mountd
//     implements over the gRPC client; the master performs their UFS side
//     effects (directory markers, deletes, renames).
//   - The data path. Reads go through package cache keyed by (mount id, UFS
//     path, fingerprint), with a loader doing ranged reads from the UFS. A
//     file the cache holds whole and verified is opened with FUSE
//     passthrough where the kernel allows it, so the kernel reads the cache
//     file itself. Writes stage in a local file under Options.StagingDir; a
//     file written from empty, in order, also streams to the UFS while it is
//     written (ufs.Writer), so that close only has to finish the upload.
//     Anything else (a write at another offset, a truncate, a file reopened
//     with content) drops the stream, and the staged file is uploaded whole
//     on close (read-modify-upload: the old content is copied into the
//     staging file before the first change).
//   - Close-to-open consistency, bounded by the attribute timeout. An open
//     for reading uses the attributes (fingerprint included) and location
//     the mount got from the master less than Options.AttrTimeout ago, and
//     asks for them otherwise, for every file of the directory at once
//     (revalidate.go): content closed on another host is seen by an open
//     that begins an attribute timeout after the close returned; with
//     Options.StrictOpen, by the next open. Changes made through the mount
//     are seen at once on this host. flush (close) and fsync finish the
//     upload and then record size and fingerprint with
//     Namespace.CompleteFile. A failed upload makes that close or fsync
//     fail with EIO; the staged data is kept and tried again on release.
//     A read that finds nothing where the held location says (a rename on
//     another host within the timeout) asks the master where the file lives
//     now and reads once more from there; a file removed elsewhere reads
//     ESTALE.
//
// # Decisions
//
//   - The root of the mount is the namespace's root or, with
//     Options.RootIno, any directory of it (a subtree mount); nothing above
//     that directory is reachable through the mount.
//   - Nodes are go-fuse Inodes created per lookup and dropped when the kernel
//     forgets them; the package keeps no map of nodes. A node remembers the
//     last attributes it saw (for fstat of an unlinked open file, which
//     answers those attributes with a link count of zero).
//   - Directory listings stream pages from the master; a handle holds one
//     page and one cursor name per page read so far (for seekdir), never the
//     whole directory. Offsets are entry positions (".", ".." then entries).
//     READDIRPLUS answers lookups from the page's attributes.
//   - A directory whose names are looked up one by one from the master,
//     many within one timeout, is listed with attributes in the background,
//     and its names are then found in that listing for what remains of the
//     timeout (listing.go): attributes are never older than the attribute
//     timeout, names created elsewhere are still found at once, and any
//     change made through the mount drops every listing.
//   - A name added to or removed from a directory through the mount comes
//     back from the master with the directory's attributes just after the
//     change. The kernel drops the directory's attributes at every such
//     change and asks for them before the next one (a create in a loop asks
//     once per file); Getattr answers that from the reported attributes for
//     what remains of the attribute timeout (Node.noteDir). A rename or an
//     xattr change of the directory, which report none, ends that.
//   - Several handles of one file on this host share one write state, so
//     they see each other's writes; reads of a file with a write state are
//     served from its staging file.
//   - An open is passthrough only when no handle of the file is open in the
//     kernel's cached mode; while passthrough handles are open, other opens
//     of the file use direct I/O (the kernel refuses to mix passthrough and
//     cached opens of one inode).
//   - Locks (flock, fcntl) are the kernel's local locks: the mount does not
//     ask for lock requests, so the kernel arbitrates between the processes
//     of this host. They do not reach other hosts.
//   - Hard links answer EPERM under a UFS that cannot make them (object
//     stores); O_TMPFILE is not supported (EOPNOTSUPP).
//   - The package sends no kernel cache notifications (go-fuse deadlocks if
//     they are sent from inside a request handler). It needs none: writes go
//     through the kernel's page cache, an open without FOPEN_KEEP_CACHE
//     drops stale pages when the content changed elsewhere, and attributes
//     expire after Options.AttrTimeout.
//   - The kernel reads security.capability before every write; its value is
//     cached per node for Options.AttrTimeout (dropped at once when this
//     host changes it). POSIX ACL attributes are refused (EOPNOTSUPP): the
//     mount does not ask the kernel to enforce them.
//   - Requests ignore FUSE interrupts (the Go runtime's signals cause them;
//     see timedFS): an operation the master applied is never reported as
//     EINTR.
//   - The mount's read-ahead is raised to Options.ReadAheadKB through sysfs
//     (FUSE reads go about 2.5 times faster than with the kernel's 128 KiB).
//   - Names and paths are limited as on Linux (the kernel enforces NAME_MAX
//     and PATH_MAX) and, further, by the UFS (an S3 key holds 1024 bytes;
//     a local UFS directory counts its own path).
//
// # What it must never do
//
// It must never import client, proto or master (it defines the interface it
// needs), never let anything but a syscall.Errno cross the FUSE edge (one
// toErrno does the mapping), never send a kernel notification from a request
// handler, never keep a reference to every node, and never report success
// for a close or fsync whose data did not reach the UFS.
//
// # Lock order
//
// A lock may be taken while holding those above it, never the reverse:
//
//	writeState.mu  one file's staged data and upload; held across UFS and
//	               Namespace calls (serialises writes, truncates, commits)
//	Node.mu        a node's attributes, write state pointer and open counts;
//	               a leaf, never held across a call out of the package
//	dirHandle.mu   one directory handle's page (taken alone)
//	listings.mu    the mount's directory listings (a leaf)
package fusefs
