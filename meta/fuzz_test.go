package meta_test

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/meta/memstore"
	"github.com/skyfs/skyfs/meta/metatest"
	"github.com/skyfs/skyfs/proto/metapb"
)

// seeds are entries of every kind over the small inode numbers of fuzzStore.
func seeds() []*metapb.Entry {
	ops := []any{
		&metapb.Mkdir{Parent: 1, Name: []byte("x"), Mode: 0o755},
		&metapb.CreateFile{Parent: 2, Name: []byte("y"), Mode: 0o644, Persist: metapb.PersistState_PENDING},
		&metapb.CompleteFile{Ino: 3, Size: 9, Ufs: &metapb.Fingerprint{Size: 9, Etag: "e"}},
		&metapb.Unlink{Parent: 2, Name: []byte("f")},
		&metapb.Rmdir{Parent: 1, Name: []byte("e")},
		&metapb.Rename{OldParent: 2, OldName: []byte("f"), NewParent: 1, NewName: []byte("e"), Flags: 2},
		&metapb.SetAttr{Ino: 3, Valid: 63, Mode: 0o600, Size: 7, AtimeNs: 1, MtimeNs: 2},
		&metapb.Symlink{Parent: 1, Name: []byte("l"), Target: []byte("d/f")},
		&metapb.Link{Ino: 3, NewParent: 1, NewName: []byte("h")},
		&metapb.Mknod{Parent: 2, Name: []byte("p"), Type: metapb.FileType_CHAR_DEVICE, Mode: 0o640, Rdev: 0x103},
		&metapb.SetXattr{Ino: 3, Name: []byte("user.a"), Value: []byte("v"), Flags: 1},
		&metapb.RemoveXattr{Ino: 3, Name: []byte("user.a")},
		&metapb.AddMount{Path: "/e", Uri: "s3://b/p", Options: map[string]string{"k": "v"}},
		&metapb.RemoveMount{Path: "/m"},
		&metapb.LoadDir{Dir: 5, Begin: true, End: true, Children: []*metapb.LoadedChild{
			{Name: []byte("n"), Type: metapb.FileType_REGULAR, Ufs: &metapb.Fingerprint{Size: 1}},
			{Name: []byte("x"), Type: metapb.FileType_DIRECTORY}}},
		&metapb.Purge{Max: 3},
		&metapb.OpenSession{Holder: 4, LeaseNs: 1e12},
		&metapb.GrantRange{Holder: 4, Count: 8},
		&metapb.Delegate{Holder: 4, Dir: 2},
		&metapb.Recall{Dir: 2},
		&metapb.Undelegate{Holder: 4, Dir: 2},
		&metapb.EndSession{Holder: 4},
		&metapb.Batch{Ops: []*metapb.BatchOp{
			{Request: &metapb.RequestID{Client: 2, Seq: 1}, Op: &metapb.BatchOp_CreateFile{CreateFile: &metapb.CreateFile{Parent: 2, Name: []byte("b"), Ino: 9}}},
			{Op: &metapb.BatchOp_CompleteFile{CompleteFile: &metapb.CompleteFile{Ino: 9, Size: 1}}},
			{Op: &metapb.BatchOp_Mkdir{Mkdir: &metapb.Mkdir{Parent: 2, Name: []byte("c")}}},
			{Op: &metapb.BatchOp_Rename{Rename: &metapb.Rename{OldParent: 2, OldName: []byte("b"), NewParent: 2, NewName: []byte("c")}}},
			{Op: &metapb.BatchOp_Unlink{Unlink: &metapb.Unlink{Parent: 2, Name: []byte("f")}}},
		}},
	}
	var out []*metapb.Entry
	for i, op := range ops {
		e := metatest.Entry(int64(i+1)*1e9, op)
		if i%3 == 0 {
			e.Request = &metapb.RequestID{Client: 1, Seq: uint64(i)}
		}
		if i%2 == 0 {
			e.Holder = 4
		}
		out = append(out, e)
	}
	return out
}

