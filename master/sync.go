package master

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
	"github.com/skyfs/skyfs/ufs"
)

// loadStats counts what loads found and changed.
type loadStats struct {
	dirs, entries, skipped, added, removed, updated uint64
}

func (a *loadStats) add(b loadStats) {
	a.dirs += b.dirs
	a.entries += b.entries
	a.skipped += b.skipped
	a.added += b.added
	a.removed += b.removed
	a.updated += b.updated
}

// loadGroup coalesces concurrent loads of one directory: one load runs, and
// every caller that asks meanwhile waits for its outcome.
type loadGroup struct {
	mu      sync.Mutex
	flights map[uint64]*flight
}

// flight is one load in progress.
type flight struct {
	done   chan struct{}
	forced bool
	stats  loadStats
	err    error
	// listed counts the UFS entries the load has listed so far, for the
	// progress of a sync that waits for it.
	listed atomic.Uint64
}

// ensureLoaded loads directory ino from its mount's UFS when it is under a
// mount and has not been loaded, or was loaded longer ago than the mount's
// sync interval, or always when force is set. Concurrent calls for one
// directory share one load, which runs under the server's own context so that
// a caller giving up does not waste it.
func (s *Server) ensureLoaded(ctx context.Context, ino uint64, force bool) (loadStats, error) {
	var m *meta.Mount
	var rel string
	need := false
	if err := s.resolve(func(tx meta.Txn) error {
		a, err := meta.GetAttr(tx, ino)
		if err != nil || a.Type != meta.TypeDirectory {
			return nil // the caller's own read reports it
		}
		if m, rel, err = under(tx, ino); err != nil || m == nil {
			return err
		}
		need = force || !a.Loaded ||
			(m.SyncIntervalNs > 0 && s.now().UnixNano()-a.LoadedNs >= m.SyncIntervalNs)
		return nil
	}); err != nil || !need {
		return loadStats{}, err
	}
	for {
		s.loads.mu.Lock()
		f, running := s.loads.flights[ino]
		if !running {
			if s.loads.flights == nil {
				s.loads.flights = make(map[uint64]*flight)
			}
			f = &flight{done: make(chan struct{}), forced: force}
			s.loads.flights[ino] = f
		}
		s.loads.mu.Unlock()
		if !running {
			go func() {
				f.stats, f.err = s.loadDir(s.bg, m, ino, rel, &f.listed)
				s.loads.mu.Lock()
				delete(s.loads.flights, ino)
				s.loads.mu.Unlock()
				close(f.done)
			}()
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return loadStats{}, ctx.Err()
		}
		if running && force && !f.forced {
			continue // a lazy load that may predate the caller: load again
		}
		return f.stats, f.err
	}
}

