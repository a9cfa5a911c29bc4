package integration

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/posixtest"
	"golang.org/x/sys/unix"
)

// posixS3Skips are the posixtest cases not run on the S3 mount, with the
// reason: all but one cannot pass on a mount of an object store.
var posixS3Skips = map[string]string{
	// As in fusefs's TestPosix: POSIX record locks belong to the process,
	// so a second descriptor of the same process does not conflict with
	// the first one's lock, on ext4 either.
	"FcntlFlockLocksFile": "expects a process's own POSIX locks to conflict; they do not on ext4 either",
	// An object store has no hard links: link(2) answers EPERM on an S3
	// mount (checked by linkRefused before the skip).
	"Link":             "hard links: an object store cannot make them (link answers EPERM)",
	"LinkUnlinkRename": "hard links: an object store cannot make them (link answers EPERM)",
	// Not a limit of object stores but of this suite's time: the case makes
	// a thousand rounds of create, rename, symlink and rename, each create
	// an upload and each rename of a file a copy and a delete in the bucket:
	// minutes on a two-core machine. What it checks, that an open
	// racing with renames never follows a symlink it should not, is the
	// kernel's and fusefs's path handling, the same over any UFS: fusefs's
	// TestPosix runs it.
	"OpenSymlinkRace": "a thousand create/rename rounds on S3 take minutes; fusefs's TestPosix runs it",
}

// linkRefused fails unless link(2) in dir answers EPERM.
func linkRefused(t *testing.T, dir string) {
	t.Helper()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("t"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(target, filepath.Join(dir, "link")); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("link on an S3 mount: %v, want EPERM", err)
	}
}

// TestMountS3 runs mountd hosts of a three-master cluster over S3 mounts of
// a MinIO bucket, each subtest on its own prefix mounted at its own
// namespace path. The leader is killed last.
func TestMountS3(t *testing.T) {
	needMountd(t)
	e := newS3Env(t)
	t.Run("PosixOverS3", func(t *testing.T) { testPosixOverS3(t, e) })
	t.Run("KillAfterCloseS3", func(t *testing.T) { testKillAfterCloseS3(t, e) })
	t.Run("FlippedByte", func(t *testing.T) { testFlippedByte(t, e) })
	t.Run("CacheBound", func(t *testing.T) { testCacheBound(t, e) })
	t.Run("ReadPatterns", func(t *testing.T) { testReadPatterns(t, e) })
	t.Run("SpecialFilesS3", func(t *testing.T) { testSpecialFilesS3(t, e) })
	t.Run("LongPathsS3", func(t *testing.T) { testLongPathsS3(t, e) })
	t.Run("CloseWithoutWriteS3", func(t *testing.T) { testCloseWithoutWriteS3(t, e) })
	t.Run("FailoverUnderMountS3", func(t *testing.T) { testFailoverUnderMountS3(t, e) })
}

// testPosixOverS3 runs go-fuse's POSIX table on one mountd, each case in a
// fresh directory of the mount.
func testPosixOverS3(t *testing.T, e *s3Env) {
	e.mount(t, "/posix", "posix")
	h := newHost(t, e.c, "P", "/posix", "")
	h.start()
	for _, name := range slices.Sorted(maps.Keys(posixtest.All)) {
		t.Run(name, func(t *testing.T) {
			dir := h.path(name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if why, ok := posixS3Skips[name]; ok {
				if strings.HasPrefix(name, "Link") {
					linkRefused(t, dir)
				}
				t.Skip(why)
			}
			posixtest.All[name](t, dir)
		})
	}
	t.Run("Interrupts", func(t *testing.T) { testInterrupts(t, h) })
	h.umount()
}

// testInterrupts: a signal that reaches a thread while it waits in stat,
// open, truncate or creat on the mount (the Go runtime sends SIGURG to its
// own threads, with SA_RESTART) makes the kernel send FUSE INTERRUPT; the
// call must still complete, never fail with EINTR, as on a local
// filesystem. The calls are raw system calls, which do not retry EINTR the
// way package os does.
func testInterrupts(t *testing.T, h *host) {
	dir := h.path("Interrupts")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		do   func(i int) error
	}{
		{"stat", func(int) error { var st unix.Stat_t; return unix.Stat(file, &st) }},
		{"stat of a missing name", func(i int) error {
			var st unix.Stat_t
			if err := unix.Stat(filepath.Join(dir, fmt.Sprintf("missing%d", i)), &st); err != unix.ENOENT {
				return fmt.Errorf("%v, want ENOENT", err)
			}
			return nil
		}},
		{"open", func(int) error {
			fd, err := unix.Open(file, unix.O_RDONLY, 0)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}},
		{"truncate", func(i int) error { return unix.Truncate(file, int64(i%5)) }},
		{"creat", func(i int) error {
			fd, err := unix.Open(filepath.Join(dir, fmt.Sprintf("c%d", i)), unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o644)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}},
	}
	for _, c := range calls {
		if failures := signalledCalls(40, c.do); len(failures) > 0 {
			t.Errorf("%s with signals arriving: of 40 calls, these failed (error: count): %v", c.name, failures)
		}
	}
}

