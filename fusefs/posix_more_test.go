package fusefs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/ufs"
)

// TestLockHelper is the other process of TestLocksBetweenProcesses: it
// tries a non-blocking lock and exits 0 if it got it, 3 if it would block.
func TestLockHelper(t *testing.T) {
	path := os.Getenv("FUSEFS_LOCK_PATH")
	if path == "" {
		t.Skip("helper process only")
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		os.Exit(2)
	}
	switch os.Getenv("FUSEFS_LOCK_KIND") {
	case "flock":
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	default:
		err = syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &syscall.Flock_t{Type: syscall.F_WRLCK})
	}
	switch {
	case err == nil:
		os.Exit(0)
	case errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EACCES):
		os.Exit(3)
	}
	os.Exit(2)
}

// lockFromOtherProcess runs TestLockHelper and returns its exit code.
func lockFromOtherProcess(t *testing.T, path, kind string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelper$")
	cmd.Env = append(os.Environ(), "FUSEFS_LOCK_PATH="+path, "FUSEFS_LOCK_KIND="+kind)
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

func TestLocksBetweenProcesses(t *testing.T) {
	e := newEnv(t, Options{})
	path := e.path("lock")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"flock", "fcntl"} {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if kind == "flock" {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		} else {
			err = syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &syscall.Flock_t{Type: syscall.F_WRLCK})
		}
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if code := lockFromOtherProcess(t, path, kind); code != 3 {
			t.Fatalf("%s held here: the other process got exit code %d, want 3 (would block)", kind, code)
		}
		f.Close() // releases both kinds
		if code := lockFromOtherProcess(t, path, kind); code != 0 {
			t.Fatalf("%s released: the other process got exit code %d, want 0", kind, code)
		}
	}
}