// loadDir lists directory ino of mount m (UFS path rel) in pages and journals
// the listing in LoadDir entries of at most meta.MaxLoadBatch children,
// counting the entries it lists in listed. Names that cannot be names in the
// namespace are skipped and logged.
func (s *Server) loadDir(ctx context.Context, m *meta.Mount, ino uint64, rel string, listed *atomic.Uint64) (loadStats, error) {
	st := loadStats{dirs: 1}
	fsys, err := s.ufs.get(ctx, m)
	if err != nil {
		return st, err
	}
	uid, gid := owner(m)
	var batch []*metapb.LoadedChild
	begin, gen := true, uint64(0)
	flush := func(end bool) error {
		if err := s.j.View(func(tx meta.Txn) error {
			for _, c := range batch {
				// The entry, then the child's inode: the directory is not
				// read again for each child.
				var a *meta.Attr
				child, _, err := meta.Child(tx, ino, c.Name)
				if err == nil {
					a, err = meta.GetAttr(tx, child)
				}
				switch {
				case err != nil:
					st.added++
				case keptByLoad(a):
				case a.Type != meta.FileType(c.Type):
					st.updated++
				case c.Type == metapb.FileType_REGULAR && !a.Pending && !sameFingerprint(a.UFS, c.Ufs):
					st.updated++
				}
			}
			return nil
		}); err != nil {
			return err
		}
		res, err := s.propose(ctx, &metapb.Entry{Op: &metapb.Entry_LoadDir{LoadDir: &metapb.LoadDir{
			Dir: ino, Children: batch, Begin: begin, End: end, Gen: gen,
		}}})
		if err != nil {
			return err
		}
		if res.Errno != 0 {
			return fail(res.Errno, "load %s", m.Path+"/"+rel)
		}
		if begin {
			begin, gen = false, res.Gen
		}
		st.removed += uint64(len(res.Removed))
		batch = batch[:0]
		return nil
	}
	// The next page is listed while this one is journaled, so that a load
	// runs at the pace of the slower of the two rather than of their sum;
	// one page waits at most.
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	pages := make(chan ufs.Page, 1)
	var listErr error // set before pages is closed
	go func() {
		defer close(pages)
		cursor := ""
		for {
			page, err := fsys.List(lctx, rel, ufs.ListOptions{Cursor: cursor, PageSize: s.cfg.ListPageSize})
			if err != nil {
				listErr = err
				return
			}
			select {
			case pages <- page:
			case <-lctx.Done():
				return
			}
			if page.Next == "" {
				return
			}
			cursor = page.Next
		}
	}()
	for page := range pages {
		listed.Add(uint64(len(page.Entries)))
		for _, fi := range page.Entries {
			st.entries++
			if en := meta.CheckName([]byte(fi.Name)); en != 0 {
				st.skipped++
				s.log.Warn("ufs load: skipping a name the namespace cannot hold",
					"mount", m.Path, "dir", rel, "name", fi.Name, "reason", en.Error())
				continue
			}
			c := &metapb.LoadedChild{Name: []byte(fi.Name), Uid: uid, Gid: gid}
			if fi.IsDir {
				c.Type, c.Mode = metapb.FileType_DIRECTORY, loadedDirMode
			} else {
				c.Type, c.Mode, c.Ufs = metapb.FileType_REGULAR, loadedFileMode, fingerprintOf(fi.Fingerprint)
			}
			batch = append(batch, c)
			if len(batch) == meta.MaxLoadBatch {
				if err := flush(false); err != nil {
					return st, err // stop ends the listing
				}
			}
		}
	}
	if listErr != nil {
		return st, ufsFail(m, listErr)
	}
	return st, flush(true)
}

// keptByLoad reports whether a load leaves entry a as it is whatever the UFS
// lists under its name, as meta's LoadDir does: a pending file, a symlink, a
// special file or a mount point. An object under such a name stays hidden.
func keptByLoad(a *meta.Attr) bool {
	return a.Pending || a.MountID != 0 || a.Type == meta.TypeSymlink || a.Type.Special()
}

func sameFingerprint(a meta.Fingerprint, b *metapb.Fingerprint) bool {
	return a.Size == b.GetSize() && a.ETag == b.GetEtag() && a.MtimeNs == b.GetMtimeNs()
}

// loadErr keeps what a preload must report: a failure of the UFS or of the
// journal. Namespace outcomes (ENOENT, ENOTDIR, ...) are left to the
// operation itself, which reports them with its own message.
func loadErr(err error) error {
	var pe *posixError
	if err == nil || errors.As(err, &pe) {
		return err
	}
	if _, ok := meta.Errno(err); ok {
		return nil
	}
	return err
}

// preloadPath loads every directory along comps that needs it, the last one
// too when last is set, so that a path resolves through names that so far
// exist only in the UFS.
func (s *Server) preloadPath(ctx context.Context, comps []string, last bool) error {
	if s.pathLoaded(comps, last) {
		return nil
	}
	ino := uint64(meta.RootIno)
	for i := 0; ; i++ {
		if i == len(comps) && !last {
			return nil
		}
		if _, err := s.ensureLoaded(ctx, ino, false); err != nil {
			return loadErr(err)
		}
		if i == len(comps) || (i == len(comps)-1 && !last) {
			return nil // the last name is not loaded: it need not be a directory
		}
		var a *meta.Attr
		err := s.resolve(func(tx meta.Txn) (err error) {
			a, err = meta.Lookup(tx, ino, []byte(comps[i]))
			return err
		})
		if err != nil || a.Type != meta.TypeDirectory {
			return loadErr(err)
		}
		ino = a.Ino
	}
}

