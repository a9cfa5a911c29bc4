// Package mountctl is the control socket of a mount daemon: how the skyfs
// command on a compute host finds this host's mount daemons and asks them
// about and to act on their block cache.
//
// Every mount daemon listens on a Unix socket in the run directory
// (RunDir: $SKYFS_RUN_DIR, or /run/skyfs for root), named after its mount point
// (SocketPath), mode 0600: only the daemon's user (root) may connect. The
// protocol is HTTP with JSON bodies:
//
//	GET  /v1/info          Info: the mount and its cache figures
//	POST /v1/cache/drop    DropRequest → DropResult
//	POST /v1/cache/settle  waits until the blocks being loaded are stored
//
// A failure answers a non-2xx status with an Error body. The package holds
// the names, the message types and the client; the daemon's side is in
// cmd/mountd. It must never carry a credential: the daemon's token and UFS
// options stay out of every message.
package mountctl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// EnvRunDir is the environment variable that overrides DefaultRunDir.
const EnvRunDir = "SKYFS_RUN_DIR"

// DefaultRunDir is the run directory without $SKYFS_RUN_DIR.
const DefaultRunDir = "/run/skyfs"

// Paths of the protocol.
const (
	PathInfo   = "/v1/info"
	PathDrop   = "/v1/cache/drop"
	PathSettle = "/v1/cache/settle"
)

// RunDir returns the run directory: getenv(EnvRunDir); else, for a user
// other than root with a $XDG_RUNTIME_DIR, its skyfs directory (a daemon and
// the commands of the user who runs it meet there); else DefaultRunDir.
func RunDir(getenv func(string) string) string {
	if d := getenv(EnvRunDir); d != "" {
		return d
	}
	if x := getenv("XDG_RUNTIME_DIR"); x != "" && os.Geteuid() != 0 {
		return filepath.Join(x, "skyfs")
	}
	return DefaultRunDir
}

// SocketPath is the control socket of the mount daemon serving mountPoint
// (absolute, clean) in runDir. The name is a hash, so that it fits the
// length limit of a socket path whatever the mount point.
func SocketPath(runDir, mountPoint string) string {
	sum := sha256.Sum256([]byte(mountPoint))
	return filepath.Join(runDir, "mountd-"+hex.EncodeToString(sum[:8])+".sock")
}

// Info describes one mount daemon.
type Info struct {
	PID int `json:"pid"`
	// MountPoint is the local directory mounted on.
	MountPoint string `json:"mount_point"`
	// Masters and Path are the mount's SPEC: the masters, and the
	// directory of the namespace mounted as the root.
	Masters []string `json:"masters"`
	Path    string   `json:"path"`
	// CacheDir is the daemon's cache directory; AdminAddr its admin port
	// (empty: none).
	CacheDir  string `json:"cache_dir"`
	AdminAddr string `json:"admin_addr,omitempty"`
	ReadOnly  bool   `json:"read_only"`
	// Started is when the mount became ready (RFC 3339).
	Started string     `json:"started"`
	Cache   CacheStats `json:"cache"`
}

// CacheStats are a daemon's block cache figures: counters since the daemon
// started, and the current usage.
type CacheStats struct {
	CapacityBytes  int64  `json:"capacity_bytes"`
	UsedBytes      int64  `json:"used_bytes"`
	Files          int64  `json:"files"`
	Blocks         int64  `json:"blocks"`
	BlockSize      int64  `json:"block_size"`
	Hits           uint64 `json:"hits"`
	Misses         uint64 `json:"misses"`
	BytesFromCache int64  `json:"bytes_from_cache"`
	BytesFromUFS   int64  `json:"bytes_from_ufs"`
	Loads          uint64 `json:"ufs_loads"`
	ReadAheads     uint64 `json:"readaheads"`
	Evictions      uint64 `json:"evictions"`
	CorruptBlocks  uint64 `json:"corrupt_blocks"`
	Bypasses       uint64 `json:"bypasses"`
}

// DropRequest asks a daemon to empty its cache. Path, when set, is a
// namespace path (absolute): only the cached files at or under it go. To,
// when not nil, shrinks the cache to at most that many bytes by evicting
// least recently used blocks instead (Path must then be empty).
type DropRequest struct {
	Path string `json:"path,omitempty"`
	To   *int64 `json:"to,omitempty"`
}

// DropResult is what a drop removed.
type DropResult struct {
	Files     int   `json:"files"`
	Blocks    int64 `json:"blocks"`
	UsedBytes int64 `json:"used_bytes"`
	// Pinned is set when Shrink could not reach its target because files
	// open for passthrough reads hold their blocks.
	Pinned bool `json:"pinned,omitempty"`
}

