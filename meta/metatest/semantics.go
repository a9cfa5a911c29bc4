package metatest

import (
	"bytes"
	"slices"
	"syscall"
	"testing"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
)

// view runs fn in a read transaction, failing the test on error.
func (h *H) view(fn func(tx meta.Txn) error) {
	h.T.Helper()
	if err := h.S.View(fn); err != nil {
		h.T.Fatal(err)
	}
}

// check runs meta.Check.
func checkInvariants(t testing.TB, s meta.Store) {
	t.Helper()
	if err := s.View(meta.Check); err != nil {
		t.Fatalf("invariants: %v", err)
	}
}

func testSemantics(t *testing.T, open func(testing.TB) meta.Store) {
	h := NewH(t, open(t))
	res := h.Must(&metapb.Mkdir{Parent: meta.RootIno, Name: []byte("d"), Mode: 0o40755 | 0o1000, Uid: 7, Gid: 8})
	d := res.Ino
	if a := h.Attr(d); a.Mode != 0o1755 || a.UID != 7 || a.GID != 8 || a.Nlink != 2 || a.Type != meta.TypeDirectory ||
		a.Mtime != h.Clock || a.Ctime != h.Clock || a.Atime != h.Clock || !a.Loaded {
		t.Fatalf("mkdir attr %+v", a)
	}
	if a := h.Attr(meta.RootIno); a.Nlink != 3 || a.Mtime != h.Clock {
		t.Fatalf("root after mkdir: %+v", a)
	}

	// Hard links: nlink counts names; the record follows the surviving link.
	f := h.Must(&metapb.CreateFile{Parent: d, Name: []byte("f"), Mode: 0o644, Persist: metapb.PersistState_PENDING}).Ino
	if a := h.Attr(f); !a.Pending || a.Size != 0 || a.Nlink != 1 {
		t.Fatalf("create attr %+v", a)
	}
	h.Must(&metapb.Link{Ino: f, NewParent: meta.RootIno, NewName: []byte("hl")})
	if a := h.Attr(f); a.Nlink != 2 || a.Ctime != h.Clock {
		t.Fatalf("after link: %+v", a)
	}
	h.Must(&metapb.Unlink{Parent: d, Name: []byte("f")})
	if a := h.Attr(f); a.Nlink != 1 {
		t.Fatalf("after unlink of one link: %+v", a)
	}
	h.view(func(tx meta.Txn) error {
		p, err := meta.PathOf(tx, f)
		if err != nil || p != "/hl" {
			t.Fatalf("path of surviving link: %q %v", p, err)
		}
		return nil
	})

	// Complete and truncate.
	h.Must(&metapb.CompleteFile{Ino: f, Size: 42, Ufs: &metapb.Fingerprint{Size: 42, Etag: "x"}})
	if a := h.Attr(f); a.Pending || a.Size != 42 || a.UFS.ETag != "x" || a.Mtime != h.Clock || a.Ctime != h.Clock {
		t.Fatalf("after complete: %+v", a)
	}
	// With the time of the last write, ctime is that time too, but never
	// earlier than it was nor later than the entry.
	completed := h.Attr(f).Ctime
	h.Must(&metapb.CompleteFile{Ino: f, Size: 42, Ufs: &metapb.Fingerprint{Size: 42, Etag: "x"}, MtimeNs: 77})
	if a := h.Attr(f); a.Mtime != 77 || a.Ctime != completed {
		t.Fatalf("complete with an explicit earlier time: %+v (ctime was %d)", a, completed)
	}
	wrote := h.Clock + 4e8 // between the last entry and the next one
	h.Must(&metapb.CompleteFile{Ino: f, Size: 43, Ufs: &metapb.Fingerprint{Size: 43, Etag: "y"}, MtimeNs: wrote})
	if a := h.Attr(f); a.Mtime != wrote || a.Ctime != wrote {
		t.Fatalf("complete with the last write's time %d: %+v", wrote, a)
	}
	ahead := h.Clock + 60e9 // a writer's clock ahead of the leader's
	h.Must(&metapb.CompleteFile{Ino: f, Size: 42, Ufs: &metapb.Fingerprint{Size: 42, Etag: "x"}, MtimeNs: ahead})
	if a := h.Attr(f); a.Mtime != ahead || a.Ctime != h.Clock {
		t.Fatalf("complete with a time past the entry's: %+v", a)
	}
	// A file created and closed without a write: its upload is recorded with
	// the create's mtime and changes neither time.
	ef := h.Must(&metapb.CreateFile{Parent: d, Name: []byte("empty"), Persist: metapb.PersistState_PENDING}).Ino
	made := h.Attr(ef)
	h.Must(&metapb.CompleteFile{Ino: ef, Ufs: &metapb.Fingerprint{Etag: "e"}, MtimeNs: made.Mtime})
	if a := h.Attr(ef); a.Pending || a.Mtime != made.Mtime || a.Ctime != made.Ctime {
		t.Fatalf("complete without a write: %+v, created %+v", a, made)
	}
	h.Must(&metapb.Unlink{Parent: d, Name: []byte("empty")})
	before := h.Attr(f)
	h.Must(&metapb.SetAttr{Ino: f, Valid: meta.SetAttrMode, Mode: 0o600})
	if a := h.Attr(f); a.Mode != 0o600 || a.Mtime != before.Mtime || a.Ctime != h.Clock {
		t.Fatalf("chmod: %+v", a)
	}
	h.Must(&metapb.SetAttr{Ino: f, Valid: meta.SetAttrSize | meta.SetAttrUID | meta.SetAttrGID, Size: 5, Uid: 3, Gid: 4})
	if a := h.Attr(f); a.Size != 5 || a.UID != 3 || a.GID != 4 || a.Mtime != h.Clock {
		t.Fatalf("truncate: %+v", a)
	}
	h.Must(&metapb.SetAttr{Ino: f, Valid: meta.SetAttrAtime | meta.SetAttrMtime, AtimeNs: 11, MtimeNs: 12})
	if a := h.Attr(f); a.Atime != 11 || a.Mtime != 12 || a.Ctime != h.Clock {
		t.Fatalf("utimens: %+v", a)
	}

	// Symlinks.
	s := h.Must(&metapb.Symlink{Parent: d, Name: []byte("s"), Target: []byte("../hl"), Uid: 9}).Ino
	if a := h.Attr(s); a.Type != meta.TypeSymlink || string(a.Target) != "../hl" || a.Size != 5 || a.Mode != 0o777 || a.UID != 9 {
		t.Fatalf("symlink: %+v", a)
	}

	// Special files: rdev only for devices; they link, rename and go like
	// files.
	dirBefore := h.Attr(d)
	p := h.Must(&metapb.Mknod{Parent: d, Name: []byte("p"), Type: metapb.FileType_FIFO, Mode: 0o4640, Uid: 5, Gid: 6, Rdev: 9}).Ino
	if a := h.Attr(p); a.Type != meta.TypeFIFO || a.Mode != 0o4640 || a.UID != 5 || a.GID != 6 || a.Rdev != 0 ||
		a.Nlink != 1 || a.Size != 0 || a.Atime != h.Clock || a.Mtime != h.Clock || a.Ctime != h.Clock {
		t.Fatalf("mkfifo: %+v", a)
	}
	if a := h.Attr(d); a.Nlink != dirBefore.Nlink || a.Mtime != h.Clock || a.Ctime != h.Clock {
		t.Fatalf("directory after mkfifo: %+v", a)
	}
	for _, typ := range []metapb.FileType{metapb.FileType_CHAR_DEVICE, metapb.FileType_BLOCK_DEVICE, metapb.FileType_SOCKET} {
		rdev := uint32(0x1234_5678)
		res := h.Must(&metapb.Mknod{Parent: d, Name: []byte(typ.String()), Type: typ, Mode: 0o600, Rdev: rdev})
		if typ == metapb.FileType_SOCKET {
			rdev = 0
		}
		if a := h.Attr(res.Ino); a.Type != meta.FileType(typ) || a.Rdev != rdev || !a.Type.Special() {
			t.Fatalf("mknod %v: %+v", typ, a)
		}
	}
	h.Must(&metapb.Link{Ino: p, NewParent: meta.RootIno, NewName: []byte("p2")})
	if a := h.Attr(p); a.Nlink != 2 || a.Ctime != h.Clock || a.Type != meta.TypeFIFO {
		t.Fatalf("link of a fifo: %+v", a)
	}
	h.Must(ren(d, "p", d, "CHAR_DEVICE"))
	h.Must(&metapb.Unlink{Parent: meta.RootIno, Name: []byte("p2")})
	if a := h.Attr(p); a.Nlink != 1 || a.Ctime != h.Clock {
		t.Fatalf("fifo after rename and unlink: %+v", a)
	}

	// Extended attributes.
	h.Must(xset(f, "user.b", "2", 0))
	h.Must(xset(f, "user.a", "1", meta.XattrCreate))
	h.Must(xset(f, "user.a", "one", meta.XattrReplace))
	h.view(func(tx meta.Txn) error {
		names, err := meta.ListXattr(tx, f)
		if err != nil || len(names) != 2 || string(names[0]) != "user.a" || string(names[1]) != "user.b" {
			t.Fatalf("listxattr: %q %v", names, err)
		}
		v, err := meta.GetXattr(tx, f, []byte("user.a"))
		if err != nil || string(v) != "one" {
			t.Fatalf("getxattr: %q %v", v, err)
		}
		if _, err := meta.GetXattr(tx, f, []byte("user.zz")); !errnoIs(err, syscall.ENODATA) {
			t.Fatalf("getxattr missing: %v", err)
		}
		return nil
	})

	// Rename over a file drops the target and its attributes.
	g := h.Create(d, "g")
	h.Must(xset(g, "user.g", "1", 0))
	res = h.Must(ren(meta.RootIno, "hl", d, "g"))
	if !slices.Contains(res.Removed, g) {
		t.Fatalf("rename over g: removed %v", res.Removed)
	}
	h.view(func(tx meta.Txn) error {
		if _, err := meta.GetAttr(tx, g); !errnoIs(err, syscall.ENOENT) {
			t.Fatalf("replaced inode still there: %v", err)
		}
		if _, err := meta.ListXattr(tx, g); !errnoIs(err, syscall.ENOENT) {
			t.Fatalf("xattrs of replaced inode: %v", err)
		}
		return nil
	})

	// Directories moving between parents carry their ".." link along.
	e := h.Mkdir(meta.RootIno, "e")
	sub := h.Mkdir(d, "sub")
	h.Must(ren(d, "sub", e, "sub"))
	if h.Attr(d).Nlink != 2 || h.Attr(e).Nlink != 3 {
		t.Fatalf("nlink after dir move: d %d e %d", h.Attr(d).Nlink, h.Attr(e).Nlink)
	}
	// Exchange a directory and a file across parents.
	h.Must(renf(e, "sub", d, "g", meta.RenameExchange))
	if h.Attr(d).Nlink != 3 || h.Attr(e).Nlink != 2 {
		t.Fatalf("nlink after exchange: d %d e %d", h.Attr(d).Nlink, h.Attr(e).Nlink)
	}
	if ino, _ := h.Lookup(d, "g"); ino != sub {
		t.Fatalf("d/g is %d, want the directory %d", ino, sub)
	}
	if ino, _ := h.Lookup(e, "sub"); ino != f {
		t.Fatalf("e/sub is %d, want the file %d", ino, f)
	}
	// Rename a directory over an empty one.
	h.Mkdir(e, "empty")
	res = h.Must(ren(d, "g", e, "empty"))
	if h.Attr(d).Nlink != 2 || h.Attr(e).Nlink != 3 || len(res.Removed) != 1 {
		t.Fatalf("dir over empty dir: d %d e %d removed %v", h.Attr(d).Nlink, h.Attr(e).Nlink, res.Removed)
	}
	h.view(func(tx meta.Txn) error {
		p, err := meta.PathOf(tx, sub)
		if err != nil || p != "/e/empty" {
			t.Fatalf("path of moved dir: %q %v", p, err)
		}
		a, err := meta.Resolve(tx, "//e//empty/")
		if err != nil || a.Ino != sub {
			t.Fatalf("resolve: %+v %v", a, err)
		}
		for p, want := range map[string]syscall.Errno{
			"/e/nothere": syscall.ENOENT, "/e/sub/x": syscall.ENOTDIR, "e": syscall.EINVAL,
			"/e/../d": syscall.EINVAL, "/a\x00": syscall.EINVAL, "/" + string(name(256)): syscall.ENAMETOOLONG,
		} {
			if _, err := meta.Resolve(tx, p); !errnoIs(err, want) {
				t.Fatalf("resolve %q: %v, want %v", p, err, want)
			}
		}
		return nil
	})
	checkInvariants(t, h.S)
}

