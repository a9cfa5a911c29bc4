package masterd

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skyfs/skyfs/raftjournal"
)

// Config is a master's configuration: from a JSON file (--config), then
// flags, which win.
type Config struct {
	NodeID   string `json:"id"`
	DataDir  string `json:"data_dir"`
	RaftAddr string `json:"raft_addr"`
	RPCAddr  string `json:"rpc_addr"`
	// Peers is the initial cluster as "id=raftaddr=rpcaddr" items, this
	// master included. Empty with Join set: wait to be added to a running
	// cluster (skyfs cluster add).
	Peers []string `json:"peers"`
	Join  bool     `json:"join"`

	SnapshotThreshold uint64   `json:"snapshot_threshold"`
	SnapshotInterval  Duration `json:"snapshot_interval"`
	TrailingLogs      uint64   `json:"trailing_logs"`
	HeartbeatTimeout  Duration `json:"heartbeat_timeout"`
	ElectionTimeout   Duration `json:"election_timeout"`
	LeaseTimeout      Duration `json:"lease_timeout"`

	LogLevel     string `json:"log_level"`
	RaftLogLevel string `json:"raft_log_level"`

	// AdminAddr is host:port of the admin HTTP port: the status page and
	// /metrics (admin.go); empty: none. Pprof adds /debug/pprof there.
	AdminAddr string `json:"admin_addr"`
	Pprof     bool   `json:"pprof"`

	// RootUFS is the URI of the UFS backing "/", mounted when the cluster
	// first has a leader; RootUFSOptions are its options (credentials among
	// them: prefer the config file to flags for those).
	RootUFS             string            `json:"root_ufs"`
	RootUFSOptions      map[string]string `json:"root_ufs_options"`
	RootUFSSyncInterval Duration          `json:"root_ufs_sync_interval"`
	// RootUFSOptionFile holds more root UFS options, "key=value" lines,
	// in a root-only file: the place for credentials (security.go).
	RootUFSOptionFile string `json:"root_ufs_option_file"`

	// Security (security.go): the directory of the cluster's tokens and
	// key (created on first start), token files of the admin and mount
	// roles, the cluster key that seals UFS credentials, mutual TLS, and
	// the refusal to hand credentials to callers nobody authenticated.
	SecretsDir     string `json:"secrets_dir"`
	AdminTokenFile string `json:"admin_token_file"`
	MountTokenFile string `json:"mount_token_file"`
	// ScopedTokenFile lists mount tokens limited to namespace subtrees.
	ScopedTokenFile string `json:"scoped_mount_token_file"`
	ClusterKeyFile  string `json:"cluster_key_file"`
	TLSCAFile       string `json:"tls_ca_file"`
	TLSCertFile     string `json:"tls_cert_file"`
	TLSKeyFile      string `json:"tls_key_file"`
	// InsecureVendCredentials lets a master without tokens hand UFS
	// credentials to anyone who asks.
	InsecureVendCredentials bool `json:"insecure_vend_credentials"`
}

// optionsFlag is a repeatable key=value flag.
type optionsFlag struct{ m *map[string]string }

func (f optionsFlag) String() string {
	if f.m == nil {
		return ""
	}
	return fmt.Sprintf("%d options", len(*f.m)) // never the values: they may be secret
}

func (f optionsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("option %q: want key=value", k)
	}
	if *f.m == nil {
		*f.m = make(map[string]string)
	}
	(*f.m)[k] = v
	return nil
}

// Duration is a time.Duration written as "500ms" in JSON.
type Duration time.Duration

// UnmarshalJSON reads a duration string such as "2m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"500ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// configError is a configuration the master refuses (exit code 2).
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func badConfig(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

// durationFlag adapts a Duration to flag.Value.
type durationFlag struct{ d *Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return "0s"
	}
	return time.Duration(*f.d).String()
}

func (f durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*f.d = Duration(v)
	return nil
}

// listFlag is a comma-separated list.
type listFlag struct{ l *[]string }

func (f listFlag) String() string {
	if f.l == nil {
		return ""
	}
	return strings.Join(*f.l, ",")
}

func (f listFlag) Set(s string) error {
	*f.l = nil
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*f.l = append(*f.l, item)
		}
	}
	return nil
}

