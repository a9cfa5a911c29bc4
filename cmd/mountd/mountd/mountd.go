// Package mountd is the mountd command, also installed as mount.skyfs (the
// mount(8) helper): it mounts the skyfs namespace, or a subtree of it, on a
// local directory through package fusefs and serves it until the mount is
// unmounted.
//
// It owns the wiring of one mount: the gRPC client of the masters (package
// client) behind fusefs's Namespace interface, the UFS FileSystem of each
// UFS mount, opened on first use from the mount record the master hands to
// mount daemons, the block cache (package cache) and the staging directory
// of writes, and the process's life: readiness, signals, unmount.
//
// Invoked as mountd it runs in the foreground (for systemd or a terminal).
// Invoked as mount.skyfs it follows mount(8)'s helper convention: it checks
// the command line, starts itself again as a daemon in a new session with
// its output going to a log file, and waits on a pipe until the daemon
// reports the mount ready or the error that stopped it, so that mount(8)
// returns when the mount can be used, or fails with one line.
//
// Layout of cache_dir: blocks/ is the block cache, staging/ holds files being
// written, mountd.log the daemon's output. The cache directory is locked by
// the daemon using it: two mounts need two cache directories.
//
// Monitoring: with admin_addr= the daemon serves Prometheus metrics on
// http://HOST:PORT/metrics, and with pprof the Go profiles (admin.go). Logs
// are structured (log/slog) at log_level= (default info). The control
// socket in run_dir (control.go, package mountctl) is how the skyfs
// command on the host finds the daemon, reads its cache figures, drops its
// cache and waits for loads to be stored.
//
// Stopping: the kernel unmount (umount DIR) ends the FUSE serve loop; the
// daemon then waits for the releases the kernel handed over (they may upload
// data), closes the cache cleanly and exits 0. SIGTERM and SIGINT unmount
// (lazily, if the mount is busy: the daemon then serves the open files until
// they are closed).
//
// Credentials: token_file names a root-only file holding the mount token,
// sent with every call; tls_ca_file, tls_cert_file and tls_key_file turn on
// mutual TLS with the masters (security.go). All of them are paths: nothing
// secret is ever on mountd's command line.
//
// What it must never do: let a UFS credential or the cluster token reach a
// log line, an error message, a file on disk, a process argument or the
// environment. The mount record with credentials goes straight into
// ufs.Open and is dropped; URIs and options are only ever printed through
// ufs.RedactURI and ufs.Options (which redacts). Like every command, it only
// parses and wires; Main can be called in-process by tests.
package mountd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skyfs/skyfs/cache"
	"github.com/skyfs/skyfs/client"
	"github.com/skyfs/skyfs/fusefs"
	"github.com/skyfs/skyfs/internal/secrets"
	"github.com/skyfs/skyfs/meta"
	_ "github.com/skyfs/skyfs/ufs/hdfs" // UFS backends, registered by import
	_ "github.com/skyfs/skyfs/ufs/local"
	_ "github.com/skyfs/skyfs/ufs/s3"
)

// Exit codes of mountd.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// Exit codes of mount.skyfs, as mount(8) defines them for helpers.
const (
	helperExitUsage  = 1
	helperExitFailed = 32
)

// Timeouts of the daemon.
const (
	// drainTimeout bounds the uploads still running after an unmount.
	drainTimeout = 10 * time.Minute
)

