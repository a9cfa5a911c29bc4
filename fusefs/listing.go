package fusefs

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/skyfs/skyfs/meta"
)

// Lookups answered from a directory's listing.
//
// A process that stats many names of one directory (find, ls -l without
// READDIRPLUS, a job opening every file of a partition) costs one master
// round trip per name. Once listingAfter lookups of one directory went to
// the master within one kernel timeout, the directory's listing is fetched
// with attributes, in the background and in pages (each serving as soon as
// it arrives), and later lookups of the names it holds are answered from it
// until it is as old as the shorter of the attribute and entry timeouts.
// Each such answer carries what remains of that time as its kernel
// timeouts, so an attribute the kernel shows is never older than the
// mount's attribute timeout, as with the kernel's own cache alone. Names a
// listing does not hold still ask the master: a name created on another
// host is found at once. Any change made through this mount drops every
// listing (changeCounter). An open uses the attributes a listing answered
// only while they are younger than the attribute timeout (revalidate.go).
const (
	// listingAfter is how many lookups of one directory go to the master
	// within one timeout before its listing is fetched.
	listingAfter = 16
	// listingPages bounds one listing: a larger directory is held in part.
	listingPages = 16
	// maxListings bounds the listings a mount holds; the one expiring first
	// makes room for a new one.
	maxListings = 8
	// minLocalTTL is the shortest kernel timeout for which lookups and
	// attributes are answered from what mountd holds (listings, reported
	// directory attributes).
	minLocalTTL = 50 * time.Millisecond
	// listingWait bounds the fetching of one listing.
	listingWait = 30 * time.Second
)

// listing is the attributes of the entries of one directory as they were at
// one time. Its pages are added as they arrive.
type listing struct {
	gen     uint64 // the mount's change count when fetching began
	expires time.Time
	attrs   map[string]*meta.Attr // guarded by listings.mu
}

// listings holds a mount's directory listings by directory inode.
type listings struct {
	ttl time.Duration // how long a listing serves; 0: never fetched
	gen *atomic.Uint64

	mu    sync.Mutex
	byDir map[meta.Ino]*listing
}

func newListings(opts Options, gen *atomic.Uint64) *listings {
	ttl := min(opts.AttrTimeout, opts.EntryTimeout)
	if ttl < minLocalTTL {
		ttl = 0
	}
	return &listings{ttl: ttl, gen: gen, byDir: map[meta.Ino]*listing{}}
}

// usable reports whether l still serves.
func (ls *listings) usable(l *listing, now time.Time) bool {
	return l.gen == ls.gen.Load() && now.Before(l.expires)
}

// lookup returns the attributes of name in dir and how long they may be
// cached, when a listing of dir holds it.
func (ls *listings) lookup(dir meta.Ino, name string) (*meta.Attr, time.Duration, bool) {
	if ls.ttl == 0 {
		return nil, 0, false
	}
	now := time.Now()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.byDir[dir]
	if l == nil {
		return nil, 0, false
	}
	if !ls.usable(l, now) {
		delete(ls.byDir, dir)
		return nil, 0, false
	}
	a := l.attrs[name]
	return a, l.expires.Sub(now), a != nil
}

// held reports whether a usable listing of dir is held.
func (ls *listings) held(dir meta.Ino) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.byDir[dir]
	return l != nil && ls.usable(l, time.Now())
}

// put stores l as dir's listing, dropping those no longer usable and, when
// the mount holds maxListings, the one expiring first.
func (ls *listings) put(dir meta.Ino, l *listing) {
	now := time.Now()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var first meta.Ino
	for d, o := range ls.byDir {
		if !ls.usable(o, now) {
			delete(ls.byDir, d)
		} else if first == 0 || o.expires.Before(ls.byDir[first].expires) {
			first = d
		}
	}
	if len(ls.byDir) >= maxListings {
		delete(ls.byDir, first)
	}
	if ls.usable(l, now) {
		ls.byDir[dir] = l
	}
}

// dirLookups counts a directory's lookups that went to the master. Guarded
// by the Node's mu.
type dirLookups struct {
	misses   int
	window   time.Time // end of the current counting window
	gen      uint64    // the mount's change count when the window began
	fetching bool
}

// cachedLookup answers a lookup of name from n's listing.
func (n *Node) cachedLookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, bool) {
	gen := n.m.attrGen.Load()
	a, ttl, ok := n.m.listings.lookup(n.ino(), name)
	if !ok {
		return nil, false
	}
	// The listing was asked for when it began to be fetched, its lifetime
	// ago, and nothing has changed here since.
	ch := n.childNodeAt(ctx, name, a, n.m.now().Add(ttl-n.m.listings.ttl), gen, out)
	out.SetEntryTimeout(ttl)
	out.SetAttrTimeout(ttl)
	return ch, true
}

// lookupMissed counts a lookup of n that the master answered and starts
// fetching n's listing when there were listingAfter of them in one window
// in which this mount changed nothing (a listing fetched while names are
// being created here would be dropped at once).
func (n *Node) lookupMissed() {
	ls := n.m.listings
	if ls.ttl == 0 {
		return
	}
	now, gen := time.Now(), ls.gen.Load()
	n.mu.Lock()
	d := &n.dir
	if now.After(d.window) || d.gen != gen {
		d.misses, d.window, d.gen = 0, now.Add(ls.ttl), gen
	}
	d.misses++
	start := d.misses >= listingAfter && !d.fetching
	if start {
		d.misses, d.fetching = 0, true
	}
	n.mu.Unlock()
	if !start {
		return
	}
	go func() {
		n.fetchListing()
		n.mu.Lock()
		n.dir.fetching = false
		n.mu.Unlock()
	}()
}

