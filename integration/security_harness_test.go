package integration

import (
	"cmp"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skyfs/skyfs/client"
	"github.com/skyfs/skyfs/internal/secrets"
)

// clientSecurity is how the harness's own clients reach a cluster whose
// masters were started with tokens or TLS: with the admin token, and
// with the masters' certificate as client certificate (it is valid for
// both ends); its mount daemons get the mount token.
type clientSecurity struct {
	tokenFile, mountTokenFile string
	tls                       secrets.TLSFiles
}

// securityFlags are the masterd flags that say how a cluster is secured.
var securityFlags = []string{"--secrets-dir", "--admin-token-file", "--mount-token-file", "--scoped-mount-token-file",
	"--cluster-key-file", "--tls-ca-file", "--tls-cert-file", "--tls-key-file", "--insecure-vend-credentials"}

// secureByDefault returns flags with --secrets-dir DIR added when they say
// nothing about security: the cluster's masters create their tokens and
// cluster key there on first start, as a new cluster does.
func secureByDefault(flags []string, dir string) []string {
	for _, f := range securityFlags {
		if slices.Contains(flags, f) {
			return flags
		}
	}
	return append(slices.Clip(flags), "--secrets-dir", dir)
}

// securityOf reads the masterd flags that matter to clients.
func securityOf(flags []string) clientSecurity {
	var s clientSecurity
	val := func(name string) string {
		if i := slices.Index(flags, name); i >= 0 && i+1 < len(flags) {
			return flags[i+1]
		}
		return ""
	}
	s.tokenFile, s.mountTokenFile = val("--admin-token-file"), val("--mount-token-file")
	if dir := val("--secrets-dir"); dir != "" {
		s.tokenFile = cmp.Or(s.tokenFile, filepath.Join(dir, secrets.AdminTokenName))
		s.mountTokenFile = cmp.Or(s.mountTokenFile, filepath.Join(dir, secrets.MountTokenName))
	}
	s.tls = secrets.TLSFiles{CA: val("--tls-ca-file"), Cert: val("--tls-cert-file"), Key: val("--tls-key-file")}
	return s
}

// mountOpts adds the mount token to mountd options that name none.
func (s clientSecurity) mountOpts(opts string) string {
	if s.mountTokenFile == "" || strings.Contains(opts, "token_file=") {
		return opts
	}
	if opts == "" {
		return "token_file=" + s.mountTokenFile
	}
	return opts + ",token_file=" + s.mountTokenFile
}

// apply puts the credentials into cfg unless it has its own.
func (s clientSecurity) apply(t testing.TB, cfg *client.Config) {
	if cfg.TokenFile == "" && cfg.Token == nil {
		cfg.TokenFile = s.tokenFile
	}
	if cfg.TLS == nil && s.tls.Enabled() {
		tc, err := s.tls.ClientConfig()
		if err != nil {
			t.Fatalf("client TLS: %v", err)
		}
		cfg.TLS = tc
	}
}

// env is the environment of the skyfs CLI for the same credentials.
func (s clientSecurity) env() []string {
	var out []string
	if s.tokenFile != "" {
		out = append(out, "SKYFS_TOKEN_FILE="+s.tokenFile)
	}
	if s.tls.Enabled() {
		out = append(out, "SKYFS_TLS_CA_FILE="+s.tls.CA, "SKYFS_TLS_CERT_FILE="+s.tls.Cert, "SKYFS_TLS_KEY_FILE="+s.tls.Key)
	}
	return out
}
