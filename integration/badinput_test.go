package integration

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/skyfs/skyfs/client"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// TestBadInput: malformed paths, long names, NUL bytes and unknown mount ids
// get clear errors from the real cluster, through the client and the CLI, and
// change nothing.
func TestBadInput(t *testing.T) {
	c := newCluster(t, 3)
	ctx := context.Background()
	cl := c.client(client.Config{})
	if _, err := cl.Mkdir(ctx, &pb.MkdirRequest{Path: "/d", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Create(ctx, &pb.CreateRequest{Path: "/d/f", Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	l := c.leader()
	before := c.status(l)
	fsBefore, err := cl.StatFS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("n", 256)
	calls := []struct {
		name  string
		call  func() error
		errno syscall.Errno
		msg   string
	}{
		{"dot-dot", func() error { _, err := cl.Create(ctx, &pb.CreateRequest{Path: "/d/../g"}); return err }, syscall.EINVAL, `".." component`},
		{"relative", func() error { _, err := cl.Mkdir(ctx, &pb.MkdirRequest{Path: "d/g"}); return err }, syscall.EINVAL, "not absolute"},
		{"NUL in path", func() error { _, err := cl.Create(ctx, &pb.CreateRequest{Path: "/d/a\x00b"}); return err }, syscall.EINVAL, "NUL"},
		{"NUL in name", func() error {
			_, err := cl.Create(ctx, &pb.CreateRequest{Parent: 1, Name: []byte("x\x00")})
			return err
		}, syscall.EINVAL, "NUL"},
		{"long name", func() error { _, err := cl.Mkdir(ctx, &pb.MkdirRequest{Path: "/d/" + long}); return err }, syscall.ENAMETOOLONG, "longer than 255"},
		{"long rename target", func() error {
			_, err := cl.Rename(ctx, &pb.RenameRequest{OldPath: "/d/f", NewPath: "/d/" + long})
			return err
		}, syscall.ENAMETOOLONG, "longer than 255"},
		{"long lookup", func() error { _, err := cl.Lookup(ctx, 1, long); return err }, syscall.ENAMETOOLONG, "longer than 255"},
		{"huge page", func() error {
			_, err := cl.ReadDir(ctx, &pb.ReadDirRequest{Path: "/d", Limit: 1 << 20})
			return err
		}, syscall.EINVAL, "page size"},
		{"unknown mount id", func() error { return cl.RemoveMount(ctx, 4242, "") }, syscall.ENOENT, "no mount with id 4242"},
		{"get unknown mount", func() error { _, err := cl.GetMount(ctx, 4242); return err }, syscall.ENOENT, "no mount with id 4242"},
		{"unmount a plain directory", func() error { return cl.RemoveMount(ctx, 0, "/d") }, syscall.EINVAL, "no mount at /d"},
		{"missing parent", func() error { _, err := cl.Create(ctx, &pb.CreateRequest{Path: "/nope/f"}); return err }, syscall.ENOENT, ""},
	}
	for _, tc := range calls {
		err := tc.call()
		var ce *client.Error
		if !errors.Is(err, tc.errno) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.errno)
		} else if tc.msg != "" && (!errors.As(err, &ce) || !strings.Contains(ce.Message, tc.msg)) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.msg)
		}
	}
	clis := []struct {
		args []string
		msg  string
	}{
		{[]string{"mkdir", "/d/../x"}, `has a ".." component`},
		{[]string{"mkdir", "/d/" + long}, "file name too long"},
		{[]string{"mv", "/d/f", "/d/" + long}, "file name too long"},
		{[]string{"stat", "/d/./f"}, `"." component`},
		{[]string{"rm", "/nope"}, "rm /nope: no such file or directory"},
	}
	for _, tc := range clis {
		code, _, errs := c.cli(tc.args...)
		if code == 0 || !strings.Contains(errs, tc.msg) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("skyfs %s: exit %d stderr %q; want one line with %q", strings.Join(tc.args, " "), code, errs, tc.msg)
		}
	}
	after := c.status(l)
	fsAfter, err := cl.StatFS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.LastIndex != before.LastIndex || fsAfter.Inodes != fsBefore.Inodes {
		t.Errorf("bad input changed state: last index %d → %d, inodes %d → %d", before.LastIndex, after.LastIndex, fsBefore.Inodes, fsAfter.Inodes)
	}
	if names := listAll(ctx, t, cl, "/d"); len(names) != 1 {
		t.Errorf("/d holds %v, want only f", names)
	}
}
