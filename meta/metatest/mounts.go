package metatest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
)

func testMounts(t *testing.T, open func(testing.TB) meta.Store) {
	h := NewH(t, open(t))
	root := h.Must(&metapb.AddMount{Path: "/", Uri: "file:///srv/root"})
	if root.Ino != meta.RootIno || root.Attr.MountID == 0 {
		t.Fatalf("root mount: %+v", root)
	}
	h.Expect(syscall.EBUSY, &metapb.AddMount{Path: "/", Uri: "file:///x"})
	wh := h.Must(&metapb.AddMount{Path: "/warehouse", Uri: "s3://bucket/p",
		Options: map[string]string{"s3.secretAccessKey": "k"}, ReadOnly: true, SyncIntervalNs: 60e9, Uid: 5, Mode: 0o750}).Ino
	if a := h.Attr(wh); a.UID != 5 || a.Mode != 0o750 || a.Loaded || a.MountID == 0 {
		t.Fatalf("mount point attr %+v", a)
	}
	a := h.Mkdir(wh, "a")
	b := h.Mkdir(a, "b")
	h.Must(&metapb.AddMount{Path: "/warehouse/a/b", Uri: "hdfs://nn:8020/x"})
	file := h.Create(b, "f")
	h.Create(a, "g")

	h.view(func(tx meta.Txn) error {
		mounts, err := meta.ListMounts(tx)
		if err != nil || len(mounts) != 3 {
			t.Fatalf("mounts %v %v", mounts, err)
		}
		if m := mounts[1]; m.Path != "/warehouse" || m.URI != "s3://bucket/p" || !m.ReadOnly ||
			m.SyncIntervalNs != 60e9 || m.Options["s3.secretAccessKey"] != "k" || m.RootIno != wh {
			t.Fatalf("mount record %+v", m)
		}
		for path, want := range map[string][2]string{
			"/":                    {"file:///srv/root", ""},
			"/x/y":                 {"file:///srv/root", "x/y"},
			"/warehouse":           {"s3://bucket/p", ""},
			"/warehouse/a/g":       {"s3://bucket/p", "a/g"},
			"/warehouse/a/bb":      {"s3://bucket/p", "a/bb"},
			"/warehouse/a/b/f/z":   {"hdfs://nn:8020/x", "f/z"},
			"/warehouse/a/b":       {"hdfs://nn:8020/x", ""},
			"/warehousex/a/b/f/zz": {"file:///srv/root", "warehousex/a/b/f/zz"},
		} {
			m, rel, err := meta.ResolveMount(tx, path)
			if err != nil || m.URI != want[0] || rel != want[1] {
				t.Fatalf("resolve mount %q: %v %q %v", path, m, rel, err)
			}
		}
		m, rel, err := meta.MountOf(tx, file)
		if err != nil || m.URI != "hdfs://nn:8020/x" || rel != "f" {
			t.Fatalf("mount of file: %v %q %v", m, rel, err)
		}
		m, rel, err = meta.MountOf(tx, a)
		if err != nil || m.URI != "s3://bucket/p" || rel != "a" {
			t.Fatalf("mount of dir: %v %q %v", m, rel, err)
		}
		return nil
	})

	h.Expect(syscall.EBUSY, &metapb.RemoveMount{Path: "/warehouse"})
	h.Expect(syscall.EBUSY, ren(meta.RootIno, "warehouse", meta.RootIno, "w2"))
	h.Expect(syscall.EBUSY, ren(wh, "a", wh, "a2")) // holds the nested mount
	h.Expect(syscall.EBUSY, &metapb.RemoveMount{Path: "/"})
	h.Must(&metapb.RemoveMount{Path: "/warehouse/a/b"})
	if _, en := h.Lookup(a, "b"); en != syscall.ENOENT {
		t.Fatalf("unmounted mount point still listed: %v", en)
	}

	// Unmount drops the whole subtree, a bounded number of inodes per Purge.
	for i := range 300 {
		h.Create(a, "file"+itoa(i))
	}
	sub := h.Mkdir(a, "sub")
	for i := range 50 {
		h.Mkdir(sub, "d"+itoa(i))
	}
	countBefore := inodeCount(h)
	res := h.Must(&metapb.RemoveMount{Path: "/warehouse"})
	if res.Ino != wh {
		t.Fatalf("unmount result %+v", res)
	}
	checkInvariants(t, h.S)
	removed := 0
	for step := 0; ; step++ {
		var pending bool
		h.view(func(tx meta.Txn) error {
			var err error
			pending, err = meta.PurgePending(tx)
			return err
		})
		if !pending {
			break
		}
		if step > 100 {
			t.Fatal("purge does not finish")
		}
		res := h.Must(&metapb.Purge{Max: 64})
		if len(res.Removed) > 64 {
			t.Fatalf("purge removed %d inodes, max 64", len(res.Removed))
		}
		removed += len(res.Removed)
		checkInvariants(t, h.S)
	}
	// The tree under /warehouse: wh, a, g, 300 files, sub and its 50
	// directories; plus b and f from the earlier unmount.
	if want := 1 + 1 + 1 + 300 + 1 + 50 + 2; removed != want {
		t.Fatalf("purged %d inodes, want %d", removed, want)
	}
	if got := inodeCount(h); got != countBefore-uint64(removed) {
		t.Fatalf("inode count %d after purge, before %d", got, countBefore)
	}
	if got := h.Names(meta.RootIno, 10); len(got) != 0 {
		t.Fatalf("root still lists %v", got)
	}
	h.view(func(tx meta.Txn) error {
		mounts, _ := meta.ListMounts(tx)
		if len(mounts) != 1 {
			t.Fatalf("mounts left: %v", mounts)
		}
		return nil
	})
}

