package masterd

import (
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skyfs/skyfs/internal/secrets"
	"github.com/skyfs/skyfs/master"
	"github.com/skyfs/skyfs/ufs"
)

// Security of a master.
//
// Authentication is on when a token file is configured (--admin-token-file,
// --mount-token-file; skyfs init writes both): every call must then carry a
// token of the role its method needs, and calls without one are refused.
// Without token files the master serves anyone and says so in a warning at
// every start: existing clusters and local experiments keep working, and a
// production cluster is one `skyfs init` away from closed.
//
// Tokens are read once at start: rotating one means new files and a
// restart of the masters (one at a time) and of the mount daemons.
//
// --scoped-mount-token-file lists mount tokens limited to namespace
// subtrees, one "TOKEN /path[,/path...]" per line: a mount daemon with such
// a token gets the credentials of the UFS mounts under (or above) those
// paths only. Give each group of hosts its own.
//
// --cluster-key-file seals the secret options of UFS mounts (AES-256-GCM)
// before they are journaled; it must be the same file on every master.
// Mounts added before a key was configured keep their options in clear
// until they are mounted again.
// --tls-ca-file, --tls-cert-file and --tls-key-file turn on mutual TLS for
// the client gRPC port and the Raft transport: peers and clients must then
// present a certificate signed by the cluster CA. A certificate carries no
// role: with TLS and no tokens, every holder of a cluster certificate may
// do everything, so use both.
//
// Secret options of the root UFS are refused on the command line (every
// local user can read /proc/PID/cmdline): they belong in
// --root-ufs-option-file or the config file.

func securityFlags(fs *flag.FlagSet, cfg *Config) {
	fs.StringVar(&cfg.AdminTokenFile, "admin-token-file", "", "root-only `file` holding the admin token (turns authentication on)")
	fs.StringVar(&cfg.MountTokenFile, "mount-token-file", "", "root-only `file` holding the mount daemons' token (turns authentication on)")
	fs.StringVar(&cfg.ScopedTokenFile, "scoped-mount-token-file", "", "root-only `file` of mount tokens limited to subtrees: lines \"TOKEN /path[,/path...]\" (turns authentication on)")
	fs.StringVar(&cfg.ClusterKeyFile, "cluster-key-file", "", "root-only `file` holding the cluster key that seals UFS credentials in the journal")
	fs.StringVar(&cfg.TLSCAFile, "tls-ca-file", "", "cluster CA certificate `file` (turns mutual TLS on, with --tls-cert-file and --tls-key-file)")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert-file", "", "this master's certificate `file`")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key-file", "", "root-only `file` holding this master's private key")
	fs.StringVar(&cfg.RootUFSOptionFile, "root-ufs-option-file", "", "root-only `file` of root UFS options, key=value lines (for credentials)")
}

// scopedToken is one line of the scoped mount token file.
type scopedToken struct {
	token []byte
	paths []string
	line  int
}

// readScopedTokens reads a root-only file of scoped mount tokens: one
// "TOKEN /path[,/path...]" per line; blank lines and lines starting with #
// are skipped. Errors name the line, never the token.
func readScopedTokens(path string) ([]scopedToken, error) {
	b, err := secrets.ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	var out []scopedToken
	seen := map[string]bool{}
	for i, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		f := bytes.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("%s line %d: want TOKEN /path[,/path...]", path, i+1)
		}
		if seen[string(f[0])] {
			return nil, fmt.Errorf("%s line %d: the token is listed twice", path, i+1)
		}
		seen[string(f[0])] = true
		out = append(out, scopedToken{token: bytes.Clone(f[0]), paths: strings.Split(string(f[1]), ","), line: i + 1})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no token", path)
	}
	return out, nil
}

// security is what the configuration's security settings yield.
type security struct {
	auth       *master.Auth // nil: authentication off
	serverOpts []grpc.ServerOption
	peerDial   []grpc.DialOption
	sealer     *secrets.Sealer
	raftTLS    *tls.Config // nil: Raft in plaintext
}

// tlsFiles returns the TLS files of the configuration.
func (c *Config) tlsFiles() secrets.TLSFiles {
	return secrets.TLSFiles{CA: c.TLSCAFile, Cert: c.TLSCertFile, Key: c.TLSKeyFile}
}

