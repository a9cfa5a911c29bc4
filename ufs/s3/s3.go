// Package s3 is the ufs backend on Amazon S3 and S3-compatible stores (MinIO),
// built on aws-sdk-go-v2. It registers the scheme "s3": s3://bucket/prefix.
//
// Mapping. The ufs path "a/b" is the key "<prefix>/a/b". A directory is a
// "<key>/" marker object when skyfs made it (Mkdir), or implicit: any key under
// "<key>/" makes it exist (ListObjectsV2 common prefixes). Stat of a directory works
// for both. Keys that cannot be ufs paths ("a//b", names over 255 bytes, ".") are
// left out of listings.
//
// Fingerprints are size, ETag (quotes removed) and Last-Modified truncated to whole
// seconds, the precision of HEAD, so that Stat and List agree.
//
// Writes: Put of up to one part size is one PutObject; larger data and Create use a
// multipart upload whose parts are uploaded in the background, with at most
// uploadConcurrency parts in flight, so a Writer holds at most
// (uploadConcurrency+1) parts. Parts are partSize bytes for the first 900,
// then double every 900 parts, so that any object fits in MaxParts (a
// Writer of a 100 GiB file ends with 64 MiB parts). Each part stays in
// memory until S3 acknowledged it, and a failed attempt is sent again from
// there. Every part carries a CRC32 checksum, which S3 verifies; the
// payload is sent unsigned (UNSIGNED-PAYLOAD), sparing a SHA-256 of every
// byte.
//
// Copy is server-side: CopyObject up to MultipartCopyThreshold, UploadPartCopy
// above. Rename is copy then delete; a directory is renamed object by object, one
// listing page at a time, and is not atomic: a crash in the middle leaves objects
// under both names, which the next metadata sync reconciles.
//
// Requests are retried by the SDK's standard retryer with exponential backoff on
// throttling, 5xx and connection errors (s3.maxAttempts, s3.maxBackoff). The SDK's
// own logging is off.
//
// Package s3 must never import anything from this module but ufs, never log, and
// never put a credential in an error message: every error it returns is scrubbed of
// the secret option values.
package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"

	"github.com/skyfs/skyfs/ufs"
)

// Scheme is the URI scheme of this backend.
const Scheme = "s3"

// Option keys understood by Open.
const (
	OptEndpoint          = "s3.endpoint"          // URL of an S3-compatible endpoint, e.g. http://127.0.0.1:9000
	OptRegion            = "s3.region"            // region; default from the SDK's config, else us-east-1
	OptAccessKeyID       = "s3.accessKeyId"       // static credentials; without them the SDK's default chain is used
	OptSecretAccessKey   = "s3.secretAccessKey"   // secret; never shown
	OptSessionToken      = "s3.sessionToken"      // secret; never shown
	OptPathStyle         = "s3.pathStyle"         // "true" for path-style addressing (MinIO)
	OptMaxAttempts       = "s3.maxAttempts"       // attempts per request, default 5
	OptMaxBackoff        = "s3.maxBackoff"        // longest wait between attempts, default 10s
	OptPartSize          = "s3.partSize"          // multipart part size in bytes, default 8 MiB, at least 5 MiB
	OptUploadConcurrency = "s3.uploadConcurrency" // parts in flight per Writer, default 4
	OptCopyConcurrency   = "s3.copyConcurrency"   // objects or parts copied at once in Rename and Copy, default 32
	OptCheck             = "s3.check"             // "false" skips the bucket check in Open
)

// Limits of S3.
const (
	// MinPartSize is the smallest part S3 accepts, except for the last one.
	MinPartSize = 5 << 20
	// MaxParts is the most parts a multipart upload may have.
	MaxParts = 10000
	// MaxObjectSize is the largest object S3 accepts.
	MaxObjectSize = 5 << 40
	// maxKeyBytes is the longest key S3 accepts.
	maxKeyBytes = 1024
)

// MultipartCopyThreshold is the object size above which Copy uses a multipart
// UploadPartCopy, parts copied in parallel, instead of one CopyObject (S3 refuses
// CopyObject above 5 GiB; below that, one CopyObject of a large object is about
// half as fast on MinIO: BenchmarkRename). A variable so that tests can change it.
var MultipartCopyThreshold int64 = 256 << 20

