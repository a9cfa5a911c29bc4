package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMountCommands(t *testing.T) {
	addr := startMaster(t)
	env := map[string]string{EnvMasters: addr}
	ufsDir := t.TempDir()
	for _, f := range []string{"a/b.txt", "c.txt"} {
		p := filepath.Join(ufsDir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	uri := "file://" + ufsDir
	steps := []struct {
		args   []string
		code   int
		stdout string
		stderr string
		before func()
	}{
		{args: []string{"mount", "/w", uri, "--option", "x.secretKey=hunter2hunter2", "--sync-interval", "1m"}, stdout: "mounted file://"},
		{args: []string{"mounts"}, stdout: "x.secretKey=REDACTED"},
		{args: []string{"mounts", "--output", "json"}, stdout: `"sync_interval": "1m0s"`},
		{args: []string{"ls", "/w"}, stdout: "a\nc.txt\n"},
		{args: []string{"mkdir", "/w/new"}},
		{args: []string{"mv", "/w/c.txt", "/w/new/c2.txt"}},
		{args: []string{"sync", "/w", "--recursive"}, stdout: "synced /w: 3 directories", before: func() {
			os.WriteFile(filepath.Join(ufsDir, "direct"), nil, 0o644)
		}},
		{args: []string{"ls", "/w"}, stdout: "a\ndirect\nnew\n"},
		{args: []string{"sync", "/w/a", "--output", "json"}, stdout: `"entries": 1`},
		{args: []string{"mount", "/ro", uri, "--readonly"}},
		{args: []string{"mkdir", "/ro/x"}, code: 1, stderr: "read-only file system"},
		{args: []string{"mount", "/m", "file://" + ufsDir + "/missing"}, code: 1, stderr: "mount /m: ufs file://"},
		{args: []string{"mount", "/m"}, code: 2, stderr: "want PATH URI"},
		{args: []string{"mount", "/m", uri, "--option", "novalue"}, code: 2, stderr: "want key=value"},
		{args: []string{"sync", "/"}, code: 1, stderr: "not under a UFS mount"},
		{args: []string{"unmount", "/ro", "--output", "json"}, stdout: `"uri": "file://`},
		{args: []string{"mount", "/ro", uri, "--readonly"}},
		{args: []string{"unmount", "/w"}, stdout: "unmounted file://" + ufsDir + " from /w (mount "},
		{args: []string{"unmount", "/w"}, code: 1, stderr: "no mount at /w"},
		{args: []string{"ls", "/"}, stdout: "ro\n"},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		got := run(s.args, env)
		if got.code != s.code || !strings.Contains(got.stdout, s.stdout) || !strings.Contains(got.stderr, s.stderr) {
			t.Errorf("skyfs %s: exit %d stdout %q stderr %q; want exit %d, stdout with %q, stderr with %q",
				strings.Join(s.args, " "), got.code, got.stdout, got.stderr, s.code, s.stdout, s.stderr)
		}
		if strings.Count(strings.TrimSpace(got.stderr), "\n") > 0 {
			t.Errorf("skyfs %s: stderr has several lines: %q", strings.Join(s.args, " "), got.stderr)
		}
		if strings.Contains(got.stdout+got.stderr, "hunter2") {
			t.Errorf("skyfs %s printed the secret", strings.Join(s.args, " "))
		}
	}
	if _, err := os.Stat(filepath.Join(ufsDir, "new", "c2.txt")); err != nil {
		t.Errorf("mv did not reach the UFS: %v", err)
	}
}
