package ufstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/skyfs/skyfs/ufs"
)

func testRoot(t *testing.T, fsys ufs.FileSystem) {
	fi, err := fsys.Stat(ctx(t), "")
	if err != nil {
		t.Fatalf("Stat(root): %v", err)
	}
	if !fi.IsDir || fi.Path != "" || fi.Name != "" {
		t.Fatalf("Stat(root) = %+v, want a directory with empty path and name", fi)
	}
	if got := ListAll(t, fsys, "", 0); len(got) != 0 {
		t.Fatalf("List of a new root: %q, want nothing", names(got))
	}
}

func testNotFound(t *testing.T, fsys ufs.FileSystem) {
	Put(t, fsys, "file", []byte("x"))
	c := ctx(t)
	ops := []struct {
		name string
		err  func() error
		want error
	}{
		{"Stat", func() error { _, err := fsys.Stat(c, "missing"); return err }, ufs.ErrNotExist},
		{"StatNested", func() error { _, err := fsys.Stat(c, "missing/deeper/x"); return err }, ufs.ErrNotExist},
		{"Open", func() error { _, err := fsys.Open(c, "missing", 0, -1); return err }, ufs.ErrNotExist},
		{"OpenZeroLength", func() error { _, err := fsys.Open(c, "missing", 0, 0); return err }, ufs.ErrNotExist},
		{"List", func() error { _, err := fsys.List(c, "missing", ufs.ListOptions{}); return err }, ufs.ErrNotExist},
		{"ListFile", func() error { _, err := fsys.List(c, "file", ufs.ListOptions{}); return err }, ufs.ErrNotDir},
		{"Delete", func() error { return fsys.Delete(c, "missing") }, ufs.ErrNotExist},
		{"Rename", func() error { return fsys.Rename(c, "missing", "other") }, ufs.ErrNotExist},
		{"Copy", func() error { _, err := fsys.Copy(c, "missing", "other"); return err }, ufs.ErrNotExist},
	}
	for _, op := range ops {
		wantErr(t, op.name, op.err(), op.want)
	}
	wantGone(t, fsys, "other")
}

func testPutStatList(t *testing.T, fsys ufs.FileSystem) {
	data := content(1000, 1)
	fp := Put(t, fsys, "dir/a.txt", data)
	if fp.ETag == "" || fp.ModTime.IsZero() {
		t.Fatalf("Put fingerprint %+v lacks an ETag or ModTime", fp)
	}
	fi := mustStat(t, fsys, "dir/a.txt")
	if fi.IsDir || !fi.Fingerprint.Equal(fp) {
		t.Fatalf("Stat = %+v, want the file with Put's fingerprint %+v", fi, fp)
	}
	list := ListAll(t, fsys, "dir", 0)
	wantNames(t, "List(dir)", list, "a.txt")
	if !list[0].Fingerprint.Equal(fp) || list[0].Path != "dir/a.txt" {
		t.Fatalf("List entry %+v, want path dir/a.txt with fingerprint %+v", list[0], fp)
	}
	wantContent(t, fsys, "dir/a.txt", data)
}

func testOverwrite(t *testing.T, fsys ufs.FileSystem) {
	fp1 := Put(t, fsys, "f", content(4096, 1))
	// Same size, different bytes, written immediately: the fingerprint must still
	// change although the clock may not have ticked.
	fp2 := Put(t, fsys, "f", content(4096, 2))
	if fp1.Equal(fp2) {
		t.Fatalf("overwrite kept the fingerprint %+v", fp1)
	}
	if st := mustStat(t, fsys, "f"); !st.Fingerprint.Equal(fp2) {
		t.Fatalf("Stat after overwrite %+v, want %+v", st.Fingerprint, fp2)
	}
	wantContent(t, fsys, "f", content(4096, 2))

	w, err := fsys.Create(ctx(t), "f")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := w.Write(content(4096, 3)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	fp3, err := w.Close()
	if err != nil {
		t.Fatalf("Writer.Close: %v", err)
	}
	if fp3.Equal(fp2) {
		t.Fatalf("overwrite by a Writer kept the fingerprint %+v", fp2)
	}
	wantContent(t, fsys, "f", content(4096, 3))
}

func testPutShortReader(t *testing.T, fsys ufs.FileSystem) {
	Put(t, fsys, "keep", []byte("old content"))
	cases := []struct {
		name string
		data []byte
		size int64
	}{
		{"Short", []byte("abc"), 10},
		{"Long", []byte("abcdefghijkl"), 4},
		{"NegativeSize", []byte("abc"), -1},
	}
	for _, c := range cases {
		_, err := fsys.Put(ctx(t), "keep", bytes.NewReader(c.data), c.size)
		if err == nil {
			t.Fatalf("%s: Put of %d bytes with size %d succeeded", c.name, len(c.data), c.size)
		}
		wantContent(t, fsys, "keep", []byte("old content"))
	}
	_, err := fsys.Put(ctx(t), "new", strings.NewReader("ab"), 5)
	if err == nil {
		t.Fatalf("Put of a short reader to a new path succeeded")
	}
	wantGone(t, fsys, "new")
}

func testRangedReads(t *testing.T, fsys ufs.FileSystem) {
	data := content(10000, 7)
	Put(t, fsys, "r", data)
	n := int64(len(data))
	cases := []struct {
		name      string
		off, size int64
		want      []byte
	}{
		{"Whole", 0, -1, data},
		{"WholeExact", 0, n, data},
		{"Prefix", 0, 10, data[:10]},
		{"Middle", 4000, 1234, data[4000:5234]},
		{"Tail", 9990, -1, data[9990:]},
		{"PastEnd", 9990, 100, data[9990:]},
		{"LastByte", n - 1, 1, data[n-1:]},
		{"ZeroLength", 5, 0, nil},
		{"ZeroLengthAtStart", 0, 0, nil},
		{"AtEOF", n, -1, nil},
		{"AtEOFWithLength", n, 10, nil},
		{"BeyondEOF", n + 1000, 10, nil},
		{"FarBeyondEOF", 1 << 40, -1, nil},
	}
	for _, c := range cases {
		got := readRange(t, fsys, "r", c.off, c.size)
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s: Open(%d, %d) read %d bytes (sha %s), want %d (sha %s)", c.name, c.off, c.size, len(got), sum(got), len(c.want), sum(c.want))
		}
	}
	_, err := fsys.Open(ctx(t), "r", -1, 10)
	wantErr(t, "Open at a negative offset", err, ufs.ErrInvalid)
	if err := fsys.Mkdir(ctx(t), "d"); err != nil {
		t.Fatalf("Mkdir: %v", err)
	}
	if r, err := fsys.Open(ctx(t), "d", 0, -1); err == nil {
		r.Close()
		t.Fatalf("Open of a directory succeeded")
	}
}

