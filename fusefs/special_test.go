package fusefs

import (
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSpecialFiles makes a FIFO, devices and a socket through the mount: the
// namespace holds them with their type and device, the kernel serves them
// (a FIFO carries data between two local processes), nothing reaches the
// UFS; mknod(2) of a regular file makes an empty file that does.
func TestSpecialFiles(t *testing.T) {
	e := newEnv(t, Options{})
	fifo := e.path("fifo")
	if err := unix.Mkfifo(fifo, 0o640); err != nil {
		t.Fatal(err)
	}
	dev := unix.Mkdev(7, 9)
	for _, c := range []struct {
		name string
		mode uint32
	}{{"chr", unix.S_IFCHR}, {"blk", unix.S_IFBLK}} {
		if err := unix.Mknod(e.path(c.name), c.mode|0o600, int(dev)); err != nil {
			t.Fatalf("mknod %s: %v", c.name, err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(e.path(c.name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != c.mode|0o600 || st.Rdev != dev || st.Nlink != 1 {
			t.Errorf("%s: mode %o rdev %#x nlink %d, want %o %#x 1", c.name, st.Mode, st.Rdev, st.Nlink, c.mode|0o600, dev)
		}
	}
	l, err := net.Listen("unix", e.path("sock"))
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(e.path("sock"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Errorf("socket: mode %o, %v", st.Mode, err)
	}
	l.Close() // and removes it
	if err := unix.Lstat(fifo, &st); err != nil || st.Mode != unix.S_IFIFO|0o640 {
		t.Errorf("fifo: mode %o, %v", st.Mode, err)
	}

	// The kernel makes the pipe: what one process writes, another reads.
	done := make(chan error, 1)
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			_, err = w.Write([]byte("through the pipe"))
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		done <- err
	}()
	r, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || string(got) != "through the pipe" {
		t.Errorf("read from fifo: %q %v", got, err)
	}
	if err := <-done; err != nil {
		t.Errorf("write to fifo: %v", err)
	}

	if err := os.Link(fifo, e.path("fifo2")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(e.path("fifo2"), &st); err != nil || st.Nlink != 2 || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("link of a fifo: nlink %d mode %o, %v", st.Nlink, st.Mode, err)
	}

	ents, err := os.ReadDir(e.ufs)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ents {
		t.Errorf("special file %s reached the UFS", d.Name())
	}

	if err := unix.Mknod(e.path("reg"), unix.S_IFREG|0o644, 0); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(e.path("reg")); err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
		t.Errorf("mknod of a regular file: %v %v", fi, err)
	}
	if fi, err := os.Stat(e.ufs + "/reg"); err != nil || fi.Size() != 0 {
		t.Errorf("the regular file mknod made is not in the UFS: %v", err)
	}
	if err := unix.Mknod(e.path("reg"), unix.S_IFIFO|0o644, 0); err != syscall.EEXIST {
		t.Errorf("mknod over an existing name: %v", err)
	}
}

// TestHardLinkRewrite writes a file through one of its two names: the other
// name reads the new content, through the mount and in the UFS directory.
func TestHardLinkRewrite(t *testing.T) {
	e := newEnv(t, Options{})
	if err := os.Mkdir(e.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("f"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(e.path("f"), e.path("d/g")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("f"), []byte("new content"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{e.path("d/g"), e.ufs + "/d/g", e.ufs + "/f"} {
		if got, err := os.ReadFile(p); err != nil || string(got) != "new content" {
			t.Errorf("%s reads %q, %v", p, got, err)
		}
	}
}