// CopyPartSize is the part size of a multipart copy; it grows when an object would
// need more than MaxParts parts.
var CopyPartSize int64 = 128 << 20

const (
	defaultPartSize          = 8 << 20
	defaultUploadConcurrency = 4
	defaultCopyConcurrency   = 32
	defaultMaxAttempts       = 5
	defaultMaxBackoff        = 10 * time.Second
	defaultRegion            = "us-east-1"
)

func init() {
	ufs.Register(Scheme, func(ctx context.Context, u *url.URL, opts ufs.Options) (ufs.FileSystem, error) {
		return Open(ctx, u, opts)
	})
}

// FS is a ufs.FileSystem on an S3 bucket and key prefix.
type FS struct {
	client            *s3.Client
	bucket            string
	prefix            string            // "" or "some/prefix/"
	name              string            // "s3://bucket/prefix" for messages
	endpoint          string            // for messages
	scrub             func(error) error // removes secret option values from a message
	partSize          int
	uploadConcurrency int
	copyConcurrency   int
	transport         atomic.Pointer[http.Transport] // the SDK's, once built
}

var _ ufs.FileSystem = (*FS)(nil)

// Open opens s3://bucket/prefix with the given options. Unless s3.check is
// "false", it lists the prefix once, so that a missing bucket, wrong credentials or
// an unreachable endpoint are reported here as one line.
func Open(ctx context.Context, u *url.URL, opts ufs.Options) (*FS, error) {
	fsys, err := open(ctx, u, opts)
	return fsys, opts.Scrub(err)
}

func open(ctx context.Context, u *url.URL, opts ufs.Options) (*FS, error) {
	bucket := u.Host
	prefix := strings.Trim(u.Path, "/")
	name := "s3://" + bucket
	if prefix != "" {
		name += "/" + prefix
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("s3: open %s: %w: %s", name, ufs.ErrInvalid, fmt.Sprintf(format, args...))
	}
	if bucket == "" {
		return nil, bad("no bucket (want s3://bucket/prefix)")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, bad("a query or fragment in the URI is not supported; use options")
	}
	if err := ufs.CheckPath(prefix); err != nil {
		return nil, fmt.Errorf("s3: open %s: prefix: %w", name, err)
	}
	if prefix != "" {
		prefix += "/"
	}
	// A closure rather than a map field, so that printing an FS with %+v
	// cannot show the secrets.
	fsys := &FS{bucket: bucket, prefix: prefix, name: name, scrub: opts.Scrub}
	var err error
	if fsys.partSize, err = intOption(opts, OptPartSize, defaultPartSize, MinPartSize, 5<<30); err != nil {
		return nil, bad("%v", err)
	}
	if fsys.uploadConcurrency, err = intOption(opts, OptUploadConcurrency, defaultUploadConcurrency, 1, 64); err != nil {
		return nil, bad("%v", err)
	}
	if fsys.copyConcurrency, err = intOption(opts, OptCopyConcurrency, defaultCopyConcurrency, 1, 256); err != nil {
		return nil, bad("%v", err)
	}
	maxAttempts, err := intOption(opts, OptMaxAttempts, defaultMaxAttempts, 1, 100)
	if err != nil {
		return nil, bad("%v", err)
	}
	maxBackoff := defaultMaxBackoff
	if v := opts.Get(OptMaxBackoff, ""); v != "" {
		if maxBackoff, err = time.ParseDuration(v); err != nil || maxBackoff <= 0 {
			return nil, bad("%s=%q is not a positive duration", OptMaxBackoff, v)
		}
	}

	loadOpts := []func(*config.LoadOptions) error{
		config.WithLogger(logging.Nop{}),
		config.WithClientLogMode(0),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.MaxBackoff = maxBackoff
				// No client-side retry quota: under sustained throttling we
				// want to back off, not fail fast.
				o.RateLimiter = ratelimit.None
			})
		}),
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConnsPerHost = 64
			fsys.transport.Store(t)
		})),
	}
	if r := opts.Get(OptRegion, ""); r != "" {
		loadOpts = append(loadOpts, config.WithRegion(r))
	}
	id, secret := opts.Get(OptAccessKeyID, ""), opts.Get(OptSecretAccessKey, "")
	switch {
	case id != "" && secret != "":
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(id, secret, opts.Get(OptSessionToken, ""))))
	case id != "" || secret != "":
		return nil, bad("%s and %s must be given together", OptAccessKeyID, OptSecretAccessKey)
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("s3: open %s: load AWS config: %w", name, err)
	}
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	endpoint := opts.Get(OptEndpoint, "")
	if endpoint != "" {
		eu, err := url.Parse(endpoint)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" || eu.User != nil {
			return nil, bad("%s must be an http(s) URL without credentials", OptEndpoint)
		}
		fsys.endpoint = eu.String()
	}
	pathStyle := opts.Get(OptPathStyle, "false") == "true"
	fsys.client = s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = pathStyle
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.Logger = logging.Nop{}
		o.ClientLogMode = 0
	})
	if opts.Get(OptCheck, "true") != "false" {
		if err := fsys.check(ctx); err != nil {
			return nil, err
		}
	}
	return fsys, nil
}

