package mountd

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/skyfs/skyfs/client"
	"github.com/skyfs/skyfs/internal/secrets"
)

// securityConfig is how mountd authenticates to the masters beyond the
// token: mutual TLS with the cluster CA. Every value is a path, never a
// secret, so the daemon's command line can hold them.
type securityConfig struct {
	TLSCAFile, TLSCertFile, TLSKeyFile string
	// RootSquash (root_squash) serves uid 0 as nobody.
	RootSquash bool
}

// securityOptionKeys are the -o options of securityConfig.
var securityOptionKeys = map[string]bool{"tls_ca_file": true, "tls_cert_file": true, "tls_key_file": true}

// securityOption applies one of the security options; handled is false for
// any other key.
func (c *Config) securityOption(key, val string, hasVal bool) (handled bool, err error) {
	if key == "root_squash" {
		if hasVal {
			return true, fmt.Errorf("option root_squash takes no value")
		}
		c.Sec.RootSquash = true
		return true, nil
	}
	if !securityOptionKeys[key] {
		return false, nil
	}
	if !hasVal || val == "" {
		return true, fmt.Errorf("option %s needs a value (%s=...)", key, key)
	}
	if !filepath.IsAbs(val) {
		return true, fmt.Errorf("option %s: %q is not an absolute path", key, val)
	}
	val = filepath.Clean(val)
	switch key {
	case "tls_ca_file":
		c.Sec.TLSCAFile = val
	case "tls_cert_file":
		c.Sec.TLSCertFile = val
	default:
		c.Sec.TLSKeyFile = val
	}
	return true, nil
}

// securityFlags declares the flag form of the options.
func securityFlags(fs *flag.FlagSet, c *Config) {
	for key := range securityOptionKeys {
		fs.Func(strings.ReplaceAll(key, "_", "-"), "", func(s string) error {
			_, err := c.securityOption(key, s, true)
			return err
		})
	}
}

// securityArgs are the flags that hand the options to the daemon.
func (c *Config) securityArgs() []string {
	var args []string
	for _, kv := range [][2]string{{"--tls-ca-file", c.Sec.TLSCAFile}, {"--tls-cert-file", c.Sec.TLSCertFile}, {"--tls-key-file", c.Sec.TLSKeyFile}} {
		if kv[1] != "" {
			args = append(args, kv[0], kv[1])
		}
	}
	if c.Sec.RootSquash {
		args = append(args, "-o", "root_squash")
	}
	return args
}

// clientSecurity puts the TLS configuration into cfg.
func (c *Config) clientSecurity(cfg *client.Config) error {
	files := secrets.TLSFiles{CA: c.Sec.TLSCAFile, Cert: c.Sec.TLSCertFile, Key: c.Sec.TLSKeyFile}
	if !files.Enabled() {
		return nil
	}
	tc, err := files.ClientConfig()
	if err != nil {
		return err
	}
	cfg.TLS = tc
	return nil
}

// securityUsage documents the options.
const securityUsage = `  tls_ca_file=FILE     cluster CA certificate: talk to the masters over mutual
                       TLS (with tls_cert_file and tls_key_file)
  tls_cert_file=FILE   this host's client certificate
  tls_key_file=FILE    its private key (a file only root may read)
  root_squash          serve root as nobody: root owns nothing it creates and
                       reads or changes only what nobody may
`