// flagSet declares the flags into cfg.
func flagSet(cfg *Config, configPath *string) *flag.FlagSet {
	fs := flag.NewFlagSet("masterd", flag.ContinueOnError)
	fs.StringVar(configPath, "config", "", "JSON config `file`; flags override it")
	fs.StringVar(&cfg.NodeID, "id", "", "this master's id (stable across restarts)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "`directory` for the journal and the namespace")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", "", "host:port of the Raft transport")
	fs.StringVar(&cfg.RPCAddr, "rpc-addr", "", "host:port of the client gRPC service")
	fs.Var(listFlag{&cfg.Peers}, "peers", "initial cluster: `id=raftaddr=rpcaddr,...`, this master included")
	fs.BoolVar(&cfg.Join, "join", false, "start without peers and wait to be added to a running cluster")
	fs.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", 0, "log entries between snapshots (0: journal default)")
	fs.Var(durationFlag{&cfg.SnapshotInterval}, "snapshot-interval", "how often the snapshot threshold is checked")
	fs.Uint64Var(&cfg.TrailingLogs, "trailing-logs", 0, "log entries kept behind a snapshot (0: journal default)")
	fs.Var(durationFlag{&cfg.HeartbeatTimeout}, "heartbeat-timeout", "Raft heartbeat timeout")
	fs.Var(durationFlag{&cfg.ElectionTimeout}, "election-timeout", "Raft election timeout")
	fs.Var(durationFlag{&cfg.LeaseTimeout}, "lease-timeout", "leader lease (at most the heartbeat timeout)")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.RaftLogLevel, "raft-log-level", "warn", "lowest level of Raft's own messages: error, warn, info, debug, trace")
	adminFlags(fs, cfg)
	fs.StringVar(&cfg.RootUFS, "root-ufs", "", "`URI` of the UFS backing / (s3://bucket/prefix, file:///dir, hdfs://nn/path), mounted when the cluster first has a leader")
	fs.Var(optionsFlag{&cfg.RootUFSOptions}, "root-ufs-option", "option `key=value` of the root UFS (repeatable)")
	fs.Var(durationFlag{&cfg.RootUFSSyncInterval}, "root-ufs-sync-interval", "sync interval of the root mount (0: never reload on access)")
	securityFlags(fs, cfg)
	return fs
}

// parseArgs reads the flags and the config file they name, if any; flags that
// were given win over the file. flag.ErrHelp is returned for -h and --help.
func parseArgs(args []string) (*Config, error) {
	var cfg Config
	var path, ignored string
	set := flagSet(&cfg, &ignored) // puts the defaults into cfg
	fs := flagSet(&Config{}, &path)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, badConfig("%v", err)
	}
	if fs.NArg() > 0 {
		return nil, badConfig("unexpected argument %q", fs.Arg(0))
	}
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, badConfig("config file: %v", err)
		}
		dec := json.NewDecoder(f)
		dec.DisallowUnknownFields()
		err = dec.Decode(&cfg)
		f.Close()
		if err != nil {
			return nil, badConfig("config file %s: %v", path, err)
		}
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "root-ufs-option" {
			// Merged key by key over the file's options.
			if cfg.RootUFSOptions == nil {
				cfg.RootUFSOptions = make(map[string]string)
			}
			maps.Copy(cfg.RootUFSOptions, *f.Value.(optionsFlag).m)
			return
		}
		if f.Name != "config" && err == nil {
			err = set.Set(f.Name, f.Value.String())
		}
	})
	if err != nil {
		return nil, badConfig("%v", err)
	}
	if err := cfg.loadRootOptions(rootOptionsFromFlags(fs)); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// usage writes the flags' help.
func usage(w io.Writer) {
	var cfg Config
	var path string
	fs := flagSet(&cfg, &path)
	fs.SetOutput(w)
	fmt.Fprintf(w, "Usage: masterd --id ID --data-dir DIR --raft-addr HOST:PORT --rpc-addr HOST:PORT (--peers LIST | --join) [flags]\n\n")
	fs.PrintDefaults()
}

