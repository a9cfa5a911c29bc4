package mountd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// helperName is the name under which the binary acts as mount(8)'s helper.
const helperName = "mount.skyfs"

// errHelp is returned by the parsers for -h and --help.
var errHelp = flag.ErrHelp

// isHelper says whether argv0 names the mount(8) helper.
func isHelper(argv0 string) bool { return filepath.Base(argv0) == helperName }

// parseMountd parses mountd's command line (without the program name):
// flags and -o options, before or after SPEC and MOUNTPOINT.
func parseMountd(args []string) (*Config, error) {
	c := newConfig()
	fs := flag.NewFlagSet("mountd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Func("o", "mount options opt1,opt2=v,...", c.parseOptions)
	fs.Func("cache-dir", "", func(s string) error { return c.option("cache_dir", s, true) })
	fs.Func("cache-size", "", func(s string) error { return c.option("cache_size", s, true) })
	fs.Func("token-file", "", func(s string) error { return c.option("token_file", s, true) })
	securityFlags(fs, c)
	fs.Func("log-file", "", func(s string) error { return c.option("log_file", s, true) })
	fs.Func("run-dir", "", func(s string) error { return c.option("run_dir", s, true) })
	fs.Func("attr-timeout", "", func(s string) error { return c.option("attr_timeout", s, true) })
	fs.Func("entry-timeout", "", func(s string) error { return c.option("entry_timeout", s, true) })
	fs.Func("mount-timeout", "", func(s string) error { return c.option("mount_timeout", s, true) })
	fs.BoolVar(&c.ReadOnly, "ro", false, "")
	fs.BoolVar(&c.Debug, "debug", false, "")
	fs.BoolVar(&c.CTO, "cto", false, "")
	fs.Func("admin-addr", "", func(s string) error { return c.option("admin_addr", s, true) })
	fs.BoolVar(&c.Pprof, "pprof", false, "")
	fs.Func("log-level", "", func(s string) error { return c.option("log_level", s, true) })
	fs.IntVar(&c.readyFD, "ready-fd", 0, "")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 2 {
		return nil, fmt.Errorf("want SPEC and MOUNTPOINT, got %d arguments", len(pos))
	}
	if c.readyFD < 0 || c.readyFD == 1 || c.readyFD == 2 {
		return nil, fmt.Errorf("--ready-fd %d: not a usable descriptor", c.readyFD)
	}
	if err := c.finish(pos[0], pos[1]); err != nil {
		return nil, err
	}
	return c, nil
}

// parseHelper parses the command line mount(8) gives its helper (without
// the program name): SPEC DIR [-sfnvrw] [-o options] [-t type].
func parseHelper(args []string) (*Config, error) {
	c := newConfig()
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-h" || a == "--help" {
			return nil, errHelp
		}
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		// A cluster of short flags; -o and -t take the rest of the word or
		// the next argument.
		for j := 1; j < len(a); j++ {
			switch f := a[j]; f {
			case 's', 'n': // sloppy options, no mtab: nothing to do
			case 'f':
				c.Fake = true
			case 'v':
				c.Verbose = true
			case 'r':
				c.ReadOnly = true
			case 'w':
				c.ReadOnly = false
			case 'o', 't', 'N':
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, fmt.Errorf("-%c needs a value", f)
					}
					i++
					val = args[i]
				}
				switch f {
				case 'o':
					if err := c.parseOptions(val); err != nil {
						return nil, err
					}
				case 't':
					if val != "skyfs" && val != "fuse.skyfs" {
						return nil, fmt.Errorf("-t %s: this helper mounts skyfs only", val)
					}
				case 'N':
					return nil, errors.New("-N (mount in another namespace) is not supported")
				}
				j = len(a)
			default:
				return nil, fmt.Errorf("unknown flag -%c", f)
			}
		}
	}
	if len(pos) != 2 {
		return nil, fmt.Errorf("want SPEC and DIR, got %d arguments", len(pos))
	}
	if err := c.finish(pos[0], pos[1]); err != nil {
		return nil, err
	}
	return c, nil
}

// childArgs is the command line of the daemon that mount.skyfs starts: the
// whole configuration as mountd flags. It holds paths, never a secret.
func (c *Config) childArgs(readyFD int) []string {
	args := []string{
		"--cache-dir", c.CacheDir,
		"--cache-size", fmt.Sprint(c.CacheSize),
		"--attr-timeout", c.AttrTimeout.String(),
		"--entry-timeout", c.EntryTimeout.String(),
		"--mount-timeout", c.MountTimeout.String(),
		"--log-file", c.LogFile,
		"--run-dir", c.RunDir,
		"--ready-fd", fmt.Sprint(readyFD),
	}
	if c.TokenFile != "" {
		args = append(args, "--token-file", c.TokenFile)
	}
	args = append(args, c.securityArgs()...)
	if c.ReadOnly {
		args = append(args, "--ro")
	}
	if c.Debug {
		args = append(args, "--debug")
	}
	if c.CTO {
		args = append(args, "--cto")
	}
	if c.AdminAddr != "" {
		args = append(args, "--admin-addr", c.AdminAddr)
	}
	if c.Pprof {
		args = append(args, "--pprof")
	}
	if c.LogLevel != "" && c.LogLevel != "info" {
		args = append(args, "--log-level", c.LogLevel)
	}
	return append(args, c.spec(), c.MountPoint)
}

