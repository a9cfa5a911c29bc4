package fusefs

import (
	"context"
	"errors"
	"log"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/skyfs/skyfs/cache"
	"github.com/skyfs/skyfs/meta"
)

// TestSubtreeRoot mounts a directory of the namespace as the root of the
// mount: its children are at the top, what lies above it is not reachable,
// and files written there land under the directory in the UFS.
func TestSubtreeRoot(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	tmp := t.TempDir()
	mnt, ufsDir := filepath.Join(tmp, "m"), filepath.Join(tmp, "u")
	for _, d := range []string{mnt, ufsDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ns := newFakeNS(t, ufsDir)
	ctx := context.Background()
	sub, err := ns.Mkdir(ctx, meta.RootIno, "sub", 0o755, Caller{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Mkdir(ctx, meta.RootIno, "outside", 0o755, Caller{}); err != nil {
		t.Fatal(err)
	}
	file, err := ns.Create(ctx, meta.RootIno, "file", 0o644, Caller{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.Open(filepath.Join(tmp, "c"), cache.Options{Capacity: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts := Options{StagingDir: filepath.Join(tmp, "s"), Logger: log.New(&syncBuffer{}, "", 0)}

	opts.RootIno = file.Attr.Ino
	if _, err := Serve(mnt, ns, c, opts); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("mounting a file as the root: %v, want ErrInvalidOptions", err)
	}

	opts.RootIno = sub.Attr.Ino
	srv, err := Serve(mnt, ns, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	unmounted := false
	defer func() {
		if !unmounted {
			srv.Unmount()
		}
	}()
	var st syscall.Stat_t
	if err := syscall.Stat(mnt, &st); err != nil || st.Ino != sub.Attr.Ino {
		t.Fatalf("stat of the mount root: ino %d, %v; want %d", st.Ino, err, sub.Attr.Ino)
	}
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("in sub"), 0o644); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(mnt)
	if err != nil || len(ents) != 1 || ents[0].Name() != "f" {
		t.Fatalf("listing of the subtree root: %v, %v", ents, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "outside")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a sibling of the subtree is visible: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(ufsDir, "sub", "f")); err != nil || string(b) != "in sub" {
		t.Fatalf("UFS content: %q, %v", b, err)
	}

	if err := srv.Unmount(); err != nil {
		t.Fatal(err)
	}
	unmounted = true
	srv.Wait()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if open, err := srv.Drain(dctx); err != nil || open != 0 {
		t.Fatalf("drain: %d handles left, %v", open, err)
	}
}
