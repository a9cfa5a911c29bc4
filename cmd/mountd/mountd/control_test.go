package mountd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skyfs/skyfs/cache"
	"github.com/skyfs/skyfs/internal/mountctl"
)

// The control socket answers the daemon's figures, drops and shrinks its
// cache, refuses bad requests without touching it, and goes away on close.
func TestControlSocket(t *testing.T) {
	runDir, err := os.MkdirTemp("", "skyfs-run") // short: a socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	c, err := cache.Open(filepath.Join(t.TempDir(), "blocks"), cache.Options{Capacity: 64 << 20, BlockSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := make([]byte, 3<<20)
	for i, k := range []cache.Key{{MountID: 1, Path: "a"}, {MountID: 1, Path: "d/b"}} {
		if err := c.Put(k, int64(len(data)), 0, data[:len(data)-i<<20]); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &Config{Masters: []string{"m1:7700"}, Path: "/lake", MountPoint: "/mnt/lake", CacheDir: "/var/cache/skyfs/x", RunDir: runDir}
	ctl, err := listenControl(cfg, c, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.close()
	sock := mountctl.SocketPath(runDir, cfg.MountPoint)
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", fi, err)
	}
	ctx := context.Background()
	found, errs := mountctl.List(ctx, runDir)
	if len(found) != 1 || len(errs) != 0 {
		t.Fatalf("List: %+v %v", found, errs)
	}
	d := found[0]
	if i := d.Info; i.MountPoint != "/mnt/lake" || i.Path != "/lake" || !slices.Equal(i.Masters, cfg.Masters) || i.PID != os.Getpid() ||
		i.Cache.Files != 2 || i.Cache.Blocks != 5 || i.Cache.CapacityBytes != 64<<20 {
		t.Fatalf("Info: %+v", i)
	}
	for _, bad := range []struct {
		req  mountctl.DropRequest
		want string
	}{
		{mountctl.DropRequest{Path: "/lake/d", To: new(int64)}, "give a path or a size, not both"},
		{mountctl.DropRequest{To: ptrTo(int64(-1))}, "negative size"},
		{mountctl.DropRequest{Path: "lake/d"}, "want a clean absolute namespace path"},
		{mountctl.DropRequest{Path: "/lake/../x"}, "want a clean absolute namespace path"},
		{mountctl.DropRequest{Path: "/elsewhere"}, "is not under /lake"},
	} {
		if _, err := d.Drop(ctx, bad.req); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Drop(%+v): %v, want %q", bad.req, err, bad.want)
		}
	}
	if st := c.Stats(); st.Entries != 2 || st.Blocks != 5 {
		t.Fatalf("bad requests changed the cache: %+v", st)
	}
	if err := d.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := d.Drop(ctx, mountctl.DropRequest{To: ptrTo(int64(3 << 20))})
	if err != nil || res.UsedBytes > 3<<20 || res.Blocks < 2 || res.Pinned {
		t.Fatalf("shrink to 3M: %+v %v", res, err)
	}
	// The mount's root: everything.
	res, err = d.Drop(ctx, mountctl.DropRequest{Path: "/lake"})
	if st := c.Stats(); err != nil || st.Entries != 0 || st.Blocks != 0 || res.Blocks+int64(res.Files) == 0 {
		t.Fatalf("drop /lake: %+v %v, stats %+v", res, err, st)
	}
	ctl.close()
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after close: %v", err)
	}
	if _, err := mountctl.Dial(sock).Info(ctx); !errors.Is(err, mountctl.ErrNoDaemon) {
		t.Errorf("Info after close: %v", err)
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestRunDirOption(t *testing.T) {
	t.Setenv(mountctl.EnvRunDir, "/tmp/skyfs-run-env")
	c, err := parseMountd([]string{"m1:7700:/", "/mnt/x"})
	if err != nil || c.RunDir != "/tmp/skyfs-run-env" {
		t.Fatalf("default from $%s: %+v %v", mountctl.EnvRunDir, c, err)
	}
	for _, args := range [][]string{{"-o", "run_dir=/r"}, {"--run-dir", "/r"}} {
		c, err := parseMountd(append(args, "m1:7700:/", "/mnt/x"))
		if err != nil || c.RunDir != "/r" {
			t.Fatalf("%q: %+v %v", args, c, err)
		}
		if c2, err := parseMountd(c.childArgs(3)); err != nil || c2.RunDir != "/r" {
			t.Errorf("child args %q: %+v %v", c.childArgs(3), c2, err)
		}
	}
	if _, err := parseMountd([]string{"-o", "run_dir=rel", "m1:7700:/", "/mnt/x"}); err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Errorf("run_dir=rel: %v", err)
	}
}