// Main runs the command named by args[0] (mountd, or mount.skyfs) with the
// rest of args and returns the exit code.
func Main(args []string) int {
	if len(args) == 0 {
		args = []string{"mountd"}
	}
	if isHelper(args[0]) {
		return helperMain(args[1:], os.Stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return Run(ctx, args[1:], os.Stderr)
}

// Run is mountd with an explicit context, whose end unmounts, and error
// output. args exclude the program name.
func Run(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, err := parseMountd(args)
	if errors.Is(err, errHelp) {
		usage(os.Stdout, false)
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "mountd: %v (see mountd --help)\n", err)
		return ExitUsage
	}
	var ready *os.File
	if cfg.readyFD > 0 {
		ready = os.NewFile(uintptr(cfg.readyFD), "ready")
		unix.CloseOnExec(cfg.readyFD)
	}
	level, _ := parseLogLevel(cfg.LogLevel) // checked by the parser
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	err = serve(ctx, cfg, logger, func() {
		if ready != nil {
			fmt.Fprintln(ready, "ready")
			ready.Close()
			ready = nil
		}
	})
	if err != nil {
		logger.Error("mountd: failed", "err", err)
		if ready != nil {
			fmt.Fprintf(ready, "error: %s\n", oneLine(err.Error()))
			ready.Close()
		}
		return ExitFailed
	}
	// Logged only here, once serve's deferred closes (cache indexes, client,
	// admin server) are done: after this line mountd touches nothing.
	logger.Info("mountd: stopped")
	return ExitOK
}

// oneLine keeps the first line of a message.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// readToken reads the cluster token from its file, which must be readable
// by its owner only; the token is held in memory and sent with every call.
func readToken(file string) ([]byte, error) {
	if file == "" {
		return nil, nil
	}
	tok, err := secrets.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("token_file: %w", err)
	}
	return tok, nil
}

// checkMountPoint checks that dir is a directory that can be mounted on.
func checkMountPoint(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("mount point %s is not a directory", dir)
	}
	return nil
}

// serve mounts cfg and serves it until it is unmounted; ready is called once
// the mount can be used.
func serve(ctx context.Context, cfg *Config, logger *slog.Logger, ready func()) error {
	token, err := readToken(cfg.TokenFile)
	if err != nil {
		return err
	}
	defer clear(token)
	if err := checkMountPoint(cfg.MountPoint); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return fmt.Errorf("cache_dir: %w", err)
	}

	ccfg := client.Config{Masters: cfg.Masters, Token: token}
	if err := cfg.clientSecurity(&ccfg); err != nil {
		return err
	}
	cl, err := client.New(ccfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	sctx, cancel := context.WithTimeout(ctx, cfg.MountTimeout)
	root, err := cl.Stat(sctx, cfg.Path)
	cancel()
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.Path, err)
	}
	if a := attrMeta(root); a.Type != meta.TypeDirectory {
		return fmt.Errorf("%s: %w", cfg.Path, syscall.ENOTDIR)
	}

	c, err := cache.Open(filepath.Join(cfg.CacheDir, "blocks"), cache.Options{Capacity: cfg.CacheSize})
	if err != nil {
		return fmt.Errorf("cache_dir: %w", err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			logger.Error("mountd: close cache", "err", err)
		}
	}()
	adm, err := listenAdmin(cfg)
	if err != nil {
		return err
	}
	defer adm.close()
	ns := newNamespace(cl, logger)
	ns.wrap = adm.ufsWrapper()
	defer ns.close()

	opts := fusefs.Options{
		RootIno:            root.Ino,
		StagingDir:         filepath.Join(cfg.CacheDir, "staging"),
		AllowOther:         true,
		DefaultPermissions: true,
		ReadOnly:           cfg.ReadOnly,
		AttrTimeout:        kernelTimeout(cfg.AttrTimeout),
		EntryTimeout:       kernelTimeout(cfg.EntryTimeout),
		MaxWrite:           fusefs.DefaultMaxWrite,
		FsName:             cfg.spec(),
		Debug:              cfg.Debug,
		Logger:             slog.NewLogLogger(logger.Handler(), slog.LevelWarn), // failures only
		Observe:            adm.fuseObserver(),
		RootSquash:         cfg.Sec.RootSquash,
		StrictOpen:         cfg.CTO,
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	srv, err := fusefs.Serve(cfg.MountPoint, ns, c, opts)
	if err != nil {
		return err
	}
	logger.Info("mountd: mounted", "spec", cfg.spec(), "on", cfg.MountPoint, "cache", cfg.CacheDir, "cache_size", cfg.CacheSize)
	adm.start(c, srv, logger)
	ctl, err := listenControl(cfg, c, cl, logger)
	if err != nil {
		// The mount works without it; only the host's skyfs commands
		// (load, cache, status) cannot reach this daemon.
		logger.Warn("mountd: no control socket: skyfs load, cache and status will not find this mount (set run_dir= or $SKYFS_RUN_DIR)", "err", err)
	}
	defer ctl.close()
	ready()

	served := make(chan struct{})
	go func() {
		srv.Wait()
		close(served)
	}()
	select {
	case <-served:
		logger.Info("mountd: unmounted", "on", cfg.MountPoint)
	case <-ctx.Done():
		logger.Info("mountd: unmounting", "on", cfg.MountPoint)
		if err := unmount(srv, cfg.MountPoint); err != nil {
			logger.Error("mountd: unmount failed", "err", err)
		}
		<-served
	}
	ctl.close()
	dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	open, err := srv.Drain(dctx)
	if err != nil {
		return fmt.Errorf("uploads still running after unmount: %w", err)
	}
	if open > 0 {
		logger.Warn("mountd: file handles never released by the kernel", "handles", open)
	}
	return nil
}

