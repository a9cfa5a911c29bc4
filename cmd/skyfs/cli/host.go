package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/skyfs/skyfs/internal/mountctl"
)

// This host's mount daemons, found through their control sockets in the run
// directory ($SKYFS_RUN_DIR, or /run/skyfs; package mountctl), and paths
// resolved to the mount that serves them. A path on the command line of a
// host command is either local (it exists here: a file or directory inside
// a skyfs mount) or, when nothing by that name exists here, a namespace
// path served by one of this host's mounts.

// daemons lists this host's mount daemons. It fails only when none could be
// asked and some answered with an error (a socket for root only, say).
func (r *runner) daemons(ctx context.Context) ([]mountctl.Found, error) {
	found, errs := mountctl.List(ctx, mountctl.RunDir(r.env.Getenv))
	if len(found) == 0 && len(errs) > 0 {
		return nil, errs[0]
	}
	return found, nil
}

// hostTarget is a command-line path resolved on this host.
type hostTarget struct {
	arg string
	// local is the path to read here (absolute).
	local string
	// d is the mount daemon serving it; nil when local is not in a skyfs
	// mount of this host.
	d *mountctl.Found
	// nsPath is the path in the namespace (set when d is).
	nsPath string
	// byName is set when arg was taken as a namespace path.
	byName bool
}

// errNoMount is wrapped when a path is served by no mount of this host.
var errNoMount = errors.New("no skyfs mount on this host serves it")

// resolveHost resolves arg against found: a local path when something by
// that name exists here, otherwise a namespace path that one of the mounts
// serves (of the cluster of --masters, when given).
func (r *runner) resolveHost(found []mountctl.Found, arg string) (hostTarget, error) {
	t := hostTarget{arg: arg}
	_, err := os.Lstat(arg)
	switch {
	case err == nil:
		abs, err := filepath.Abs(arg)
		if err != nil {
			return t, err
		}
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			abs = real
		}
		t.local = abs
		if d, rel := mountctl.Serving(found, abs); d != nil {
			t.d, t.nsPath = d, path.Join(d.Info.Path, rel)
		}
		return t, nil
	case !errors.Is(err, os.ErrNotExist):
		return t, err
	case !strings.HasPrefix(arg, "/"):
		return t, err // a relative path is local only
	}
	ns := path.Clean(arg)
	d, rel := mountctl.Exporting(found, ns, r.mastersList())
	if d == nil {
		return t, fmt.Errorf("%s: no such file or directory here, and %w as a namespace path", arg, errNoMount)
	}
	t.d, t.nsPath, t.local, t.byName = d, ns, filepath.Join(d.Info.MountPoint, filepath.FromSlash(rel)), true
	return t, nil
}

// mastersList is --masters or $SKYFS_MASTERS as a list; nil when neither is
// set.
func (r *runner) mastersList() []string {
	masters := r.o.masters
	if masters == "" {
		masters = r.env.Getenv(EnvMasters)
	}
	var list []string
	for m := range strings.SplitSeq(masters, ",") {
		if m = strings.TrimSpace(m); m != "" {
			list = append(list, m)
		}
	}
	return list
}

// spec renders a daemon's mount as its SPEC.
func spec(info *mountctl.Info) string {
	return strings.Join(info.Masters, ",") + ":" + info.Path
}