func inodeCount(h *H) uint64 {
	var n uint64
	h.view(func(tx meta.Txn) error {
		var err error
		n, err = meta.InodeCount(tx)
		return err
	})
	return n
}

func testLoadDir(t *testing.T, open func(testing.TB) meta.Store) {
	h := NewH(t, open(t))
	m := h.Must(&metapb.AddMount{Path: "/m", Uri: "s3://b"}).Ino
	dirMtime := h.Attr(m).Mtime
	fp := func(size int64, etag string) *metapb.Fingerprint {
		return &metapb.Fingerprint{Size: size, Etag: etag, MtimeNs: 5e9}
	}
	lc := func(name string, typ metapb.FileType, f *metapb.Fingerprint) *metapb.LoadedChild {
		return &metapb.LoadedChild{Name: []byte(name), Type: typ, Ufs: f, Mode: 0o644, Uid: 1, Gid: 2}
	}
	file, dir := metapb.FileType_REGULAR, metapb.FileType_DIRECTORY

	// First load in two pages.
	r := h.Must(load(m, true, false, 0, lc("a", file, fp(1, "a1")), lc("b", file, fp(2, "b1"))))
	gen := r.Gen
	h.Must(load(m, false, true, gen, lc("c", file, fp(3, "c1")), lc("old", dir, nil)))
	if got := h.Names(m, 100); !slices.Equal(got, []string{"a", "b", "c", "old"}) {
		t.Fatalf("after load: %v", got)
	}
	am := h.Attr(m)
	if !am.Loaded || am.LoadedNs != h.Clock || am.Mtime != dirMtime || am.Nlink != 3 {
		t.Fatalf("loaded dir attr %+v", am)
	}
	aIno, _ := h.Lookup(m, "a")
	if a := h.Attr(aIno); a.Size != 1 || a.UFS.ETag != "a1" || a.Mtime != 5e9 || a.Pending || a.UID != 1 || a.Mode != 0o644 {
		t.Fatalf("loaded file attr %+v", a)
	}
	old, _ := h.Lookup(m, "old")
	h.Create(old, "inner")
	h.Mkdir(old, "innerdir")

	// Between loads: a pending file, a symlink and special files exist only in
	// the namespace.
	h.Must(&metapb.CreateFile{Parent: m, Name: []byte("pending"), Persist: metapb.PersistState_PENDING})
	h.Must(sym(m, "link", "a"))
	fifo := h.Must(&metapb.Mknod{Parent: m, Name: []byte("fifo"), Type: metapb.FileType_FIFO, Mode: 0o600}).Ino
	sock := h.Must(&metapb.Mknod{Parent: m, Name: []byte("sock"), Type: metapb.FileType_SOCKET, Mode: 0o600}).Ino
	fifoAttr := h.Attr(fifo)

	// A second load sees a changed, b gone, c become a directory, d new, and
	// an object named like the fifo, which the namespace keeps.
	r = h.Must(load(m, true, false, 0, lc("a", file, fp(10, "a2"))))
	// A load that began earlier is now stale.
	h.Expect(syscall.ESTALE, load(m, false, true, gen, lc("z", file, nil)))
	h.Must(load(m, false, true, r.Gen, lc("c", dir, nil), lc("d", file, fp(4, "d1")), lc("fifo", file, fp(6, "f1"))))
	if got := h.Names(m, 100); !slices.Equal(got, []string{"a", "c", "d", "fifo", "link", "pending", "sock"}) {
		t.Fatalf("after second load: %v", got)
	}
	if ino, _ := h.Lookup(m, "fifo"); ino != fifo {
		t.Fatalf("fifo replaced by the object of its name: inode %d, was %d", ino, fifo)
	}
	if a := h.Attr(fifo); a.Type != meta.TypeFIFO || a.Size != 0 || a.UFS != (meta.Fingerprint{}) ||
		a.Mtime != fifoAttr.Mtime || a.Ctime != fifoAttr.Ctime {
		t.Fatalf("fifo after a load: %+v, was %+v", a, fifoAttr)
	}
	if ino, _ := h.Lookup(m, "sock"); ino != sock {
		t.Fatalf("socket gone after a load that did not list it")
	}
	if a := h.Attr(aIno); a.Size != 10 || a.UFS.ETag != "a2" {
		t.Fatalf("changed file attr %+v", a)
	}
	if cIno, _ := h.Lookup(m, "c"); h.Attr(cIno).Type != meta.TypeDirectory {
		t.Fatal("c did not become a directory")
	}
	if h.Attr(m).Nlink != 3 {
		t.Fatalf("nlink %d", h.Attr(m).Nlink)
	}
	// "old" went to the purge queue with its subtree.
	for {
		var pending bool
		h.view(func(tx meta.Txn) error { pending, _ = meta.PurgePending(tx); return nil })
		if !pending {
			break
		}
		h.Must(&metapb.Purge{Max: 1})
	}
	h.view(func(tx meta.Txn) error {
		if _, err := meta.GetAttr(tx, old); !errnoIs(err, syscall.ENOENT) {
			t.Fatalf("pruned directory still there: %v", err)
		}
		return nil
	})
	checkInvariants(t, h.S)
}

