package mountd

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skyfs/skyfs/internal/bytesize"
	"github.com/skyfs/skyfs/internal/mountctl"
	"github.com/skyfs/skyfs/meta"
)

// Defaults of Config.
const (
	DefaultCacheRoot = "/var/cache/skyfs"
	DefaultCacheSize = 10 << 30
	DefaultTimeout   = time.Second
	// DefaultMountTimeout is how long a mount waits for the masters.
	DefaultMountTimeout = 60 * time.Second
	// minCacheSize is one cache block: a smaller cache cannot hold anything.
	minCacheSize = 4 << 20
)

// Config is one mount, from the command line.
type Config struct {
	// Masters are the masters' host:port addresses.
	Masters []string
	// Path is the directory of the namespace mounted as the root (cleaned,
	// absolute; "/" for the whole namespace).
	Path string
	// MountPoint is the local directory mounted on (absolute).
	MountPoint string
	// CacheDir holds the block cache, the staging files of writes and the
	// daemon's log. Default: DefaultCacheRoot/<mount point, escaped>.
	CacheDir string
	// CacheSize bounds the disk space of the block cache.
	CacheSize int64
	// TokenFile holds the cluster token. The token is read into memory only.
	TokenFile string
	// Sec is mutual TLS with the masters (security.go).
	Sec securityConfig
	// LogFile receives the output of a daemon started by mount.skyfs.
	// Default: CacheDir/mountd.log.
	LogFile string
	// ReadOnly mounts read-only.
	ReadOnly bool
	// AttrTimeout and EntryTimeout are how long the kernel caches
	// attributes and names.
	AttrTimeout, EntryTimeout time.Duration
	// CTO (cto) makes every open for reading ask the masters for the
	// file's attributes, as NFS's close-to-open does; without it an open
	// uses those held for less than AttrTimeout (fusefs.Options.StrictOpen).
	CTO bool
	// MountTimeout bounds reaching the masters when mounting.
	MountTimeout time.Duration
	// Debug logs every FUSE request.
	Debug bool
	// AdminAddr is host:port of the admin HTTP port (/metrics; admin.go);
	// empty: none. Pprof adds /debug/pprof there.
	AdminAddr string
	Pprof     bool
	// LogLevel is the lowest level logged: debug, info, warn or error.
	LogLevel string
	// RunDir holds the daemon's control socket (control.go). Default:
	// $SKYFS_RUN_DIR, or /run/skyfs.
	RunDir string

	// Fake (mount.skyfs -f) checks everything but does not mount. Verbose
	// (-v) says what is done on stderr.
	Fake, Verbose bool
	// readyFD is the descriptor on which a daemon started by mount.skyfs
	// reports readiness (0: none).
	readyFD int
}

// newConfig returns a Config with the defaults.
func newConfig() *Config {
	return &Config{
		CacheSize: DefaultCacheSize, AttrTimeout: DefaultTimeout, EntryTimeout: DefaultTimeout,
		MountTimeout: DefaultMountTimeout, LogLevel: "info",
	}
}

// spec returns the SPEC string of c: masters, then the path.
func (c *Config) spec() string { return strings.Join(c.Masters, ",") + ":" + c.Path }

// EnvTokenFile names the token file when token_file is not given, as it
// does for the skyfs CLI.
const EnvTokenFile = "SKYFS_TOKEN_FILE"

// finish checks the positional arguments and fills the defaults that depend
// on them.
//
// Without token_file, the token file is $SKYFS_TOKEN_FILE if set, as for
// the skyfs CLI.
func (c *Config) finish(spec, mountPoint string) error {
	masters, p, err := parseSpec(spec)
	if err != nil {
		return err
	}
	c.Masters, c.Path = masters, p
	if mountPoint == "" {
		return errors.New("no mount point given")
	}
	mp, err := filepath.Abs(mountPoint)
	if err != nil {
		return fmt.Errorf("mount point %q: %w", mountPoint, err)
	}
	c.MountPoint = mp
	if tf := os.Getenv(EnvTokenFile); c.TokenFile == "" && tf != "" {
		if !filepath.IsAbs(tf) {
			return fmt.Errorf("$%s: %q is not an absolute path", EnvTokenFile, tf)
		}
		c.TokenFile = filepath.Clean(tf)
	}
	if c.CacheDir == "" {
		c.CacheDir = filepath.Join(DefaultCacheRoot, escapePath(mp))
	}
	if c.LogFile == "" {
		c.LogFile = filepath.Join(c.CacheDir, "mountd.log")
	}
	if c.RunDir == "" {
		c.RunDir = mountctl.RunDir(os.Getenv)
	}
	return nil
}

