package fusefs

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// statDir stats dir and returns its attributes and how many GetAttr and
// Lookup calls reached the namespace meanwhile.
func statDir(t *testing.T, e *env, dir string) (syscall.Stat_t, int64) {
	t.Helper()
	calls := func() int64 { return e.ns.getattrs.Load() + e.ns.lookups.Load() }
	before := calls()
	var st syscall.Stat_t
	if err := syscall.Stat(e.path(dir), &st); err != nil {
		t.Fatal(err)
	}
	return st, calls() - before
}

// wantDir checks that the kernel shows dir with the namespace's attributes.
func wantDir(t *testing.T, e *env, st syscall.Stat_t, what string) {
	t.Helper()
	a, err := e.ns.GetAttr(t.Context(), st.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mtim.Nano() != a.Mtime || st.Ctim.Nano() != a.Ctime || uint32(st.Nlink) != a.Nlink {
		t.Fatalf("%s: the kernel shows mtime %d ctime %d nlink %d; the namespace has %d %d %d",
			what, st.Mtim.Nano(), st.Ctim.Nano(), st.Nlink, a.Mtime, a.Ctime, a.Nlink)
	}
}

// TestDirAttrsFromChange checks that after a name is added to or removed
// from a directory through the mount, the kernel's next request for the
// directory's attributes is answered with those the change reported (no
// call to the namespace) and that they are the namespace's; and that a
// rename, which reports none, sends it to the namespace again.
func TestDirAttrsFromChange(t *testing.T) {
	e := newEnv(t, Options{AttrTimeout: time.Hour, EntryTimeout: time.Hour})
	if err := os.Mkdir(e.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	statDir(t, e, "d")
	steps := []struct {
		what   string
		change func() error
	}{
		{"create", func() error { return os.WriteFile(e.path("d/f"), nil, 0o644) }},
		{"mkdir", func() error { return os.Mkdir(e.path("d/sub"), 0o755) }},
		{"symlink", func() error { return os.Symlink("f", e.path("d/l")) }},
		{"unlink", func() error { return os.Remove(e.path("d/l")) }},
		{"rmdir", func() error { return os.Remove(e.path("d/sub")) }},
	}
	for _, s := range steps {
		time.Sleep(2 * time.Millisecond) // so that the times move
		if err := s.change(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		st, calls := statDir(t, e, "d")
		if calls != 0 {
			t.Errorf("%s: %d calls reached the namespace", s.what, calls)
		}
		wantDir(t, e, st, s.what)
	}
	if e.m.reportedAttrs.Load() == 0 {
		t.Fatal("no Getattr was answered from reported attributes")
	}
	if err := os.Mkdir(e.path("d/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(e.path("other"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(e.path("d/sub"), e.path("other/sub")); err != nil {
		t.Fatal(err)
	}
	st, calls := statDir(t, e, "d")
	if calls == 0 {
		t.Error("after a rename, the directory's attributes did not come from the namespace")
	}
	wantDir(t, e, st, "rename")
}

// TestNoDirAttrsWithoutTimeouts checks that with attribute timeouts too short
// for mountd to answer from what it holds, every stat reaches the namespace.
func TestNoDirAttrsWithoutTimeouts(t *testing.T) {
	e := newEnv(t, Options{AttrTimeout: time.Nanosecond, EntryTimeout: time.Nanosecond})
	if err := os.Mkdir(e.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("d/f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, calls := statDir(t, e, "d"); calls == 0 {
		t.Fatal("a stat was answered without the namespace with attr_timeout=0")
	}
}