func testRequests(t *testing.T, open func(testing.TB) meta.Store) {
	h := NewH(t, open(t))
	withReq := func(now int64, client, seq uint64, op any) *metapb.Entry {
		e := Entry(now, op)
		e.Request = &metapb.RequestID{Client: client, Seq: seq}
		return e
	}
	create := &metapb.CreateFile{Parent: meta.RootIno, Name: []byte("f")}
	first := h.Must(withReq(1e9, 7, 1, create))
	again := h.Apply(withReq(2e9, 7, 1, create))
	if !again.Replayed || again.Errno != 0 || again.Ino != first.Ino {
		t.Fatalf("retry: %+v, first %+v", again, first)
	}
	if n := inodeCount(h); n != 2 {
		t.Fatalf("retry created again: %d inodes", n)
	}
	// A retried removal still names what it removed.
	rm := &metapb.Unlink{Parent: meta.RootIno, Name: []byte("f")}
	gone := h.Must(withReq(2e9+1, 7, 9, rm))
	if r := h.Apply(withReq(2e9+2, 7, 9, rm)); !r.Replayed || !slices.Equal(r.Removed, gone.Removed) || len(r.Removed) != 1 {
		t.Fatalf("retried unlink: %+v, first %+v", r, gone)
	}
	h.Must(withReq(2e9+3, 7, 10, create))
	// Another sequence number is another request.
	if r := h.Apply(withReq(3e9, 7, 2, create)); r.Errno != syscall.EEXIST || r.Replayed {
		t.Fatalf("new request: %+v", r)
	}
	// A failure is remembered as such.
	if r := h.Apply(withReq(4e9, 7, 2, create)); r.Errno != syscall.EEXIST || !r.Replayed {
		t.Fatalf("retry of failure: %+v", r)
	}
	// Outcomes expire after RequestTTL of entry time.
	late := 5e9 + meta.RequestTTL
	h.Must(withReq(late, 8, 1, &metapb.Mkdir{Parent: meta.RootIno, Name: []byte("d")}))
	if r := h.Apply(withReq(late+1, 7, 1, create)); r.Replayed || r.Errno != syscall.EEXIST {
		t.Fatalf("expired request replayed: %+v", r)
	}
	// A backlog of due outcomes is forgotten over the next entries, at most a
	// second of entry time late.
	base := late + 10e9
	for i := range uint64(20) {
		h.Must(withReq(base+int64(i), 9, i+1, &metapb.Mkdir{Parent: meta.RootIno, Name: fmt.Appendf(nil, "b%d", i)}))
	}
	after := base + meta.RequestTTL + 2e9
	for i := range int64(4) {
		h.Must(withReq(after+i, 10, uint64(i+1), &metapb.Mkdir{Parent: meta.RootIno, Name: fmt.Appendf(nil, "c%d", i)}))
	}
	for i := range uint64(20) {
		r := h.Apply(withReq(after+10, 9, i+1, &metapb.Mkdir{Parent: meta.RootIno, Name: fmt.Appendf(nil, "b%d", i)}))
		if r.Replayed || r.Errno != syscall.EEXIST {
			t.Fatalf("request %d of the backlog replayed after it expired: %+v", i+1, r)
		}
	}
	checkInvariants(t, h.S)
}

