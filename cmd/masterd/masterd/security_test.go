package masterd

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skyfs/skyfs/client"
	"github.com/skyfs/skyfs/internal/secrets"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
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

// runMaster runs a master in-process with args until the test ends or stop
// is called; stop returns its exit code and what it wrote.
func runMaster(t *testing.T, args ...string) (done chan int, stop func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan int, 1)
	var stderr bytes.Buffer
	go func() { done <- Run(ctx, args, &stderr) }()
	stopped := false
	var code int
	stop = func() (int, string) {
		if !stopped {
			cancel()
			select {
			case code = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("masterd did not stop")
			}
			stopped = true
		}
		return code, stderr.String()
	}
	t.Cleanup(func() { stop() })
	return done, stop
}

// A new one-master cluster creates its tokens and key, root-only, and
// keeps them across restarts; a new cluster of several masters without
// settings is refused; a master of an older data directory runs without
// tokens, hands credentials to no one and says so.
func TestNewClusterSecrets(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	raft, rpc := freeAddr(t), freeAddr(t)
	one := []string{"--id", "m1", "--data-dir", data, "--raft-addr", raft, "--rpc-addr", rpc, "--peers", "m1=" + raft + "=" + rpc,
		"--heartbeat-timeout", "200ms", "--election-timeout", "200ms", "--lease-timeout", "100ms"}

	done, stop := runMaster(t, one...)
	c := adminClient(t, data, rpc, done)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Mkdir(ctx, &pb.MkdirRequest{Path: "/a", Mode: 0o755}); err != nil {
		t.Fatalf("mkdir with the created admin token: %v", err)
	}
	anon, err := client.New(client.Config{Masters: []string{rpc}, RetryTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, err := anon.Mkdir(ctx, &pb.MkdirRequest{Path: "/b", Mode: 0o755}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("mkdir without a token: %v, want Unauthenticated", err)
	}
	sdir := filepath.Join(data, DefaultSecretsDir)
	for p, want := range map[string]os.FileMode{data: 0o700, sdir: 0o700,
		filepath.Join(sdir, secrets.AdminTokenName): 0o600, filepath.Join(sdir, secrets.MountTokenName): 0o600, filepath.Join(sdir, secrets.ClusterKeyName): 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %04o", p, fi, err, want)
		}
	}
	tok, _ := os.ReadFile(filepath.Join(sdir, secrets.AdminTokenName))
	code, out := stop()
	if code != ExitOK || !strings.Contains(out, "created this cluster's tokens and cluster key in "+sdir) {
		t.Errorf("exit %d; the log does not say where the secrets are:\n%s", code, out)
	}
	if strings.Contains(out, "AUTHENTICATION IS OFF") || strings.Contains(out, "no --cluster-key-file") || strings.Contains(out, string(bytes.TrimSpace(tok))) {
		t.Errorf("the log of a master with created secrets:\n%s", out)
	}

	// A restart finds them: same tokens, nothing created.
	done, stop = runMaster(t, one...)
	c = adminClient(t, data, rpc, done)
	if _, err := c.Mkdir(ctx, &pb.MkdirRequest{Path: "/c", Mode: 0o755}); err != nil {
		t.Fatalf("mkdir after a restart: %v", err)
	}
	if again, _ := os.ReadFile(filepath.Join(sdir, secrets.AdminTokenName)); !bytes.Equal(tok, again) {
		t.Error("the admin token changed across a restart")
	}
	if _, out := stop(); strings.Contains(out, "created this cluster's") {
		t.Errorf("a restart created secrets again:\n%s", out)
	}

	// Several masters, or one joining, need the same secrets: refused.
	other := freeAddr(t) + "=" + freeAddr(t)
	for name, args := range map[string][]string{
		"several": {"--peers", "m1=" + raft + "=" + rpc + ",m2=" + other},
		"join":    {"--join"},
	} {
		d := filepath.Join(dir, name)
		var stderr bytes.Buffer
		code := Run(context.Background(), append([]string{"--id", "m1", "--data-dir", d, "--raft-addr", raft, "--rpc-addr", rpc}, args...), &stderr)
		if code != ExitConfig || !strings.Contains(stderr.String(), "--secrets-dir") || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
			t.Errorf("%s: exit %d, %q; want one line naming --secrets-dir", name, code, stderr.String())
		}
		if _, err := os.Stat(filepath.Join(d, "raft.db")); err == nil {
			t.Errorf("%s: the journal was opened", name)
		}
	}
	var stderr bytes.Buffer
	if code := Run(context.Background(), append(one[:len(one):len(one)], "--secrets-dir", sdir, "--insecure-vend-credentials"), &stderr); code != ExitConfig || !strings.Contains(stderr.String(), "without tokens") {
		t.Errorf("--insecure-vend-credentials with tokens: exit %d, %q", code, stderr.String())
	}
}