func FuzzDecodeEntry(f *testing.F) {
	for _, e := range seeds() {
		b, err := meta.EncodeEntry(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x02})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := meta.DecodeEntry(b)
		if err != nil {
			return
		}
		again, err := meta.EncodeEntry(e)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		e2, err := meta.DecodeEntry(again)
		if err != nil || !proto.Equal(e, e2) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// fuzzStore is a small namespace: /d (2) holding f (3) and sub (4); /m (5) a
// mount holding x (6); /e (7) empty.
func fuzzStore(t testing.TB) *metatest.H {
	h := metatest.NewH(t, memstore.New())
	d := h.Mkdir(meta.RootIno, "d")
	h.Create(d, "f")
	h.Mkdir(d, "sub")
	m := h.Must(&metapb.AddMount{Path: "/m", Uri: "s3://b"}).Ino
	h.Create(m, "x")
	h.Mkdir(meta.RootIno, "e")
	return h
}

func FuzzApply(f *testing.F) {
	for _, e := range seeds() {
		b, err := meta.EncodeEntry(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, b)
	}
	f.Fuzz(func(t *testing.T, first, second []byte) {
		h := fuzzStore(t)
		for _, b := range [][]byte{first, second} {
			e, err := meta.DecodeEntry(b)
			if err != nil {
				continue
			}
			before := metatest.Dump(t, h.S)
			res, err := h.TryApply(e)
			if err != nil {
				t.Fatalf("apply %v: %v", e, err)
			}
			after := metatest.Dump(t, h.S)
			if res.Errno != 0 && !res.Replayed && e.Request == nil {
				if diff := metatest.DiffDumps(before, after); diff != "" {
					t.Fatalf("%v failed with %v and changed:\n%s", e, res.Errno, diff)
				}
			}
			if err := h.S.View(meta.Check); err != nil {
				t.Fatalf("after %v: %v", e, err)
			}
		}
	})
}

func TestEncodeIsDeterministic(t *testing.T) {
	e := metatest.Entry(1, &metapb.AddMount{Path: "/x", Uri: "u", Options: map[string]string{
		"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6"}})
	first, err := meta.EncodeEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		b, _ := meta.EncodeEntry(e)
		if !bytes.Equal(b, first) {
			t.Fatal("entry encoding differs between calls")
		}
	}
}

func TestDecodeRefusesUnknown(t *testing.T) {
	for name, e := range map[string]*metapb.Entry{
		"no version":    {TimeNs: 1, Op: &metapb.Entry_Purge{Purge: &metapb.Purge{Max: 1}}},
		"newer version": {Version: meta.EntryVersion + 1, Op: &metapb.Entry_Purge{Purge: &metapb.Purge{Max: 1}}},
		"no operation":  {Version: meta.EntryVersion},
	} {
		b, _ := proto.Marshal(e)
		if _, err := meta.DecodeEntry(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
		// Apply refuses it too rather than skipping it.
		err := memstore.New().Update(func(tx meta.Txn) error {
			_, err := meta.Apply(tx, e)
			return err
		})
		if err == nil {
			t.Errorf("%s: applied", name)
		}
	}
	// An operation added by a newer version arrives as unknown fields: the oneof
	// is empty, and the entry is refused.
	full, _ := proto.Marshal(&metapb.Entry{Version: 1})
	full = append(full, 0xfa, 0x07, 0x00) // field 127, empty
	if _, err := meta.DecodeEntry(full); err == nil {
		t.Error("entry with an unknown operation decoded")
	}
	// So is a batch with an operation of a kind it does not know.
	batch, _ := proto.Marshal(metatest.Entry(1, &metapb.Batch{Ops: []*metapb.BatchOp{{}}}))
	if _, err := meta.DecodeEntry(batch); err == nil {
		t.Error("batch with an unknown operation decoded")
	}
}