// pathLoaded says, from one view of the namespace, that preloadPath has nothing
// to load: every directory it would visit is loaded and fresh, or the path
// stops at a name a fresh directory does not hold. Any doubt (a read error, a
// directory due) answers false, and preloadPath takes the long way, one
// directory at a time.
func (s *Server) pathLoaded(comps []string, last bool) bool {
	ok := false
	_ = s.resolve(func(tx meta.Txn) error {
		_, fresh, err := s.walkFresh(tx, comps, last)
		ok = fresh && (err == nil || isOutcome(err))
		return nil
	})
	return ok
}

// walkFresh resolves comps in tx as walk does and reports whether every
// directory it passes through (the last one too when last is set) is fresh:
// not under a mount, or loaded from its UFS within the mount's sync interval.
// When fresh, the attributes or the namespace outcome (ENOENT, ENOTDIR) are
// the answer; when not, neither is, and the caller preloads the path and
// resolves it again. One view, one read of each inode and entry on the path:
// this is the whole work of a stat.
func (s *Server) walkFresh(tx meta.Txn, comps []string, last bool) (a *meta.Attr, fresh bool, err error) {
	now := s.now().UnixNano()
	var m *meta.Mount
	if a, err = meta.GetAttr(tx, meta.RootIno); err != nil {
		return nil, false, err
	}
	for i := 0; ; i++ {
		if i == len(comps) && !last {
			return a, true, nil
		}
		if a.Type != meta.TypeDirectory {
			if i == len(comps) {
				return a, true, nil // the last name: nothing to load
			}
			return nil, true, fail(syscall.ENOTDIR, "%s is not a directory", meta.CleanPath(comps[:i]))
		}
		if a.MountID != 0 {
			if m, err = meta.GetMount(tx, a.MountID); err != nil {
				return nil, false, err
			}
		}
		if m != nil && (!a.Loaded || (m.SyncIntervalNs > 0 && now-a.LoadedNs >= m.SyncIntervalNs)) {
			return nil, false, nil
		}
		if i == len(comps) {
			return a, true, nil
		}
		if a, err = lookupIn(tx, a, comps[i]); err != nil {
			return nil, isOutcome(err), err
		}
	}
}

// isOutcome reports whether err is a POSIX outcome of the namespace rather
// than a failure.
func isOutcome(err error) bool {
	var pe *posixError
	if errors.As(err, &pe) {
		return true
	}
	_, ok := meta.Errno(err)
	return ok
}

// preloadParent loads the directory that holds the entry r names.
func (s *Server) preloadParent(ctx context.Context, r entryRef) error {
	if r.path == "" {
		_, err := s.ensureLoaded(ctx, r.parent, false)
		return loadErr(err)
	}
	comps, err := splitPath(r.path)
	if err != nil || len(comps) == 0 {
		return nil // the operation reports it
	}
	return s.preloadPath(ctx, comps[:len(comps)-1], true)
}

// preloadChild loads the directory that holds the entry r names and, when the
// entry is a directory, that directory too.
func (s *Server) preloadChild(ctx context.Context, r entryRef) error {
	if err := s.preloadParent(ctx, r); err != nil {
		return err
	}
	var child uint64
	if err := s.resolve(func(tx meta.Txn) error {
		parent, name, err := locate(tx, r, nil)
		if err != nil || parent == 0 {
			return nil
		}
		if a, ok := childOf(tx, parent, name); ok && a.Type == meta.TypeDirectory {
			child = a.Ino
		}
		return nil
	}); err != nil {
		return err
	}
	if child == 0 {
		return nil
	}
	_, err := s.ensureLoaded(ctx, child, false)
	return loadErr(err)
}

// preloadInode loads a directory named by number or by path.
func (s *Server) preloadInode(ctx context.Context, ino uint64, path string) error {
	if path == "" {
		_, err := s.ensureLoaded(ctx, ino, false)
		return loadErr(err)
	}
	comps, err := splitPath(path)
	if err != nil {
		return nil
	}
	return s.preloadPath(ctx, comps, true)
}