// signalledCalls runs do n times on one locked thread while another
// goroutine keeps sending that thread SIGURG, and counts the errors by
// message.
func signalledCalls(n int, do func(i int) error) map[string]int {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid, tid := unix.Getpid(), unix.Gettid()
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			unix.Tgkill(pid, tid, unix.SIGURG)
			runtime.Gosched()
		}
	})
	failures := make(map[string]int)
	for i := range n {
		if err := do(i); err != nil {
			failures[err.Error()]++
		}
	}
	stop.Store(true)
	wg.Wait()
	return failures
}

// testKillAfterCloseS3: a file of several cache blocks whose close returned
// is in the bucket, byte for byte, even if mountd dies at once; another
// host with an empty cache reads it.
func testKillAfterCloseS3(t *testing.T, e *s3Env) {
	e.mount(t, "/kill", "kill")
	h := newHost(t, e.c, "A", "/kill", "")
	h.start()
	data := randomData(11, 9<<20+13) // two whole 4 MiB blocks and a partial one
	if err := os.WriteFile(h.path("k"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	h.kill()
	e.checkObject(t, "kill/k", data)

	b := newHost(t, e.c, "B", "/kill", "")
	b.start()
	checkContent(t, b.path("k"), data)
	got, err := readDirect(b.path("k"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sameBytes(got, data); err != nil {
		t.Fatalf("O_DIRECT read on the new host: %v", err)
	}
	b.umount()
}

// cacheDataFile returns the one data file of the host's block cache whose
// apparent size is size.
func cacheDataFile(t *testing.T, h *host, size int64) string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(h.cacheDir, "blocks", "*.data"))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.Size() == size {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		t.Fatalf("cache data files of %d bytes: %v (all: %v)", size, found, paths)
	}
	return found[0]
}

// passthroughKernel says whether the running kernel has FUSE passthrough
// (Linux 6.9 and later).
func passthroughKernel(t *testing.T) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var major, minor int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor)
	return major > 6 || major == 6 && minor >= 9
}

