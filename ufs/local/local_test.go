package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skyfs/skyfs/ufs"
	"github.com/skyfs/skyfs/ufs/local"
	"github.com/skyfs/skyfs/ufs/ufstest"
)

func newFS(t *testing.T) ufs.FileSystem {
	t.Helper()
	fsys, err := ufs.Open(t.Context(), "file://"+t.TempDir(), nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys
}

func TestContract(t *testing.T) {
	ufstest.Run(t, newFS)
}

func TestOpenURIs(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		uri  string
		opts map[string]string
		want error
	}{
		{"Plain", "file://" + dir, nil, nil},
		{"Localhost", "file://localhost" + dir, nil, nil},
		{"Missing", "file://" + dir + "/missing", nil, ufs.ErrNotExist},
		{"Create", "file://" + dir + "/made/here", map[string]string{local.OptionCreate: "true"}, nil},
		{"OtherHost", "file://example" + dir, nil, ufs.ErrInvalid},
		{"Relative", "file:relative/dir", nil, ufs.ErrInvalid},
		{"UserInfo", "file://user:hunter2@localhost" + dir, nil, ufs.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys, err := ufs.Open(context.Background(), c.uri, c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("Open(%q) error %v, want %v", c.uri, err, c.want)
			}
			if err != nil {
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error shows the password: %v", err)
				}
				return
			}
			fsys.Close()
		})
	}
}

// TestSymlinkEscape checks that a symbolic link inside the root cannot be used to
// reach outside it.
func TestSymlinkEscape(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	fsys := newFS(t)
	root := fsys.(*local.FS).Dir()
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(root, "escapefile")); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := fsys.Open(ctx, "escape/secret", 0, -1); err == nil {
		t.Fatalf("read through a link escaping the root succeeded")
	}
	if _, err := fsys.Open(ctx, "escapefile", 0, -1); err == nil {
		t.Fatalf("read of a link escaping the root succeeded")
	}
	if _, err := fsys.Put(ctx, "escape/new", strings.NewReader("x"), 1); err == nil {
		t.Fatalf("write through a link escaping the root succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a file appeared outside the root: %v", err)
	}
	page, err := fsys.List(ctx, "", ufs.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 0 {
		t.Fatalf("listing shows escaping links: %+v", page.Entries)
	}
}

func TestLink(t *testing.T) {
	fsys := newFS(t)
	ufstest.Put(t, fsys, "a", []byte("linked"))
	if err := fsys.(ufs.Linker).Link(t.Context(), "a", "dir/b"); err != nil {
		t.Fatalf("Link: %v", err)
	}
	if got := ufstest.ReadAll(t, fsys, "dir/b"); string(got) != "linked" {
		t.Fatalf("link reads %q", got)
	}
}

// TestRewriteLinked writes a new content over one name of a file that has
// two: both names keep naming one file, and show the new content.
func TestRewriteLinked(t *testing.T) {
	fsys := newFS(t)
	ufstest.Put(t, fsys, "a", []byte("old"))
	if err := fsys.(ufs.Linker).Link(t.Context(), "a", "dir/b"); err != nil {
		t.Fatalf("Link: %v", err)
	}
	before, err := fsys.Stat(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	ufstest.Put(t, fsys, "a", []byte("new content"))
	if got := ufstest.ReadAll(t, fsys, "dir/b"); string(got) != "new content" {
		t.Fatalf("the other name reads %q", got)
	}
	a, errA := fsys.Stat(t.Context(), "a")
	b, errB := fsys.Stat(t.Context(), "dir/b")
	if errA != nil || errB != nil || a.Fingerprint.ETag != b.Fingerprint.ETag || a.Fingerprint.ETag == before.Fingerprint.ETag {
		t.Fatalf("fingerprints: a %+v (%v), b %+v (%v), before %+v", a.Fingerprint, errA, b.Fingerprint, errB, before.Fingerprint)
	}
	page, err := fsys.List(t.Context(), "", ufs.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 2 {
		t.Fatalf("the rewrite left %d entries at the root (a temporary file?): %+v", len(page.Entries), page.Entries)
	}
}

// TestListSmallWindows lists a directory whose names sort differently from their
// keys with windows smaller than the directory, so that pages span scans.
func TestListSmallWindows(t *testing.T) {
	fsys := newFS(t)
	root := fsys.(*local.FS).Dir()
	dirs := []string{"a", "a-b", "a+", "b", "b b", "z"}
	files := []string{"a!", "a.txt", "a-b.c", "a+b", "ab", "b.", "b0", "é", "a-"}
	var want []string
	for _, d := range dirs {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
		want = append(want, d+"/")
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		want = append(want, f)
	}
	slices.Sort(want)
	for _, window := range []int{1, 2, 3, 5, 100} {
		restore := local.SetWindowSize(window)
		for _, page := range []int{1, 2, 4, 100} {
			var got []string
			for _, fi := range ufstest.ListAll(t, fsys, "", page) {
				got = append(got, fi.SortKey())
			}
			if !slices.Equal(got, want) {
				t.Errorf("window %d page %d: %q, want %q", window, page, got, want)
			}
		}
		restore()
	}
}
