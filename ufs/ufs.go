// Package ufs owns the contract between skyfs and an under file system (UFS): the
// FileSystem interface every backend implements (S3, HDFS, a local directory), the
// path rules, the sentinel errors, the redaction of credentials in options and
// errors, and the registry that opens a backend from a URI such as
// s3://bucket/prefix.
//
// A FileSystem is rooted at the mount's root (the URI's path or prefix). Paths given
// to it are relative to that root, slash-separated, without a leading or trailing
// slash, and "" names the root itself; Clean checks them and every backend refuses a
// path that Clean refuses, with an error wrapping ErrInvalidPath.
//
// Decisions written down here hold for every backend:
//
//   - Parents are implicit. Put, Create, Mkdir, Copy and Rename create missing
//     parent directories as needed (on an object store they exist implicitly as soon
//     as a child does). The master checks the namespace before it calls the UFS.
//   - Not-found is fs.ErrNotExist in every backend (ErrNotExist is that value), so
//     errors.Is(err, fs.ErrNotExist) works across backends.
//   - Every FileInfo carries a Fingerprint. A write through a FileSystem always
//     changes the fingerprint of the path it writes.
//   - Rename and Copy overwrite an existing file at the destination; a directory
//     may replace an empty directory; anything else fails (ErrIsDir, ErrNotDir,
//     ErrNotEmpty). Rename of a directory is recursive; it is atomic only where
//     Capabilities.AtomicRename says so.
//   - A ranged read at or beyond the end of a file returns no bytes and no error
//     other than io.EOF from the reader, like read(2).
//
// Backends register themselves from init functions; a program chooses the backends
// it supports by importing them, e.g. import _ "github.com/skyfs/skyfs/ufs/s3".
//
// Package ufs must never import anything else from this module, never log, and
// never let a secret (a secret access key, a session token, a password) appear in an
// error message or an Options string.
package ufs

import (
	"context"
	"io"
	"time"
)

// FileSystem is one mounted under file system. Implementations are safe for
// concurrent use by multiple goroutines. Every method takes the context that bounds
// the remote calls it makes.
type FileSystem interface {
	// Stat describes the file or directory at path. On an object store a
	// directory is found either by its "path/" marker object or implicitly by
	// any object under "path/". Stat("") describes the root.
	Stat(ctx context.Context, path string) (FileInfo, error)

	// List returns one page of the entries directly inside the directory dir,
	// in ascending byte order of SortKey (the name, with a "/" appended for a
	// directory: the order of S3 keys). Start with a zero ListOptions and pass
	// Page.Next back as ListOptions.Cursor until Page.Next is "". A page holds
	// at most ListOptions.PageSize entries. Memory use is bounded by the page
	// size or a fixed window of the backend, never by the size of the
	// directory. Entries added or removed during a listing may or may not show.
	List(ctx context.Context, dir string, opts ListOptions) (Page, error)

	// Open returns a reader of length bytes of the file at path starting at
	// offset. A negative length reads to the end of the file. An offset at or
	// beyond the end, or a zero length, gives a reader that returns io.EOF at
	// once (the file must still exist). A negative offset is ErrInvalid.
	Open(ctx context.Context, path string, offset, length int64) (io.ReadCloser, error)

	// Put stores exactly size bytes read from r at path, replacing any file
	// there, and returns the new fingerprint. If r yields fewer or more bytes
	// than size, Put fails and leaves any previous file in place.
	Put(ctx context.Context, path string, r io.Reader, size int64) (Fingerprint, error)

	// Create starts a streaming write of a file of unknown size at path. Data
	// becomes visible only when Writer.Close succeeds, replacing any file
	// there; Writer.Abort leaves the previous state. ctx bounds the whole
	// upload: cancelling it aborts the write.
	Create(ctx context.Context, path string) (Writer, error)

	// Delete removes the file at path, or the directory at path when it is
	// empty (on an object store: its marker object). A directory with children
	// gives ErrNotEmpty. Delete("") is ErrInvalidPath.
	Delete(ctx context.Context, path string) error

	// Rename moves src to dst. A directory is moved with everything under it.
	// dst must not lie under src (ErrInvalid).
	Rename(ctx context.Context, src, dst string) error

	// Copy copies the file src to dst (server-side where the UFS can) and
	// returns the fingerprint of dst. Copying a directory is ErrIsDir.
	Copy(ctx context.Context, src, dst string) (Fingerprint, error)

	// Mkdir creates the directory path (on an object store: a "path/" marker
	// object). It is ErrExist if a file or directory is already there.
	Mkdir(ctx context.Context, path string) error

	// Capabilities describes what this UFS can do.
	Capabilities() Capabilities

	// Close releases the connections held by the FileSystem.
	Close() error
}

// Writer is a streaming write started by FileSystem.Create. Write may return
// before the data reaches the UFS; the first upload failure is returned by a later
// Write or by Close. A Writer is used by one goroutine at a time.
type Writer interface {
	io.Writer

	// Close finishes the upload, makes the file visible and returns its
	// fingerprint. After a failed Close the file is not written and the
	// Writer is aborted.
	Close() (Fingerprint, error)

	// Abort cancels the upload and discards everything written. It is safe to
	// call after Close or more than once.
	Abort() error
}

