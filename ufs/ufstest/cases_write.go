package ufstest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/skyfs/skyfs/ufs"
)

// WriterSize is the size of the large streaming write in the suite: enough for
// three parts when a backend's part size is set to the S3 minimum of 5 MiB.
const WriterSize = 12<<20 + 12345

func writeChunks(t *testing.T, w ufs.Writer, data []byte, chunk int) {
	t.Helper()
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		n, err := w.Write(data[off:end])
		if err != nil || n != end-off {
			t.Fatalf("Write at %d: n=%d err=%v", off, n, err)
		}
	}
}

func testWriter(t *testing.T, fsys ufs.FileSystem) {
	data := content(WriterSize, 3)
	w, err := fsys.Create(ctx(t), "big/file.bin")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	// An odd chunk size, so that parts never line up with writes.
	writeChunks(t, w, data, 1<<20+7)
	fp, err := w.Close()
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	if fp.Size != int64(len(data)) || fp.ETag == "" {
		t.Fatalf("Close fingerprint %+v, want size %d and an ETag", fp, len(data))
	}
	if st := mustStat(t, fsys, "big/file.bin"); !st.Fingerprint.Equal(fp) {
		t.Fatalf("Stat %+v, want Close's fingerprint %+v", st.Fingerprint, fp)
	}
	wantContent(t, fsys, "big/file.bin", data)
	// Ranged reads across part boundaries.
	for _, off := range []int64{5<<20 - 3, 8<<20 - 1, WriterSize - 10} {
		got := readRange(t, fsys, "big/file.bin", off, 20)
		want := data[off:min(off+20, int64(len(data)))]
		if string(got) != string(want) {
			t.Fatalf("read at %d across a part boundary differs", off)
		}
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort after Close: %v", err)
	}
	wantContent(t, fsys, "big/file.bin", data)
}

func testWriterSmall(t *testing.T, fsys ufs.FileSystem) {
	cases := []struct {
		name string
		data []byte
	}{
		{"Empty", nil},
		{"OneByte", []byte("x")},
		{"Small", content(70000, 4)},
	}
	for _, c := range cases {
		p := "small/" + c.name
		w, err := fsys.Create(ctx(t), p)
		if err != nil {
			t.Fatalf("%s: Create: %v", c.name, err)
		}
		if _, err := fsys.Stat(ctx(t), p); !errors.Is(err, ufs.ErrNotExist) {
			t.Fatalf("%s: file visible before Close: %v", c.name, err)
		}
		writeChunks(t, w, c.data, 1000)
		fp, err := w.Close()
		if err != nil {
			t.Fatalf("%s: Close: %v", c.name, err)
		}
		if fp.Size != int64(len(c.data)) {
			t.Fatalf("%s: size %d, want %d", c.name, fp.Size, len(c.data))
		}
		wantContent(t, fsys, p, c.data)
		if _, err := w.Close(); err == nil {
			t.Fatalf("%s: second Close succeeded", c.name)
		}
		if _, err := w.Write([]byte("late")); err == nil {
			t.Fatalf("%s: Write after Close succeeded", c.name)
		}
	}
}

func testWriterAbort(t *testing.T, fsys ufs.FileSystem) {
	old := []byte("previous version")
	Put(t, fsys, "existing", old)
	cases := []struct {
		name, path string
		size       int
	}{
		{"NewSmall", "new-small", 1000},
		{"NewLarge", "new-large", WriterSize},
		{"ExistingLarge", "existing", WriterSize},
	}
	for _, c := range cases {
		w, err := fsys.Create(ctx(t), c.path)
		if err != nil {
			t.Fatalf("%s: Create: %v", c.name, err)
		}
		writeChunks(t, w, content(c.size, 5), 1<<20)
		if err := w.Abort(); err != nil {
			t.Fatalf("%s: Abort: %v", c.name, err)
		}
		if err := w.Abort(); err != nil {
			t.Fatalf("%s: second Abort: %v", c.name, err)
		}
		if _, err := w.Close(); err == nil {
			t.Fatalf("%s: Close after Abort succeeded", c.name)
		}
	}
	wantGone(t, fsys, "new-small")
	wantGone(t, fsys, "new-large")
	wantContent(t, fsys, "existing", old)
	// Nothing left behind: no temporary files, no visible partial objects.
	wantNames(t, "List after aborts", ListAll(t, fsys, "", 0), "existing")
}

func testWriterCancel(t *testing.T, fsys ufs.FileSystem) {
	c, cancel := context.WithCancel(ctx(t))
	w, err := fsys.Create(c, "cancelled")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	writeChunks(t, w, content(WriterSize, 6), 1<<20)
	cancel()
	if _, err := w.Close(); err == nil {
		t.Fatalf("Close after the context was cancelled succeeded")
	}
	wantGone(t, fsys, "cancelled")
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort after a failed Close: %v", err)
	}
	if _, err := readAllCtx(c, fsys, "anything"); err == nil {
		t.Fatalf("Open with a cancelled context succeeded")
	}
}

