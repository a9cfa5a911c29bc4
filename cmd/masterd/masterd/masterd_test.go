package masterd

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyfs/skyfs/client"
	"github.com/skyfs/skyfs/internal/secrets"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// adminClient waits until the master of dataDir, started without security
// settings, has created its secrets (done says it ended first) and returns
// a client of rpc with its admin token, closed at the end of the test.
func adminClient(t *testing.T, dataDir, rpc string, done chan int) *client.Client {
	t.Helper()
	tok := filepath.Join(dataDir, DefaultSecretsDir, secrets.AdminTokenName)
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err := os.Stat(tok); err == nil {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("masterd exited with %d before it created %s", code, tok)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 20 s", tok)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	c, err := client.New(client.Config{Masters: []string{rpc}, TokenFile: tok})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// freeAddr returns a loopback address with a port free at the time.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	raft, rpc := freeAddr(t), freeAddr(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	readOnly := filepath.Join(dir, "ro")
	if err := os.Mkdir(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	badJSON := filepath.Join(dir, "bad.json")
	os.WriteFile(badJSON, []byte(`{"id": "m1", "colour": "blue"}`), 0o644)
	self := "m1=" + raft + "=" + rpc
	base := func(extra ...string) []string {
		return append([]string{"--id", "m1", "--data-dir", filepath.Join(dir, "d"), "--raft-addr", raft, "--rpc-addr", rpc}, extra...)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no id", []string{"--data-dir", dir}, "--id is required"},
		{"unknown flag", base("--colour", "blue"), "flag provided but not defined"},
		{"no peers", base(), "no peers"},
		{"own id missing", base("--peers", "m2="+freeAddr(t)+"="+freeAddr(t)), `own id "m1" is missing`},
		{"duplicate peer", base("--peers", self+","+self), `duplicate peer id "m1"`},
		{"malformed peer", base("--peers", "m1@"+raft), "want id=raftaddr=rpcaddr"},
		{"shared address", base("--peers", self+",m2="+raft+"="+freeAddr(t)), "share the address"},
		{"mismatched self", base("--peers", "m1="+freeAddr(t)+"="+rpc), "does not match"},
		{"join and peers", base("--peers", self, "--join"), "exclude each other"},
		{"bad address", []string{"--id", "m1", "--data-dir", dir, "--raft-addr", "nohost", "--rpc-addr", rpc, "--join"}, "want host:port"},
		{"wildcard address", []string{"--id", "m1", "--data-dir", dir, "--raft-addr", "0.0.0.0:7000", "--rpc-addr", rpc, "--join"}, "reach"},
		{"bad log level", base("--join", "--log-level", "loud"), "--log-level"},
		{"lease above heartbeat", base("--join", "--lease-timeout", "2s", "--heartbeat-timeout", "1s"), "exceeds"},
		{"bad duration", base("--join", "--election-timeout", "soon"), "invalid value"},
		{"data dir is a file", []string{"--id", "m1", "--data-dir", filepath.Join(file, "x"), "--raft-addr", raft, "--rpc-addr", rpc, "--join"}, "data dir"},
		{"port in use", []string{"--id", "m1", "--data-dir", filepath.Join(dir, "d"), "--raft-addr", raft, "--rpc-addr", busy.Addr().String(), "--join"}, "address already in use"},
		{"missing config file", []string{"--config", filepath.Join(dir, "none.json")}, "config file"},
		{"unknown config key", []string{"--config", badJSON}, `unknown field "colour"`},
		{"stray argument", base("--join", "extra"), `unexpected argument "extra"`},
	}
	if os.Geteuid() != 0 { // root writes anywhere
		tests = append(tests, struct {
			name string
			args []string
			want string
		}{"unwritable data dir", []string{"--id", "m1", "--data-dir", readOnly, "--raft-addr", raft, "--rpc-addr", rpc, "--join"}, "not writable"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := Run(context.Background(), tc.args, &stderr)
			if code != ExitConfig {
				t.Errorf("exit code %d, want %d; stderr: %s", code, ExitConfig, stderr.String())
			}
			out := strings.TrimSpace(stderr.String())
			if strings.Count(out, "\n") != 0 || !strings.Contains(out, tc.want) {
				t.Errorf("stderr = %q, want one line mentioning %q", out, tc.want)
			}
		})
	}
}

// TestServeAndShutdown runs a one-master cluster in-process from a config file,
// serves a request and shuts down cleanly when the context ends.
func TestServeAndShutdown(t *testing.T) {
	dir := t.TempDir()
	raft, rpc := freeAddr(t), freeAddr(t)
	conf := filepath.Join(dir, "masterd.json")
	os.WriteFile(conf, []byte(`{"id": "m1", "data_dir": "`+filepath.Join(dir, "data")+`", "raft_addr": "`+raft+`",
		"rpc_addr": "`+rpc+`", "peers": ["m1=`+raft+`=`+rpc+`"], "heartbeat_timeout": "200ms",
		"election_timeout": "200ms", "lease_timeout": "100ms", "log_level": "warn"}`), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() { done <- Run(ctx, []string{"--config", conf, "--log-level", "error"}, &stderr) }()

	c := adminClient(t, filepath.Join(dir, "data"), rpc, done)
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()
	if _, err := c.Mkdir(cctx, &pb.MkdirRequest{Path: "/hello", Mode: 0o755}); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	st, err := c.Status(cctx)
	if err != nil || len(st.Members) != 1 || st.Members[0].Role != "leader" || st.LeaderId != "m1" {
		t.Errorf("status = %v, %v", st, err)
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Errorf("exit code %d; stderr: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("masterd did not stop")
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr at log level error: %s", stderr.String())
	}
}