// listedSoFar returns how many UFS entries the load of directory ino in
// flight has listed (0 when none runs).
func (s *Server) listedSoFar(ino uint64) uint64 {
	s.loads.mu.Lock()
	defer s.loads.mu.Unlock()
	if f, ok := s.loads.flights[ino]; ok {
		return f.listed.Load()
	}
	return 0
}

// syncProgressEvery is how often a sync reports progress.
const syncProgressEvery = 500 * time.Millisecond

// Sync reloads a directory from its UFS (a file's parent directory), and with
// recursive every directory below it, streaming progress and then totals.
func (m *mountServer) Sync(req *pb.SyncRequest, stream pb.Mounts_SyncServer) error {
	s := m.s
	ctx := stream.Context()
	var total loadStats
	progress := func(t loadStats, done bool) *pb.SyncProgress {
		return &pb.SyncProgress{
			Directories: t.dirs, Entries: t.entries, Added: t.added,
			Removed: t.removed, Updated: t.updated, Skipped: t.skipped, Done: done,
		}
	}
	sendStats := func(t loadStats) error { return stream.Send(progress(t, false)) }
	send := func(done bool, err error) error {
		p := progress(total, done)
		en, msg, err := s.outcome(err)
		if err != nil {
			return err
		}
		p.Errno, p.Message = en, msg
		return stream.Send(p)
	}
	comps, err := splitPath(req.Path)
	if err == nil {
		err = s.preloadPath(ctx, comps, false)
	}
	var start uint64
	if err == nil {
		err = s.resolve(func(tx meta.Txn) error {
			a, err := walk(tx, comps)
			if err != nil {
				return err
			}
			if a.Type != meta.TypeDirectory {
				if len(comps) == 0 {
					return fail(syscall.ENOTDIR, "/ is not a directory")
				}
				if a, err = walk(tx, comps[:len(comps)-1]); err != nil {
					return err
				}
			}
			mt, _, err := under(tx, a.Ino)
			if err != nil {
				return err
			}
			if mt == nil {
				return fail(syscall.EINVAL, "%s is not under a UFS mount", req.Path)
			}
			start = a.Ino
			return nil
		})
	}
	if err != nil {
		return send(true, err)
	}
	queue := []uint64{start}
	last := time.Now()
	for len(queue) > 0 {
		ino := queue[0]
		queue = queue[1:]
		// The load runs apart, so that progress goes on being reported
		// while one directory of millions of entries loads.
		type outcome struct {
			st  loadStats
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			st, err := s.ensureLoaded(ctx, ino, true)
			done <- outcome{st, err}
		}()
		var o outcome
		for waiting := true; waiting; {
			select {
			case o = <-done:
				waiting = false
			case <-time.After(max(0, syncProgressEvery-time.Since(last))):
				last = time.Now()
				inFlight := total
				inFlight.entries += s.listedSoFar(ino)
				if err := sendStats(inFlight); err != nil {
					return err
				}
			}
		}
		total.add(o.st)
		if o.err != nil {
			return send(true, o.err)
		}
		if req.Recursive {
			var cursor []byte
			for {
				var ents []meta.DirEntry
				more := false
				if err := s.resolve(func(tx meta.Txn) (err error) {
					ents, more, err = meta.ReadDir(tx, ino, cursor, meta.MaxReadDirPage, false)
					return err
				}); err != nil {
					if _, ok := meta.Errno(err); ok {
						break // removed meanwhile
					}
					return send(true, err)
				}
				for _, e := range ents {
					if e.Type == meta.TypeDirectory {
						queue = append(queue, e.Ino)
					}
				}
				if !more || len(ents) == 0 {
					break
				}
				cursor = ents[len(ents)-1].Name
			}
		}
		if time.Since(last) >= syncProgressEvery {
			last = time.Now()
			if err := send(false, nil); err != nil {
				return err
			}
		}
	}
	return send(true, nil)
}