// TestOwnership checks that the caller owns what it creates, that the
// kernel enforces permissions for other users (allow_other,
// default_permissions), and set-group-ID directories.
func TestOwnership(t *testing.T) {
	e := newEnv(t, Options{AllowOther: true, DefaultPermissions: true})
	// Let the other user reach the mount point.
	for d := filepath.Dir(e.mnt); d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(e.path("pub"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(e.path("pub"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("pub/root-file"), []byte("root"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(e.path("sgid"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(e.path("sgid"), 0, 4321); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(e.path("sgid"), 0o777|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	script := `set -e
cd "$1"
echo mine > pub/user-file
mkdir pub/user-dir
echo sub > sgid/user-file
mkdir sgid/user-dir
if echo no >> pub/root-file 2>/dev/null; then echo WROTE; fi`
	cmd := exec.Command("/bin/sh", "-c", script, "sh", e.mnt)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1234, Gid: 5678}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as uid 1234: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "WROTE") {
		t.Fatal("uid 1234 wrote a 0644 file of root's")
	}
	for _, c := range []struct {
		name     string
		uid, gid uint32
		sgid     bool
	}{
		{"pub/user-file", 1234, 5678, false},
		{"pub/user-dir", 1234, 5678, false},
		{"sgid/user-file", 1234, 4321, false},
		{"sgid/user-dir", 1234, 4321, true},
	} {
		var st syscall.Stat_t
		if err := syscall.Stat(e.path(c.name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != c.uid || st.Gid != c.gid || (st.Mode&syscall.S_ISGID != 0) != c.sgid {
			t.Errorf("%s: uid %d gid %d mode %o, want %d %d set-group-ID %v", c.name, st.Uid, st.Gid, st.Mode, c.uid, c.gid, c.sgid)
		}
	}
}

// pathScenario exercises names near NAME_MAX and paths near PATH_MAX under
// root and returns what happened, one line per step.
func pathScenario(t *testing.T, root string) []string {
	var out []string
	note := func(step string, err error) {
		var en syscall.Errno
		switch {
		case err == nil:
			out = append(out, step+": ok")
		case errors.As(err, &en):
			out = append(out, step+": "+en.Error())
		default:
			out = append(out, step+": "+err.Error())
		}
	}
	long := strings.Repeat("n", 255)
	note("create 255", os.WriteFile(filepath.Join(root, long), []byte("x"), 0o644))
	_, err := os.Stat(filepath.Join(root, long))
	note("stat 255", err)
	ents, err := os.ReadDir(root)
	note("readdir", err)
	out = append(out, fmt.Sprintf("entries %d", len(ents)))
	long2 := strings.Repeat("m", 255)
	note("rename 255", os.Rename(filepath.Join(root, long), filepath.Join(root, long2)))
	note("create 256", os.WriteFile(filepath.Join(root, long+"z"), nil, 0o644))
	note("mkdir 256", os.Mkdir(filepath.Join(root, long+"z"), 0o755))

	// Directories of 200-byte names down to the last one that leaves room
	// for a 100-byte file name within 4095 bytes.
	dir := root
	for i := 0; ; i++ {
		next := filepath.Join(dir, fmt.Sprintf("%03d", i)+strings.Repeat("d", 197))
		if len(next)+1+100 > 4095 {
			break
		}
		note("mkdir deep", os.Mkdir(next, 0o755))
		dir = next
	}
	fill := 4095 - len(dir) - 1
	file := filepath.Join(dir, strings.Repeat("f", fill))
	out = append(out, fmt.Sprintf("path length %d", len(file)))
	data := bytes.Repeat([]byte("deep"), 10000)
	note("write 4095", os.WriteFile(file, data, 0o644))
	got, err := os.ReadFile(file)
	note("read 4095", err)
	out = append(out, fmt.Sprintf("content ok %v", bytes.Equal(got, data)))
	renamed := filepath.Join(dir, strings.Repeat("g", fill))
	note("rename 4095", os.Rename(file, renamed))
	_, err = os.Lstat(renamed)
	note("stat 4095", err)
	note("create 4096", os.WriteFile(filepath.Join(dir, strings.Repeat("h", fill+1)), nil, 0o644))
	note("symlink 4095", os.Symlink(strings.Repeat("t", 4095), filepath.Join(dir, "l")))
	target, err := os.Readlink(filepath.Join(dir, "l"))
	note("readlink", err)
	out = append(out, fmt.Sprintf("target length %d", len(target)))
	note("symlink 4096", os.Symlink(strings.Repeat("t", 4096), filepath.Join(dir, "l2")))
	note("unlink 4095", os.Remove(renamed))
	note("removeall", os.RemoveAll(filepath.Join(root, "000"+strings.Repeat("d", 197))))
	return out
}

// TestLongNamesAndPaths runs the same steps on ext4 and on the mount (with
// a root path of the same length) and compares the outcomes.
func TestLongNamesAndPaths(t *testing.T) {
	e := newEnv(t, Options{})
	native := filepath.Join(t.TempDir(), "n")
	if len(native) != len(e.mnt) {
		t.Fatalf("native root %q and mount %q differ in length", native, e.mnt)
	}
	if err := os.Mkdir(native, 0o755); err != nil {
		t.Fatal(err)
	}
	want := pathScenario(t, native)
	got := pathScenario(t, e.mnt)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("on the mount:\n%s\n\non ext4:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Logf("%d steps alike, e.g. %q", len(got), got[len(got)-8:])
}

// countFS counts the uploads of each kind.
type countFS struct {
	ufs.FileSystem
	puts, creates atomic.Int64
}

func (c *countFS) Put(ctx context.Context, p string, r io.Reader, size int64) (ufs.Fingerprint, error) {
	c.puts.Add(1)
	return c.FileSystem.Put(ctx, p, r, size)
}

func (c *countFS) Create(ctx context.Context, p string) (ufs.Writer, error) {
	c.creates.Add(1)
	return c.FileSystem.Create(ctx, p)
}

// TestStreamingUpload checks that a file written in order streams (one
// Create, no Put) and that one written out of order is uploaded with Put.
func TestStreamingUpload(t *testing.T) {
	e := newEnv(t, Options{})
	cfs := &countFS{}
	e.ns.wrapFS(1, func(f ufs.FileSystem) ufs.FileSystem { cfs.FileSystem = f; return cfs })
	data := randomBytes(20, 3<<20+5)
	if err := os.WriteFile(e.path("seq"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if cfs.creates.Load() != 1 || cfs.puts.Load() != 0 {
		t.Fatalf("sequential write: %d streams, %d puts", cfs.creates.Load(), cfs.puts.Load())
	}
	f, err := os.Create(e.path("rnd"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(data[1<<20:], 1<<20)
	f.WriteAt(data[:1<<20], 0)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if cfs.puts.Load() != 1 {
		t.Fatalf("out-of-order write: %d puts", cfs.puts.Load())
	}
	e.checkFile("seq", data)
	e.checkFile("rnd", data)
}

// rss returns the resident set size of this process in bytes.
func rss(t testing.TB) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestBigDirectory lists a directory of 20,000 entries as ls -f and ls -l
// do: every entry is read, the listing is paged, and memory stays modest.
func TestBigDirectory(t *testing.T) {
	const count = 20000
	e := newEnv(t, Options{})
	ctx := context.Background()
	d, err := e.ns.Mkdir(ctx, meta.RootIno, "big", 0o755, Caller{})
	if err != nil {
		t.Fatal(err)
	}
	name := func(i int) string { return fmt.Sprintf("entry-%06d-%s", i, strings.Repeat("z", 40)) }
	e.ns.populate(d.Attr.Ino, count, name)
	runtime.GC()
	before := rss(t)
	calls := e.ns.readDirs.Load()

	out, err := exec.Command("ls", "-f", e.path("big")).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != count+2 {
		t.Fatalf("ls -f listed %d entries, want %d", len(lines), count+2)
	}
	seen := make(map[string]bool, count)
	for _, l := range lines {
		seen[l] = true
	}
	for i := range count {
		if !seen[name(i)] {
			t.Fatalf("ls -f missed %s", name(i))
		}
	}
	afterF := rss(t)
	pages := e.ns.readDirs.Load() - calls

	if err := exec.Command("ls", "-l", e.path("big")).Run(); err != nil {
		t.Fatal(err)
	}
	afterL := rss(t)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("ls -f of %d entries: %d ReadDir pages, RSS %+.1f MiB; after ls -l: RSS %+.1f MiB (heap in use %.1f MiB)",
		count, pages, float64(afterF-before)/(1<<20), float64(afterL-before)/(1<<20), float64(ms.HeapInuse)/(1<<20))
	if pages < count/DefaultReadDirPage {
		t.Errorf("%d ReadDir calls: the listing was not paged", pages)
	}
	if growth := afterL - before; growth > 256<<20 {
		t.Errorf("RSS grew by %d MiB listing %d entries", growth>>20, count)
	}
}

// TestXattrCapsCached checks that the kernel's check for file capabilities
// before each write does not reach the master each time.
func TestXattrCapsCached(t *testing.T) {
	e := newEnv(t, Options{AttrTimeout: time.Hour})
	f, err := os.Create(e.path("f"))
	if err != nil {
		t.Fatal(err)
	}
	before := e.ns.getxattrs.Load()
	buf := make([]byte, 4096)
	for range 100 {
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n := e.ns.getxattrs.Load() - before; n > 2 {
		t.Fatalf("%d GetXattr calls for 100 writes", n)
	}
	// A capability set on this host is seen at once.
	// struct vfs_cap_data, revision 2: cap_net_bind_service permitted.
	caps := []byte{0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if err := unix.Setxattr(e.path("f"), capsName, caps, 0); err != nil {
		t.Fatalf("setting %s: %v", capsName, err)
	}
	buf = make([]byte, 64)
	if n, err := unix.Getxattr(e.path("f"), capsName, buf); err != nil || n != len(caps) {
		t.Fatalf("getxattr after setxattr: %d %v", n, err)
	}
}