// escapePath turns an absolute path into one file name: "/mnt/wh" becomes
// "mnt-wh" ("-" for "/"), "/" becomes "root".
func escapePath(p string) string {
	s := strings.Trim(p, "/")
	if s == "" {
		return "root"
	}
	return strings.ReplaceAll(s, "/", "-")
}

// parseSpec splits SPEC, "host:port[,host:port...]:/path", into the masters
// and the cleaned path.
func parseSpec(spec string) ([]string, string, error) {
	i := strings.Index(spec, ":/")
	if i < 0 {
		return nil, "", fmt.Errorf("SPEC %q: want HOST:PORT[,HOST:PORT...]:/PATH", spec)
	}
	hosts, p := spec[:i], spec[i+1:]
	if hosts == "" {
		return nil, "", fmt.Errorf("SPEC %q: no masters before :/PATH", spec)
	}
	var masters []string
	for _, h := range strings.Split(hosts, ",") {
		if h == "" {
			return nil, "", fmt.Errorf("SPEC %q: empty master address", spec)
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			return nil, "", fmt.Errorf("SPEC %q: master %q: want HOST:PORT", spec, h)
		}
		if host == "" {
			return nil, "", fmt.Errorf("SPEC %q: master %q has no host", spec, h)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return nil, "", fmt.Errorf("SPEC %q: master %q: port must be a number from 1 to 65535", spec, h)
		}
		if slices.Contains(masters, h) {
			return nil, "", fmt.Errorf("SPEC %q: master %q listed twice", spec, h)
		}
		masters = append(masters, h)
	}
	clean, err := checkPath(p)
	if err != nil {
		return nil, "", fmt.Errorf("SPEC %q: %w", spec, err)
	}
	return masters, clean, nil
}

// checkPath checks the namespace path of SPEC and cleans it.
func checkPath(p string) (string, error) {
	if len(p) >= meta.MaxPathLen {
		return "", fmt.Errorf("path is longer than %d bytes", meta.MaxPathLen-1)
	}
	for _, comp := range strings.Split(p, "/") {
		switch {
		case comp == "." || comp == "..":
			return "", fmt.Errorf("path %q: %q is not allowed", p, comp)
		case strings.IndexByte(comp, 0) >= 0:
			return "", fmt.Errorf("path %q holds a NUL byte", p)
		case len(comp) > meta.MaxNameLen:
			return "", fmt.Errorf("path %q: a name is longer than %d bytes", p, meta.MaxNameLen)
		}
	}
	return path.Clean(p), nil
}

// ignoredOptions are mount(8)'s generic options, which a skyfs mount
// accepts and ignores (the kernel applies the ones that matter to a FUSE
// mount itself, or they are for mount(8) and systemd).
var ignoredOptions = map[string]bool{
	"rw": true, "defaults": true, "auto": true, "noauto": true, "_netdev": true,
	"nofail": true, "user": true, "nouser": true, "users": true, "owner": true,
	"group": true, "exec": true, "noexec": true, "suid": true, "nosuid": true,
	"dev": true, "nodev": true, "async": true, "atime": true, "noatime": true,
	"relatime": true, "norelatime": true, "strictatime": true, "nodiratime": true,
	"diratime": true, "lazytime": true, "nolazytime": true, "silent": true, "loud": true,
	"allow_other": true, "default_permissions": true,
}

// ignoredValueOptions are generic options with a value (user=NAME is added
// by mount(8) for a user mount).
var ignoredValueOptions = map[string]bool{"user": true, "comment": true}