// unmount unmounts dir; a busy mount is detached (lazy unmount) and the
// serve loop ends when its last file is closed. Without the right to
// unmount (not root), fusermount does it.
func unmount(srv *fusefs.Mounted, dir string) error {
	err := unix.Unmount(dir, 0)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EBUSY):
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
		return nil
	}
	if err := srv.Unmount(); err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// helperMain is mount.skyfs: check the command line, then start the daemon
// and wait until it reports the mount ready or failed.
func helperMain(args []string, stderr io.Writer) int {
	cfg, err := parseHelper(args)
	if errors.Is(err, errHelp) {
		usage(os.Stdout, true)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v (see %s --help)\n", helperName, err, helperName)
		return helperExitUsage
	}
	if err := startDaemon(cfg, stderr); err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", helperName, oneLine(err.Error()))
		return helperExitFailed
	}
	return 0
}

// startDaemon checks what can be checked here, starts mountd detached and
// waits for its report.
func startDaemon(cfg *Config, stderr io.Writer) error {
	token, err := readToken(cfg.TokenFile)
	if err != nil {
		return err
	}
	clear(token) // the daemon reads the file itself
	if err := checkMountPoint(cfg.MountPoint); err != nil {
		return err
	}
	if cfg.Fake {
		if cfg.Verbose {
			fmt.Fprintf(stderr, "%s: would mount %s on %s\n", helperName, cfg.spec(), cfg.MountPoint)
		}
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.LogFile), 0o700); err != nil {
		return fmt.Errorf("log_file: %w", err)
	}
	logf, err := os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("log_file: %w", err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()

	// ExtraFiles[0] is descriptor 3 in the daemon.
	cmd := exec.Command(exe, cfg.childArgs(3)...)
	cmd.Args[0] = "mountd"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.ExtraFiles = []*os.File{pw}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if cfg.Verbose {
		fmt.Fprintf(stderr, "%s: starting mountd %s (log %s)\n", helperName, quoteArgs(cmd.Args[1:]), cfg.LogFile)
	}
	if err := cmd.Start(); err != nil {
		pw.Close()
		return fmt.Errorf("start mountd: %w", err)
	}
	pw.Close()
	report, _ := io.ReadAll(io.LimitReader(pr, 4096))
	line := strings.TrimSpace(string(report))
	switch {
	case line == "ready":
		cmd.Process.Release()
		if cfg.Verbose {
			fmt.Fprintf(stderr, "%s: mounted %s on %s\n", helperName, cfg.spec(), cfg.MountPoint)
		}
		return nil
	case strings.HasPrefix(line, "error: "):
		cmd.Wait()
		return errors.New(strings.TrimPrefix(line, "error: "))
	}
	werr := cmd.Wait()
	return fmt.Errorf("mountd exited before the mount was ready (%v); see %s", werr, cfg.LogFile)
}
