package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/skyfs/skyfs/client"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// writeRecorder keeps what is written to it and the size of each write.
type writeRecorder struct {
	strings.Builder
	writes  []int
	onFirst func() // run at the first write
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	if len(w.writes) == 0 && w.onFirst != nil {
		w.onFirst()
	}
	w.writes = append(w.writes, len(p))
	return w.Builder.Write(p)
}

// ls of a directory of several pages prints every name once, in order, in
// writes of bounded size as the pages arrive, not all at once at the end: a
// name created when the first lines are written (one that sorts last) is in
// the listing, whose later pages are fetched after it. The long listing and
// JSON hold every entry too, and JSON of two paths is one array.
func TestLsStreamsPages(t *testing.T) {
	addr := startMaster(t)
	env := map[string]string{EnvMasters: addr}
	ctx := context.Background()
	c, err := client.New(client.Config{Masters: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Mkdir(ctx, &pb.MkdirRequest{Path: "/big", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	const files = 2100 // three pages of the master's default 1,024
	var names []string
	for i := range files {
		names = append(names, fmt.Sprintf("%s-%05d", strings.Repeat("n", 100), i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < files; i += 32 {
				if _, err := c.Create(ctx, &pb.CreateRequest{Path: "/big/" + names[i], Mode: 0o644}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	lsRun := func(onFirst func(), args ...string) *writeRecorder {
		var out, errb writeRecorder
		out.onFirst = onFirst
		code := Run(ctx, args, Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }})
		if code != 0 {
			t.Fatalf("skyfs %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
		}
		return &out
	}

	late := strings.Repeat("z", 100)
	out := lsRun(func() {
		if _, err := c.Create(ctx, &pb.CreateRequest{Path: "/big/" + late, Mode: 0o644}); err != nil {
			t.Error(err)
		}
	}, "ls", "/big")
	if got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"); !slices.Equal(got, append(slices.Clip(names), late)) {
		t.Fatalf("ls /big: %d lines, want the %d names in order and then the one created while the first were printed", len(got), len(names))
	}
	if _, err := c.Unlink(ctx, &pb.UnlinkRequest{Path: "/big/" + late}); err != nil {
		t.Fatal(err)
	}
	if len(out.writes) < 3 || slices.Max(out.writes) > 64<<10 {
		t.Errorf("ls /big wrote %d times, at most %d bytes at once: want the output streamed in bounded writes", len(out.writes), slices.Max(out.writes))
	}

	out = lsRun(nil, "ls", "-l", "/big")
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != files {
		t.Fatalf("ls -l /big: %d lines, want %d", len(lines), files)
	}
	for i, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), "-rw-r--r--") || !strings.HasSuffix(l, " "+names[i]) {
			t.Fatalf("ls -l /big line %d: %q, want a file named %s", i, l, names[i])
		}
	}

	out = lsRun(nil, "ls", "--output", "json", "/big/"+names[7], "/big")
	var list []fileJSON
	if err := json.Unmarshal([]byte(out.String()), &list); err != nil {
		t.Fatalf("ls --output json: %v", err)
	}
	if len(list) != files+1 || list[0].Name != names[7] || list[1].Name != names[0] || list[files].Name != names[files-1] || list[files].Type != "file" {
		t.Fatalf("ls --output json: %d entries, want %d in order", len(list), files+1)
	}
	var whole strings.Builder
	enc := json.NewEncoder(&whole)
	enc.SetIndent("", "  ")
	enc.Encode(list)
	if whole.String() != out.String() {
		t.Errorf("ls --output json is not the indented encoding of its list")
	}
}
