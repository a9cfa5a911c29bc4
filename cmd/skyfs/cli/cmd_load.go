package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skyfs/skyfs/internal/bytesize"
	"github.com/skyfs/skyfs/internal/mountctl"
)

// loadOpts are the flags of skyfs load.
type loadOpts struct {
	recursive bool
	threads   int
	every     time.Duration
}

var loadCmd = &command{
	name:    "load",
	args:    "PATH... [--recursive] [--threads N]",
	summary: "read files through a skyfs mount so that its mountd caches their blocks",
	help:    loadHelp,
	local:   true,
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.BoolVar(&o.load.recursive, "recursive", false, "load every file under a directory PATH (without it a directory is refused)")
		fs.BoolVar(&o.load.recursive, "r", false, "short for --recursive")
		fs.IntVar(&o.load.threads, "threads", 4, "files read at once")
		fs.DurationVar(&o.load.every, "progress-every", 10*time.Second, "interval of the progress lines when stderr is not a terminal (0: none)")
	},
	run: runLoad,
}

// loadHelp is appended to the --help of skyfs load.
const loadHelp = `PATH is a file or directory inside a skyfs mount of this host
(/mnt/sky/lake), or, when nothing by that name exists here, a namespace path
(/lake) that a skyfs mount of this host serves: the load then reads it
through that mount (with --masters or $SKYFS_MASTERS set, a mount of that
cluster). Every regular file is read once, whole, through the mount, which
makes the mount daemon fetch its blocks from the UFS into its local block
cache (blocks already cached are read from the cache). Symbolic links and
special files are skipped. A directory PATH needs --recursive. The tree is
listed first for the totals; progress goes to stderr (a bar on a terminal, a
line every --progress-every otherwise), then a summary to stdout. The load
returns once the mount daemons have stored the blocks read in their cache,
so that skyfs cache stats counts them. A file that cannot be read is
reported by name and the load goes on; the exit code is then 1. Each
file's pages in the kernel's page cache are dropped before it is read, so
that its reads reach the mount daemon. Ctrl-C
stops the load and prints the summary so far. Nothing is written. Any
directory works; only a skyfs mount has a cache to fill.`

// loadFile is one file to read.
type loadFile struct {
	path string
	size int64
}

// loadFailure is a file that could not be read.
type loadFailure struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// loadJSON is the summary of skyfs load.
type loadJSON struct {
	Files       int64         `json:"files"`
	FilesTotal  int64         `json:"files_total"`
	Bytes       int64         `json:"bytes"`
	BytesTotal  int64         `json:"bytes_total"`
	Failed      int64         `json:"failed"`
	Seconds     float64       `json:"seconds"`
	BytesPerSec float64       `json:"bytes_per_s"`
	Interrupted bool          `json:"interrupted,omitempty"`
	Errors      []loadFailure `json:"errors,omitempty"`
}

// openForLoad opens a file to load; tests replace it to make reads fail.
// The kernel's page cache of the file is dropped first, so that the reads
// reach the mount daemon: pages the kernel kept from earlier reads would
// otherwise hide blocks the daemon no longer caches (after skyfs cache
// drop, or eviction).
var openForLoad = func(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) // advice: ignored where unsupported
	return f, nil
}

// loader is the state of one skyfs load.
type loader struct {
	r   *runner
	tty bool

	// Set while listing: the totals grow, then reading starts.
	listing                atomic.Bool
	startNs                atomic.Int64 // when reading started (Unix ns)
	filesTotal, bytesTotal atomic.Int64
	files, bytes, failed   atomic.Int64
	done                   atomic.Int64 // files read or failed

	mu       sync.Mutex // serialises stderr and failures
	failures []loadFailure
	barShown bool
}