// ConditionalOpener is implemented by a FileSystem that can refuse to read a file
// whose content changed since the caller recorded its fingerprint, so that a
// cache never mixes bytes of two versions under one fingerprint. Every backend in
// this module implements it; use OpenIf to fall back on others.
type ConditionalOpener interface {
	// OpenIf is Open, but fails with an error wrapping ErrStale when the
	// file's current fingerprint differs from want (on S3 the ETag is checked
	// by the server, with If-Match).
	OpenIf(ctx context.Context, path string, offset, length int64, want Fingerprint) (io.ReadCloser, error)
}

// OpenIf opens a range of path if its fingerprint is still want: with
// ConditionalOpener where fsys implements it, else with Stat then Open (which
// leaves a window for a change in between).
func OpenIf(ctx context.Context, fsys FileSystem, path string, offset, length int64, want Fingerprint) (io.ReadCloser, error) {
	if c, ok := fsys.(ConditionalOpener); ok {
		return c.OpenIf(ctx, path, offset, length, want)
	}
	fi, err := fsys.Stat(ctx, path)
	if err != nil {
		return nil, err
	}
	if !fi.Fingerprint.Equal(want) {
		return nil, &Error{Op: "open", Path: path, Err: ErrStale}
	}
	return fsys.Open(ctx, path, offset, length)
}

// Linker is implemented by a FileSystem that can make hard links
// (Capabilities.HardLinks).
type Linker interface {
	// Link makes newPath a hard link to the existing file oldPath.
	Link(ctx context.Context, oldPath, newPath string) error
}

// Fingerprint identifies one version of a file's content in the UFS. Two
// fingerprints that differ mean the content may have changed; cached data loaded
// under another fingerprint must not be served.
type Fingerprint struct {
	// Size is the length of the file in bytes (0 for a directory).
	Size int64
	// ETag is the UFS's content tag or version: the S3 ETag (quotes removed),
	// or a tag the backend derives from its own metadata (inode or file ID,
	// size, modification time). For a file it is the same in Stat and List;
	// directory fingerprints are informational (an S3 listing has none).
	ETag string
	// ModTime is the UFS's last-modified time, at the precision every call of
	// the backend reports (whole seconds on S3).
	ModTime time.Time
}

// Equal reports whether f and g identify the same content version.
func (f Fingerprint) Equal(g Fingerprint) bool {
	return f.Size == g.Size && f.ETag == g.ETag && f.ModTime.Equal(g.ModTime)
}

// FileInfo describes one file or directory.
type FileInfo struct {
	// Path is the path relative to the FileSystem's root ("" for the root).
	Path string
	// Name is the last element of Path ("" for the root).
	Name string
	// IsDir is true for a directory, real or implicit.
	IsDir bool
	// Fingerprint of the file; for a directory, whatever the UFS reports (an
	// implicit S3 directory has a zero Fingerprint).
	Fingerprint
}

// SortKey is the key that orders listings: Name, with a "/" appended for a
// directory.
func (fi FileInfo) SortKey() string {
	if fi.IsDir {
		return fi.Name + "/"
	}
	return fi.Name
}

// ListOptions selects one page of a listing.
type ListOptions struct {
	// Cursor is "" for the first page, otherwise the Next of the previous page.
	// It is opaque and valid for the same directory of the same FileSystem.
	Cursor string
	// PageSize is the largest number of entries wanted; 0 or less means
	// DefaultPageSize. Backends may cap it (S3 at 1000).
	PageSize int
}

// DefaultPageSize is the page size List uses when ListOptions.PageSize is 0.
const DefaultPageSize = 1000

// Page is one page of a directory listing.
type Page struct {
	// Entries are in ascending byte order of SortKey.
	Entries []FileInfo
	// Next is the cursor of the next page, or "" when the listing is complete.
	Next string
}

// Capabilities describes what a UFS can do, so that callers choose the right
// strategy (or refuse an operation) without probing.
type Capabilities struct {
	// AtomicRename is true when Rename (of a file and of a directory) is one
	// atomic operation in the UFS.
	AtomicRename bool
	// HardLinks is true when the FileSystem implements Linker.
	HardLinks bool
	// RealDirectories is true when directories exist in their own right; false
	// on object stores, where a directory is a marker object or a common prefix.
	RealDirectories bool
	// ServerSideCopy is true when Copy does not move the data through the
	// client.
	ServerSideCopy bool
	// MaxObjectSize is the largest file the UFS accepts, 0 when unbounded.
	MaxObjectSize int64
	// MaxNameBytes is the longest path element the UFS accepts.
	MaxNameBytes int
	// ForbiddenNameChars lists the characters, beyond "/" and NUL, that a name
	// may not hold in this UFS (":" on HDFS); such paths are ErrInvalidPath.
	ForbiddenNameChars string
	// MaxPathBytes is the longest path relative to the FileSystem's root
	// that the UFS accepts, for a file and for a directory alike, 0 when
	// unbounded. On S3 it is what the 1,024-byte key leaves after the prefix
	// and a directory marker's final "/".
	MaxPathBytes int
}