// testFlippedByte: a byte flipped in a block of the local cache file is
// never served, through mountd (O_DIRECT) or through an open that would
// otherwise pass the cache file to the kernel, whether or not the flip kept
// the file's mtime.
func testFlippedByte(t *testing.T, e *s3Env) {
	e.mount(t, "/flip", "flip")
	h := newAdminHost(t, e.c, "F", "/flip", "")
	h.start()
	data := randomData(21, 9<<20+4321)
	p := h.path("f")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Through mountd: every block loaded from the bucket into the cache.
	got, err := readDirect(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameBytes(got, data); err != nil {
		t.Fatalf("first read: %v", err)
	}
	dataFile := cacheDataFile(t, h.host, int64(len(data)))
	wantPassthrough := passthroughKernel(t)

	// readWhole reads the file through a new open, checks the bytes, and
	// returns the passthrough opens before and after.
	readWhole := func(what string) (before, after float64) {
		t.Helper()
		before = h.metric(t, "skyfs_fuse_passthrough_opens_total")
		got, err := readUncached(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameBytes(got, data); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return before, h.metric(t, "skyfs_fuse_passthrough_opens_total")
	}

	// The whole, verified file is opened with passthrough.
	if pt, n := readWhole("read of the cached file"); wantPassthrough && n <= pt {
		t.Fatalf("a wholly cached file was not opened with passthrough (passthrough opens %v, were %v)", n, pt)
	}

	// flip inverts the byte at off of the cache file, which must hold
	// data[off] (the block is present), and restores the file's mtime if
	// keepMtime.
	flip := func(off int64, keepMtime bool) {
		t.Helper()
		before, err := os.Stat(dataFile)
		if err != nil {
			t.Fatal(err)
		}
		// A change within the timestamp tick of the cache's last write would
		// leave the file's stat as the cache recorded it.
		var st unix.Stat_t
		if err := unix.Stat(dataFile, &st); err != nil {
			t.Fatal(err)
		}
		ctime := time.Unix(st.Ctim.Unix())
		waitFor(t, 10*time.Second, "the clock to pass the cache file's ctime", func() bool {
			return time.Since(ctime) > 20*time.Millisecond
		})
		f, err := os.OpenFile(dataFile, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, off); err != nil {
			t.Fatal(err)
		}
		if b[0] != data[off] {
			f.Close()
			t.Fatalf("cache file byte %d is %#02x, want %#02x: the block is not cached at the file's offsets", off, b[0], data[off])
		}
		b[0] ^= 0xff
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if keepMtime {
			if err := os.Chtimes(dataFile, time.Time{}, before.ModTime()); err != nil {
				t.Fatal(err)
			}
			after, err := os.Stat(dataFile)
			if err != nil {
				t.Fatal(err)
			}
			if !after.ModTime().Equal(before.ModTime()) {
				t.Fatalf("mtime %v after Chtimes, want %v", after.ModTime(), before.ModTime())
			}
		}
	}
	for _, tc := range []struct {
		name      string
		off       int64
		keepMtime bool
		read      func(string) ([]byte, error)
	}{
		{"O_DIRECT", 4<<20 + 1000, false, readDirect},
		{"open", 8<<20 + 17, false, readUncached},
		{"O_DIRECT same mtime", 123, true, readDirect},
		{"open same mtime", 4<<20 + 77, true, readUncached},
	} {
		// mountd answers reads of the blocks it loaded last from memory;
		// a restarted one has none there, so the read below comes from the
		// cache file (whose verified state survived the clean stop).
		h.umount()
		h.start()
		corrupt := h.metric(t, "skyfs_cache_corrupt_blocks_total")
		flip(tc.off, tc.keepMtime)
		got, err := tc.read(p)
		if err != nil {
			t.Fatalf("%s after a flip at %d: %v", tc.name, tc.off, err)
		}
		if err := sameBytes(got, data); err != nil {
			t.Fatalf("%s after a flip at %d (mtime kept: %v): %v", tc.name, tc.off, tc.keepMtime, err)
		}
		if n := h.metric(t, "skyfs_cache_corrupt_blocks_total"); n != corrupt+1 {
			t.Errorf("%s after a flip at %d: corrupt blocks %v, were %v", tc.name, tc.off, n, corrupt)
		}
	}
	// Repaired: whole and verified again, so passthrough again.
	if pt, n := readWhole("read after the repairs"); wantPassthrough && n <= pt {
		t.Errorf("the repaired file was not opened with passthrough (passthrough opens %v, were %v)", n, pt)
	}
	h.umount()
}

// testCacheBound: with a cache smaller than the files read, every read is
// right and the space allocated under the cache's directory never exceeds
// cache_size, while the cache does hold and evict blocks.
func testCacheBound(t *testing.T, e *s3Env) {
	const (
		capacity = 24 << 20
		// Slack over the bound for what the measurement itself may see
		// twice: an index rewritten (temporary file renamed over the old
		// one) while the walk passes, 4 KiB each.
		slack = 256 << 10
		files = 10
	)
	sizes := make([]int, files)
	datas := make([][]byte, files)
	total := 0
	for i := range files {
		sizes[i] = 8<<20 - 3*4099 + i*4099 // about 80 MiB in all, most files ending mid-block
		datas[i] = randomData(uint64(300+i), sizes[i])
		e.putObject(t, fmt.Sprintf("bound/f%02d", i), datas[i])
		total += sizes[i]
	}
	e.mount(t, "/bound", "bound")
	h := newAdminHost(t, e.c, "C", "/bound", "cache_size=24M")
	h.start()
	if got := h.metric(t, "skyfs_cache_capacity_bytes"); got != capacity {
		t.Fatalf("cache capacity %v, want %d (cache_size=24M)", got, capacity)
	}
	blocks := filepath.Join(h.cacheDir, "blocks")

	var (
		peak    atomic.Int64
		walkErr atomic.Value
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	sample := func() {
		n, err := allocatedBytes(blocks)
		if err != nil {
			walkErr.Store(err)
			return
		}
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				return
			}
		}
	}
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			sample()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	for pass := range 2 {
		for i := range files {
			got, err := readUncached(h.path(fmt.Sprintf("f%02d", i)))
			if err != nil {
				close(stop)
				wg.Wait()
				t.Fatalf("pass %d: %v", pass, err)
			}
			if err := sameBytes(got, datas[i]); err != nil {
				t.Errorf("pass %d, f%02d: %v", pass, i, err)
			}
		}
	}
	close(stop)
	wg.Wait()
	sample()
	if err, _ := walkErr.Load().(error); err != nil {
		t.Fatalf("measure the cache directory: %v", err)
	}
	evictions := h.metric(t, "skyfs_cache_evictions_total")
	used := h.metric(t, "skyfs_cache_used_bytes")
	h.umount()
	sample()
	t.Logf("%d MiB read twice through a %d MiB cache: peak allocation %d bytes (bound %d + slack %d), %v blocks evicted, %v bytes accounted at the end",
		total>>20, capacity>>20, peak.Load(), capacity, slack, evictions, used)
	if p := peak.Load(); p > capacity+slack {
		t.Errorf("the cache directory held %d bytes on disk; cache_size is %d (slack %d)", p, capacity, slack)
	}
	if evictions == 0 {
		t.Errorf("no block was evicted reading %d bytes through a cache of %d", 2*total, capacity)
	}
	if peak.Load() < capacity/2 {
		t.Errorf("the cache never held more than %d bytes: it did not cache", peak.Load())
	}
}

// testReadPatterns reads files of a MinIO bucket through a mount whose
// cache (24 MiB) holds less than one pass over them, so blocks are evicted
// while the files are read: as a columnar query does (the footer, then
// ranges of 1-5 MiB at random offsets, from 4 goroutines), which fetches
// about what it asks for; in scattered small reads; and from start to end,
// twice. Every read returns the object's bytes.
func testReadPatterns(t *testing.T, e *s3Env) {
	const files = 3
	datas := make([][]byte, files)
	for i := range files {
		datas[i] = randomData(uint64(700+i), 20<<20+4099*i)
		e.putObject(t, fmt.Sprintf("patterns/f%d", i), datas[i])
	}
	e.mount(t, "/patterns", "patterns")
	h := newAdminHost(t, e.c, "R", "/patterns", "cache_size=24M")
	h.start()
	name := func(i int) string { return h.path(fmt.Sprintf("f%d", i)) }

	type rng struct {
		f      int
		off, n int64
	}
	r := rand.New(rand.NewPCG(7, 8))
	var ranges []rng
	var asked int64
	for i := range files {
		size := int64(len(datas[i]))
		ranges = append(ranges, rng{i, size - 64<<10, 64 << 10})
		for range 4 {
			n := 1<<20 + r.Int64N(4<<20)
			ranges = append(ranges, rng{i, r.Int64N(size - n), n})
		}
	}
	for _, g := range ranges {
		asked += g.n
	}
	before := h.metric(t, `skyfs_cache_read_bytes_total{source="ufs"}`)
	next := make(chan rng, len(ranges))
	for _, g := range ranges {
		next <- g
	}
	close(next)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for g := range next {
				f, err := os.Open(name(g.f))
				if err != nil {
					t.Error(err)
					return
				}
				buf := make([]byte, g.n)
				_, err = f.ReadAt(buf, g.off)
				f.Close()
				if err != nil {
					t.Errorf("f%d at %d: %v", g.f, g.off, err)
					return
				}
				if err := sameBytes(buf, datas[g.f][g.off:g.off+g.n]); err != nil {
					t.Errorf("f%d, %d bytes at %d: %v", g.f, g.n, g.off, err)
				}
			}
		})
	}
	wg.Wait()
	fetched := h.metric(t, `skyfs_cache_read_bytes_total{source="ufs"}`) - before
	t.Logf("columnar reads: %d bytes asked, %.0f fetched (%.2f×)", asked, fetched, fetched/float64(asked))
	// Whole blocks and their read-ahead fetched 2.7× the bytes asked.
	if fetched > 1.5*float64(asked) {
		t.Errorf("columnar reads fetched %.0f bytes for %d asked", fetched, asked)
	}

	for i := range files {
		f, err := os.Open(name(i))
		if err != nil {
			t.Fatal(err)
		}
		unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM)
		for range 50 {
			n := 1 + r.Int64N(200<<10)
			off := r.Int64N(int64(len(datas[i])) - n)
			buf := make([]byte, n)
			if _, err := f.ReadAt(buf, off); err != nil {
				t.Fatalf("f%d at %d: %v", i, off, err)
			}
			if err := sameBytes(buf, datas[i][off:off+n]); err != nil {
				t.Fatalf("f%d, %d bytes at %d: %v", i, n, off, err)
			}
		}
		f.Close()
	}
	for pass := range 2 {
		for i := range files {
			got, err := readUncached(name(i))
			if err != nil {
				t.Fatalf("pass %d: %v", pass, err)
			}
			if err := sameBytes(got, datas[i]); err != nil {
				t.Errorf("pass %d, f%d: %v", pass, i, err)
			}
		}
	}
	if ev := h.metric(t, "skyfs_cache_evictions_total"); ev == 0 {
		t.Errorf("no block was evicted: the reads did not run while blocks went")
	}
	h.umount()
}