// Error is the body of a failed request.
type Error struct {
	Error string `json:"error"`
}

// Daemon is a connection to one mount daemon's control socket.
type Daemon struct {
	// Socket is the socket's path.
	Socket string
	hc     *http.Client
}

// Dial returns a client of the control socket at path; nothing is
// connected until a call.
func Dial(path string) *Daemon {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}
	return &Daemon{Socket: path, hc: &http.Client{Transport: tr}}
}

// Info asks the daemon about itself.
func (d *Daemon) Info(ctx context.Context) (*Info, error) {
	var info Info
	if err := d.call(ctx, http.MethodGet, PathInfo, nil, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// Drop empties the daemon's cache as req says.
func (d *Daemon) Drop(ctx context.Context, req DropRequest) (*DropResult, error) {
	var res DropResult
	if err := d.call(ctx, http.MethodPost, PathDrop, req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Settle returns once the blocks the daemon was loading when it was called
// are stored in its cache.
func (d *Daemon) Settle(ctx context.Context) error {
	return d.call(ctx, http.MethodPost, PathSettle, struct{}{}, nil)
}

// ErrNoDaemon is returned (wrapped) when nothing listens on a socket: the
// daemon that made it is gone.
var ErrNoDaemon = errors.New("no mount daemon listening")

func (d *Daemon) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://mountd"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("%s: %w", d.Socket, ErrNoDaemon)
		}
		if errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("%s: %w (the mount daemon's control socket is for its user, root)", d.Socket, syscall.EACCES)
		}
		return fmt.Errorf("%s: %w", d.Socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", d.Socket, err)
	}
	if resp.StatusCode/100 != 2 {
		var e Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("%s: %s", d.Socket, resp.Status)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: bad answer: %w", d.Socket, err)
	}
	return nil
}

// Found is a mount daemon found in the run directory.
type Found struct {
	*Daemon
	Info *Info
}

// List returns the mount daemons with a control socket in runDir, sorted by
// mount point. A daemon closes its socket as soon as its mount is
// unmounted; sockets left by daemons that died are skipped. A socket that
// answers with an error is returned in errs, one per socket.
func List(ctx context.Context, runDir string) (found []Found, errs []error) {
	socks, err := filepath.Glob(filepath.Join(runDir, "mountd-*.sock"))
	if err != nil {
		return nil, []error{err}
	}
	for _, s := range socks {
		d := Dial(s)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := d.Info(cctx)
		cancel()
		switch {
		case errors.Is(err, ErrNoDaemon):
			continue
		case err != nil:
			errs = append(errs, err)
			continue
		}
		found = append(found, Found{Daemon: d, Info: info})
	}
	slices.SortFunc(found, func(a, b Found) int { return strings.Compare(a.Info.MountPoint, b.Info.MountPoint) })
	return found, errs
}

// Serving returns the daemon among found whose mount holds the local path
// p (absolute, symbolic links resolved), and p's path inside the mount
// ("" for the mount point itself); nil when none does. The deepest mount
// point wins.
func Serving(found []Found, p string) (*Found, string) {
	var best *Found
	rel := ""
	for i := range found {
		mp := found[i].Info.MountPoint
		r, ok := under(mp, p)
		if ok && (best == nil || len(mp) > len(best.Info.MountPoint)) {
			best, rel = &found[i], r
		}
	}
	return best, rel
}

// Exporting returns the daemon among found that mounts the namespace path
// nsPath (absolute, clean), preferring the one that mounts the deepest
// directory, and nsPath's path inside its mount ("" for its root); nil when
// none does. With masters set, only daemons of a cluster with one of those
// masters count.
func Exporting(found []Found, nsPath string, masters []string) (*Found, string) {
	var best *Found
	rel := ""
	for i := range found {
		info := found[i].Info
		if len(masters) > 0 && !slices.ContainsFunc(info.Masters, func(m string) bool { return slices.Contains(masters, m) }) {
			continue
		}
		r, ok := under(info.Path, nsPath)
		if ok && (best == nil || len(info.Path) > len(best.Info.Path)) {
			best, rel = &found[i], r
		}
	}
	return best, rel
}

// under reports whether p is root or below it, and the rest of p.
func under(root, p string) (string, bool) {
	if p == root {
		return "", true
	}
	prefix := strings.TrimSuffix(root, "/") + "/"
	if rest, ok := strings.CutPrefix(p, prefix); ok {
		return rest, true
	}
	return "", false
}
