package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/skyfs/skyfs/internal/mountctl"
)

// TestCLIHost: the host commands against real masters and a real mount.
// skyfs load by namespace path, cache stats right after it, cache drop of a
// subtree (by namespace path), of a nested UFS mount (by local path), of
// everything and down to a size while a reader goes on, skyfs status, and
// the control socket going away with the mount.
func TestCLIHost(t *testing.T) {
	c := newCluster(t, 3)
	lakeDir := addLocalMount(t, c, "/lake", nil)
	nestedDir := addLocalMount(t, c, "/lake/nested", nil)
	write := func(dir, name string, n int) []byte {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data := randomData(uint64(n), n)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return data
	}
	aData := write(lakeDir, "a", 5<<20+7) // 2 blocks
	write(lakeDir, "sub/b", 1<<20)
	write(lakeDir, "sub/deeper/c", 2<<20)
	write(nestedDir, "n", 1<<20)
	const files, blocks = 4, 5

	h := newHost(t, c, "A", "/lake", "")
	h.start()
	stats := func() cacheFigures {
		t.Helper()
		code, out, errOut := c.cli("cache", "stats", "/lake", "--output", "json")
		var f cacheFigures
		if err := json.Unmarshal([]byte(out), &f); code != 0 || err != nil {
			t.Fatalf("skyfs cache stats /lake: exit %d %v: %s %s", code, err, out, errOut)
		}
		return f
	}
	load := func() {
		t.Helper()
		if code, out, errOut := c.cli("load", "/lake", "-r"); code != 0 || !strings.Contains(out, fmt.Sprintf("loaded %d of %d files", files, files)) {
			t.Fatalf("skyfs load /lake -r: exit %d: %s %s", code, out, errOut)
		}
		// load returns once the blocks are stored.
		if f := stats(); f.Files != files || *f.Blocks != blocks {
			t.Fatalf("cache right after the load: %+v, want %d files in %d blocks", f, files, blocks)
		}
	}
	type dropped struct {
		MountPoint string `json:"mount_point"`
		Path       string `json:"path"`
		Files      int    `json:"files"`
		Blocks     int64  `json:"blocks"`
		UsedBytes  int64  `json:"used_bytes"`
	}
	drop := func(args ...string) []dropped {
		t.Helper()
		code, out, errOut := c.cli(append([]string{"cache", "drop", "--output", "json"}, args...)...)
		var ds []dropped
		if err := json.Unmarshal([]byte(out), &ds); code != 0 || err != nil {
			t.Fatalf("skyfs cache drop %q: exit %d %v: %s %s", args, code, err, out, errOut)
		}
		return ds
	}

	load()
	// A subtree by namespace path: its two files go.
	if ds := drop("/lake/sub"); len(ds) != 1 || ds[0].MountPoint != h.mnt || ds[0].Path != "/lake/sub" || ds[0].Files != 2 || ds[0].Blocks != 2 {
		t.Errorf("drop /lake/sub: %+v", ds)
	}
	if f := stats(); f.Files != files-2 || *f.Blocks != blocks-2 {
		t.Errorf("after dropping /lake/sub: %+v", f)
	}
	// A nested UFS mount, by local path.
	if ds := drop(h.path("nested")); len(ds) != 1 || ds[0].Files != 1 || ds[0].Blocks != 1 {
		t.Errorf("drop of the nested mount: %+v", ds)
	}
	if f := stats(); f.Files != 1 || *f.Blocks != 2 {
		t.Errorf("after dropping the nested mount: %+v", f)
	}
	load()

	// Bad input: one line, non-zero, nothing dropped.
	for _, bad := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"cache", "drop", "/lake/missing"}, 1, "/lake/missing: no such file or directory"},
		{[]string{"cache", "drop", "/elsewhere"}, 1, "no skyfs mount on this host serves it"},
		{[]string{"cache", "drop", "--to", "1G", h.path("sub")}, 2, "--to shrinks a whole cache"},
		{[]string{"cache", "drop", "--to", "-1", h.mnt}, 2, "not a size"},
		{[]string{"load", "/lake/missing"}, 1, "no such file or directory"},
	} {
		code, _, errOut := c.cli(bad.args...)
		if code != bad.code || !strings.Contains(errOut, bad.stderr) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("skyfs %s: exit %d %q; want exit %d and %q", strings.Join(bad.args, " "), code, errOut, bad.code, bad.stderr)
		}
	}
	if f := stats(); f.Files != files || *f.Blocks != blocks {
		t.Errorf("bad input changed the cache: %+v", f)
	}

	// Drops and shrinks while a reader goes on: it always reads the file.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var readErr error
	wg.Go(func() {
		for !stop.Load() {
			got, err := os.ReadFile(h.path("a"))
			if err == nil && !bytes.Equal(got, aData) {
				err = errors.New("wrong content")
			}
			if err != nil {
				readErr = fmt.Errorf("read %s during drops: %w", h.path("a"), err)
				return
			}
		}
	})
	for i := range 10 {
		if i%2 == 0 {
			drop(h.mnt)
		} else {
			drop("--to", "4M", h.mnt)
		}
	}
	stop.Store(true)
	wg.Wait()
	if readErr != nil {
		t.Error(readErr)
	}
	// Everything, then down to nothing.
	if ds := drop(); len(ds) != 1 || ds[0].MountPoint != h.mnt {
		t.Errorf("drop of every daemon's cache: %+v", ds)
	}
	if f := stats(); f.Files != 0 || *f.Blocks != 0 {
		t.Errorf("after dropping everything: %+v", f)
	}
	load()
	if ds := drop("--to", "0", h.mnt); len(ds) != 1 || ds[0].Blocks != blocks {
		t.Errorf("shrink to 0: %+v", ds)
	}
	if f := stats(); f.Files != 0 || *f.Blocks != 0 {
		t.Errorf("after shrinking to 0: %+v", f)
	}

	// skyfs status: the masters, the namespace, this host's daemon.
	code, out, errOut := c.cli("status", "--output", "json")
	var st struct {
		Leader  string `json:"leader"`
		Masters []struct {
			Role string  `json:"role"`
			Lag  *uint64 `json:"lag"`
		} `json:"masters"`
		Inodes       uint64            `json:"inodes"`
		Mounts       []json.RawMessage `json:"mounts"`
		MountDaemons []struct {
			MountPoint string `json:"mount_point"`
			Path       string `json:"path"`
		} `json:"mount_daemons"`
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("skyfs status: exit %d %v: %s %s", code, err, out, errOut)
	}
	if st.Leader == "" || len(st.Masters) != 3 || st.Inodes == 0 || len(st.Mounts) != 2 || len(st.MountDaemons) != 1 ||
		st.MountDaemons[0].MountPoint != h.mnt || st.MountDaemons[0].Path != "/lake" {
		t.Errorf("skyfs status: %s", out)
	}
	for _, m := range st.Masters {
		if m.Lag == nil {
			t.Errorf("skyfs status: a master without lag: %s", out)
		}
	}
	if code, out, _ := c.cli("status"); code != 0 || !strings.Contains(out, "leader "+st.Leader) || !strings.Contains(out, h.mnt) {
		t.Errorf("skyfs status text: exit %d\n%s", code, out)
	}

	// The control socket goes with the mount.
	sock := mountctl.SocketPath(os.Getenv(mountctl.EnvRunDir), h.mnt)
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("control socket: %v", err)
	}
	h.umount()
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket after the unmount: %v", err)
	}
	if code, _, errOut := c.cli("load", "/lake"); code != 1 || !strings.Contains(errOut, "no skyfs mount on this host serves it") {
		t.Errorf("load /lake once unmounted: exit %d %q", code, errOut)
	}
	if code, out, errOut := c.cli("unmount", "/lake/nested"); code != 0 || !strings.Contains(out, "unmounted file://"+nestedDir+" from /lake/nested") {
		t.Errorf("skyfs unmount: exit %d %q %q", code, out, errOut)
	}
}
