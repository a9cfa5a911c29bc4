// Package masterd is the masterd command: it reads the configuration, opens
// the journal (raftjournal), serves the master's gRPC service (package master)
// with the UFS backends s3, file and hdfs, runs the leader's background duties
// (mounting --root-ufs at /, purging unmounted subtrees) and shuts everything
// down cleanly on SIGTERM or SIGINT. It only parses and wires;
// Main can be called in-process by tests.
//
// With --admin-addr it serves a status page and Prometheus metrics on an
// HTTP port of their own, and with --pprof the Go profiles (admin.go).
//
// Security (security.go): every RPC must carry a token of the role its
// method needs. The tokens and the cluster key, which seals UFS credentials
// in the journal, come from --secrets-dir or --admin-token-file,
// --mount-token-file and --cluster-key-file; a new cluster creates them on
// first start (DATA_DIR/secrets for a lone master, --secrets-dir for
// several). A master without tokens (a data directory from before, or
// --insecure-vend-credentials) serves anyone, warns at every start, and
// hands UFS credentials to no one unless --insecure-vend-credentials says
// otherwise. --tls-ca-file, --tls-cert-file and --tls-key-file turn on
// mutual TLS for the RPC port and the Raft transport. Credentials of the
// root UFS go in --root-ufs-option-file or the config file: a secret
// --root-ufs-option is refused, since /proc/PID/cmdline is public. Main
// sets the umask to 077 and the data directory is made root-only: the
// journal, the store and snapshots hold the mount table.
//
// A bad configuration — an unknown or duplicate peer, this master's id missing
// from the peers, an unwritable data directory, an address already in use — is
// refused with one line on stderr and exit code 2. A failure after start exits
// with 1.
package masterd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/skyfs/skyfs/master"
	"github.com/skyfs/skyfs/raftjournal"
	// The UFS backends masters can mount.
	_ "github.com/skyfs/skyfs/ufs/hdfs"
	_ "github.com/skyfs/skyfs/ufs/local"
	_ "github.com/skyfs/skyfs/ufs/s3"
)

// Exit codes of Main.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitConfig = 2
)

// shutdownGrace bounds how long in-flight requests may finish on shutdown.
const shutdownGrace = 5 * time.Second

// Main runs masterd with args (without the program name) until SIGTERM or
// SIGINT and returns the exit code.
func Main(args []string) int {
	// Everything masterd writes — the journal, the store, snapshots and
	// the secrets it creates — is for root only.
	syscall.Umask(0o077)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return Run(ctx, args, os.Stderr)
}

// Run is Main with an explicit context, whose end stops the master, and error
// output; tests run masters in-process with it.
func Run(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		usage(os.Stdout)
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "masterd: %v\n", err)
		return ExitConfig
	}
	if err := serve(ctx, cfg, stderr); err != nil {
		fmt.Fprintf(stderr, "masterd: %v\n", err)
		var ce *configError
		if errors.As(err, &ce) {
			return ExitConfig
		}
		return ExitFailed
	}
	return ExitOK
}

func serve(ctx context.Context, cfg *Config, stderr io.Writer) error {
	peers, err := cfg.check()
	if err != nil {
		return err
	}
	if err := checkDataDir(cfg.DataDir); err != nil {
		return err
	}
	level, _ := parseLevel(cfg.LogLevel)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	// Take the client port now, and make sure the Raft port is free, so that a
	// port in use is a configuration error rather than a failure halfway.
	lis, err := net.Listen("tcp", cfg.RPCAddr)
	if err != nil {
		return badConfig("--rpc-addr %s: %v", cfg.RPCAddr, errors.Unwrap(err))
	}
	defer lis.Close()
	if probe, err := net.Listen("tcp", cfg.RaftAddr); err != nil {
		return badConfig("--raft-addr %s: %v", cfg.RaftAddr, errors.Unwrap(err))
	} else {
		probe.Close()
	}
	adm, err := listenAdmin(cfg)
	if err != nil {
		return err
	}
	defer adm.close()
	_, err = os.Stat(filepath.Join(cfg.DataDir, "raft.db"))
	fresh := errors.Is(err, fs.ErrNotExist)
	alone := len(peers) == 1 && !cfg.Join
	sec, err := cfg.security(log.With("node", cfg.NodeID), fresh, alone)
	if err != nil {
		return err
	}
	if n, err := restrictDataDir(cfg.DataDir); err != nil {
		log.Warn("masterd: cannot make the data dir root-only", "dir", cfg.DataDir, "err", err)
	} else if n > 0 {
		log.Info("masterd: took group and other permissions off the data dir", "dir", cfg.DataDir, "changed", n)
	}

	node, err := raftjournal.Open(raftjournal.Config{
		NodeID:             cfg.NodeID,
		Dir:                cfg.DataDir,
		RaftAddr:           cfg.RaftAddr,
		RPCAddr:            cfg.RPCAddr,
		Peers:              peers,
		SnapshotThreshold:  cfg.SnapshotThreshold,
		SnapshotInterval:   time.Duration(cfg.SnapshotInterval),
		TrailingLogs:       cfg.TrailingLogs,
		HeartbeatTimeout:   time.Duration(cfg.HeartbeatTimeout),
		ElectionTimeout:    time.Duration(cfg.ElectionTimeout),
		LeaderLeaseTimeout: time.Duration(cfg.LeaseTimeout),
		Logger:             log, // the journal adds node=ID itself
		RaftLogLevel:       cfg.RaftLogLevel,
		TLS:                sec.raftTLS,
		OnApply:            adm.applyHook(),
	})
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	log = log.With("node", cfg.NodeID)
	srv, err := master.New(master.Config{
		Journal: node, Admin: node, Logger: log, WrapUFS: adm.ufsWrapper(),
		RootUFS: cfg.RootUFS, RootOptions: cfg.RootUFSOptions, RootSyncInterval: time.Duration(cfg.RootUFSSyncInterval),
		PeerDialOptions: sec.peerDial, Sealer: sec.sealer, InsecureVendCredentials: sec.vendToAnyone,
	})
	if err != nil {
		node.Close()
		return err
	}
	// Timing outermost: requests the authentication refuses are counted too.
	opts := append(adm.grpcOptions(), sec.serverOpts...)
	// Fixed flow-control windows: with them set, grpc-go does not probe the
	// connection's bandwidth with a PING after received data, which cost a
	// lone client's stat about a sixth of its latency on loopback.
	opts = append(opts, grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(1<<20))
	g := grpc.NewServer(opts...)
	srv.Register(g)
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	adm.start(node, log)
	duties, stopDuties := context.WithCancel(context.Background())
	dutiesDone := make(chan struct{})
	go func() {
		srv.Run(duties)
		close(dutiesDone)
	}()
	log.Info("masterd: started", "raft", cfg.RaftAddr, "rpc", cfg.RPCAddr, "peers", len(peers), "dir", cfg.DataDir)

	var failure error
	select {
	case <-ctx.Done():
		log.Info("masterd: shutting down")
	case err := <-served:
		failure = fmt.Errorf("rpc server: %w", err)
	}
	stopped := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		g.Stop()
	}
	adm.close()
	stopDuties()
	<-dutiesDone
	srv.Close()
	if err := node.Close(); err != nil && failure == nil {
		failure = fmt.Errorf("close journal: %w", err)
	}
	if failure == nil {
		log.Info("masterd: stopped")
	}
	return failure
}