// check lists the prefix once to verify bucket, credentials and endpoint.
func (f *FS) check(ctx context.Context) error {
	_, err := f.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket:  &f.bucket,
		Prefix:  aws.String(f.prefix),
		MaxKeys: aws.Int32(1),
	})
	if err != nil {
		where := f.name
		if f.endpoint != "" {
			where += " at " + f.endpoint
		}
		return fmt.Errorf("s3: open %s: %w", where, mapErr(err))
	}
	return nil
}

func intOption(opts ufs.Options, key string, def, lo, hi int) (int, error) {
	v := opts.Get(key, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q must be an integer in [%d, %d]", key, v, lo, hi)
	}
	return n, nil
}

// Client returns the SDK client, for tests and tools.
func (f *FS) Client() *s3.Client { return f.client }

// Bucket returns the bucket name.
func (f *FS) Bucket() string { return f.bucket }

// Key returns the object key of the ufs path p.
func (f *FS) Key(p string) string { return f.prefix + p }

// dirKey returns the marker key of directory p, which is also the listing
// prefix of its children ("" for the root of an unprefixed mount).
func (f *FS) dirKey(p string) string {
	if p == "" {
		return f.prefix
	}
	return f.prefix + p + "/"
}

// Capabilities implements ufs.FileSystem.
func (f *FS) Capabilities() ufs.Capabilities {
	return ufs.Capabilities{
		AtomicRename:    false,
		HardLinks:       false,
		RealDirectories: false,
		ServerSideCopy:  true,
		MaxObjectSize:   MaxObjectSize,
		MaxNameBytes:    ufs.MaxNameBytes,
		// A directory's marker key ends in one more byte, "/".
		MaxPathBytes: maxKeyBytes - 1 - len(f.prefix),
	}
}

// Close implements ufs.FileSystem: it closes idle connections.
func (f *FS) Close() error {
	if t := f.transport.Load(); t != nil {
		t.CloseIdleConnections()
	}
	return nil
}

// fail builds the error of operation op on path p: mapped to the ufs sentinels,
// on one line, scrubbed of secrets.
func (f *FS) fail(op, p string, err error) error {
	return f.scrub(&ufs.Error{FS: f.name, Op: op, Path: p, Err: mapErr(err)})
}

// checkPaths validates paths and the context before operation op.
func (f *FS) checkPaths(ctx context.Context, op string, paths ...string) error {
	for _, p := range paths {
		if err := ufs.CheckPath(p); err != nil {
			return &ufs.Error{FS: f.name, Op: op, Err: err}
		}
		if len(f.Key(p))+1 > maxKeyBytes {
			return &ufs.Error{FS: f.name, Op: op, Path: p, Err: fmt.Errorf("%w: %w: key longer than %d bytes", ufs.ErrInvalidPath, ufs.ErrNameTooLong, maxKeyBytes)}
		}
	}
	if err := ctx.Err(); err != nil {
		return &ufs.Error{FS: f.name, Op: op, Err: err}
	}
	return nil
}

// errorf is a plain error with a message, for causes we make ourselves.
func errorf(kind error, format string, args ...any) error {
	return &ufs.KindError{Kind: kind, Err: errors.New(fmt.Sprintf(format, args...))}
}
