package masterd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyfs/skyfs/internal/secrets"
)

func TestSecurityConfig(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if _, err := secrets.Init(keys, secrets.InitOptions{TLS: true}); err != nil {
		t.Fatal(err)
	}
	key := func(n string) string { return filepath.Join(keys, n) }
	loose := filepath.Join(dir, "loose.token")
	os.WriteFile(loose, []byte("skyfs_loose"), 0o644)
	same := filepath.Join(dir, "same.token")
	b, _ := os.ReadFile(key(secrets.AdminTokenName))
	os.WriteFile(same, b, 0o600)
	badKey := filepath.Join(dir, "bad.key")
	os.WriteFile(badKey, []byte("00ff"), 0o600)
	looseOpts := filepath.Join(dir, "loose.options")
	os.WriteFile(looseOpts, []byte("s3.secretAccessKey=x\n"), 0o644)
	badOpts := filepath.Join(dir, "bad.options")
	os.WriteFile(badOpts, []byte("no equals sign\n"), 0o600)
	scoped := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), mode)
		return p
	}
	scopedLoose := scoped("s1", "skyfs_scopedsecret /a\n", 0o644)
	scopedNoPath := scoped("s2", "# hosts of team a\nskyfs_scopedsecret\n", 0o600)
	scopedRelative := scoped("s3", "skyfs_scopedsecret /a,b\n", 0o600)
	scopedTwice := scoped("s4", "skyfs_scopedsecret /a\nskyfs_scopedsecret /b\n", 0o600)
	scopedEmpty := scoped("s5", "# nothing\n\n", 0o600)
	scopedAdmin := scoped("s6", string(bytes.TrimSpace(b))+" /a\n", 0o600)
	raft, rpc := freeAddr(t), freeAddr(t)
	base := func(extra ...string) []string {
		return append([]string{"--id", "m1", "--data-dir", filepath.Join(dir, "d"), "--raft-addr", raft, "--rpc-addr", rpc, "--join"}, extra...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"secret option on the command line", base("--root-ufs", "s3://b", "--root-ufs-option", "s3.secretAccessKey=hunter2"), "--root-ufs-option-file"},
		{"session token on the command line", base("--root-ufs-option", "s3.sessionToken=abc"), "visible to every local user"},
		{"token file readable by others", base("--admin-token-file", loose), "chmod 600"},
		{"missing token file", base("--mount-token-file", filepath.Join(dir, "none")), "mount token"},
		{"admin and mount tokens equal", base("--admin-token-file", key(secrets.AdminTokenName), "--mount-token-file", same), "must differ"},
		{"bad cluster key", base("--cluster-key-file", badKey), "hex digits"},
		{"loose option file", base("--root-ufs-option-file", looseOpts), "chmod 600"},
		{"bad option file", base("--root-ufs-option-file", badOpts), "line 1"},
		{"scoped tokens readable by others", base("--scoped-mount-token-file", scopedLoose), "chmod 600"},
		{"scoped token without a path", base("--scoped-mount-token-file", scopedNoPath), "line 2"},
		{"scoped token with a relative path", base("--scoped-mount-token-file", scopedRelative), "not a clean absolute path"},
		{"scoped token twice", base("--scoped-mount-token-file", scopedTwice), "listed twice"},
		{"no scoped token", base("--scoped-mount-token-file", scopedEmpty), "holds no token"},
		{"scoped token equal to the admin token", base("--admin-token-file", key(secrets.AdminTokenName), "--scoped-mount-token-file", scopedAdmin), "equals the admin"},
		{"TLS without a key", base("--tls-ca-file", key(secrets.CAName), "--tls-cert-file", key(secrets.ServerCertName)), "all three files"},
		{"TLS key mismatch", base("--tls-ca-file", key(secrets.CAName), "--tls-cert-file", key(secrets.ServerCertName), "--tls-key-file", key(secrets.ClientKeyName)), "TLS certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := Run(context.Background(), tc.args, &stderr)
			out := strings.TrimSpace(stderr.String())
			if code != ExitConfig || strings.Count(out, "\n") != 0 || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and one line mentioning %q", code, out, ExitConfig, tc.want)
			}
			if strings.Contains(out, "hunter2") || strings.Contains(out, "skyfs_loose") || strings.Contains(out, "scopedsecret") {
				t.Errorf("stderr shows a secret: %q", out)
			}
		})
	}
}

func TestRootOptionFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "root.options")
	os.WriteFile(f, []byte("# credentials\ns3.accessKeyId = id\ns3.secretAccessKey=s3cr=t\n\ns3.region=from-file\n"), 0o600)
	cfg, err := parseArgs([]string{"--root-ufs-option-file", f, "--root-ufs-option", "s3.region=from-flag"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"s3.accessKeyId": "id", "s3.secretAccessKey": "s3cr=t", "s3.region": "from-flag"}
	for k, v := range want {
		if cfg.RootUFSOptions[k] != v {
			t.Errorf("%s = %q, want %q", k, cfg.RootUFSOptions[k], v)
		}
	}
}