func runLoad(ctx context.Context, r *runner, args []string) error {
	lo := r.o.load
	if len(args) == 0 {
		return usagef("load: want PATH...")
	}
	if lo.threads < 1 {
		return usagef("load: --threads must be at least 1")
	}
	if lo.every < 0 {
		return usagef("load: negative --progress-every")
	}
	l := &loader{r: r, tty: isTerminal(r.env.Stderr)}
	l.listing.Store(true)
	l.startNs.Store(time.Now().UnixNano())
	done := make(chan struct{})
	var progress sync.WaitGroup
	progress.Go(func() { l.progress(done, lo.every) })
	stopProgress := sync.OnceFunc(func() {
		close(done)
		progress.Wait()
	})
	defer stopProgress()
	// This host's mount daemons: to find the mount of a namespace path and
	// to wait for the blocks read to be stored. Without access to them (not
	// root) local paths still load.
	found, listErr := r.daemons(ctx)
	settle := make(map[string]*mountctl.Found)
	var list []loadFile
	for _, arg := range args {
		t, err := r.resolveHost(found, arg)
		if errors.Is(err, errNoMount) && listErr != nil {
			err = fmt.Errorf("%w (%w)", err, listErr)
		}
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		if t.d != nil {
			settle[t.d.Socket] = t.d
		}
		p := arg // as given: the messages name it so
		if t.byName {
			p = t.local
		}
		fi, err := os.Stat(p)
		var pe *fs.PathError
		if err != nil && t.byName && errors.As(err, &pe) {
			return fmt.Errorf("load: %s (through the mount on %s): %w", arg, t.d.Info.MountPoint, pe.Err)
		}
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		switch {
		case fi.IsDir() && !lo.recursive:
			return usagef("load: %s is a directory (use --recursive)", p)
		case fi.IsDir():
			if list, err = l.walk(ctx, p, list); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			list = l.add(list, p, fi.Size())
		default:
			return usagef("load: %s is not a regular file or directory", p)
		}
	}
	l.startNs.Store(time.Now().UnixNano())
	l.listing.Store(false)
	work := make(chan loadFile)
	var wg sync.WaitGroup
	for range lo.threads {
		wg.Go(func() {
			buf := make([]byte, 1<<20)
			for f := range work {
				l.read(ctx, f, buf)
			}
		})
	}
feed:
	for _, f := range list {
		select {
		case work <- f:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if ctx.Err() == nil {
		// A block reaches its reader before it is stored: wait for the
		// daemons to store the last ones.
		for _, d := range settle {
			if err := d.Settle(ctx); err != nil && ctx.Err() == nil {
				l.mu.Lock()
				l.clearBarLocked()
				fmt.Fprintf(r.env.Stderr, "skyfs: load: %s: the last blocks may still be being stored: %s\n", d.Info.MountPoint, oneLine(err))
				l.mu.Unlock()
			}
		}
	}
	stopProgress()
	return l.summary(ctx.Err() != nil)
}

// walk appends the regular files under dir to list. A directory that cannot
// be listed is reported and counted as failed.
func (l *loader) walk(ctx context.Context, dir string, list []loadFile) ([]loadFile, error) {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			l.fail(p, err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			l.fail(p, err)
			return nil
		}
		list = l.add(list, p, fi.Size())
		return nil
	})
	if ctx.Err() != nil {
		return nil, fmt.Errorf("load: interrupted while listing %s", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("load: listing %s: %w", dir, err)
	}
	return list, nil
}

// add appends a file to the list and counts it in the totals.
func (l *loader) add(list []loadFile, path string, size int64) []loadFile {
	l.filesTotal.Add(1)
	l.bytesTotal.Add(size)
	return append(list, loadFile{path, size})
}

// read reads one file to its end.
func (l *loader) read(ctx context.Context, f loadFile, buf []byte) {
	if ctx.Err() != nil {
		return
	}
	defer l.done.Add(1)
	rc, err := openForLoad(f.path)
	if err != nil {
		l.fail(f.path, err)
		return
	}
	defer rc.Close()
	for {
		if ctx.Err() != nil {
			return
		}
		n, err := rc.Read(buf)
		l.bytes.Add(int64(n))
		if errors.Is(err, io.EOF) {
			l.files.Add(1)
			return
		}
		if err != nil {
			l.fail(f.path, err)
			return
		}
	}
}

// fail reports a file that could not be loaded on stderr, by name.
func (l *loader) fail(path string, err error) {
	l.failed.Add(1)
	msg := oneLine(err)
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		msg = pe.Op + ": " + oneLine(pe.Err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, loadFailure{Path: path, Error: msg})
	l.clearBarLocked()
	fmt.Fprintf(l.r.env.Stderr, "skyfs: load %s: %s\n", path, msg)
}

// progress reports until done is closed: a bar redrawn on a terminal, or a
// line every interval.
func (l *loader) progress(done <-chan struct{}, every time.Duration) {
	tick := every
	if l.tty {
		tick = 200 * time.Millisecond
	}
	if tick <= 0 {
		<-done
		return
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-done:
			l.mu.Lock()
			l.clearBarLocked()
			l.mu.Unlock()
			return
		case <-t.C:
			l.mu.Lock()
			if l.tty {
				fmt.Fprintf(l.r.env.Stderr, "\r%s\x1b[K", l.line(true))
				l.barShown = true
			} else {
				fmt.Fprintf(l.r.env.Stderr, "skyfs: load: %s\n", l.line(false))
			}
			l.mu.Unlock()
		}
	}
}

