package hdfs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/skyfs/skyfs/ufs"
	"github.com/skyfs/skyfs/ufs/ufstest"
)

// NamenodeEnv names the namenode ("host:port") the contract suite runs against.
const namenodeEnv = "SKYFS_TEST_HDFS_NAMENODE"

func TestContract(t *testing.T) {
	nn := os.Getenv(namenodeEnv)
	if nn == "" {
		t.Skip("no HDFS namenode: set " + namenodeEnv + "=host:port (and optionally SKYFS_TEST_HDFS_USER) to run the HDFS contract suite")
	}
	user := os.Getenv("SKYFS_TEST_HDFS_USER")
	ufstest.Run(t, func(t *testing.T) ufs.FileSystem {
		var b [6]byte
		rand.Read(b[:])
		root := "/skyfs-test/" + hex.EncodeToString(b[:])
		opts := map[string]string{OptUser: user}
		setup, err := ufs.Open(t.Context(), "hdfs://"+nn+"/", opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer setup.Close()
		if err := setup.Mkdir(t.Context(), strings.TrimPrefix(root, "/")); err != nil {
			t.Fatalf("Mkdir(%s): %v", root, err)
		}
		fsys, err := ufs.Open(t.Context(), "hdfs://"+nn+root, opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() {
			fsys.(*FS).client.RemoveAll(root)
			fsys.Close()
		})
		return fsys
	})
}

// fakeInfo is a directory entry for the listing tests.
type fakeInfo struct {
	name string
	dir  bool
}

func (f fakeInfo) Name() string { return f.name }
func (f fakeInfo) Size() int64  { return 1 }
func (f fakeInfo) Mode() fs.FileMode {
	if f.dir {
		return fs.ModeDir
	}
	return 0
}
func (f fakeInfo) ModTime() time.Time { return time.Unix(0, 0) }
func (f fakeInfo) IsDir() bool        { return f.dir }
func (f fakeInfo) Sys() any           { return nil }

// fakeSource yields entries in name order (the namenode's), batch at a time.
func fakeSource(entries []fakeInfo, batch int) source {
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return func() ([]fs.FileInfo, error) {
		if len(entries) == 0 {
			return nil, io.EOF
		}
		n := min(batch, len(entries))
		var out []fs.FileInfo
		for _, e := range entries[:n] {
			out = append(out, e)
		}
		entries = entries[n:]
		return out, nil
	}
}

// TestListingOrder checks that entries in name order come out in SortKey order
// and that pages resume at their cursor, with and without a kept lister.
func TestListingOrder(t *testing.T) {
	entries := []fakeInfo{
		{"a", true}, {"a.txt", false}, {"a-b", true}, {"a-b.c", false}, {"a!", false},
		{"b", false}, {"ab", true}, {".skyfs-tmp-1", false}, {"a+", true}, {"a+b", false},
		{"z", true}, {"z z", false}, {"é", false},
	}
	var want []string
	for _, e := range entries {
		if strings.HasPrefix(e.name, tmpPrefix) {
			continue
		}
		k := e.name
		if e.dir {
			k += "/"
		}
		want = append(want, k)
	}
	slices.Sort(want)
	for _, batch := range []int{1, 2, 5, 100} {
		for _, pageSize := range []int{1, 3, 100} {
			for _, keep := range []bool{true, false} {
				var got []string
				cursor := ""
				var l *lister
				for {
					if l == nil || !keep {
						l = &lister{src: fakeSource(slices.Clone(entries), batch), close: func() error { return nil }}
					}
					page, more, err := l.page(cursor, pageSize)
					if err != nil {
						t.Fatal(err)
					}
					for _, e := range page {
						got = append(got, e.key)
					}
					if !more {
						break
					}
					cursor = page[len(page)-1].key
				}
				if !slices.Equal(got, want) {
					t.Fatalf("batch %d page %d keep %v: got %q, want %q", batch, pageSize, keep, got, want)
				}
			}
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	badConf := filepath.Join(dir, "krb5.conf")
	if err := os.WriteFile(badConf, []byte("[libdefaults]\n default_realm = EXAMPLE.COM\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		uri  string
		opts map[string]string
		want error
	}{
		{"BadAddress", "hdfs://nohost/x", nil, ufs.ErrInvalid},
		{"BadProtection", "hdfs://127.0.0.1:1/x", map[string]string{OptDataTransferProtection: "max"}, ufs.ErrInvalid},
		{"KerberosWithoutKeytab", "hdfs://127.0.0.1:1/x", map[string]string{OptPrincipal: "u@EXAMPLE.COM", OptKrb5Conf: badConf}, ufs.ErrInvalid},
		{"BadPrincipal", "hdfs://127.0.0.1:1/x", map[string]string{OptPrincipal: "nobody", OptKeytab: "/nonexistent", OptKrb5Conf: badConf}, ufs.ErrInvalid},
		{"MissingKeytab", "hdfs://127.0.0.1:1/x", map[string]string{OptPrincipal: "u@EXAMPLE.COM", OptKeytab: filepath.Join(dir, "none.keytab"), OptKrb5Conf: badConf}, fs.ErrNotExist},
		{"Refused", "hdfs://127.0.0.1:1/x", map[string]string{OptUser: "u", OptDialTimeout: "2s"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ufs.Open(t.Context(), c.uri, c.opts)
			if err == nil {
				t.Fatalf("Open succeeded")
			}
			t.Logf("error: %v", err)
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error not on one line: %q", err)
			}
		})
	}
}

func TestCheckRefusesColon(t *testing.T) {
	f := &FS{name: "hdfs://nn:8020/x"}
	cases := []struct {
		path string
		want error
	}{
		{"ok/name", nil},
		{"a:b", ufs.ErrInvalidPath},
		{"../x", ufs.ErrInvalidPath},
	}
	for _, c := range cases {
		if err := f.check(t.Context(), "stat", c.path); !errors.Is(err, c.want) {
			t.Errorf("check(%q) = %v, want %v", c.path, err, c.want)
		}
	}
}