// A master without tokens, from a data directory made before masters
// created their secrets, refuses MountAccess and says so; with
// --insecure-vend-credentials it serves it. Its data directory is made
// root-only.
func TestMasterWithoutTokens(t *testing.T) {
	dir := t.TempDir()
	data, ufsDir := filepath.Join(dir, "data"), t.TempDir()
	raft, rpc := freeAddr(t), freeAddr(t)
	base := []string{"--id", "m1", "--data-dir", data, "--raft-addr", raft, "--rpc-addr", rpc, "--peers", "m1=" + raft + "=" + rpc,
		"--heartbeat-timeout", "200ms", "--election-timeout", "200ms", "--lease-timeout", "100ms"}
	c, err := client.New(client.Config{Masters: []string{rpc}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const secret = "s3cr3t-no-tokens-1234"

	access := func(insecure bool) (*pb.Mount, error) {
		args := base
		if insecure {
			args = append(args[:len(args):len(args)], "--insecure-vend-credentials")
		}
		_, stop := runMaster(t, args...)
		ms, err := c.ListMounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			am, err := c.AddMount(ctx, &pb.AddMountRequest{Path: "/m", Uri: "file://" + ufsDir, Options: map[string]string{"s3.secretAccessKey": secret}})
			if err != nil {
				t.Fatal(err)
			}
			ms = []*pb.Mount{am}
		}
		m, err := c.MountAccess(ctx, ms[0].Id)
		_, out := stop()
		want := "UFS credentials are handed to no one"
		if insecure {
			want = "READ THE UFS CREDENTIALS"
		}
		if !strings.Contains(out, "AUTHENTICATION IS OFF") || !strings.Contains(out, want) {
			t.Errorf("insecure %v: the warning does not say %q:\n%s", insecure, want, out)
		}
		if strings.Contains(out, "created this cluster's") {
			t.Errorf("insecure %v: secrets were created:\n%s", insecure, out)
		}
		return m, err
	}
	if m, err := access(true); err != nil || m.Options["s3.secretAccessKey"] != secret {
		t.Fatalf("MountAccess with --insecure-vend-credentials: %v, %v", m, err)
	}
	// The data directory of an older master: open to all. (Files the
	// master creates are root-only through the umask Main sets, which an
	// in-process master does not.)
	var old []string
	filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			os.Chmod(p, map[bool]os.FileMode{true: 0o755, false: 0o644}[d.IsDir()])
			old = append(old, p)
		}
		return nil
	})
	m, err := access(false)
	if status.Code(err) != codes.PermissionDenied || m != nil {
		t.Errorf("MountAccess from a master without tokens: %v, %v; want PermissionDenied", m, err)
	}
	for _, p := range old {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %04o after a start", p, fi.Mode().Perm())
		}
	}
	if len(old) < 5 {
		t.Errorf("the data directory held only %v", old)
	}
	if _, err := os.Stat(filepath.Join(data, DefaultSecretsDir)); err == nil {
		t.Error("a master of an older data directory created secrets")
	}
}
