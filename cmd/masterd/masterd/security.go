package masterd

import (
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
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
// Authentication is on when the master has tokens: every call must then
// carry a token of the role its method needs, and calls without one are
// refused. The tokens and the cluster key come from --secrets-dir (the
// files skyfs init writes: admin.token, mount.token, cluster.key), or one
// by one from --admin-token-file, --mount-token-file and --cluster-key-file,
// which win over the directory's.
//
// A new cluster is secure without being told: a master whose secrets dir
// holds none of those files creates all three there (root-only, 0600 in a
// 0700 directory), and masters that start together with one directory
// share one set. A master given no security setting at all uses
// DATA_DIR/secrets; when that does not exist and the data directory is new,
// it creates it if it is the only master of a new cluster, and refuses to
// start if it is one of several (each would make its own tokens and key,
// and they must be the same on every master: give them --secrets-dir, or
// write the files once with skyfs init and copy them). Where the secrets
// are is logged when they are created.
//
// A master without tokens — a data directory from before this default,
// or --insecure-vend-credentials on a new one — serves anyone, and says so
// in a warning at every start. It hands the credentials of UFS mounts to
// no one (MountAccess needs a token or a verified client certificate), so
// that nobody who reaches its port reads an S3 secret;
// --insecure-vend-credentials serves them to anyone, for those who insist.
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
	fs.StringVar(&cfg.SecretsDir, "secrets-dir", "", "`directory` of the cluster's admin.token, mount.token and cluster.key, created there if it holds none (default DATA_DIR/secrets for a new one-master cluster)")
	fs.BoolVar(&cfg.InsecureVendCredentials, "insecure-vend-credentials", false, "run without tokens and hand UFS credentials to anyone who reaches the RPC port")
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
	// vendToAnyone hands UFS credentials to callers nobody authenticated.
	vendToAnyone bool
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

// DefaultSecretsDir is where, under its data directory, a master given no
// security setting keeps the secrets it creates.
const DefaultSecretsDir = "secrets"

// explicitSecurity reports whether the configuration says anything about
// tokens, keys or TLS.
func (c *Config) explicitSecurity() bool {
	return c.SecretsDir != "" || c.AdminTokenFile != "" || c.MountTokenFile != "" || c.ScopedTokenFile != "" ||
		c.ClusterKeyFile != "" || c.tlsFiles().Enabled() || c.InsecureVendCredentials
}

// secretsDir returns the directory of the cluster's secrets ("" for none):
// --secrets-dir, or without any security setting DATA_DIR/secrets when it
// exists or when this is the only master of a new cluster (fresh: the data
// directory holds no journal yet). One of several masters of a new cluster
// without settings is refused.
func (c *Config) secretsDir(fresh, alone bool) (string, error) {
	if c.SecretsDir != "" {
		return c.SecretsDir, nil
	}
	if c.explicitSecurity() {
		return "", nil
	}
	own := filepath.Join(c.DataDir, DefaultSecretsDir)
	if _, err := os.Stat(own); err == nil {
		return own, nil
	}
	switch {
	case !fresh:
		return "", nil // a cluster from before: it runs without tokens, and says so
	case !alone:
		return "", badConfig("a new cluster needs the same tokens and cluster key on every master: give each --secrets-dir DIR " +
			"(created there on first start; masters on other hosts need a copy, or write it once with skyfs init --dir DIR), " +
			"or run without tokens with --insecure-vend-credentials")
	}
	return own, nil
}

// useSecretsDir creates the secrets in dir if it holds none, and takes from
// it the files the configuration does not name. It returns a line to log.
func (c *Config) useSecretsDir(dir string) (string, error) {
	created, err := secrets.Ensure(dir)
	if err != nil {
		return "", badConfig("secrets dir: %v", err)
	}
	for _, f := range []struct {
		name string
		into *string
	}{{secrets.AdminTokenName, &c.AdminTokenFile}, {secrets.MountTokenName, &c.MountTokenFile}, {secrets.ClusterKeyName, &c.ClusterKeyFile}} {
		p := filepath.Join(dir, f.name)
		if _, err := os.Lstat(p); *f.into == "" && err == nil {
			*f.into = p
		}
	}
	if created {
		return fmt.Sprintf("masterd: created this cluster's tokens and cluster key in %s (root-only files): "+
			"mount daemons need -o token_file=%s, the skyfs CLI --token-file %s, and masters on other hosts a copy of the directory",
			dir, filepath.Join(dir, secrets.MountTokenName), filepath.Join(dir, secrets.AdminTokenName)), nil
	}
	return "", nil
}

// security reads the token, key and certificate files; fresh says the data
// directory holds no journal yet, alone that this master is the only one
// of its cluster.
func (c *Config) security(log *slog.Logger, fresh, alone bool) (*security, error) {
	sec := &security{}
	var warnings []string // logged once everything is read: a refused configuration prints one line
	var infos []string
	dir, err := c.secretsDir(fresh, alone)
	if err != nil {
		return nil, err
	}
	if dir != "" {
		msg, err := c.useSecretsDir(dir)
		if err != nil {
			return nil, err
		}
		if msg != "" {
			infos = append(infos, msg)
		}
	}
	var admin, mount []byte
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
	if c.InsecureVendCredentials && (admin != nil || mount != nil || scoped != nil) {
		return nil, badConfig("--insecure-vend-credentials is for a master without tokens, and this one has them")
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
		warnings = append(warnings, c.noTokensWarning())
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
	sec.vendToAnyone = c.InsecureVendCredentials
	for _, m := range infos {
		log.Info(m)
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	return sec, nil
}

// noTokensWarning is the warning of a master without tokens.
func (c *Config) noTokensWarning() string {
	const fix = "; give the masters --secrets-dir DIR (created there if missing) or --admin-token-file and --mount-token-file (skyfs init writes them)"
	switch {
	case c.InsecureVendCredentials:
		return "masterd: AUTHENTICATION IS OFF and --insecure-vend-credentials is set: anyone who reaches the RPC port may change the namespace, " +
			"the mount table and the membership, and READ THE UFS CREDENTIALS (S3 secret keys) of every mount in clear" + fix
	case c.tlsFiles().Enabled():
		return "masterd: no tokens: every holder of a certificate of the cluster CA may change everything and read the UFS credentials of every mount" + fix
	}
	return "masterd: AUTHENTICATION IS OFF: anyone who reaches the RPC port may change the namespace, the mount table and the membership; " +
		"UFS credentials are handed to no one, so mount daemons cannot open UFS mounts (--insecure-vend-credentials hands them to anyone)" + fix
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
