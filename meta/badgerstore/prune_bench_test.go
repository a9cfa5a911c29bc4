package badgerstore_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/meta/badgerstore"
	"github.com/skyfs/skyfs/proto/metapb"
)

// BenchmarkLoadPrune times the last LoadDir entry of a load, which prunes the
// directory of what the UFS no longer holds, over a directory of
// SKYFS_BENCH_INODES children (default 100,000) loaded on disk: the time the
// state machine spends in that one entry, per child.
//
//	go test -run '^$' -bench LoadPrune -benchtime 1x ./meta/badgerstore/
func BenchmarkLoadPrune(b *testing.B) {
	n := envCount(b, "SKYFS_BENCH_INODES", 100_000)
	s, err := badgerstore.Open(b.TempDir(), badgerstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	entry := func(op *metapb.LoadDir) *metapb.Entry {
		return &metapb.Entry{Version: meta.EntryVersion, TimeNs: 1_700_000_000_000_000_000, Op: &metapb.Entry_LoadDir{LoadDir: op}}
	}
	var gen uint64
	for from := 0; from < n; from += meta.MaxLoadBatch {
		op := &metapb.LoadDir{Dir: meta.RootIno, Begin: from == 0, Gen: gen}
		for i := from; i < min(from+meta.MaxLoadBatch, n); i++ {
			op.Children = append(op.Children, &metapb.LoadedChild{Name: []byte(fmt.Sprintf("f%09d", i)), Type: metapb.FileType_REGULAR,
				Mode: 0o644, Ufs: &metapb.Fingerprint{Size: 4096, Etag: "0123456789abcdef0123456789abcdef", MtimeNs: 1}})
		}
		if err := s.Update(func(tx meta.Txn) error {
			res, err := meta.Apply(tx, entry(op))
			if err == nil && res.Errno != 0 {
				err = res.Errno
			}
			gen = res.Gen
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if err := s.Update(func(tx meta.Txn) error {
			_, err := meta.Apply(tx, entry(&metapb.LoadDir{Dir: meta.RootIno, Gen: gen, End: true}))
			return err
		}); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(t0).Nanoseconds())/float64(n), "ns/child")
	}
}

// envCount reads a positive count from the environment, def without one.
func envCount(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive count", name, v)
	}
	return n
}
