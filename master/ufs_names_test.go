package master

import (
	"context"
	"net/url"
	"strings"
	"testing"

	pb "github.com/skyfs/skyfs/proto/skyfspb"
	"github.com/skyfs/skyfs/ufs"
)

// badNamesScheme is a UFS over a local directory whose listings of the root
// also hold names no POSIX directory can: object stores allow them.
const badNamesScheme = "badnamestest"

var badNames = []string{"", ".", "..", "a\x00b", strings.Repeat("n", 256)}

func init() {
	ufs.Register(badNamesScheme, func(ctx context.Context, u *url.URL, opts ufs.Options) (ufs.FileSystem, error) {
		fsys, err := ufs.Open(ctx, "file://"+u.Path, nil)
		if err != nil {
			return nil, err
		}
		return badNamesFS{fsys}, nil
	})
}

type badNamesFS struct{ ufs.FileSystem }

func (f badNamesFS) List(ctx context.Context, dir string, opts ufs.ListOptions) (ufs.Page, error) {
	p, err := f.FileSystem.List(ctx, dir, opts)
	if err != nil || dir != "" || opts.Cursor != "" {
		return p, err
	}
	for _, n := range badNames {
		p.Entries = append(p.Entries, ufs.FileInfo{Path: n, Name: n, Fingerprint: ufs.Fingerprint{Size: 1}})
	}
	return p, nil
}

// TestUFSLoadSkipsBadNames loads a directory whose UFS listing holds names
// the namespace cannot: they are skipped and counted, the rest is loaded.
func TestUFSLoadSkipsBadNames(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	writeTree(t, dir, "good", "sub/x")
	r, err := e.mt.AddMount(ctxT(t), &pb.AddMountRequest{
		Request: e.req(), Path: "/w", Uri: badNamesScheme + "://" + dir,
	})
	mustOK(t, "add mount", r.GetErrno(), r.GetMessage(), err)
	p := e.sync(t, "/w", false)
	if p.Skipped != uint64(len(badNames)) {
		t.Errorf("skipped %d names, want %d (%+v)", p.Skipped, len(badNames), p)
	}
	if got := strings.Join(e.list(t, "/w"), ","); got != "good,sub" {
		t.Errorf("/w = %s, want good,sub", got)
	}
}
