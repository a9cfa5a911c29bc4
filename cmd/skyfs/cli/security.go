package cli

import (
	"flag"
	"fmt"

	"github.com/skyfs/skyfs/client"
	"github.com/skyfs/skyfs/internal/secrets"
)

// Environment variables of the credentials, used when the flags are not
// given.
const (
	EnvTokenFile   = "SKYFS_TOKEN_FILE"
	EnvTLSCAFile   = "SKYFS_TLS_CA_FILE"
	EnvTLSCertFile = "SKYFS_TLS_CERT_FILE"
	EnvTLSKeyFile  = "SKYFS_TLS_KEY_FILE"
)

// securityOpts are the credential flags every command takes.
type securityOpts struct {
	tokenFile            string
	caFile, cert, keyFil string
	optionFile           string // mount --option-file
}

func securityFlags(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.sec.tokenFile, "token-file", o.sec.tokenFile, "root-only `file` holding the admin or mount token (default $"+EnvTokenFile+")")
	fs.StringVar(&o.sec.caFile, "tls-ca-file", o.sec.caFile, "cluster CA certificate `file`: talk to the masters over mutual TLS (default $"+EnvTLSCAFile+")")
	fs.StringVar(&o.sec.cert, "tls-cert-file", o.sec.cert, "client certificate `file` (default $"+EnvTLSCertFile+")")
	fs.StringVar(&o.sec.keyFil, "tls-key-file", o.sec.keyFil, "client private key `file` (default $"+EnvTLSKeyFile+")")
}

// apply puts the token and TLS configuration into cfg. The token is read
// here, so that a bad file is one clear line.
func (s securityOpts) apply(cfg *client.Config, env Env) error {
	or := func(v, name string) string {
		if v != "" {
			return v
		}
		return env.Getenv(name)
	}
	if tf := or(s.tokenFile, EnvTokenFile); tf != "" {
		tok, err := secrets.ReadFile(tf)
		if err != nil {
			return fmt.Errorf("token file: %w", err)
		}
		cfg.Token = tok
	}
	files := secrets.TLSFiles{CA: or(s.caFile, EnvTLSCAFile), Cert: or(s.cert, EnvTLSCertFile), Key: or(s.keyFil, EnvTLSKeyFile)}
	if files.Enabled() {
		tc, err := files.ClientConfig()
		if err != nil {
			return err
		}
		cfg.TLS = tc
	}
	return nil
}

// mergeOptionFile adds the options of --option-file that --option did not
// give.
func (s securityOpts) mergeOptionFile(opts *map[string]string) error {
	if s.optionFile == "" {
		return nil
	}
	fileOpts, err := secrets.ReadOptionsFile(s.optionFile)
	if err != nil {
		return fmt.Errorf("option file: %w", err)
	}
	if *opts == nil {
		*opts = make(map[string]string)
	}
	for k, v := range fileOpts {
		if _, ok := (*opts)[k]; !ok {
			(*opts)[k] = v
		}
	}
	return nil
}