func (l *loader) clearBarLocked() {
	if l.barShown {
		fmt.Fprint(l.r.env.Stderr, "\r\x1b[K")
		l.barShown = false
	}
}

// line is one progress report: files and bytes done of the totals, rate and
// estimated time left; while listing, the totals so far.
func (l *loader) line(bar bool) string {
	filesTotal, bytesTotal := l.filesTotal.Load(), l.bytesTotal.Load()
	if l.listing.Load() {
		return fmt.Sprintf("listing: %d files, %s so far", filesTotal, bytesize.Format(bytesTotal))
	}
	files, bytes := l.done.Load(), l.bytes.Load()
	secs := l.elapsed().Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(bytes) / secs
	}
	eta := "?"
	if left := bytesTotal - bytes; left <= 0 {
		eta = "0s"
	} else if rate > 0 {
		eta = time.Duration(float64(left) / rate * float64(time.Second)).Round(time.Second).String()
	}
	s := fmt.Sprintf("%d/%d files, %s/%s, %s/s, ETA %s",
		files, filesTotal, bytesize.Format(bytes), bytesize.Format(bytesTotal), bytesize.Format(int64(rate)), eta)
	if !bar {
		return s
	}
	const width = 30
	frac := 1.0
	if bytesTotal > 0 {
		frac = min(1, float64(bytes)/float64(bytesTotal))
	} else if filesTotal > 0 {
		frac = float64(files) / float64(filesTotal)
	}
	n := int(frac * width)
	return "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "] " + s
}

// elapsed is the time spent reading so far.
func (l *loader) elapsed() time.Duration {
	return time.Since(time.Unix(0, l.startNs.Load()))
}

// summary prints the outcome and returns the command's error.
func (l *loader) summary(interrupted bool) error {
	secs := l.elapsed().Seconds()
	s := loadJSON{
		Files: l.files.Load(), FilesTotal: l.filesTotal.Load(), Bytes: l.bytes.Load(), BytesTotal: l.bytesTotal.Load(),
		Failed: l.failed.Load(), Seconds: secs, Interrupted: interrupted, Errors: l.failures,
	}
	if secs > 0 {
		s.BytesPerSec = float64(s.Bytes) / secs
	}
	if l.r.o.output == "json" {
		if err := l.r.printJSON(s); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(l.r.env.Stdout, "loaded %d of %d files, %s of %s in %s (%s/s), %d failed\n",
			s.Files, s.FilesTotal, bytesize.Format(s.Bytes), bytesize.Format(s.BytesTotal),
			time.Duration(secs*float64(time.Second)).Round(time.Millisecond), bytesize.Format(int64(s.BytesPerSec)), s.Failed)
	}
	switch {
	case interrupted:
		return fmt.Errorf("load: interrupted after %d of %d files", s.Files, s.FilesTotal)
	case s.Failed > 0:
		return fmt.Errorf("load: %d files could not be read", s.Failed)
	}
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