func testSnapshot(t *testing.T, open func(testing.TB) meta.Store) {
	h := NewH(t, open(t))
	h.Must(&metapb.AddMount{Path: "/", Uri: "file:///r", Options: map[string]string{"a": "1", "b": "2", "c": "3"}})
	d := h.Mkdir(meta.RootIno, "d")
	for i := range 200 {
		f := h.Create(d, "f"+itoa(i))
		h.Must(xset(f, "user.i", itoa(i), 0))
	}
	h.Must(&metapb.AddMount{Path: "/d/m", Uri: "s3://b"})
	err := h.S.Update(func(tx meta.Txn) error { return meta.SetAppliedIndex(tx, 1234) })
	if err != nil {
		t.Fatal(err)
	}
	want := Dump(t, h.S)

	// A read point does not block writers, and does not see them.
	rp, err := h.S.ReadPoint()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		h.Create(meta.RootIno, "later"+itoa(i))
	}
	var buf bytes.Buffer
	if err := meta.WriteSnapshot(rp, &buf); err != nil {
		t.Fatal(err)
	}
	rp.Release()
	snap := buf.Bytes()

	fresh := open(t)
	if err := meta.RestoreSnapshot(fresh, bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if diff := DiffDumps(want, Dump(t, fresh)); diff != "" {
		t.Fatalf("restored state differs:\n%s", diff)
	}
	checkInvariants(t, fresh)
	// Restoring over a store with content replaces it.
	if err := meta.RestoreSnapshot(h.S, bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if diff := DiffDumps(want, Dump(t, h.S)); diff != "" {
		t.Fatalf("restore over content differs:\n%s", diff)
	}

	// Damaged streams are refused, and the store says a restore is unfinished.
	for name, bad := range map[string][]byte{
		"flipped":   flip(snap, len(snap)/2),
		"truncated": snap[:len(snap)-5],
		"short":     snap[:len(snap)/3],
		"header":    flip(snap, 0),
	} {
		s := open(t)
		err := meta.RestoreSnapshot(s, bytes.NewReader(bad))
		if !errors.Is(err, meta.ErrCorruptSnapshot) {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "header" {
			continue // refused before touching the store
		}
		err = s.View(func(tx meta.Txn) error {
			restoring, err := meta.Restoring(tx)
			if err == nil && !restoring {
				t.Fatalf("%s: store not marked as restoring", name)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}
