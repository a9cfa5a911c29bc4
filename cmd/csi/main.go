// Command csi is the skyfs CSI plugin (installed as skyfs-csi): the
// controller service, the node service, or both, on a unix socket. See
// package csi.
package main

import (
	"context"
	"errors"
	"flag"
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

	"github.com/skyfs/skyfs/csi"
	"github.com/skyfs/skyfs/internal/secrets"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

func main() { os.Exit(Main(os.Args)) }

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// options are the command line.
type options struct {
	endpoint, mode, name, nodeID, masters string
	tokenFile                             string
	tls                                   secrets.TLSFiles
	basePath, onDelete                    string
	mountd, stateDir, cacheRoot           string
	mountTimeout                          time.Duration
	logLevel                              string
	version                               bool
}

// parse reads the command line (without the program name).
func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("skyfs-csi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.endpoint, "endpoint", "unix:///csi/csi.sock", "`unix:///PATH` of the socket to serve on")
	fs.StringVar(&o.mode, "mode", "", "services to run: controller, node or all (required)")
	fs.StringVar(&o.name, "name", csi.DefaultName, "plugin `name` reported to the orchestrator")
	fs.StringVar(&o.nodeID, "node-id", "", "this node's `id` (node mode; Kubernetes: the node name)")
	fs.StringVar(&o.masters, "masters", "", "masters `HOST:PORT,...`: where the controller creates volumes, and the node's default")
	fs.StringVar(&o.tokenFile, "token-file", "", "root-only `file` with the controller's mount token, used when a request carries no secrets")
	fs.StringVar(&o.tls.CA, "tls-ca-file", "", "cluster CA certificate `file` (controller, with --tls-cert-file and --tls-key-file)")
	fs.StringVar(&o.tls.Cert, "tls-cert-file", "", "client certificate `file`")
	fs.StringVar(&o.tls.Key, "tls-key-file", "", "root-only private key `file`")
	fs.StringVar(&o.basePath, "base-path", csi.DefaultBasePath, "namespace `directory` under which volumes are created")
	fs.StringVar(&o.onDelete, "on-delete", csi.OnDeleteRemove, "what deleting a volume does to its directory: delete or retain")
	fs.StringVar(&o.mountd, "mountd", "", "mountd `binary` (default: mountd next to this binary, else on PATH)")
	fs.StringVar(&o.stateDir, "state-dir", csi.DefaultStateDir, "`directory` of the records of the node's mount daemons")
	fs.StringVar(&o.cacheRoot, "cache-root", csi.DefaultCacheRoot, "`directory` holding one block cache per mount")
	fs.DurationVar(&o.mountTimeout, "mount-timeout", csi.DefaultMountTimeout, "how long a publish waits for its mount")
	fs.StringVar(&o.logLevel, "log-level", "info", "lowest `level` logged: debug, info, warn, error")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.version {
		return o, nil
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch o.mode {
	case "controller", "node", "all":
	case "":
		return nil, errors.New("--mode is required: controller, node or all")
	default:
		return nil, fmt.Errorf("--mode %q: want controller, node or all", o.mode)
	}
	return o, nil
}

// Main runs the plugin with args (args[0] is the program name) until
// SIGTERM or SIGINT and returns the exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return run(ctx, args[1:], os.Stdout, os.Stderr)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "skyfs-csi: %v\n", err)
		return exitUsage
	}
	if o.version {
		fmt.Fprintln(stdout, "skyfs-csi", version)
		return exitOK
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "skyfs-csi: --log-level %q: want debug, info, warn or error\n", o.logLevel)
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg := csi.Config{
		Name: o.name, Version: version,
		Controller: o.mode != "node", Node: o.mode != "controller",
		BasePath: o.basePath, OnDelete: o.onDelete,
		NodeID: o.nodeID, StateDir: o.stateDir, CacheRoot: o.cacheRoot,
		MountTimeout: o.mountTimeout, Logger: log,
	}
	if o.masters != "" {
		cfg.Masters = strings.Split(o.masters, ",")
	}
	if cfg.Controller {
		if cfg.Credentials, err = csi.LoadCredentials(o.tokenFile, o.tls); err != nil {
			fmt.Fprintf(stderr, "skyfs-csi: %v\n", err)
			return exitFailed
		}
	}
	if cfg.Node {
		if cfg.MountdPath, err = findMountd(o.mountd); err != nil {
			fmt.Fprintf(stderr, "skyfs-csi: %v\n", err)
			return exitFailed
		}
	}
	d, err := csi.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "skyfs-csi: %v\n", err)
		return exitUsage
	}
	l, err := csi.Listen(o.endpoint)
	if err != nil {
		fmt.Fprintf(stderr, "skyfs-csi: %v\n", err)
		return exitFailed
	}
	log.Info("skyfs-csi: serving", "endpoint", o.endpoint, "mode", o.mode, "version", version)
	if err := d.Serve(ctx, l); err != nil {
		log.Error("skyfs-csi: failed", "err", err)
		return exitFailed
	}
	log.Info("skyfs-csi: stopped; mount daemons keep running")
	return exitOK
}

// findMountd returns the mountd binary: the flag's, or mountd next to this
// binary, or mountd on PATH.
func findMountd(flagValue string) (string, error) {
	if flagValue != "" {
		p, err := exec.LookPath(flagValue)
		if err != nil {
			return "", fmt.Errorf("--mountd: %w", err)
		}
		return filepath.Abs(p)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "mountd")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath("mountd")
	if err != nil {
		return "", errors.New("no mountd binary next to this one or on PATH (--mountd)")
	}
	return filepath.Abs(p)
}