func errnoIs(err error, want syscall.Errno) bool {
	en, ok := meta.Errno(err)
	return ok && en == want
}

func testReadDirPages(t *testing.T, open func(testing.TB) meta.Store) {
	h := NewH(t, open(t))
	d := h.Mkdir(meta.RootIno, "big")
	const n = 3000
	var want []string
	for i := range n {
		nm := string(rune('a'+i%26)) + "-" + itoa(i)
		want = append(want, nm)
	}
	// Many creates per transaction, as a journal batch does.
	for i := 0; i < n; i += 500 {
		err := h.S.Update(func(tx meta.Txn) error {
			for _, nm := range want[i:min(i+500, n)] {
				h.Clock++
				res, err := meta.Apply(tx, Entry(h.Clock, &metapb.CreateFile{Parent: d, Name: []byte(nm)}))
				if err != nil || res.Errno != 0 {
					t.Fatalf("create %s: %v %v", nm, err, res.Errno)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(want)
	for _, page := range []int{1, 7, 100, meta.MaxReadDirPage} {
		if got := h.Names(d, page); !slices.Equal(got, want) {
			t.Fatalf("page %d: %d names, want %d", page, len(got), len(want))
		}
	}

	// The cursor is a name: a listing goes on correctly while the directory
	// changes around it.
	var first []meta.DirEntry
	h.view(func(tx meta.Txn) error {
		var err error
		first, _, err = meta.ReadDir(tx, d, nil, 10, true)
		return err
	})
	for _, e := range first {
		if e.Attr == nil || e.Attr.Ino != e.Ino || e.Attr.Type != meta.TypeRegular {
			t.Fatalf("readdirplus entry %+v", e)
		}
	}
	cursor := first[len(first)-1].Name
	h.Must(&metapb.Unlink{Parent: d, Name: []byte(want[0])})  // before the cursor
	h.Must(&metapb.Unlink{Parent: d, Name: []byte(want[20])}) // after it
	h.Create(d, "a")                                          // sorts before the cursor
	h.Create(d, "zzz")                                        // sorts after it
	var rest []string
	for after := cursor; ; {
		var ents []meta.DirEntry
		var more bool
		h.view(func(tx meta.Txn) error {
			var err error
			ents, more, err = meta.ReadDir(tx, d, after, 333, false)
			return err
		})
		for _, e := range ents {
			rest = append(rest, string(e.Name))
			after = e.Name
		}
		if !more {
			break
		}
	}
	wantRest := append(slices.Clone(want[10:20]), want[21:]...)
	wantRest = append(wantRest, "zzz")
	if !slices.Equal(rest, wantRest) {
		t.Fatalf("listing across changes: %d names, want %d", len(rest), len(wantRest))
	}

	h.view(func(tx meta.Txn) error {
		if _, _, err := meta.ReadDir(tx, d, nil, 0, false); !errnoIs(err, syscall.EINVAL) {
			t.Fatalf("page 0: %v", err)
		}
		if _, _, err := meta.ReadDir(tx, d, nil, meta.MaxReadDirPage+1, false); !errnoIs(err, syscall.EINVAL) {
			t.Fatalf("huge page: %v", err)
		}
		f, _ := meta.Lookup(tx, d, []byte("a"))
		if _, _, err := meta.ReadDir(tx, f.Ino, nil, 10, false); !errnoIs(err, syscall.ENOTDIR) {
			t.Fatalf("readdir of a file: %v", err)
		}
		ents, more, err := meta.ReadDir(tx, d, []byte("zzz"), 10, false)
		if err != nil || len(ents) != 0 || more {
			t.Fatalf("past the end: %v %v %v", ents, more, err)
		}
		return nil
	})
	checkInvariants(t, h.S)
}

func itoa(i int) string {
	var b []byte
	for {
		b = append(b, byte('0'+i%10))
		i /= 10
		if i == 0 {
			break
		}
	}
	slices.Reverse(b)
	return string(b)
}

func testBatchIsolation(t *testing.T, open func(testing.TB) meta.Store) {
	h := NewH(t, open(t))
	ops := []any{
		&metapb.CreateFile{Parent: meta.RootIno, Name: []byte("a")},
		&metapb.CreateFile{Parent: meta.RootIno, Name: []byte("a")},
		&metapb.Mkdir{Parent: meta.RootIno, Name: []byte("b")},
		&metapb.Rename{OldParent: meta.RootIno, OldName: []byte("a"), NewParent: meta.RootIno, NewName: []byte("b")},
		&metapb.Rename{OldParent: meta.RootIno, OldName: []byte("a"), NewParent: meta.RootIno, NewName: []byte("c")},
	}
	want := []syscall.Errno{0, syscall.EEXIST, 0, syscall.EISDIR, 0}
	err := h.S.Update(func(tx meta.Txn) error {
		for i, op := range ops {
			res, err := meta.Apply(tx, Entry(int64(i+1), op))
			if err != nil {
				return err
			}
			if res.Errno != want[i] {
				t.Fatalf("op %d: %v, want %v", i, res.Errno, want[i])
			}
		}
		return meta.SetAppliedIndex(tx, 77)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Names(meta.RootIno, 10); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("names %v", got)
	}
	h.view(func(tx meta.Txn) error {
		if idx, err := meta.AppliedIndex(tx); err != nil || idx != 77 {
			t.Fatalf("applied index %d %v", idx, err)
		}
		return nil
	})

	// A failed transaction keeps nothing, not even the entries that succeeded.
	boom := bytes.ErrTooLarge
	err = h.S.Update(func(tx meta.Txn) error {
		if _, err := meta.Apply(tx, Entry(9, &metapb.Mkdir{Parent: meta.RootIno, Name: []byte("x")})); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("update: %v", err)
	}
	if _, en := h.Lookup(meta.RootIno, "x"); en != syscall.ENOENT {
		t.Fatalf("aborted mkdir visible: %v", en)
	}
	checkInvariants(t, h.S)
}