// fetchListing reads n's listing with attributes, at most listingPages
// pages, and serves each page as it arrives: the names of the pages read so
// far are found at once, the others still ask the master. Nothing is served
// once this mount changed something (the listing's gen).
func (n *Node) fetchListing() {
	ls := n.m.listings
	if ls.held(n.ino()) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(ls.ttl, listingWait))
	defer cancel()
	l := &listing{gen: ls.gen.Load(), expires: time.Now().Add(ls.ttl), attrs: map[string]*meta.Attr{}}
	after := ""
	for page := range listingPages {
		ents, more, err := n.m.ns.ReadDir(ctx, n.ino(), after, n.m.opts.ReadDirPage, true)
		if err != nil {
			return
		}
		ls.add(l, ents)
		if page == 0 {
			ls.put(n.ino(), l)
		}
		if !more || len(ents) == 0 {
			return
		}
		after = string(ents[len(ents)-1].Name)
	}
}

// add puts the entries of a page into l, which lookups may be reading.
func (ls *listings) add(l *listing, ents []meta.DirEntry) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, e := range ents {
		if e.Attr != nil {
			l.attrs[string(e.Name)] = e.Attr
		}
	}
}

// changeCounter is the mount's Namespace, counting the changes this mount
// asks for in gen before and after each one, so a listing fetched while one
// was under way is never used.
//
// attrGen counts, likewise, the changes that may change attributes of
// nodes other than those they answer for (an unlink's or rename's target,
// a hard link's other names, an extended attribute's inode's ctime): they
// end the holding of every node's attributes (revalidate.go).
type changeCounter struct {
	Namespace
	gen     *atomic.Uint64
	attrGen *atomic.Uint64
}

// around counts a change before and after it is made.
func (c changeCounter) around() func() {
	c.gen.Add(1)
	return func() { c.gen.Add(1) }
}

// aroundAll counts, in gen and in attrGen, a change before and after it is
// made.
func (c changeCounter) aroundAll() func() {
	c.gen.Add(1)
	c.attrGen.Add(1)
	return func() { c.attrGen.Add(1); c.gen.Add(1) }
}

func (c changeCounter) Mkdir(ctx context.Context, parent meta.Ino, name string, mode uint32, cl Caller) (Made, error) {
	defer c.around()()
	return c.Namespace.Mkdir(ctx, parent, name, mode, cl)
}

func (c changeCounter) Create(ctx context.Context, parent meta.Ino, name string, mode uint32, cl Caller) (Made, error) {
	defer c.around()()
	return c.Namespace.Create(ctx, parent, name, mode, cl)
}

func (c changeCounter) Symlink(ctx context.Context, parent meta.Ino, name, target string, cl Caller) (Made, error) {
	defer c.around()()
	return c.Namespace.Symlink(ctx, parent, name, target, cl)
}

func (c changeCounter) Mknod(ctx context.Context, parent meta.Ino, name string, typ meta.FileType, mode, rdev uint32, cl Caller) (Made, error) {
	defer c.around()()
	return c.Namespace.Mknod(ctx, parent, name, typ, mode, rdev, cl)
}

func (c changeCounter) Link(ctx context.Context, ino, newParent meta.Ino, newName string) (Made, error) {
	defer c.aroundAll()()
	return c.Namespace.Link(ctx, ino, newParent, newName)
}

func (c changeCounter) Unlink(ctx context.Context, parent meta.Ino, name string) (*meta.Attr, error) {
	defer c.aroundAll()()
	return c.Namespace.Unlink(ctx, parent, name)
}

func (c changeCounter) Rmdir(ctx context.Context, parent meta.Ino, name string) (*meta.Attr, error) {
	defer c.aroundAll()()
	return c.Namespace.Rmdir(ctx, parent, name)
}

func (c changeCounter) Rename(ctx context.Context, oldParent meta.Ino, oldName string, newParent meta.Ino, newName string, flags uint32) error {
	defer c.aroundAll()()
	return c.Namespace.Rename(ctx, oldParent, oldName, newParent, newName, flags)
}

func (c changeCounter) SetAttr(ctx context.Context, ino meta.Ino, req SetAttrRequest) (*meta.Attr, error) {
	defer c.around()()
	return c.Namespace.SetAttr(ctx, ino, req)
}

func (c changeCounter) CompleteFile(ctx context.Context, ino meta.Ino, size uint64, fp meta.Fingerprint, mtimeNs int64) (*meta.Attr, error) {
	defer c.around()()
	return c.Namespace.CompleteFile(ctx, ino, size, fp, mtimeNs)
}

func (c changeCounter) SetXattr(ctx context.Context, ino meta.Ino, name string, value []byte, flags uint32) error {
	defer c.aroundAll()()
	return c.Namespace.SetXattr(ctx, ino, name, value, flags)
}

func (c changeCounter) RemoveXattr(ctx context.Context, ino meta.Ino, name string) error {
	defer c.aroundAll()()
	return c.Namespace.RemoveXattr(ctx, ino, name)
}
