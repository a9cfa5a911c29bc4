package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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
