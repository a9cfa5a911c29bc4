package mountd

import (
	"slices"
	"strings"
	"testing"
)

func TestAdminOptions(t *testing.T) {
	c, err := parseMountd([]string{"-o", "admin_addr=127.0.0.1:9100,pprof", "m1:7700:/", "/mnt/x"})
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminAddr != "127.0.0.1:9100" || !c.Pprof {
		t.Errorf("-o admin_addr=...,pprof: %q, %v", c.AdminAddr, c.Pprof)
	}
	c, err = parseMountd([]string{"--admin-addr", ":9100", "--pprof", "m1:7700:/", "/mnt/x"})
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminAddr != ":9100" || !c.Pprof {
		t.Errorf("--admin-addr --pprof: %q, %v", c.AdminAddr, c.Pprof)
	}
	// mount.skyfs hands both to the daemon.
	h, err := parseHelper([]string{"m1:7700:/", "/mnt/x", "-o", "admin_addr=127.0.0.1:9100,pprof"})
	if err != nil {
		t.Fatal(err)
	}
	args := h.childArgs(3)
	if i := slices.Index(args, "--admin-addr"); i < 0 || args[i+1] != "127.0.0.1:9100" || !slices.Contains(args, "--pprof") {
		t.Errorf("child args %q lack the admin port", args)
	}
	c, err = parseMountd(h.childArgs(3))
	if err != nil || c.AdminAddr != "127.0.0.1:9100" || !c.Pprof {
		t.Errorf("child args parse to %+v, %v", c, err)
	}
	// Off by default.
	c, err = parseMountd([]string{"m1:7700:/", "/mnt/x"})
	if err != nil || c.AdminAddr != "" || c.Pprof || slices.Contains(c.childArgs(3), "--admin-addr") {
		t.Errorf("default: %+v, %v", c, err)
	}
	for _, bad := range []struct{ opts, want string }{
		{"admin_addr", "needs a value"},
		{"admin_addr=nonsense", "want HOST:PORT"},
		{"pprof=1", "takes no value"},
	} {
		if _, err := parseMountd([]string{"-o", bad.opts, "m1:7700:/", "/mnt/x"}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("-o %s: %v, want %q", bad.opts, err, bad.want)
		}
	}
}

func TestLogLevel(t *testing.T) {
	c, err := parseMountd([]string{"m1:7700:/", "/mnt/x"})
	if err != nil || c.LogLevel != "info" || slices.Contains(c.childArgs(3), "--log-level") {
		t.Fatalf("default: %+v, %v", c, err)
	}
	for _, args := range [][]string{{"-o", "log_level=debug"}, {"--log-level", "debug"}} {
		c, err := parseMountd(append(args, "m1:7700:/", "/mnt/x"))
		if err != nil || c.LogLevel != "debug" {
			t.Fatalf("%q: %+v, %v", args, c, err)
		}
		if c2, err := parseMountd(c.childArgs(3)); err != nil || c2.LogLevel != "debug" {
			t.Errorf("child args %q: %+v, %v", c.childArgs(3), c2, err)
		}
	}
	if _, err := parseMountd([]string{"-o", "log_level=loud", "m1:7700:/", "/mnt/x"}); err == nil || !strings.Contains(err.Error(), "log_level") {
		t.Errorf("log_level=loud: %v", err)
	}
}