func testMkdir(t *testing.T, fsys ufs.FileSystem) {
	c := ctx(t)
	if err := fsys.Mkdir(c, "d"); err != nil {
		t.Fatalf("Mkdir: %v", err)
	}
	if fi := mustStat(t, fsys, "d"); !fi.IsDir {
		t.Fatalf("Stat(d) = %+v, want a directory", fi)
	}
	wantNames(t, "List(root)", ListAll(t, fsys, "", 0), "d/")
	wantNames(t, "List(d)", ListAll(t, fsys, "d", 0))
	wantErr(t, "Mkdir of an existing directory", fsys.Mkdir(c, "d"), ufs.ErrExist)
	Put(t, fsys, "f", []byte("x"))
	wantErr(t, "Mkdir over a file", fsys.Mkdir(c, "f"), ufs.ErrExist)
	if err := fsys.Mkdir(c, "d/e/f"); err != nil {
		t.Fatalf("Mkdir with a missing parent: %v", err)
	}
	if fi := mustStat(t, fsys, "d/e"); !fi.IsDir {
		t.Fatalf("parent of a nested Mkdir is not a directory: %+v", fi)
	}
	Put(t, fsys, "d/file", []byte("x"))
	wantNames(t, "List(d)", ListAll(t, fsys, "d", 0), "e/", "file")
	wantErr(t, "Mkdir of the root", fsys.Mkdir(c, ""), ufs.ErrExist)
}

func testImplicitParents(t *testing.T, fsys ufs.FileSystem) {
	Put(t, fsys, "a/b/c/file", []byte("deep"))
	for _, d := range []string{"a", "a/b", "a/b/c"} {
		if fi := mustStat(t, fsys, d); !fi.IsDir {
			t.Fatalf("Stat(%q) = %+v, want a directory", d, fi)
		}
	}
	wantNames(t, "List(a)", ListAll(t, fsys, "a", 0), "b/")
	wantNames(t, "List(a/b/c)", ListAll(t, fsys, "a/b/c", 0), "file")
	wantErr(t, "Mkdir of an implicit directory", fsys.Mkdir(ctx(t), "a/b"), ufs.ErrExist)
}

func testDelete(t *testing.T, fsys ufs.FileSystem) {
	c := ctx(t)
	Put(t, fsys, "f", []byte("x"))
	if err := fsys.Delete(c, "f"); err != nil {
		t.Fatalf("Delete(file): %v", err)
	}
	wantGone(t, fsys, "f")
	wantErr(t, "Delete of a deleted file", fsys.Delete(c, "f"), ufs.ErrNotExist)

	if err := fsys.Mkdir(c, "empty"); err != nil {
		t.Fatalf("Mkdir: %v", err)
	}
	if err := fsys.Delete(c, "empty"); err != nil {
		t.Fatalf("Delete(empty dir): %v", err)
	}
	wantGone(t, fsys, "empty")

	if err := fsys.Mkdir(c, "full"); err != nil {
		t.Fatalf("Mkdir: %v", err)
	}
	Put(t, fsys, "full/child", []byte("x"))
	wantErr(t, "Delete of a directory with a child", fsys.Delete(c, "full"), ufs.ErrNotEmpty)
	Put(t, fsys, "implicit/child", []byte("x"))
	wantErr(t, "Delete of a directory with a child", fsys.Delete(c, "implicit"), ufs.ErrNotEmpty)
	if err := fsys.Delete(c, "full/child"); err != nil {
		t.Fatalf("Delete(child): %v", err)
	}
	if fi := mustStat(t, fsys, "full"); !fi.IsDir {
		t.Fatalf("a directory made by Mkdir vanished with its last child: %+v", fi)
	}
	if err := fsys.Delete(c, "full"); err != nil {
		t.Fatalf("Delete(now empty dir): %v", err)
	}
	wantNames(t, "List after deletes", ListAll(t, fsys, "", 0), "implicit/")
	wantErr(t, "Delete of the root", fsys.Delete(c, ""), ufs.ErrInvalidPath)
}

func testRenameFile(t *testing.T, fsys ufs.FileSystem) {
	c := ctx(t)
	data := content(3000, 9)
	Put(t, fsys, "src", data)
	if err := fsys.Rename(c, "src", "moved/dst"); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	wantGone(t, fsys, "src")
	wantContent(t, fsys, "moved/dst", data)

	// Onto an existing file: replaced.
	Put(t, fsys, "other", []byte("other"))
	if err := fsys.Rename(c, "other", "moved/dst"); err != nil {
		t.Fatalf("Rename over a file: %v", err)
	}
	wantContent(t, fsys, "moved/dst", []byte("other"))
	wantGone(t, fsys, "other")

	// Onto itself: nothing changes.
	if err := fsys.Rename(c, "moved/dst", "moved/dst"); err != nil {
		t.Fatalf("Rename onto itself: %v", err)
	}
	wantContent(t, fsys, "moved/dst", []byte("other"))
}