// testFailoverUnderMountS3: one process writes new files and another reads
// existing ones through the mount while the leader master is SIGKILLed.
// Operations may stall; none fails, and every file whose close returned is
// in the mount and in the bucket with its content.
func testFailoverUnderMountS3(t *testing.T, e *s3Env) {
	e.mount(t, "/fail", "fail")
	h := newHost(t, e.c, "A", "/fail", "attr_timeout=200ms,entry_timeout=200ms")
	h.start()
	content := func(name string, i int) []byte { return randomData(uint64(5000+i)^uint64(name[0])<<32, 96<<10+i) }
	const readers = 4
	for i := range readers {
		if err := os.WriteFile(h.path(fmt.Sprintf("r%d", i)), content("r", i), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	type stall struct {
		took time.Duration
		what string
	}
	var (
		mu             sync.Mutex
		errs           []error
		written        []int
		writes, reads  atomic.Int64
		slowW, slowR   stall
		stop           = make(chan struct{})
		wg             sync.WaitGroup
		stopped        atomic.Bool
		stopGoroutines = func() {
			if stopped.CompareAndSwap(false, true) {
				close(stop)
			}
			wg.Wait()
		}
	)
	defer stopGoroutines()
	note := func(slow *stall, what string, took time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if took > slow.took {
			*slow = stall{took, what}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("w%04d", i)
			start := time.Now()
			err := os.WriteFile(h.path(name), content("w", i), 0o644)
			note(&slowW, "write "+name, time.Since(start), err)
			if err == nil {
				mu.Lock()
				written = append(written, i)
				mu.Unlock()
			}
			writes.Add(1)
		}
	})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("r%d", i%readers)
			start := time.Now()
			got, err := os.ReadFile(h.path(name))
			if err == nil {
				err = sameBytes(got, content("r", i%readers))
			}
			note(&slowR, "read "+name, time.Since(start), err)
			reads.Add(1)
		}
	})

	waitFor(t, 60*time.Second, "writes and reads before the kill", func() bool { return writes.Load() >= 5 && reads.Load() >= 5 })
	old := e.c.leader()
	if old == nil {
		t.Fatal("no leader")
	}
	e.c.kill(old)
	w0, r0 := writes.Load(), reads.Load()
	e.c.waitLeader(30 * time.Second)
	waitFor(t, 90*time.Second, "writes and reads after the kill", func() bool {
		return writes.Load() >= w0+10 && reads.Load() >= r0+10
	})
	stopGoroutines()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("leader %s killed; %d files written, %d reads; longest stall: %v (%s) writing, %v (%s) reading",
		old.id, len(written), reads.Load(), slowW.took, slowW.what, slowR.took, slowR.what)
	for _, err := range errs {
		t.Errorf("through the leader's death: %v", err)
	}
	for _, i := range written {
		name := fmt.Sprintf("w%04d", i)
		want := content("w", i)
		checkContent(t, h.path(name), want)
		e.checkObject(t, "fail/"+name, want)
	}
	if names, err := listNames(h.mnt); err != nil || len(names) != readers+int(writes.Load()) {
		t.Errorf("listing: %d names (%v), want %d: %s", len(names), err, readers+int(writes.Load()), strings.Join(names, " "))
	}
	h.umount()
}