// checkRootOptions refuses secret root UFS options given as flags, and
// merges the option file under the flags and the config file.
func (c *Config) loadRootOptions(fromFlags map[string]string) error {
	for k, v := range fromFlags {
		if ufs.IsSecret(k) && v != "" {
			return badConfig("--root-ufs-option %s: a secret on the command line is visible to every local user; put it in --root-ufs-option-file or the config file", k)
		}
	}
	if c.RootUFSOptionFile == "" {
		return nil
	}
	fileOpts, err := secrets.ReadOptionsFile(c.RootUFSOptionFile)
	if err != nil {
		return badConfig("root UFS option file: %v", err)
	}
	if c.RootUFSOptions == nil {
		c.RootUFSOptions = make(map[string]string)
	}
	// The file fills what the config file and flags did not give.
	for k, v := range fileOpts {
		if _, ok := c.RootUFSOptions[k]; !ok {
			c.RootUFSOptions[k] = v
		}
	}
	return nil
}

// security reads the token, key and certificate files.
func (c *Config) security(log *slog.Logger) (*security, error) {
	sec := &security{}
	var warnings []string // logged once everything is read: a refused configuration prints one line
	var admin, mount []byte
	var err error
	if c.AdminTokenFile != "" {
		if admin, err = secrets.ReadFile(c.AdminTokenFile); err != nil {
			return nil, badConfig("admin token: %v", err)
		}
		defer clear(admin)
	}
	if c.MountTokenFile != "" {
		if mount, err = secrets.ReadFile(c.MountTokenFile); err != nil {
			return nil, badConfig("mount token: %v", err)
		}
		defer clear(mount)
	}
	if admin != nil && mount != nil && bytes.Equal(admin, mount) {
		return nil, badConfig("the admin and mount tokens must differ")
	}
	var scoped []scopedToken
	if c.ScopedTokenFile != "" {
		if scoped, err = readScopedTokens(c.ScopedTokenFile); err != nil {
			return nil, badConfig("scoped mount tokens: %v", err)
		}
		for _, st := range scoped {
			defer clear(st.token)
			if bytes.Equal(st.token, admin) || bytes.Equal(st.token, mount) {
				return nil, badConfig("scoped mount tokens: a scoped token equals the admin or mount token")
			}
		}
	}
	if admin != nil || mount != nil || scoped != nil {
		sec.auth = master.NewAuth(admin, mount, log)
		for _, st := range scoped {
			if err := sec.auth.AddScopedMountToken(st.token, st.paths); err != nil {
				return nil, badConfig("scoped mount tokens: %s line %d: %v", c.ScopedTokenFile, st.line, err)
			}
		}
		sec.serverOpts = append(sec.serverOpts,
			grpc.ChainUnaryInterceptor(sec.auth.UnaryInterceptor()),
			grpc.ChainStreamInterceptor(sec.auth.StreamInterceptor()))
		// Masters ask each other for their status with the strongest
		// token they have.
		peerTok := admin
		if peerTok == nil {
			peerTok = mount
		}
		sec.peerDial = append(sec.peerDial, grpc.WithPerRPCCredentials(secrets.Bearer(peerTok)))
	} else {
		warnings = append(warnings, "masterd: AUTHENTICATION IS OFF: anyone who reaches the RPC port may change the namespace, the mount table and the membership; give --admin-token-file and --mount-token-file (skyfs init writes them)")
	}
	if c.ClusterKeyFile != "" {
		key, err := secrets.ReadKey(c.ClusterKeyFile)
		if err != nil {
			return nil, badConfig("cluster key: %v", err)
		}
		sec.sealer, err = secrets.NewSealer(key)
		clear(key)
		if err != nil {
			return nil, badConfig("cluster key: %v", err)
		}
	} else {
		warnings = append(warnings, "masterd: no --cluster-key-file: credentials of UFS mounts are journaled in clear")
	}
	files := c.tlsFiles()
	if files.Enabled() {
		srvTLS, err := files.ServerConfig()
		if err != nil {
			return nil, badConfig("%v", err)
		}
		cliTLS, err := files.ClientConfig()
		if err != nil {
			return nil, badConfig("%v", err)
		}
		sec.serverOpts = append(sec.serverOpts, grpc.Creds(credentials.NewTLS(srvTLS)))
		sec.peerDial = append(sec.peerDial, grpc.WithTransportCredentials(credentials.NewTLS(cliTLS)))
		sec.raftTLS = srvTLS.Clone()
		sec.raftTLS.RootCAs = cliTLS.RootCAs
	} else {
		sec.peerDial = append(sec.peerDial, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	return sec, nil
}

// rootOptionsFromFlags returns the root UFS options given as flags.
func rootOptionsFromFlags(fs *flag.FlagSet) map[string]string {
	out := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "root-ufs-option" {
			maps.Copy(out, *f.Value.(optionsFlag).m)
		}
	})
	return out
}