func testRenameDir(t *testing.T, fsys ufs.FileSystem) {
	c := ctx(t)
	files := map[string][]byte{
		"a/one":        []byte("1"),
		"a/two":        content(5000, 2),
		"a/sub/three":  []byte("3"),
		"a/sub/deep/4": []byte("4"),
		"a/with space": []byte("5"),
		"a-sibling":    []byte("not moved"),
		"a.txt":        []byte("not moved"),
		"a/sub/é 日本語":  []byte("6"),
	}
	for p, d := range files {
		Put(t, fsys, p, d)
	}
	if err := fsys.Mkdir(c, "a/emptydir"); err != nil {
		t.Fatalf("Mkdir: %v", err)
	}
	if err := fsys.Rename(c, "a", "b/renamed"); err != nil {
		t.Fatalf("Rename(dir): %v", err)
	}
	wantGone(t, fsys, "a")
	for p, d := range files {
		if strings.HasPrefix(p, "a/") {
			wantGone(t, fsys, p)
			wantContent(t, fsys, "b/renamed/"+strings.TrimPrefix(p, "a/"), d)
		} else {
			wantContent(t, fsys, p, d)
		}
	}
	if fi := mustStat(t, fsys, "b/renamed/emptydir"); !fi.IsDir {
		t.Fatalf("empty directory not moved: %+v", fi)
	}
	wantNames(t, "List(b/renamed)", ListAll(t, fsys, "b/renamed", 0), "emptydir/", "one", "sub/", "two", "with space")

	// An empty directory made by Mkdir moves too.
	if err := fsys.Mkdir(c, "e"); err != nil {
		t.Fatalf("Mkdir: %v", err)
	}
	if err := fsys.Rename(c, "e", "e2"); err != nil {
		t.Fatalf("Rename(empty dir): %v", err)
	}
	wantGone(t, fsys, "e")
	if fi := mustStat(t, fsys, "e2"); !fi.IsDir {
		t.Fatalf("renamed empty directory: %+v", fi)
	}
}

func testRenameConflicts(t *testing.T, fsys ufs.FileSystem) {
	c := ctx(t)
	Put(t, fsys, "dir/x", []byte("x"))
	Put(t, fsys, "dir2/y", []byte("y"))
	Put(t, fsys, "file", []byte("f"))
	if err := fsys.Mkdir(c, "emptydir"); err != nil {
		t.Fatalf("Mkdir: %v", err)
	}
	cases := []struct {
		name     string
		src, dst string
		want     error
	}{
		{"IntoItself", "dir", "dir/sub", ufs.ErrInvalid},
		{"DirOverFile", "dir", "file", ufs.ErrNotDir},
		{"FileOverDir", "file", "dir2", ufs.ErrIsDir},
		{"DirOverNonEmptyDir", "dir", "dir2", ufs.ErrNotEmpty},
		{"Root", "", "x", ufs.ErrInvalidPath},
	}
	for _, cs := range cases {
		wantErr(t, cs.name, fsys.Rename(c, cs.src, cs.dst), cs.want)
	}
	wantContent(t, fsys, "dir/x", []byte("x"))
	wantContent(t, fsys, "dir2/y", []byte("y"))
	wantContent(t, fsys, "file", []byte("f"))

	// A directory may replace an empty directory.
	if err := fsys.Rename(c, "dir", "emptydir"); err != nil {
		t.Fatalf("Rename over an empty directory: %v", err)
	}
	wantContent(t, fsys, "emptydir/x", []byte("x"))
	wantGone(t, fsys, "dir")
}

func testCopy(t *testing.T, fsys ufs.FileSystem) {
	c := ctx(t)
	data := content(20000, 11)
	Put(t, fsys, "src", data)
	fp, err := fsys.Copy(c, "src", "copies/dst")
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if fp.Size != int64(len(data)) {
		t.Fatalf("Copy fingerprint size %d", fp.Size)
	}
	if st := mustStat(t, fsys, "copies/dst"); !st.Fingerprint.Equal(fp) {
		t.Fatalf("Stat %+v, want Copy's fingerprint %+v", st.Fingerprint, fp)
	}
	wantContent(t, fsys, "src", data)
	wantContent(t, fsys, "copies/dst", data)
	Put(t, fsys, "small", []byte("small"))
	if _, err := fsys.Copy(c, "small", "copies/dst"); err != nil {
		t.Fatalf("Copy over a file: %v", err)
	}
	wantContent(t, fsys, "copies/dst", []byte("small"))
	_, err = fsys.Copy(c, "copies", "elsewhere")
	wantErr(t, "Copy of a directory", err, ufs.ErrIsDir)
}
