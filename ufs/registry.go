package ufs

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Factory opens a FileSystem for a parsed URI. It is called by Open with the
// URI's scheme already matched; u has no user information (Open refuses it).
type Factory func(ctx context.Context, u *url.URL, opts Options) (FileSystem, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a backend available under a URI scheme ("s3", "file", "hdfs").
// Backends call it from an init function; a program selects backends by importing
// them. Register panics if the scheme is empty or already registered.
func Register(scheme string, f Factory) {
	scheme = strings.ToLower(scheme)
	registryMu.Lock()
	defer registryMu.Unlock()
	if scheme == "" || f == nil {
		panic("ufs: Register with an empty scheme or a nil factory")
	}
	if _, dup := registry[scheme]; dup {
		panic("ufs: scheme " + scheme + " registered twice")
	}
	registry[scheme] = f
}

// Schemes returns the registered schemes, sorted.
func Schemes() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	s := make([]string, 0, len(registry))
	for k := range registry {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}

// Open opens the FileSystem named by uri, such as "file:///srv/data",
// "s3://bucket/prefix" or "hdfs://namenode:8020/path", with the backend
// registered for its scheme. Credentials go in options, never in the URI: a URI
// with user information is refused without being echoed. Errors never contain
// secret option values.
func Open(ctx context.Context, uri string, options map[string]string) (FileSystem, error) {
	opts := Options(options)
	u, err := url.Parse(uri)
	if err != nil {
		// url.Error repeats the URI, which could hold a password; keep only
		// the reason.
		var ue *url.Error
		reason := err.Error()
		if e, ok := err.(*url.Error); ok {
			ue = e
			reason = ue.Err.Error()
		}
		return nil, fmt.Errorf("ufs: open: bad URI: %w", opts.Scrub(&KindError{Kind: ErrInvalid, Err: errorString(reason)}))
	}
	if u.User != nil {
		return nil, fmt.Errorf("ufs: open %s://%s: %w: credentials in the URI are refused; pass them as options", u.Scheme, u.Host, ErrInvalid)
	}
	scheme := strings.ToLower(u.Scheme)
	registryMu.RLock()
	f := registry[scheme]
	registryMu.RUnlock()
	if f == nil {
		return nil, fmt.Errorf("ufs: open %s: %w %q (registered: %s)", RedactURI(uri), ErrUnknownScheme, scheme, strings.Join(Schemes(), ", "))
	}
	fsys, err := f(ctx, u, opts)
	if err != nil {
		return nil, opts.Scrub(err)
	}
	return fsys, nil
}

// RedactURI returns uri with any password in its user information replaced by
// Redacted. It is for messages only.
func RedactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(unparsable URI)"
	}
	return u.Redacted()
}

type errorString string

func (e errorString) Error() string { return string(e) }
