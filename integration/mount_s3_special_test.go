package integration

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// testSpecialFilesS3: FIFOs, sockets and device nodes made on an S3 mount
// live in the namespace only. No object is written for them (the bucket is
// listed with minio-go), renaming and removing them touch no object but the
// one a rename replaces, a sync keeps them, and an object put under one's
// name directly in the bucket stays hidden behind it until it goes.
func testSpecialFilesS3(t *testing.T, e *s3Env) {
	defer e.use(t)()
	e.mount(t, "/special", "special")
	h := newHost(t, e.c, "S", "/special", "")
	h.start()
	if err := os.WriteFile(h.path("file"), []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(h.path("fifo"), 0o640); err != nil {
		t.Fatalf("mkfifo on an S3 mount: %v", err)
	}
	dev := unix.Mkdev(7, 9)
	for _, c := range []struct {
		name string
		mode uint32
	}{{"chr", unix.S_IFCHR}, {"blk", unix.S_IFBLK}, {"sock", unix.S_IFSOCK}} {
		if err := unix.Mknod(h.path(c.name), c.mode|0o600, int(dev)); err != nil {
			t.Fatalf("mknod %s on an S3 mount: %v", c.name, err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(h.path(c.name), &st); err != nil {
			t.Fatal(err)
		}
		want := uint64(dev)
		if c.mode == unix.S_IFSOCK {
			want = 0
		}
		if st.Mode != c.mode|0o600 || st.Rdev != want {
			t.Errorf("%s: mode %o rdev %#x, want %o %#x", c.name, st.Mode, st.Rdev, c.mode|0o600, want)
		}
	}
	wantObjects := func(what string, keys ...string) {
		t.Helper()
		got := slices.Sorted(func(yield func(string) bool) {
			for k := range e.objects(e.bucket, "special/") {
				if !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(got, keys) {
			t.Errorf("objects %s: %v, want %v", what, got, keys)
		}
	}
	wantObjects("after mknod", "special/file")

	if err := os.Rename(h.path("fifo"), h.path("fifo2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(h.path("blk")); err != nil {
		t.Fatal(err)
	}
	wantObjects("after a rename and an unlink of special files", "special/file")
	if err := os.Rename(h.path("chr"), h.path("file")); err != nil {
		t.Fatal(err)
	}
	wantObjects("after a device replaced the file")
	var st unix.Stat_t
	if err := unix.Lstat(h.path("file"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Errorf("file after the rename: mode %o, %v", st.Mode, err)
	}

	e.put(e.bucket, "special/sock", "an object")
	e.mustCLI("sync", "/special")
	names, err := listNames(h.path(""))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, ","); got != "fifo2,file,sock" {
		t.Errorf("after sync: %s", got)
	}
	if err := unix.Lstat(h.path("sock"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Errorf("sock after a sync with an object of its name: mode %o, %v", st.Mode, err)
	}
	if err := os.Remove(h.path("sock")); err != nil {
		t.Fatal(err)
	}
	wantObjects("after the socket went", "special/sock")
	e.mustCLI("sync", "/special")
	eventually(t, 10e9, func() error {
		b, err := os.ReadFile(h.path("sock"))
		if err != nil || string(b) != "an object" {
			return errors.New("the object under the socket's name does not show after a sync: " + string(b))
		}
		return nil
	})
	h.umount()
}

// testLongPathsS3: a name whose key would be longer than S3's 1,024 bytes
// is ENAMETOOLONG for every call that makes one, and nothing is made, in the
// namespace or in the bucket.
func testLongPathsS3(t *testing.T, e *s3Env) {
	defer e.use(t)()
	e.mount(t, "/long", "long")
	h := newHost(t, e.c, "L", "/long", "")
	h.start()
	// Keys are "long/" + the path; a directory's marker ends in "/": paths
	// of up to 1,018 bytes fit. (Names of 200 bytes: MinIO takes no
	// directory name past 246.)
	dir := h.path("")
	rel := ""
	for i := range 5 {
		name := strings.Repeat(string(rune('a'+i)), 200)
		dir, rel = filepath.Join(dir, name), rel+name+"/"
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("mkdir at %d bytes: %v", len(rel)-1, err)
		}
	}
	left := 1018 - len(rel) // 13
	fits := filepath.Join(dir, strings.Repeat("f", left))
	if err := os.WriteFile(fits, []byte("x"), 0o644); err != nil {
		t.Fatalf("create at the limit: %v", err)
	}
	e.checkObject(t, "long/"+rel+strings.Repeat("f", left), []byte("x"))
	long := filepath.Join(dir, strings.Repeat("g", left+1))
	calls := []struct {
		name string
		do   func() error
	}{
		{"create", func() error {
			f, err := os.OpenFile(long, os.O_CREATE|os.O_WRONLY, 0o644)
			if err == nil {
				f.Close()
			}
			return err
		}},
		{"mkdir", func() error { return os.Mkdir(long, 0o755) }},
		{"symlink", func() error { return os.Symlink("target", long) }},
		{"mkfifo", func() error { return unix.Mkfifo(long, 0o644) }},
		{"rename", func() error { return os.Rename(fits, long) }},
	}
	for _, c := range calls {
		if err := c.do(); !errors.Is(err, syscall.ENAMETOOLONG) {
			t.Errorf("%s of a %d-byte path: %v, want ENAMETOOLONG", c.name, len(rel)+left+1, err)
		}
	}
	names, err := listNames(dir)
	if err != nil || len(names) != 1 || names[0] != strings.Repeat("f", left) {
		t.Errorf("directory after refusals: %v %v", names, err)
	}
	var under []string
	for k := range e.objects(e.bucket, "long/"+rel) {
		under = append(under, k)
	}
	if len(under) != 2 { // the directory's marker and the file
		t.Errorf("objects after refusals: %v", under)
	}
	h.umount()
}

// testCloseWithoutWriteS3: a file opened with O_CREAT and closed without a
// write is uploaded empty on close, and keeps the times its create gave it,
// as on a local file system: another host that asks the masters on every
// stat sees the ctime and mtime this host's kernel got from the create.
func testCloseWithoutWriteS3(t *testing.T, e *s3Env) {
	defer e.use(t)()
	e.mount(t, "/close", "close")
	a := newHost(t, e.c, "A", "/close", "")
	a.start()
	b := newHost(t, e.c, "B", "/close", "attr_timeout=0,entry_timeout=0")
	b.start()
	for i := range 3 {
		name := "f" + string(rune('0'+i))
		fd, err := unix.Open(a.path(name), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		var made, there unix.Stat_t
		err = unix.Fstat(fd, &made)
		if cerr := unix.Close(fd); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		e.checkObject(t, "close/"+name, nil)
		if err := unix.Stat(b.path(name), &there); err != nil {
			t.Fatal(err)
		}
		if there.Ctim != made.Ctim || there.Mtim != made.Mtim {
			t.Errorf("%s after a close without a write: ctime %v mtime %v, created with %v %v",
				name, there.Ctim, there.Mtim, made.Ctim, made.Mtim)
		}
	}
	b.umount()
	a.umount()
}