func testOpenIf(t *testing.T, fsys ufs.FileSystem) {
	if _, ok := fsys.(ufs.ConditionalOpener); !ok {
		t.Logf("%T does not implement ufs.ConditionalOpener; checking the Stat fallback", fsys)
	}
	c := ctx(t)
	old := Put(t, fsys, "f", content(3000, 1))
	cur := Put(t, fsys, "f", content(3000, 2))
	ranges := [][2]int64{{0, -1}, {10, 100}, {0, 0}, {3000, 10}, {5000, -1}}
	for _, r := range ranges {
		rc, err := ufs.OpenIf(c, fsys, "f", r[0], r[1], cur)
		if err != nil {
			t.Fatalf("OpenIf(%v) with the current fingerprint: %v", r, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		want := content(3000, 2)[min(r[0], 3000):]
		if r[1] >= 0 {
			want = want[:min(int64(len(want)), r[1])]
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("OpenIf(%v) read %d bytes, %v; want %d", r, len(got), err, len(want))
		}
		_, err = ufs.OpenIf(c, fsys, "f", r[0], r[1], old)
		wantErr(t, fmt.Sprintf("OpenIf(%v) with an old fingerprint", r), err, ufs.ErrStale)
	}
	_, err := ufs.OpenIf(c, fsys, "missing", 0, -1, cur)
	wantErr(t, "OpenIf of a missing file", err, ufs.ErrNotExist)
}

func testEmptyFile(t *testing.T, fsys ufs.FileSystem) {
	fp := Put(t, fsys, "empty", nil)
	if fp.Size != 0 {
		t.Fatalf("empty file size %d", fp.Size)
	}
	if fi := mustStat(t, fsys, "empty"); fi.IsDir || fi.Size != 0 {
		t.Fatalf("Stat(empty) = %+v", fi)
	}
	for _, r := range [][2]int64{{0, -1}, {0, 0}, {0, 10}, {5, 1}} {
		if got := readRange(t, fsys, "empty", r[0], r[1]); len(got) != 0 {
			t.Fatalf("read of an empty file at %v gave %d bytes", r, len(got))
		}
	}
}

func testPagination(t *testing.T, fsys ufs.FileSystem) {
	var want []string
	for i := range 23 {
		name := fmt.Sprintf("f%03d", i)
		Put(t, fsys, "p/"+name, []byte(name))
		want = append(want, name)
	}
	for _, d := range []string{"d1", "f010.d", "zz"} {
		if err := fsys.Mkdir(ctx(t), "p/"+d); err != nil {
			t.Fatalf("Mkdir: %v", err)
		}
		want = append(want, d+"/")
	}
	// A file and a directory whose names sort differently from their keys.
	Put(t, fsys, "p/d1.txt", []byte("x"))
	Put(t, fsys, "p/implicit/child", []byte("x"))
	want = append(want, "d1.txt", "implicit/")
	slices.Sort(want)

	for _, size := range []int{1, 2, 7, 26, 27, 28, 1000, 0} {
		got := ListAll(t, fsys, "p", size)
		if g := names(got); !slices.Equal(g, want) {
			t.Fatalf("page size %d: listing %q, want %q", size, g, want)
		}
		for _, fi := range got {
			if fi.Path != "p/"+fi.Name {
				t.Fatalf("entry %q has path %q", fi.Name, fi.Path)
			}
			if !fi.IsDir && fi.Size != int64(len(fi.Name)) && fi.Name != "d1.txt" {
				t.Fatalf("entry %q has size %d", fi.Name, fi.Size)
			}
		}
	}
	// A cursor can be resumed later: list the first page, add nothing, and
	// continue from its cursor with a different page size.
	first, err := fsys.List(ctx(t), "p", ufs.ListOptions{PageSize: 5})
	if err != nil || len(first.Entries) == 0 || first.Next == "" {
		t.Fatalf("first page: %+v, %v", first, err)
	}
	rest := ListAllFrom(t, fsys, "p", first.Next, 9)
	if g := append(names(first.Entries), names(rest)...); !slices.Equal(g, want) {
		t.Fatalf("resumed listing %q, want %q", g, want)
	}
}

// ListAllFrom lists dir from cursor to the end.
func ListAllFrom(t *testing.T, fsys ufs.FileSystem, dir, cursor string, pageSize int) []ufs.FileInfo {
	t.Helper()
	var all []ufs.FileInfo
	for cursor != "" {
		page, err := fsys.List(ctx(t), dir, ufs.ListOptions{Cursor: cursor, PageSize: pageSize})
		if err != nil {
			t.Fatalf("List(%q) from %q: %v", dir, cursor, err)
		}
		all = append(all, page.Entries...)
		cursor = page.Next
	}
	return all
}

func testCapabilities(t *testing.T, fsys ufs.FileSystem) {
	c := fsys.Capabilities()
	if c.MaxNameBytes < ufs.MaxNameBytes {
		t.Fatalf("MaxNameBytes %d, want at least %d", c.MaxNameBytes, ufs.MaxNameBytes)
	}
	if _, ok := fsys.(ufs.Linker); ok != c.HardLinks {
		t.Fatalf("HardLinks %v but implements Linker: %v", c.HardLinks, ok)
	}
}

// testMaxPathBytes: a directory and a file whose paths have exactly
// Capabilities.MaxPathBytes bytes are made; a path one byte longer is
// refused (ErrNameTooLong) and leaves nothing, and so is the rename of a
// directory that would make a path below it one byte longer.
func testMaxPathBytes(t *testing.T, fsys ufs.FileSystem) {
	max := fsys.Capabilities().MaxPathBytes
	if max == 0 {
		t.Skip("no limit on paths")
	}
	c := ctx(t)
	dir := ""
	for i := 0; max-len(dir)-1 > 250; i++ {
		dir = ufs.Join(dir, strings.Repeat(string(rune('a'+i%26)), 200))
		if err := fsys.Mkdir(c, dir); err != nil {
			t.Fatalf("mkdir of %d bytes: %v", len(dir), err)
		}
	}
	last := max - len(dir)
	if dir != "" {
		last--
	}
	if err := fsys.Mkdir(c, ufs.Join(dir, strings.Repeat("d", last))); err != nil {
		t.Fatalf("mkdir of %d bytes, the limit: %v", max, err)
	}
	if _, err := fsys.Put(c, ufs.Join(dir, strings.Repeat("f", last)), bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatalf("put of %d bytes, the limit: %v", max, err)
	}
	if err := fsys.Mkdir(c, ufs.Join(dir, strings.Repeat("e", last+1))); !errors.Is(err, ufs.ErrNameTooLong) {
		t.Fatalf("mkdir of %d bytes, past the limit: %v, want ErrNameTooLong", max+1, err)
	}
	if _, err := fsys.Put(c, ufs.Join(dir, strings.Repeat("g", last+1)), bytes.NewReader([]byte("x")), 1); !errors.Is(err, ufs.ErrNameTooLong) {
		t.Fatalf("put of %d bytes, past the limit: %v, want ErrNameTooLong", max+1, err)
	}
	if dir != "" {
		top, _, _ := strings.Cut(dir, "/")
		if err := fsys.Rename(c, top, top+"x"); !errors.Is(err, ufs.ErrNameTooLong) {
			t.Fatalf("rename of %s making a path below it %d bytes: %v, want ErrNameTooLong", top, max+1, err)
		}
		if _, err := fsys.Stat(c, top+"x"); !errors.Is(err, ufs.ErrNotExist) {
			t.Fatalf("%sx after a refused rename: %v", top, err)
		}
	}
	if got := names(ListAll(t, fsys, dir, 0)); len(got) != 2 {
		t.Fatalf("%s after refusals: %v", dir, got)
	}
}

// readAllCtx reads a whole file with an explicit context, for cancellation tests.
func readAllCtx(c context.Context, fsys ufs.FileSystem, p string) ([]byte, error) {
	r, err := fsys.Open(c, p, 0, -1)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil && !errors.Is(err, io.EOF) {
		return b, err
	}
	return b, nil
}
