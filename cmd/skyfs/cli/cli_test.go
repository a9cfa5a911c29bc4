package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyfs/skyfs/cmd/masterd/masterd"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startMaster runs a one-master cluster in-process and returns its address.
func startMaster(t *testing.T) string {
	t.Helper()
	raft, rpc := freeAddr(t), freeAddr(t)
	dir := t.TempDir() // before the cleanup below, so removed after the master stops
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- masterd.Run(ctx, []string{"--id", "m1", "--data-dir", filepath.Join(dir, "m1"),
			"--raft-addr", raft, "--rpc-addr", rpc, "--peers", "m1=" + raft + "=" + rpc,
			"--heartbeat-timeout", "200ms", "--election-timeout", "200ms", "--lease-timeout", "100ms", "--log-level", "error",
			"--insecure-vend-credentials"}, &stderr) // no tokens: the CLI runs without one
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("master did not stop")
		}
	})
	return rpc
}

type result struct {
	code           int
	stdout, stderr string
}

func run(args []string, env map[string]string) result {
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }})
	return result{code, out.String(), errb.String()}
}

func TestCommands(t *testing.T) {
	addr := startMaster(t)
	env := map[string]string{EnvMasters: addr}
	steps := []struct {
		args     []string
		code     int
		stdout   string // substring of stdout
		stderr   string // substring of stderr (one line)
		noMaster bool   // run without SKYFS_MASTERS
	}{
		{args: []string{"mkdir", "/a"}},
		{args: []string{"mkdir", "-p", "/a/b/c", "/x/y"}},
		{args: []string{"mkdir", "/a"}, code: 1, stderr: "mkdir /a: file exists"},
		{args: []string{"mkdir", "/nope/z"}, code: 1, stderr: "no such file or directory"},
		{args: []string{"mkdir", "/" + strings.Repeat("n", 256)}, code: 1, stderr: "longer than 255: file name too long"},
		{args: []string{"mkdir", "/a/../b"}, code: 1, stderr: `".." component`},
		{args: []string{"ls", "/"}, stdout: "a\nx\n"},
		{args: []string{"ls", "-l", "/a"}, stdout: "drwxr-xr-x"},
		{args: []string{"ls", "/a", "--output", "json"}, stdout: `"name": "b"`},
		{args: []string{"stat", "/a/b"}, stdout: "Type: dir"},
		{args: []string{"stat", "--output", "json", "/a/b"}, stdout: `"type": "dir"`},
		{args: []string{"mv", "/a/b", "/x"}},
		{args: []string{"stat", "/x/b/c"}, stdout: "Mode: 0755"},
		{args: []string{"mv", "--no-replace", "/x/y", "/a"}},
		{args: []string{"mkdir", "/y"}},
		{args: []string{"mv", "--no-replace", "-T", "/y", "/x"}, code: 2, stderr: "flag provided but not defined"},
		{args: []string{"rm", "/x"}, code: 1, stderr: "is a directory (use -r)"},
		{args: []string{"rm", "-r", "/x"}},
		{args: []string{"rm", "/x"}, code: 1, stderr: "rm /x: no such file or directory"},
		{args: []string{"rm", "-f", "/x"}},
		{args: []string{"ls", "/"}, stdout: "a\ny\n"},
		{args: []string{"cluster", "status"}, stdout: "m1"},
		{args: []string{"cluster", "status", "--output", "json"}, stdout: `"role": "leader"`},
		{args: []string{"journal", "checkpoint"}, stdout: "checkpoint at index"},
		{args: []string{"cluster", "remove", "m9"}, code: 1, stderr: `no member "m9"`},
		{args: []string{"cluster", "add", "m2"}, code: 2, stderr: "want ID RAFT_ADDR RPC_ADDR"},
		{args: []string{"cluster", "frobnicate"}, code: 2, stderr: `unknown command "cluster frobnicate"`},
		{args: []string{"ls", "--output", "yaml", "/"}, code: 2, stderr: "want text or json"},
		{args: []string{"mkdir", "--help"}, stdout: "Usage: skyfs mkdir"},
		{args: []string{"--help"}, stdout: "cluster transfer-leader"},
		{args: []string{"ls", "/"}, code: 2, stderr: "no masters", noMaster: true},
		{args: []string{"--masters", addr, "ls", "/a"}, stdout: "y\n", noMaster: true},
	}
	for _, s := range steps {
		e := env
		if s.noMaster {
			e = nil
		}
		got := run(s.args, e)
		if got.code != s.code || !strings.Contains(got.stdout, s.stdout) || !strings.Contains(got.stderr, s.stderr) {
			t.Errorf("skyfs %s: exit %d stdout %q stderr %q; want exit %d, stdout with %q, stderr with %q",
				strings.Join(s.args, " "), got.code, got.stdout, got.stderr, s.code, s.stdout, s.stderr)
		}
		if strings.Count(strings.TrimSpace(got.stderr), "\n") > 0 {
			t.Errorf("skyfs %s: stderr has several lines: %q", strings.Join(s.args, " "), got.stderr)
		}
	}
	got := run([]string{"ls", "--output", "json", "/"}, env)
	var list []fileJSON
	if err := json.Unmarshal([]byte(got.stdout), &list); err != nil || len(list) != 2 || list[0].Type != "dir" {
		t.Errorf("ls json = %s (%v)", got.stdout, err)
	}
}
