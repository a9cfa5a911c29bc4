// Package ufstest is the contract suite that every ufs backend passes: Run(t, newFS)
// exercises a fresh FileSystem per case through the ufs.FileSystem interface only,
// so the behaviour written down in package ufs holds the same on a local directory,
// S3 and HDFS.
//
// It owns no backend and must never import one, nor reach behind the interface; a
// backend's own tests check what it wrote with an independent client.
package ufstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skyfs/skyfs/ufs"
)

// Run runs the contract suite. newFS must return a new, empty FileSystem on each
// call (a fresh directory, bucket or prefix), safe for concurrent use; subtests run
// in parallel.
func Run(t *testing.T, newFS func(t *testing.T) ufs.FileSystem) {
	t.Helper()
	cases := []struct {
		name string
		fn   func(t *testing.T, fsys ufs.FileSystem)
	}{
		{"Root", testRoot},
		{"NotFound", testNotFound},
		{"PutStatList", testPutStatList},
		{"Overwrite", testOverwrite},
		{"PutShortReader", testPutShortReader},
		{"RangedReads", testRangedReads},
		{"OpenIf", testOpenIf},
		{"EmptyFile", testEmptyFile},
		{"Writer", testWriter},
		{"WriterSmall", testWriterSmall},
		{"WriterAbort", testWriterAbort},
		{"WriterCancel", testWriterCancel},
		{"Mkdir", testMkdir},
		{"ImplicitParents", testImplicitParents},
		{"Delete", testDelete},
		{"RenameFile", testRenameFile},
		{"RenameDir", testRenameDir},
		{"RenameConflicts", testRenameConflicts},
		{"Copy", testCopy},
		{"Pagination", testPagination},
		{"Names", testNames},
		{"BadPaths", testBadPaths},
		{"Capabilities", testCapabilities},
		{"MaxPathBytes", testMaxPathBytes},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fsys := newFS(t)
			c.fn(t, fsys)
		})
	}
}

// ctx returns a context that ends with the test or after a minute.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// content returns n deterministic bytes that differ with seed.
func content(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// Put stores data at p and fails the test on error.
func Put(t *testing.T, fsys ufs.FileSystem, p string, data []byte) ufs.Fingerprint {
	t.Helper()
	fp, err := fsys.Put(ctx(t), p, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("Put(%q): %v", p, err)
	}
	if fp.Size != int64(len(data)) {
		t.Fatalf("Put(%q) fingerprint size %d, want %d", p, fp.Size, len(data))
	}
	return fp
}

// ReadAll reads the whole file at p.
func ReadAll(t *testing.T, fsys ufs.FileSystem, p string) []byte {
	t.Helper()
	return readRange(t, fsys, p, 0, -1)
}

func readRange(t *testing.T, fsys ufs.FileSystem, p string, off, n int64) []byte {
	t.Helper()
	r, err := fsys.Open(ctx(t), p, off, n)
	if err != nil {
		t.Fatalf("Open(%q, %d, %d): %v", p, off, n, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q [%d,+%d): %v", p, off, n, err)
	}
	return b
}

// ListAll lists dir completely with the given page size.
func ListAll(t *testing.T, fsys ufs.FileSystem, dir string, pageSize int) []ufs.FileInfo {
	t.Helper()
	var all []ufs.FileInfo
	opts := ufs.ListOptions{PageSize: pageSize}
	for i := 0; ; i++ {
		if i > 100000 {
			t.Fatalf("List(%q) does not end", dir)
		}
		page, err := fsys.List(ctx(t), dir, opts)
		if err != nil {
			t.Fatalf("List(%q, %+v): %v", dir, opts, err)
		}
		if pageSize > 0 && len(page.Entries) > pageSize {
			t.Fatalf("List(%q) page of %d entries, page size %d", dir, len(page.Entries), pageSize)
		}
		all = append(all, page.Entries...)
		if page.Next == "" {
			return all
		}
		if page.Next == opts.Cursor {
			t.Fatalf("List(%q) returned its own cursor %q as Next", dir, page.Next)
		}
		opts.Cursor = page.Next
	}
}

func names(infos []ufs.FileInfo) []string {
	var s []string
	for _, fi := range infos {
		n := fi.Name
		if fi.IsDir {
			n += "/"
		}
		s = append(s, n)
	}
	return s
}

func mustStat(t *testing.T, fsys ufs.FileSystem, p string) ufs.FileInfo {
	t.Helper()
	fi, err := fsys.Stat(ctx(t), p)
	if err != nil {
		t.Fatalf("Stat(%q): %v", p, err)
	}
	if fi.Path != p || fi.Name != ufs.Base(p) {
		t.Fatalf("Stat(%q) Path=%q Name=%q", p, fi.Path, fi.Name)
	}
	return fi
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
	if err != nil && strings.ContainsAny(err.Error(), "\n\r") {
		t.Fatalf("%s: error is not one line: %q", what, err)
	}
}

func wantGone(t *testing.T, fsys ufs.FileSystem, p string) {
	t.Helper()
	_, err := fsys.Stat(ctx(t), p)
	wantErr(t, fmt.Sprintf("Stat(%q) of a removed path", p), err, ufs.ErrNotExist)
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return fmt.Sprintf("%x", h[:8])
}

func wantContent(t *testing.T, fsys ufs.FileSystem, p string, want []byte) {
	t.Helper()
	got := ReadAll(t, fsys, p)
	if !bytes.Equal(got, want) {
		t.Fatalf("content of %q: %d bytes sha %s, want %d bytes sha %s", p, len(got), sum(got), len(want), sum(want))
	}
}

func wantNames(t *testing.T, what string, got []ufs.FileInfo, want ...string) {
	t.Helper()
	g := names(got)
	if !slices.Equal(g, want) {
		t.Fatalf("%s: entries %q, want %q", what, g, want)
	}
}
