package fusefs

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/skyfs/skyfs/cache"
	"github.com/skyfs/skyfs/internal/fsbench"
)

const benchSize = 256 << 20

// benchFixture is one 256 MiB file in four places: a plain file, the same
// file under go-fuse's loopback with and without passthrough, and a skyfs
// mount whose block cache holds it whole.
type benchFixture struct {
	e       *env
	plain   string // directory of the plain file, root of the loopbacks
	lbPT    string // loopback mount with passthrough
	lbNoPT  string // loopback mount without passthrough
	data    []byte
	skyfsPT bool // the kernel took passthrough for skyfs
}

func newBenchFixture(b *testing.B) *benchFixture {
	b.Helper()
	e := newEnvCache(b, Options{}, cache.Options{Capacity: 1 << 30})
	tmp := b.TempDir()
	f := &benchFixture{e: e, plain: filepath.Join(tmp, "plain"), data: randomBytes(99, benchSize)}
	if err := os.Mkdir(f.plain, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.plain, "file"), f.data, 0o644); err != nil {
		b.Fatal(err)
	}
	f.lbPT = f.loopback(b, filepath.Join(tmp, "lbpt"), 0)
	f.lbNoPT = f.loopback(b, filepath.Join(tmp, "lbnopt"), fuse.CAP_PASSTHROUGH)
	if err := os.WriteFile(e.path("file"), f.data, 0o644); err != nil {
		b.Fatal(err)
	}
	// One pass through the daemon fills the block cache; one plain pass
	// fills the page cache.
	f.skyfsPT = e.m.passthrough.Load()
	e.m.passthrough.Store(false)
	readAll(b, e.path("file"), true)
	readAll(b, filepath.Join(f.plain, "file"), false)
	e.waitIdle()
	return f
}

// loopback mounts go-fuse's loopback over the plain directory at mnt.
func (f *benchFixture) loopback(b *testing.B, mnt string, disabled uint64) string {
	b.Helper()
	if err := os.Mkdir(mnt, 0o755); err != nil {
		b.Fatal(err)
	}
	root, err := gofs.NewLoopbackRoot(f.plain)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := gofs.Mount(mnt, root, &gofs.Options{MountOptions: fuse.MountOptions{
		DirectMount: true, MaxWrite: 1 << 20, DisableSplice: true, DisabledCapabilities: disabled,
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Unmount(); srv.Wait() })
	// The same read-ahead as skyfs sets, for a like-for-like comparison.
	if err := setReadAhead(mnt, cache.DefaultBlockSize>>10); err != nil {
		b.Log(err)
	}
	return mnt
}

// readAll reads a file sequentially in 1 MiB reads, first dropping its
// pages from the page cache when drop is set (so that a FUSE file is read
// through its daemon or its passthrough file, not from pages cached by an
// earlier run).
func readAll(b *testing.B, path string, drop bool) int64 {
	n, err := fsbench.ReadThrough(path, drop)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// report records MB/s and the ratio to the baseline (when base is not 0),
// and returns the MB/s.
func report(b *testing.B, bytesPerOp int64, base float64) float64 {
	mbps := float64(bytesPerOp) * float64(b.N) / b.Elapsed().Seconds() / 1e6
	b.ReportMetric(mbps, "MB/s")
	if base > 0 {
		b.ReportMetric(mbps/base, "x-plain")
	}
	return mbps
}

// variant is one place the file is read or written.
type variant struct {
	name string
	dir  string
	drop bool // a FUSE mount: drop the file's pages before each pass
	pt   bool // for skyfs: allow passthrough
}

func (f *benchFixture) variants() []variant {
	return []variant{
		{"plain", f.plain, false, false},
		{"skyfs-passthrough", f.e.mnt, true, true},
		{"skyfs-fuse", f.e.mnt, true, false},
		{"loopback-passthrough", f.lbPT, true, false},
		{"loopback-fuse", f.lbNoPT, true, false},
	}
}

// BenchmarkSeqRead reads the 256 MiB file whole, warm: from the page cache
// (plain), the block cache (skyfs) or the backing file (loopback).
func BenchmarkSeqRead(b *testing.B) {
	f := newBenchFixture(b)
	var base float64
	for _, v := range f.variants() {
		b.Run(v.name, func(b *testing.B) {
			f.e.m.passthrough.Store(v.pt && f.skyfsPT)
			pts := f.e.m.passthroughs.Load()
			for b.Loop() {
				if n := readAll(b, filepath.Join(v.dir, "file"), v.drop); n != benchSize {
					b.Fatalf("read %d bytes", n)
				}
				b.StopTimer()
				f.e.waitIdle()
				b.StartTimer()
			}
			mbps := report(b, benchSize, base)
			if v.name == "plain" {
				base = mbps
			}
			if v.pt && f.e.m.passthroughs.Load() == pts {
				b.Log("skyfs did not open the file with passthrough")
			}
		})
	}
}

// BenchmarkRandRead4K reads 4 KiB at random aligned offsets, each page once
// per pass (the pages of the FUSE file are dropped between passes), with
// read-ahead off.
func BenchmarkRandRead4K(b *testing.B) {
	f := newBenchFixture(b)
	const page = 4096
	perm := rand.New(rand.NewPCG(5, 6)).Perm(benchSize / page)
	var base float64
	for _, v := range f.variants() {
		b.Run(v.name, func(b *testing.B) {
			f.e.m.passthrough.Store(v.pt && f.skyfsPT)
			fd, err := os.Open(filepath.Join(v.dir, "file"))
			if err != nil {
				b.Fatal(err)
			}
			defer fd.Close()
			unix.Fadvise(int(fd.Fd()), 0, 0, unix.FADV_RANDOM)
			if v.drop {
				unix.Fadvise(int(fd.Fd()), 0, 0, unix.FADV_DONTNEED)
			}
			buf := make([]byte, page)
			i := 0
			for b.Loop() {
				if i == len(perm) {
					b.StopTimer()
					if v.drop {
						unix.Fadvise(int(fd.Fd()), 0, 0, unix.FADV_DONTNEED)
					}
					i = 0
					b.StartTimer()
				}
				off := int64(perm[i]) * page
				i++
				if _, err := fd.ReadAt(buf, off); err != nil {
					b.Fatal(err)
				}
			}
			mbps := report(b, page, base)
			if v.name == "plain" {
				base = mbps
			}
		})
	}
}

// BenchmarkSeqWrite writes a new 256 MiB file in 1 MiB writes and closes
// it. For plain and loopback the file is fsynced before close: skyfs's
// close returns once the data is in the UFS, which a local UFS syncs.
func BenchmarkSeqWrite(b *testing.B) {
	f := newBenchFixture(b)
	var base float64
	for _, v := range f.variants() {
		if v.name == "skyfs-fuse" {
			continue // writes never use passthrough
		}
		name := v.name
		if name == "skyfs-passthrough" {
			name = "skyfs"
		}
		b.Run(name, func(b *testing.B) {
			path := filepath.Join(v.dir, "written")
			for b.Loop() {
				w, err := os.Create(path)
				if err != nil {
					b.Fatal(err)
				}
				for off := 0; off < benchSize; off += 1 << 20 {
					if _, err := w.Write(f.data[off : off+1<<20]); err != nil {
						b.Fatal(err)
					}
				}
				if v.dir != f.e.mnt {
					if err := w.Sync(); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				f.e.waitIdle()
				os.Remove(path)
				b.StartTimer()
			}
			mbps := report(b, benchSize, base)
			if v.name == "plain" {
				base = mbps
			}
		})
	}
}
