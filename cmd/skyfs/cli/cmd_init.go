package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/skyfs/skyfs/internal/secrets"
)

// initOpts are the flags of skyfs init.
type initOpts struct {
	dir   string
	tls   bool
	hosts string
}

var initCmd = &command{
	name:    "init",
	args:    "--dir DIR [--tls --hosts h1,h2,...]",
	summary: "write a new cluster's tokens, cluster key and (--tls) CA and certificates",
	local:   true,
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.StringVar(&o.init.dir, "dir", "", "`directory` to write into (created 0700; nothing is overwritten)")
		fs.BoolVar(&o.init.tls, "tls", false, "also write a CA, a master certificate and a client certificate")
		fs.StringVar(&o.init.hosts, "hosts", "", "`host,...` names and addresses of the masters, for their certificate")
	},
	run: func(_ context.Context, r *runner, args []string) error {
		initFlags := r.o.init
		if len(args) != 0 {
			return usagef("init: unexpected argument %q", args[0])
		}
		if initFlags.dir == "" {
			return usagef("init: --dir is required")
		}
		var hosts []string
		for h := range strings.SplitSeq(initFlags.hosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hosts = append(hosts, h)
			}
		}
		if len(hosts) > 0 && !initFlags.tls {
			return usagef("init: --hosts needs --tls")
		}
		wrote, err := secrets.Init(initFlags.dir, secrets.InitOptions{TLS: initFlags.tls, Hosts: hosts})
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		for _, p := range wrote {
			fmt.Fprintln(r.env.Stdout, p)
		}
		fmt.Fprintf(r.env.Stdout, "\nmasterd: --secrets-dir %s (on every master; or --admin-token-file, --mount-token-file and --cluster-key-file)\n", initFlags.dir)
		fmt.Fprintf(r.env.Stdout, "mountd:  -o token_file=%s/%s;  skyfs: --token-file %s/%s\n",
			initFlags.dir, secrets.MountTokenName, initFlags.dir, secrets.AdminTokenName)
		if initFlags.tls {
			fmt.Fprintf(r.env.Stdout, "TLS:     masters --tls-ca-file %[1]s/%[2]s --tls-cert-file %[1]s/%[3]s --tls-key-file %[1]s/%[4]s; clients the same with %[5]s and %[6]s\n",
				initFlags.dir, secrets.CAName, secrets.ServerCertName, secrets.ServerKeyName, secrets.ClientCertName, secrets.ClientKeyName)
		}
		return nil
	},
}
