package integration

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skyfs/skyfs/client"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// dump renders the whole tree under dir with each inode's attributes.
func dump(ctx context.Context, t testing.TB, cl *client.Client, dir string) string {
	t.Helper()
	var b strings.Builder
	var walk func(dir string)
	walk = func(dir string) {
		for e, err := range cl.List(ctx, dir, 1000, true) {
			if err != nil {
				t.Fatalf("list %s: %v", dir, err)
			}
			a := e.Attr
			p := strings.TrimSuffix(dir, "/") + "/" + string(e.Name)
			fmt.Fprintf(&b, "%s ino=%d type=%v mode=%o nlink=%d size=%d mtime=%d ctime=%d\n", p, a.Ino, a.Type, a.Mode, a.Nlink, a.Size, a.MtimeNs, a.CtimeNs)
			if a.Type == pb.FileType_DIRECTORY {
				walk(p)
			}
		}
	}
	walk(dir)
	return b.String()
}

// TestRestartAll stops and restarts all three masters: the namespace is
// identical on every master afterwards and nothing was applied twice.
func TestRestartAll(t *testing.T) {
	c := newCluster(t, 3, "--snapshot-threshold", "100", "--trailing-logs", "50", "--snapshot-interval", "500ms")
	ctx := context.Background()
	cl := c.client(client.Config{})
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// A workload in which replaying any entry would change the outcome: the
	// same name is created and removed again and again, each create taking a
	// new inode number from the state machine's counter.
	_, err := cl.Mkdir(ctx, &pb.MkdirRequest{Path: "/r", Mode: 0o755})
	must("mkdir", err)
	var lastIno uint64
	for i := range 150 {
		r, err := cl.Create(ctx, &pb.CreateRequest{Path: "/r/x", Mode: 0o644})
		must("create", err)
		if lastIno != 0 && r.Ino != lastIno+1 {
			t.Fatalf("create %d took ino %d after %d", i, r.Ino, lastIno)
		}
		lastIno = r.Ino
		if i%3 == 0 {
			_, err = cl.Rename(ctx, &pb.RenameRequest{OldPath: "/r/x", NewPath: fmt.Sprintf("/r/kept-%03d", i)})
		} else {
			_, err = cl.Unlink(ctx, &pb.UnlinkRequest{Path: "/r/x"})
		}
		must("rename/unlink", err)
	}
	_, err = cl.Mkdir(ctx, &pb.MkdirRequest{Path: "/r/sub", Mode: 0o700})
	must("mkdir", err)
	lastIno++
	before := dump(ctx, t, cl, "/")
	fsBefore, err := cl.StatFS(ctx)
	must("statfs", err)
	l := c.leader()
	applied := c.status(l).AppliedIndex

	// Every master has applied everything before they stop.
	for _, nd := range c.nodes {
		waitFor(t, 30*time.Second, nd.id+" to apply index "+fmt.Sprint(applied), func() bool {
			m := c.status(nd)
			return m != nil && m.AppliedIndex >= applied
		})
	}
	for _, nd := range c.nodes {
		c.stop(nd)
	}
	for _, nd := range c.nodes {
		c.start(nd)
	}
	c.waitLeader(30 * time.Second)

	// State identical on every master: make each one leader in turn and read
	// the tree through it.
	for _, nd := range c.nodes {
		if l := c.leader(); l != nd {
			c.mustCLI("cluster", "transfer-leader", nd.id)
		}
		waitFor(t, 30*time.Second, nd.id+" to lead", func() bool { return c.leader() == nd })
		only := c.client(client.Config{Masters: []string{nd.rpc}})
		after := dump(ctx, t, only, "/")
		if after != before {
			t.Errorf("tree on %s after restart differs:\nbefore:\n%s\nafter:\n%s", nd.id, head(before), head(after))
		}
		fs, err := only.StatFS(ctx)
		must("statfs", err)
		if fs.Inodes != fsBefore.Inodes {
			t.Errorf("%s: %d inodes after restart, %d before", nd.id, fs.Inodes, fsBefore.Inodes)
		}
	}
	// Nothing was applied twice: the inode counter went on where it was.
	r, err := cl.Create(ctx, &pb.CreateRequest{Path: "/r/after", Mode: 0o644})
	must("create after restart", err)
	if r.Ino != lastIno+1 {
		t.Errorf("first create after restart took ino %d, want %d", r.Ino, lastIno+1)
	}
	kept := listAll(ctx, t, cl, "/r")
	names := slices.Sorted(maps.Keys(kept))
	if len(names) != 52 { // 50 kept files, sub, after
		t.Errorf("/r holds %d entries: %v", len(names), names)
	}
}

func head(s string) string {
	lines := strings.SplitN(s, "\n", 12)
	if len(lines) > 11 {
		lines = append(lines[:11], "...")
	}
	return strings.Join(lines, "\n")
}