// peers parses and checks the peer list against this master.
func (c *Config) peers() ([]raftjournal.Peer, error) {
	var out []raftjournal.Peer
	ids := make(map[string]bool)
	addrs := make(map[string]string)
	for _, item := range c.Peers {
		parts := strings.Split(item, "=")
		if len(parts) != 3 || parts[0] == "" {
			return nil, badConfig("peer %q: want id=raftaddr=rpcaddr", item)
		}
		p := raftjournal.Peer{ID: parts[0], RaftAddr: parts[1], RPCAddr: parts[2]}
		if ids[p.ID] {
			return nil, badConfig("duplicate peer id %q", p.ID)
		}
		ids[p.ID] = true
		for _, a := range []string{p.RaftAddr, p.RPCAddr} {
			if err := checkAddr(a); err != nil {
				return nil, badConfig("peer %s: %v", p.ID, err)
			}
			if other, ok := addrs[a]; ok {
				return nil, badConfig("peers %s and %s share the address %s", other, p.ID, a)
			}
			addrs[a] = p.ID
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, nil
	}
	for _, p := range out {
		if p.ID != c.NodeID {
			continue
		}
		if p.RaftAddr != c.RaftAddr || p.RPCAddr != c.RPCAddr {
			return nil, badConfig("peer entry %s=%s=%s does not match --raft-addr %s and --rpc-addr %s", p.ID, p.RaftAddr, p.RPCAddr, c.RaftAddr, c.RPCAddr)
		}
		return out, nil
	}
	return nil, badConfig("own id %q is missing from the peers (%s)", c.NodeID, strings.Join(c.Peers, ","))
}

func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("address %q: want host:port", a)
	}
	if port == "" || port == "0" {
		return fmt.Errorf("address %q: needs a fixed port", a)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		return fmt.Errorf("address %q: needs a host the other masters can reach", a)
	}
	return nil
}

// check validates everything that can be checked before opening anything.
func (c *Config) check() ([]raftjournal.Peer, error) {
	switch {
	case c.NodeID == "":
		return nil, badConfig("--id is required")
	case strings.ContainsAny(c.NodeID, "=, \t\n"):
		return nil, badConfig("id %q must not contain '=', ',' or spaces", c.NodeID)
	case c.DataDir == "":
		return nil, badConfig("--data-dir is required")
	}
	for name, a := range map[string]string{"--raft-addr": c.RaftAddr, "--rpc-addr": c.RPCAddr} {
		if a == "" {
			return nil, badConfig("%s is required", name)
		}
		if err := checkAddr(a); err != nil {
			return nil, badConfig("%s: %v", name, err)
		}
	}
	if c.RaftAddr == c.RPCAddr {
		return nil, badConfig("--raft-addr and --rpc-addr must differ")
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return nil, err
	}
	switch c.RaftLogLevel {
	case "error", "warn", "info", "debug", "trace":
	default:
		return nil, badConfig("--raft-log-level %q: want error, warn, info, debug or trace", c.RaftLogLevel)
	}
	if err := c.checkAdmin(); err != nil {
		return nil, err
	}
	if c.LeaseTimeout > 0 && c.HeartbeatTimeout > 0 && c.LeaseTimeout > c.HeartbeatTimeout {
		return nil, badConfig("--lease-timeout %v exceeds --heartbeat-timeout %v", time.Duration(c.LeaseTimeout), time.Duration(c.HeartbeatTimeout))
	}
	peers, err := c.peers()
	if err != nil {
		return nil, err
	}
	switch {
	case len(peers) == 0 && !c.Join:
		return nil, badConfig("no peers: give --peers (this master included) or --join")
	case len(peers) > 0 && c.Join:
		return nil, badConfig("--join and --peers exclude each other")
	}
	return peers, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, badConfig("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// checkDataDir creates the data directory (0700: the journal and the store
// hold the mount table, credentials among it) and checks that it is
// writable.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return badConfig("data dir: %v", err)
	}
	f, err := os.CreateTemp(dir, ".writable-*")
	if err != nil {
		return badConfig("data dir %s is not writable: %v", dir, errors.Unwrap(err))
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	if abs, err := filepath.Abs(dir); err == nil && abs == "/" {
		return badConfig("data dir must not be /")
	}
	return nil
}

// restrictDataDir takes the group's and others' permissions off the data
// directory and everything in it (data directories of older masters were
// 0755 with 0644 files), and returns how many modes it changed.
func restrictDataDir(dir string) (int, error) {
	changed := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(p, perm&^0o077); err != nil {
				return err
			}
			changed++
		}
		return nil
	})
	return changed, err
}
