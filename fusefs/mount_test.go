package fusefs

import (
	"bytes"
	"context"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/skyfs/skyfs/cache"
)

// env is one mounted skyfs over a fake namespace whose root is a local UFS
// directory.
type env struct {
	t       testing.TB
	ns      *fakeNS
	c       *cache.Cache
	srv     *fuse.Server
	m       *mount
	mnt     string // mount point
	ufs     string // the root UFS directory
	dir     string // the cache directory
	staging string
	logBuf  *syncBuffer
}

// newEnv mounts a fresh namespace. The mount point and the UFS directory have
// paths of the same length, so paths near PATH_MAX fit in both.
func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	return newEnvCache(t, opts, cache.Options{Capacity: 4 << 30})
}

// newEnvCache is newEnv with a cache configured by co.
func newEnvCache(t testing.TB, opts Options, co cache.Options) *env {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("mounting needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	tmp := t.TempDir()
	e := &env{
		t:       t,
		mnt:     filepath.Join(tmp, "m"),
		ufs:     filepath.Join(tmp, "u"),
		dir:     filepath.Join(tmp, "c"),
		staging: filepath.Join(tmp, "s"),
		logBuf:  &syncBuffer{},
	}
	for _, d := range []string{e.mnt, e.ufs} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.ns = newFakeNS(t, e.ufs)
	c, err := cache.Open(e.dir, co)
	if err != nil {
		t.Fatal(err)
	}
	e.c = c
	opts.StagingDir = e.staging
	if opts.Logger == nil {
		opts.Logger = log.New(e.logBuf, "", 0)
	}
	srv, m, err := mountFS(e.mnt, e.ns, c, opts)
	if err != nil {
		c.Close()
		t.Fatalf("mount: %v", err)
	}
	e.srv, e.m = srv, m
	t.Cleanup(func() {
		e.unmount()
		if err := c.Close(); err != nil {
			t.Errorf("close cache: %v", err)
		}
	})
	return e
}

// unmount unmounts, retrying while the kernel still holds the mount busy.
func (e *env) unmount() {
	if e.srv == nil {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := e.srv.Unmount()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			e.t.Errorf("unmount %s: %v", e.mnt, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.srv.Wait()
	e.srv = nil
}

// waitIdle waits until the kernel has released every file handle (release
// follows close asynchronously).
func (e *env) waitIdle() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.m.handles.Load() != 0 {
		if time.Now().After(deadline) {
			e.t.Fatalf("%d file handles still open", e.m.handles.Load())
		}
		time.Sleep(time.Millisecond)
	}
	// The blocks loaded for reads that returned are stored (or dropped).
	if e.c != nil {
		if err := e.c.Settle(context.Background()); err != nil {
			e.t.Fatal(err)
		}
	}
}

// path returns the path of name under the mount point.
func (e *env) path(name string) string { return filepath.Join(e.mnt, name) }

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func (b *syncBuffer) lock() {
	if b.mu == nil {
		b.mu = make(chan struct{}, 1)
	}
	b.mu <- struct{}{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.lock()
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.lock()
	defer func() { <-b.mu }()
	return b.buf.String()
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed*7+1))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// readFile reads a file with O_DIRECT when direct is set, so the kernel's
// page cache does not answer.
func readFile(t testing.TB, path string, direct bool) []byte {
	t.Helper()
	flags := os.O_RDONLY
	if direct {
		flags |= 0o40000 // O_DIRECT
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

func TestMountBasics(t *testing.T) {
	e := newEnv(t, Options{})
	data := []byte("hello, skyfs")
	if err := os.WriteFile(e.path("a"), data, 0o640); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, e.path("a"), false); !bytes.Equal(got, data) {
		t.Fatalf("read back %q, want %q", got, data)
	}
	// The UFS holds the file under the same name.
	if got, err := os.ReadFile(filepath.Join(e.ufs, "a")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("UFS copy: %q, %v", got, err)
	}
	st, err := os.Stat(e.path("a"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != int64(len(data)) || st.Mode().Perm() != 0o640 {
		t.Fatalf("stat: size %d mode %v", st.Size(), st.Mode())
	}
	if err := os.MkdirAll(e.path("d/e/f"), 0o755); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(e.ufs, "d/e/f")); err != nil || !fi.IsDir() {
		t.Fatalf("UFS directory: %v", err)
	}
	if err := os.Rename(e.path("a"), e.path("d/e/f/b")); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, e.path("d/e/f/b"), true); !bytes.Equal(got, data) {
		t.Fatalf("after rename %q", got)
	}
	ents, err := os.ReadDir(e.path("d/e/f"))
	if err != nil || len(ents) != 1 || ents[0].Name() != "b" {
		t.Fatalf("readdir: %v %v", ents, err)
	}
	if err := os.Remove(e.path("d/e/f/b")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.ufs, "d/e/f/b")); !os.IsNotExist(err) {
		t.Fatalf("UFS file after unlink: %v", err)
	}
}
