package mountd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/skyfs/skyfs/cache"
	"github.com/skyfs/skyfs/client"
	"github.com/skyfs/skyfs/internal/mountctl"
	"github.com/skyfs/skyfs/meta"
)

// The control socket (package mountctl): the skyfs command on this host
// finds the daemon there, reads its cache figures (skyfs status, cache
// stats), drops or shrinks its cache (skyfs cache drop) and waits for the
// blocks being loaded to be stored (skyfs load). It is always on, at
// mountctl.SocketPath(run_dir, mount point), mode 0600 in a directory of
// mode 0755 created if missing, from the moment the mount is ready until it
// is unmounted (the daemon may go on draining uploads afterwards).

// settleTimeout bounds one settle request, whatever the caller's deadline.
const settleTimeout = 10 * time.Minute

// control is the control socket of one mount daemon.
type control struct {
	cfg     *Config
	c       *cache.Cache
	cl      *client.Client
	log     *slog.Logger
	started time.Time

	path   string
	ino    uint64 // of the socket file, to remove only our own
	lis    net.Listener
	srv    *http.Server
	closed sync.Once
}

// listenControl creates the control socket of cfg (replacing one left by a
// daemon that mounted the same directory before) and serves it.
func listenControl(cfg *Config, c *cache.Cache, cl *client.Client, logger *slog.Logger) (*control, error) {
	if err := os.MkdirAll(cfg.RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("run_dir: %w", err)
	}
	p := mountctl.SocketPath(cfg.RunDir, cfg.MountPoint)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// Connecting needs write permission on the socket, which the usual
	// umask gives its owner only; the mode is then narrowed to 0600. (The
	// umask is the process's: changing it here would race with the files
	// the mount creates meanwhile.)
	lis, err := net.Listen("unix", p)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	lis.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(p, 0o600); err != nil {
		lis.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ctl := &control{cfg: cfg, c: c, cl: cl, log: logger, started: time.Now(), path: p, lis: lis}
	if fi, err := os.Stat(p); err == nil {
		ctl.ino = fi.Sys().(*syscall.Stat_t).Ino
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+mountctl.PathInfo, ctl.info)
	mux.HandleFunc("POST "+mountctl.PathDrop, ctl.drop)
	mux.HandleFunc("POST "+mountctl.PathSettle, ctl.settle)
	ctl.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go ctl.srv.Serve(lis)
	logger.Info("mountd: control socket", "path", p)
	return ctl, nil
}

// close stops serving and removes the socket if it is still ours. Calling
// it again does nothing.
func (ctl *control) close() {
	if ctl == nil {
		return
	}
	ctl.closed.Do(func() {
		if fi, err := os.Stat(ctl.path); err == nil && fi.Sys().(*syscall.Stat_t).Ino == ctl.ino {
			os.Remove(ctl.path)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := ctl.srv.Shutdown(ctx); err != nil {
			ctl.srv.Close()
		}
	})
}

func (ctl *control) info(w http.ResponseWriter, r *http.Request) {
	st := ctl.c.Stats()
	reply(w, http.StatusOK, mountctl.Info{
		PID:        os.Getpid(),
		MountPoint: ctl.cfg.MountPoint,
		Masters:    ctl.cfg.Masters,
		Path:       ctl.cfg.Path,
		CacheDir:   ctl.cfg.CacheDir,
		AdminAddr:  ctl.cfg.AdminAddr,
		ReadOnly:   ctl.cfg.ReadOnly,
		Started:    ctl.started.UTC().Format(time.RFC3339),
		Cache: mountctl.CacheStats{
			CapacityBytes: st.Capacity, UsedBytes: st.Used, Files: int64(st.Entries), Blocks: st.Blocks,
			BlockSize: st.BlockSize, Hits: st.Hits, Misses: st.Misses, BytesFromCache: st.BytesFromCache,
			BytesFromUFS: st.BytesLoaded, Loads: st.LoaderCalls, ReadAheads: st.ReadAheads,
			Evictions: st.Evictions, CorruptBlocks: st.CorruptBlocks, Bypasses: st.Bypasses,
		},
	})
}

func (ctl *control) drop(w http.ResponseWriter, r *http.Request) {
	var req mountctl.DropRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		replyErr(w, http.StatusBadRequest, fmt.Errorf("bad request: %w", err))
		return
	}
	var res mountctl.DropResult
	switch {
	case req.To != nil && req.Path != "":
		replyErr(w, http.StatusBadRequest, errors.New("shrinking is for the whole cache: give a path or a size, not both"))
		return
	case req.To != nil:
		if *req.To < 0 {
			replyErr(w, http.StatusBadRequest, fmt.Errorf("shrink to %d bytes: negative size", *req.To))
			return
		}
		dr, ok, err := ctl.c.Shrink(*req.To)
		if err != nil {
			replyErr(w, http.StatusInternalServerError, err)
			return
		}
		res = mountctl.DropResult{Files: dr.Entries, Blocks: dr.Blocks, UsedBytes: dr.Used, Pinned: !ok}
	default:
		match, err := ctl.matcher(r.Context(), req.Path)
		if err != nil {
			replyErr(w, statusOf(err), err)
			return
		}
		dr, err := ctl.c.DropMatching(match)
		if err != nil {
			replyErr(w, http.StatusInternalServerError, err)
			return
		}
		res = mountctl.DropResult{Files: dr.Entries, Blocks: dr.Blocks, UsedBytes: dr.Used}
	}
	ctl.log.Info("mountd: cache dropped", "path", req.Path, "files", res.Files, "blocks", res.Blocks, "used", res.UsedBytes)
	reply(w, http.StatusOK, res)
}

// matcher returns which cache keys hold content at or under the namespace
// path p: everything for the mount's root (or above it); otherwise the
// file, or the directory's subtree in its UFS mount and every UFS mount
// below it, as the masters resolve p now.
func (ctl *control) matcher(ctx context.Context, p string) (func(cache.Key) bool, error) {
	all := func(cache.Key) bool { return true }
	if p == "" {
		return all, nil
	}
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p {
		return nil, fmt.Errorf("%q: want a clean absolute namespace path", p)
	}
	root := ctl.cfg.Path
	if p == root || root == "/" && p == "/" || strings.HasPrefix(root, strings.TrimSuffix(p, "/")+"/") {
		return all, nil
	}
	if !strings.HasPrefix(p, strings.TrimSuffix(root, "/")+"/") {
		return nil, fmt.Errorf("%s is not under %s, which this daemon mounts: %w", p, root, syscall.ENOENT)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	a, err := ctl.cl.Stat(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	loc, err := ctl.cl.Locate(ctx, a.Ino)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	id, rel := loc.MountId, loc.UfsPath
	if meta.FileType(a.Type) != meta.TypeDirectory {
		return func(k cache.Key) bool { return k.MountID == id && k.Path == rel }, nil
	}
	nested := make(map[uint64]bool)
	ms, err := ctl.cl.ListMounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: list mounts: %w", p, err)
	}
	for _, m := range ms {
		if strings.HasPrefix(m.Path, p+"/") {
			nested[m.Id] = true
		}
	}
	prefix := strings.TrimSuffix(rel, "/") + "/"
	return func(k cache.Key) bool {
		return nested[k.MountID] || k.MountID == id && (rel == "" || k.Path == rel || strings.HasPrefix(k.Path, prefix))
	}, nil
}

func (ctl *control) settle(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), settleTimeout)
	defer cancel()
	if err := ctl.c.Settle(ctx); err != nil {
		replyErr(w, http.StatusServiceUnavailable, err)
		return
	}
	reply(w, http.StatusOK, struct{}{})
}

// statusOf maps an error resolving a path to an HTTP status.
func statusOf(err error) int {
	var errno syscall.Errno
	if errors.As(err, &errno) && (errno == syscall.ENOENT || errno == syscall.ENOTDIR) {
		return http.StatusNotFound
	}
	return http.StatusBadGateway
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func replyErr(w http.ResponseWriter, code int, err error) {
	reply(w, code, mountctl.Error{Error: oneLine(err.Error())})
}
