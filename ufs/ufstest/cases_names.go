package ufstest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/skyfs/skyfs/ufs"
)

// Names that must survive a round trip through every backend.
var goodNames = []string{
	"with space",
	" leading and trailing ",
	"é 日本語 ü",
	"emoji 🙂",
	"plus+percent%20hash#question?amp&",
	"tilde~quote'dq\"back\\slash",
	"colon:semi;comma,eq=",
	"brackets[](){}<>",
	strings.Repeat("a", ufs.MaxNameBytes),
	strings.Repeat("é", ufs.MaxNameBytes/2) + "x", // 255 bytes of two-byte runes
	".hidden",
	"...",
	"-dash",
}

func testNames(t *testing.T, fsys ufs.FileSystem) {
	c := ctx(t)
	forbidden := fsys.Capabilities().ForbiddenNameChars
	var usable []string
	for _, name := range goodNames {
		if forbidden != "" && strings.ContainsAny(name, forbidden) {
			_, err := fsys.Put(c, name, bytes.NewReader(nil), 0)
			wantErr(t, "Put of a name with a forbidden character", err, ufs.ErrInvalidPath)
			continue
		}
		usable = append(usable, name)
	}
	for i, name := range usable {
		data := []byte{byte(i), 'n'}
		dir := fmt.Sprintf("dir %02d", i)
		p := dir + "/" + name
		Put(t, fsys, p, data)
		fi := mustStat(t, fsys, p)
		if fi.Size != int64(len(data)) {
			t.Fatalf("Stat(%q) size %d", p, fi.Size)
		}
		wantContent(t, fsys, p, data)
		list := ListAll(t, fsys, dir, 0)
		wantNames(t, "List("+dir+")", list, name)
		dst := p
		if len(name) < ufs.MaxNameBytes {
			dst += "2"
		}
		if err := fsys.Rename(c, p, dst); err != nil {
			t.Fatalf("Rename(%q): %v", p, err)
		}
	}
	var want []string
	for i := range usable {
		want = append(want, fmt.Sprintf("dir %02d/", i))
	}
	got := names(ListAll(t, fsys, "", 3))
	if !slices.Equal(got, want) {
		t.Fatalf("root listing %q, want %q", got, want)
	}
	for i, name := range usable {
		dst := fmt.Sprintf("dir %02d/%s", i, name)
		if len(name) < ufs.MaxNameBytes {
			dst += "2"
		}
		wantContent(t, fsys, dst, []byte{byte(i), 'n'})
	}
}

// badPaths are refused by every method of every backend.
var badPaths = []string{
	"/abs",
	"a/../b",
	"..",
	".",
	"a/./b",
	"a//b",
	"trailing/",
	"nul\x00byte",
	"bad\xffutf8",
	strings.Repeat("b", ufs.MaxNameBytes+1),
	"ok/" + strings.Repeat("é", 128),
}

func testBadPaths(t *testing.T, fsys ufs.FileSystem) {
	c := ctx(t)
	Put(t, fsys, "good", []byte("x"))
	for _, p := range badPaths {
		ops := []struct {
			name string
			err  error
		}{
			{"Stat", func() error { _, err := fsys.Stat(c, p); return err }()},
			{"List", func() error { _, err := fsys.List(c, p, ufs.ListOptions{}); return err }()},
			{"Open", func() error { _, err := fsys.Open(c, p, 0, -1); return err }()},
			{"Put", func() error { _, err := fsys.Put(c, p, bytes.NewReader([]byte("x")), 1); return err }()},
			{"Create", func() error {
				w, err := fsys.Create(c, p)
				if err == nil {
					w.Abort()
				}
				return err
			}()},
			{"Delete", fsys.Delete(c, p)},
			{"Mkdir", fsys.Mkdir(c, p)},
			{"RenameFrom", fsys.Rename(c, p, "x")},
			{"RenameTo", fsys.Rename(c, "good", p)},
			{"CopyFrom", func() error { _, err := fsys.Copy(c, p, "x"); return err }()},
			{"CopyTo", func() error { _, err := fsys.Copy(c, "good", p); return err }()},
		}
		for _, op := range ops {
			wantErr(t, op.name+"("+strings.ToValidUTF8(p, "?")+")", op.err, ufs.ErrInvalidPath)
		}
	}
	wantNames(t, "List after bad paths", ListAll(t, fsys, "", 0), "good")
}