// parseOptions applies a mount option list, "opt1,opt2=v,...", to c.
// Option names are echoed in errors, values are not.
func (c *Config) parseOptions(list string) error {
	for _, item := range strings.Split(list, ",") {
		if item == "" {
			continue
		}
		key, val, hasVal := strings.Cut(item, "=")
		if err := c.option(key, val, hasVal); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) option(key, val string, hasVal bool) error {
	if handled, err := c.securityOption(key, val, hasVal); handled {
		return err
	}
	needValue := func() error {
		if !hasVal || val == "" {
			return fmt.Errorf("option %s needs a value (%s=...)", key, key)
		}
		return nil
	}
	switch key {
	case "cache_dir", "token_file", "log_file", "run_dir":
		if err := needValue(); err != nil {
			return err
		}
		if !filepath.IsAbs(val) {
			return fmt.Errorf("option %s: %q is not an absolute path", key, val)
		}
		switch key {
		case "cache_dir":
			c.CacheDir = filepath.Clean(val)
		case "token_file":
			c.TokenFile = filepath.Clean(val)
		case "run_dir":
			c.RunDir = filepath.Clean(val)
		default:
			c.LogFile = filepath.Clean(val)
		}
		return nil
	case "cache_size":
		if err := needValue(); err != nil {
			return err
		}
		n, err := parseSize(val)
		if err != nil {
			return fmt.Errorf("option cache_size: %w", err)
		}
		c.CacheSize = n
		return nil
	case "log_level":
		if err := needValue(); err != nil {
			return err
		}
		if _, err := parseLogLevel(val); err != nil {
			return err
		}
		c.LogLevel = val
		return nil
	case "admin_addr":
		if err := needValue(); err != nil {
			return err
		}
		if _, _, err := net.SplitHostPort(val); err != nil {
			return fmt.Errorf("option admin_addr: %q: want HOST:PORT", val)
		}
		c.AdminAddr = val
		return nil
	case "attr_timeout", "entry_timeout", "mount_timeout":
		if err := needValue(); err != nil {
			return err
		}
		d, err := parseTimeout(val)
		if err != nil {
			return fmt.Errorf("option %s: %w", key, err)
		}
		switch key {
		case "attr_timeout":
			c.AttrTimeout = d
		case "entry_timeout":
			c.EntryTimeout = d
		default:
			if d == 0 {
				return fmt.Errorf("option mount_timeout: must be positive")
			}
			c.MountTimeout = d
		}
		return nil
	}
	if hasVal {
		if ignoredValueOptions[key] || strings.HasPrefix(key, "x-") {
			return nil
		}
		if ignoredOptions[key] || key == "ro" || key == "debug" || key == "pprof" || key == "cto" {
			return fmt.Errorf("option %s takes no value", key)
		}
		return fmt.Errorf("unknown option %s", key)
	}
	switch {
	case key == "ro":
		c.ReadOnly = true
	case key == "rw":
		c.ReadOnly = false
	case key == "debug":
		c.Debug = true
	case key == "pprof":
		c.Pprof = true
	case key == "cto":
		c.CTO = true
	case ignoredOptions[key], strings.HasPrefix(key, "x-"):
	default:
		return fmt.Errorf("unknown option %s", key)
	}
	return nil
}

// parseSize reads a size in bytes with an optional binary suffix: K, M, G
// or T (also KiB, MB, ...: every suffix is a power of 1024), of at least one
// cache block.
func parseSize(s string) (int64, error) {
	v, err := bytesize.Parse(s)
	switch {
	case errors.Is(err, bytesize.ErrRange):
		return 0, fmt.Errorf("%q is too large", s)
	case err != nil:
		return 0, fmt.Errorf("%q: %w", s, err)
	case v < minCacheSize:
		return 0, fmt.Errorf("%q is smaller than one cache block (4M)", s)
	}
	return v, nil
}

// parseTimeout reads a timeout: seconds as a decimal number ("1.5"), as in
// other FUSE file systems, or a Go duration ("500ms").
func parseTimeout(s string) (time.Duration, error) {
	var d time.Duration
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f > float64(24*time.Hour/time.Second) || f != f {
			return 0, fmt.Errorf("%q is longer than a day", s)
		}
		d = time.Duration(f * float64(time.Second))
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, fmt.Errorf("%q: want seconds (1.5) or a duration (500ms)", s)
	}
	switch {
	case d < 0:
		return 0, fmt.Errorf("%q is negative", s)
	case d > 24*time.Hour:
		return 0, fmt.Errorf("%q is longer than a day", s)
	}
	return d, nil
}

// parseLogLevel reads a log level: debug, info, warn or error.
func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("option log_level: %q: want debug, info, warn or error", s)
	}
	return l, nil
}
