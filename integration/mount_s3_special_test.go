package integration

import (
	"errors"
	"os"
	"slices"
	"strings"
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
