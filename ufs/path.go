package ufs

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxNameBytes is the longest path element any backend accepts, as in POSIX
// NAME_MAX.
const MaxNameBytes = 255

// CheckPath reports whether p is a valid relative UFS path: "" (the root), or
// elements separated by single slashes, without a leading or trailing slash, no
// "." or ".." element, no NUL byte, valid UTF-8, and no element longer than
// MaxNameBytes. The error wraps ErrInvalidPath and quotes the path.
func CheckPath(p string) error {
	if p == "" {
		return nil
	}
	if why := pathProblem(p); why != "" {
		return fmt.Errorf("%w %s: %s", ErrInvalidPath, quote(printable(p)), why)
	}
	return nil
}

func pathProblem(p string) string {
	if !utf8.ValidString(p) {
		return "not valid UTF-8"
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "contains a NUL byte"
	}
	if p[0] == '/' {
		return "must be relative (no leading slash)"
	}
	if p[len(p)-1] == '/' {
		return "has a trailing slash"
	}
	for elem := range strings.SplitSeq(p, "/") {
		switch {
		case elem == "":
			return "has an empty element"
		case elem == "." || elem == "..":
			return "has a \".\" or \"..\" element"
		case len(elem) > MaxNameBytes:
			return fmt.Sprintf("has an element of %d bytes (limit %d)", len(elem), MaxNameBytes)
		}
	}
	return ""
}

// printable shortens p and makes NUL and invalid bytes visible for an error
// message.
func printable(p string) string {
	if len(p) > 120 {
		p = p[:120] + "..."
	}
	if utf8.ValidString(p) && strings.IndexByte(p, 0) < 0 {
		return p
	}
	return strings.Trim(fmt.Sprintf("%q", p), "\"")
}

// Join joins a directory path and a name (either may be "").
func Join(dir, name string) string {
	switch {
	case dir == "":
		return name
	case name == "":
		return dir
	}
	return dir + "/" + name
}

// Base returns the last element of p ("" for the root).
func Base(p string) string {
	return p[strings.LastIndexByte(p, '/')+1:]
}

// Dir returns all but the last element of p ("" for a top-level name).
func Dir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return ""
	}
	return p[:i]
}

// IsWithin reports whether p is dir itself or lies under dir. Every path is
// within the root "".
func IsWithin(p, dir string) bool {
	if dir == "" || p == dir {
		return true
	}
	return strings.HasPrefix(p, dir+"/")
}
