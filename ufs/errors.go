package ufs

import (
	"errors"
	"io/fs"
)

// Sentinel errors. Backends wrap them (with %w, or inside an *Error) so that
// errors.Is works whatever the backend. ErrNotExist, ErrExist and ErrPermission are
// the io/fs values themselves.
var (
	// ErrNotExist: the path does not exist.
	ErrNotExist = fs.ErrNotExist
	// ErrExist: something already exists at the path.
	ErrExist = fs.ErrExist
	// ErrPermission: the UFS refused the operation for lack of rights, or the
	// credentials were rejected.
	ErrPermission = fs.ErrPermission
	// ErrInvalid: an argument is invalid (negative offset, dst under src, ...).
	ErrInvalid = fs.ErrInvalid
	// ErrNotEmpty: a directory still has children.
	ErrNotEmpty = errors.New("directory not empty")
	// ErrNotDir: a path element or the target is a file where a directory is
	// needed.
	ErrNotDir = errors.New("not a directory")
	// ErrIsDir: the target is a directory where a file is needed.
	ErrIsDir = errors.New("is a directory")
	// ErrInvalidPath: the path breaks the rules of Clean (leading slash, "..",
	// NUL, empty element, name too long, not UTF-8, ...).
	ErrInvalidPath = errors.New("invalid path")
	// ErrNameTooLong: a path is longer than the UFS takes
	// (Capabilities.MaxPathBytes), or a directory rename would make one so.
	// Backends wrap it together with ErrInvalidPath.
	ErrNameTooLong = errors.New("path too long")
	// ErrUnsupported: the backend cannot do this operation.
	ErrUnsupported = errors.ErrUnsupported
	// ErrUnavailable: the UFS cannot be reached (connection refused, DNS,
	// timeouts after retries).
	ErrUnavailable = errors.New("ufs unavailable")
	// ErrUnknownScheme: no backend is registered for the URI's scheme.
	ErrUnknownScheme = errors.New("unknown ufs scheme")
	// ErrClosed: the FileSystem or Writer was already closed.
	ErrClosed = errors.New("closed")
	// ErrStale: the file no longer has the fingerprint the caller expected.
	ErrStale = errors.New("file changed since its fingerprint was taken")
	// ErrSizeMismatch: the reader given to Put yielded a different number of
	// bytes than the size given.
	ErrSizeMismatch = errors.New("reader size differs from the declared size")
)

// Error records a failed operation on a UFS path. Its message is one line:
// "<fs> <op> <path>: <err>". It unwraps to Err.
type Error struct {
	// FS names the FileSystem, e.g. "s3://bucket/prefix" (never credentials).
	FS string
	// Op is the operation: "stat", "list", "open", "put", ...
	Op string
	// Path is the path relative to the FileSystem's root.
	Path string
	// Err is the cause; it wraps a sentinel where one applies.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	s := e.Op
	if e.FS != "" {
		s = e.FS + " " + s
	}
	if e.Path != "" {
		s += " " + quote(e.Path)
	}
	return s + ": " + oneLine(e.Err.Error())
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// quote quotes a path for an error message without escaping non-ASCII letters.
func quote(p string) string {
	return "\"" + oneLine(p) + "\""
}

// oneLine replaces line breaks so that an error stays on one line.
func oneLine(s string) string {
	b := []byte(nil)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\n' || c == '\r' {
			if b == nil {
				b = []byte(s[:i])
			}
			b = append(b, ' ')
			continue
		}
		if b != nil {
			b = append(b, c)
		}
	}
	if b == nil {
		return s
	}
	return string(b)
}

// KindError joins a sentinel to an underlying error: errors.Is matches both
// Kind and Err, and the message is "<Kind>: <Err>".
type KindError struct {
	Kind error
	Err  error
}

// Error implements error.
func (e *KindError) Error() string {
	if e.Err == nil {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Err.Error()
}

// Unwrap returns both the kind and the cause.
func (e *KindError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}
