package badgerstore_test

import (
	"bufio"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/meta/badgerstore"
	"github.com/skyfs/skyfs/meta/metatest"
	"github.com/skyfs/skyfs/proto/metapb"
)

// applyBatches applies the entries made by mk in transactions of batch entries.
func applyBatches(b *testing.B, s meta.Store, n, batch int, mk func(i int) *metapb.Entry) {
	b.Helper()
	for i := 0; i < n; i += batch {
		err := s.Update(func(tx meta.Txn) error {
			for j := i; j < min(i+batch, n); j++ {
				res, err := meta.Apply(tx, mk(j))
				if err != nil {
					return err
				}
				if res.Errno != 0 {
					return fmt.Errorf("entry %d: %v", j, res.Errno)
				}
			}
			return meta.SetAppliedIndex(tx, uint64(i))
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply measures entries applied per second on Badger, by operation
// and by entries per transaction (the journal's batch size).
func BenchmarkApply(b *testing.B) {
	for _, op := range []string{"create", "mkdir", "rename", "setattr"} {
		for _, batch := range []int{1, 64, 512} {
			b.Run(fmt.Sprintf("op=%s/batch=%d", op, batch), func(b *testing.B) {
				s, err := badgerstore.Open(b.TempDir(), badgerstore.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				h := metatest.NewH(b, s)
				dir := h.Mkdir(meta.RootIno, "d")
				n := b.N
				// Renames and setattrs act on files made beforehand.
				var files []meta.Ino
				if op == "rename" || op == "setattr" {
					applyBatches(b, s, n, 512, func(i int) *metapb.Entry {
						return metatest.Entry(int64(i), &metapb.CreateFile{Parent: dir, Name: []byte("f" + strconv.Itoa(i))})
					})
					files = make([]meta.Ino, n)
					for i := range files {
						files[i] = dir + 1 + meta.Ino(i)
					}
				}
				mk := func(i int) *metapb.Entry {
					name := []byte("n" + strconv.Itoa(i))
					switch op {
					case "create":
						return metatest.Entry(int64(i), &metapb.CreateFile{Parent: dir, Name: name, Mode: 0o644})
					case "mkdir":
						return metatest.Entry(int64(i), &metapb.Mkdir{Parent: dir, Name: name, Mode: 0o755})
					case "rename":
						return metatest.Entry(int64(i), &metapb.Rename{OldParent: dir, OldName: []byte("f" + strconv.Itoa(i)), NewParent: dir, NewName: name})
					}
					return metatest.Entry(int64(i), &metapb.SetAttr{Ino: files[i], Valid: meta.SetAttrMode | meta.SetAttrMtime, Mode: 0o600, MtimeNs: int64(i)})
				}
				b.ResetTimer()
				start := time.Now()
				applyBatches(b, s, n, batch, mk)
				b.ReportMetric(float64(n)/time.Since(start).Seconds(), "ops/s")
			})
		}
	}
}

// BenchmarkMillion loads SKYFS_BENCH_INODES files (default 1,000,000) into a
// Badger store, 1,000 to a directory, and reports resident memory and disk bytes
// per inode, then measures getattr and readdir-page latency at that size.
func BenchmarkMillion(b *testing.B) {
	total := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("SKYFS_BENCH_INODES")); err == nil && v > 0 {
		total = v
	}
	const perDir = 1000
	dirs := max(total/perDir, 1)
	dir := b.TempDir()
	s, err := badgerstore.Open(dir, badgerstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	parents := make([]meta.Ino, dirs)
	inodes := float64(dirs*perDir + dirs)
	// The load runs once; its figures are printed as a benchmark line of
	// their own.
	{
		runtime.GC()
		debug.FreeOSMemory()
		rss0 := rss(b)
		h := metatest.NewH(b, s)
		start := time.Now()
		for d := range dirs {
			parents[d] = h.Mkdir(meta.RootIno, "d"+strconv.Itoa(d))
		}
		applyBatches(b, s, dirs*perDir, 512, func(i int) *metapb.Entry {
			return metatest.Entry(int64(i), &metapb.CreateFile{Parent: parents[i/perDir], Name: []byte(fmt.Sprintf("part-%05d.parquet", i%perDir)), Mode: 0o644,
				Ufs: &metapb.Fingerprint{Size: 128 << 20, Etag: fmt.Sprintf("%032x", i), MtimeNs: 1.7e18}})
		})
		load := time.Since(start)
		if err := s.Sync(); err != nil {
			b.Fatal(err)
		}
		if err := s.DB().Flatten(2); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		debug.FreeOSMemory()
		fmt.Printf("BenchmarkMillion/load\t1\t%d ns/op\t%.0f inodes/s\t%.0f rss-bytes/inode\t%.0f disk-bytes/inode\t%.0f inodes\n",
			load.Nanoseconds(), inodes/load.Seconds(), float64(rss(b)-rss0)/inodes, float64(diskBytes(b, dir))/inodes, inodes)
	}

	r := rand.New(rand.NewPCG(1, 2))
	b.Run("getattr", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for range b.N {
			ino := meta.Ino(2 + r.IntN(int(inodes)))
			t0 := time.Now()
			err := s.View(func(tx meta.Txn) error { _, err := meta.GetAttr(tx, ino); return err })
			lat = append(lat, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
		}
		reportLatency(b, lat)
	})
	b.Run("readdir-page-100", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for range b.N {
			d := parents[r.IntN(dirs)]
			after := []byte(fmt.Sprintf("part-%05d.parquet", r.IntN(perDir-100)))
			t0 := time.Now()
			err := s.View(func(tx meta.Txn) error {
				ents, _, err := meta.ReadDir(tx, d, after, 100, true)
				if err == nil && len(ents) != 100 {
					err = fmt.Errorf("page of %d", len(ents))
				}
				return err
			})
			lat = append(lat, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
		}
		reportLatency(b, lat)
	})
}

var latMu sync.Mutex

func reportLatency(b *testing.B, lat []time.Duration) {
	latMu.Lock()
	defer latMu.Unlock()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
}

func rss(b *testing.B) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

func diskBytes(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Sys().(*syscall.Stat_t).Blocks * 512 // allocated, not apparent
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
