package integration

import (
	"slices"
	"testing"

	"github.com/skyfs/skyfs/client"
	"github.com/skyfs/skyfs/internal/secrets"
)

// clientSecurity is how the harness's own clients reach a cluster whose
// masters were started with token files or TLS: with the admin token, and
// with the masters' certificate as client certificate (it is valid for
// both ends).
type clientSecurity struct {
	tokenFile string
	tls       secrets.TLSFiles
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
	s.tokenFile = val("--admin-token-file")
	s.tls = secrets.TLSFiles{CA: val("--tls-ca-file"), Cert: val("--tls-cert-file"), Key: val("--tls-key-file")}
	return s
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
