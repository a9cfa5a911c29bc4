package fusefs

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
)

// listedDir makes directory name holding count empty files f0, f1, ...
// created directly in the namespace, and returns its inode.
func listedDir(t *testing.T, e *env, name string, count int) meta.Ino {
	t.Helper()
	if err := os.Mkdir(e.path(name), 0o755); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(e.path(name), &st); err != nil {
		t.Fatal(err)
	}
	e.ns.populate(st.Ino, count, func(i int) string { return fmt.Sprintf("f%d", i) })
	return st.Ino
}

// statNames stats dir/f<i> for i in [from, to) and fails on any error.
func statNames(t *testing.T, e *env, dir string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		st, err := os.Lstat(e.path(fmt.Sprintf("%s/f%d", dir, i)))
		if err != nil {
			t.Fatal(err)
		}
		if !st.Mode().IsRegular() || st.Mode().Perm() != 0o644 {
			t.Fatalf("f%d: mode %v", i, st.Mode())
		}
	}
}

// waitListing waits until the mount holds a listing of dir.
func waitListing(t *testing.T, e *env, dir meta.Ino) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !e.m.listings.held(dir) {
		if time.Now().After(deadline) {
			t.Fatal("no listing fetched")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLookupsFromListing checks that a directory whose names are looked up
// one by one is listed once and its other names found in the listing, that
// names missing from it still reach the master, and that a change made
// through the mount drops it.
func TestLookupsFromListing(t *testing.T) {
	e := newEnv(t, Options{AttrTimeout: time.Hour, EntryTimeout: time.Hour})
	dir := listedDir(t, e, "d", 500)
	statNames(t, e, "d", 0, listingAfter)
	waitListing(t, e, dir)
	lookups, readDirs := e.ns.lookups.Load(), e.ns.readDirs.Load()
	statNames(t, e, "d", listingAfter, 500)
	if n := e.ns.lookups.Load() - lookups; n != 0 {
		t.Fatalf("%d lookups reached the master with the listing held", n)
	}
	if n := e.ns.readDirs.Load() - readDirs; n != 0 {
		t.Fatalf("%d more ReadDir calls", n)
	}

	// A name created elsewhere after the listing is found at once.
	e.ns.populate(dir, 1, func(int) string { return "late" })
	if _, err := os.Lstat(e.path("d/late")); err != nil {
		t.Fatalf("a name created after the listing: %v", err)
	}

	// A change through the mount drops the listing.
	if err := os.WriteFile(e.path("other"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if e.m.listings.held(dir) {
		t.Fatal("the listing survived a change made through the mount")
	}
}

// TestListingServedByPage checks that the names of a listing's first page
// are found in it while later pages are still being fetched, and that names
// of pages not yet read ask the master.
func TestListingServedByPage(t *testing.T) {
	e := newEnv(t, Options{AttrTimeout: time.Hour, EntryTimeout: time.Hour, ReadDirPage: 10})
	e.ns.laterPages = make(chan struct{})
	dir := listedDir(t, e, "d", 50)
	statNames(t, e, "d", 0, listingAfter)
	waitListing(t, e, dir)
	// The first page in name order is f0, f1, f10 ... f17; f16 and f17 were
	// not looked up yet.
	lookups := e.ns.lookups.Load()
	statNames(t, e, "d", 16, 18)
	if n := e.ns.lookups.Load() - lookups; n != 0 {
		t.Fatalf("%d lookups of names in the first page reached the master", n)
	}
	statNames(t, e, "d", 40, 41)
	if n := e.ns.lookups.Load() - lookups; n != 1 {
		t.Fatalf("a name of a page not yet read: %d lookups reached the master, want 1", n)
	}
	close(e.ns.laterPages)
}

// TestListingExpires checks that an attribute changed elsewhere is seen once
// the attribute timeout has passed since it was listed, as with the kernel's
// cache alone.
func TestListingExpires(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e := newEnv(t, Options{AttrTimeout: timeout, EntryTimeout: timeout})
	dir := listedDir(t, e, "d", 100)
	statNames(t, e, "d", 0, listingAfter) // the listing is fetched now
	a, err := e.ns.Lookup(t.Context(), dir, "f50")
	if err != nil {
		t.Fatal(err)
	}
	e.ns.mu.Lock()
	_, err = e.ns.mutate(&metapb.SetAttr{Ino: a.Ino, Valid: meta.SetAttrMode, Mode: 0o600})
	e.ns.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(timeout + 50*time.Millisecond)
	st, err := os.Lstat(e.path("d/f50"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v a timeout after it changed, want 0600", st.Mode().Perm())
	}
}

// TestNoListingWithoutTimeouts checks that a mount whose kernel caches
// nothing sends every lookup to the master.
func TestNoListingWithoutTimeouts(t *testing.T) {
	e := newEnv(t, Options{AttrTimeout: time.Nanosecond, EntryTimeout: time.Nanosecond})
	listedDir(t, e, "d", 100)
	lookups := e.ns.lookups.Load()
	statNames(t, e, "d", 0, 100)
	if n := e.ns.lookups.Load() - lookups; n < 100 {
		t.Fatalf("%d lookups reached the master for 100 names", n)
	}
}

// BenchmarkListedStat measures stat of names a directory listing holds,
// each name once.
//
//	go test -run '^$' -bench ListedStat -benchtime 9000x ./fusefs/
func BenchmarkListedStat(b *testing.B) {
	e := newEnv(b, Options{AttrTimeout: time.Hour, EntryTimeout: time.Hour})
	const files = 10000
	if err := os.Mkdir(e.path("d"), 0o755); err != nil {
		b.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(e.path("d"), &st); err != nil {
		b.Fatal(err)
	}
	e.ns.populate(st.Ino, files, func(i int) string { return fmt.Sprintf("f%d", i) })
	dir := st.Ino
	for i := range listingAfter {
		if err := syscall.Lstat(e.path(fmt.Sprintf("d/f%d", i)), &st); err != nil {
			b.Fatal(err)
		}
	}
	for !e.m.listings.held(dir) {
		time.Sleep(time.Millisecond)
	}
	b.ResetTimer()
	if b.N > files-listingAfter {
		b.Fatalf("%d stats: run with -benchtime 9000x or less (each name is stat'ed once)", b.N)
	}
	for i := range b.N {
		if err := syscall.Lstat(e.path(fmt.Sprintf("d/f%d", listingAfter+i)), &st); err != nil {
			b.Fatal(err)
		}
	}
}