// usage prints the help of the command, as mountd or as mount.skyfs.
func usage(w io.Writer, helper bool) {
	if helper {
		fmt.Fprintf(w, "usage: %s SPEC DIR [-sfnvrw] [-o OPTIONS]\n\n", helperName)
		fmt.Fprint(w, `Mounts skyfs on DIR for mount(8): "mount -t skyfs SPEC DIR -o OPTIONS" and
/etc/fstab run it. It starts mountd in the background and returns once the
mount is ready, or prints one error line and exits non-zero. "umount DIR" stops
the daemon after it has finished its uploads.

Flags (from mount(8)): -f check everything but do not mount; -v verbose;
-r read-only; -w read-write; -s and -n are accepted and ignored.
`)
	} else {
		fmt.Fprint(w, `usage: mountd [FLAGS] SPEC MOUNTPOINT

Mounts skyfs on MOUNTPOINT and serves it in the foreground until the mount is
unmounted ("umount MOUNTPOINT"), or SIGTERM or SIGINT unmounts it. It is also
installed as mount.skyfs, the mount(8) helper, which runs it in the background.

Flags (each also an -o option below):
  -o OPTIONS             mount options, opt1,opt2=v,...
  --cache-dir DIR        cache_dir
  --cache-size SIZE      cache_size
  --token-file FILE      token_file
  --log-file FILE        log_file
  --run-dir DIR          run_dir
  --attr-timeout T       attr_timeout
  --entry-timeout T      entry_timeout
  --mount-timeout T      mount_timeout
  --ro                   ro
  --debug                debug
  --cto                  cto
  --admin-addr HOST:PORT admin_addr
  --pprof                pprof
  --log-level LEVEL      log_level
`)
	}
	fmt.Fprintf(w, `
SPEC is the masters, then the directory of the namespace to mount as the root:
  m1:7700,m2:7700,m3:7700:/warehouse     ("/" for the whole namespace)

Options:
  cache_dir=DIR        block cache, staging files of writes and the daemon's
                       log (default %s/<mount point with - for />)
  cache_size=SIZE      disk space of the block cache, with K, M, G or T
                       (default 10G)
  token_file=FILE      file holding the cluster token (kept in memory only;
                       default $SKYFS_TOKEN_FILE)
`+securityUsage+`  log_file=FILE        log of the background daemon (default CACHE_DIR/mountd.log)
  run_dir=DIR          directory of the daemon's control socket, through which
                       skyfs status, cache stats, cache drop and load reach it
                       (default $SKYFS_RUN_DIR, or /run/skyfs)
  ro, rw               read-only or read-write (default rw)
  attr_timeout=T       how long the kernel caches attributes: seconds (1.5) or
                       a duration (500ms); default %v
  entry_timeout=T      how long the kernel caches names; default %v
  mount_timeout=T      how long mounting waits for the masters; default %v
  cto                  every open for reading asks the masters for the file's
                       attributes (close-to-open as NFS); by default an open
                       uses attributes the mount got less than attr_timeout
                       ago, so a change closed on another host is seen within
                       attr_timeout
  allow_other, default_permissions
                       always on: every local user may use the mount and the
                       kernel enforces POSIX permissions
  debug                log every FUSE request
  admin_addr=HOST:PORT serve Prometheus metrics on http://HOST:PORT/metrics
                       (default: no admin port)
  pprof                also serve /debug/pprof on the admin port
  log_level=LEVEL      lowest level logged: debug, info (default), warn, error
  defaults, noauto, _netdev, nofail, user, x-..., and mount(8)'s other
  generic options are accepted and ignored.

/etc/fstab:
  m1:7700,m2:7700,m3:7700:/warehouse /mnt/wh skyfs cache_dir=/var/cache/skyfs/wh,cache_size=20G,_netdev 0 0
`, DefaultCacheRoot, DefaultTimeout, DefaultTimeout, DefaultMountTimeout)
}

// kernelTimeout is a timeout as fusefs takes it: there zero means the
// default, so zero asks for the shortest one instead.
func kernelTimeout(d time.Duration) time.Duration {
	if d == 0 {
		return time.Nanosecond
	}
	return d
}

// quoteArgs renders a command line for a verbose message.
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return strings.Join(q, " ")
}
