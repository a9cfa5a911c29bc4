package fusefs

import (
	"context"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/ufs"
)

// Attributes and locations held between opens.
//
// A node remembers when the master last answered its attributes and, for a
// file, where its content lives (its Location). While those are younger
// than the attribute timeout, an open for reading uses them without asking
// the master, and so does the kernel's GETATTR of a file (answered with what
// remains of the timeout as the kernel's): a query reopening files it has
// read makes no master round trip. This is the promise, for files and
// symbolic links (directories are not held this way):
//
//   - A change made through this mount is seen at once on this host. The
//     calls that change a file answer its new attributes, which replace the
//     node's; an unlink, rmdir, rename, link or extended attribute change
//     made here also ends the holding of every node (attrGen).
//   - Across hosts, close-to-open holds once the attribute timeout has
//     passed: an open on host B sees what host A closed when it begins an
//     attribute timeout or more after A's close returned (NFS with its
//     attribute cache, JuiceFS's open cache). A file never seen on B, or not
//     opened within the timeout, is asked for afresh. With AttrTimeout under
//     minLocalTTL (attr_timeout=0) or Options.StrictOpen, every open asks
//     the master for the file's attributes, as NFS's close-to-open does.
//   - A file renamed on another host keeps its old location here for what
//     remains of the timeout: its content is still read from the cache when
//     the cache holds it, and a block that has to be loaded is looked for
//     under the old UFS name first. When the UFS has nothing there (or not
//     with the fingerprint held), the read asks the master for the file's
//     attributes and location, holds them and reads once more from there
//     (fileHandle.relocate). A file gone from the namespace then fails
//     with ESTALE, as on NFS; a second failure is EIO.
//
// A lookup of a name the kernel has let expire is answered from the node
// it names when the master said, younger than the shorter of the attribute
// and entry timeouts, that the name is the node's (a lookup, a listing or a
// StatDir of the directory): a query that opens the same files again after
// a pause asks the master for the first name, and the revalidation that
// the open of that file makes answers the lookups of the others. Such an
// answer carries what remains of that time as its kernel timeouts, as the
// lookups answered from a directory's listing do (listing.go).
//
// Attributes too old are fetched again for the whole directory at once: the
// files of the directory the kernel knows whose attributes or location are
// too old (at most statDirMax of them) are revalidated with one
// Namespace.StatDir, which also says where the directory lives, so a file's
// location is derived from it (the directory's UFS path joined with the
// file's name, for a file with one link). A query opening every file of a
// partition pays one master round trip per directory per attribute timeout,
// not two per file. A file whose name now holds another inode, or that has
// several links, is left to the per-file calls (GetAttr, Location).
const statDirMax = 1000

// stamp says when attributes or a location were asked of the master: its
// clock, the mount's attrGen and the node's own change count then.
type stamp struct {
	at  time.Time
	gen uint64
	ver uint64
}

// now is the clock held attributes are timed with.
func (m *mount) now() time.Time { return time.Now().Add(time.Duration(m.skew.Load())) }

// stampNow returns a stamp for a call about n that is about to be made.
func (n *Node) stampNow() stamp {
	gen := n.m.attrGen.Load()
	n.mu.Lock()
	ver := n.attrVer
	n.mu.Unlock()
	return stamp{at: n.m.now(), gen: gen, ver: ver}
}

// setFresh records a, answered by the master to a call stamped st, as the
// node's attributes, held until the attribute timeout. Attributes are not
// taken when the node holds some asked for later, or changed through this
// mount since st.
func (n *Node) setFresh(a *meta.Attr, st stamp) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if st.ver != n.attrVer || st.at.Before(n.attrAt) {
		return
	}
	n.attr, n.attrAt, n.attrGen = *a, st.at, st.gen
}

// setLoc records loc, answered to a call stamped st, as where n's content
// lives.
func (n *Node) setLoc(loc Location, st stamp) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if st.at.Before(n.locAt) {
		return
	}
	n.loc, n.locAt, n.locGen = loc, st.at, st.gen
}

// leftLocked is how much longer something stamped at, with the mount's
// attrGen gen, is held. n.mu is held.
func (n *Node) leftLocked(at time.Time, gen uint64, now time.Time) time.Duration {
	ttl := n.m.heldTTL
	if ttl == 0 || at.IsZero() || gen != n.m.attrGen.Load() {
		return 0
	}
	return ttl - now.Sub(at)
}

// heldAttr returns n's attributes and how much longer they are held (0 or
// less: they are not). Directories are never held.
func (n *Node) heldAttr() (meta.Attr, time.Duration) {
	now := n.m.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.attr.Type == meta.TypeDirectory {
		return n.attr, 0
	}
	return n.attr, n.leftLocked(n.attrAt, n.attrGen, now)
}

// heldLoc returns where n's content lives, while that is held.
func (n *Node) heldLoc() (Location, bool) {
	now := n.m.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.loc, n.leftLocked(n.locAt, n.locGen, now) > 0
}

// openable reports whether an open of n needs nothing from the master.
func (n *Node) openable(now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.leftLocked(n.attrAt, n.attrGen, now) <= 0 {
		return false
	}
	return n.attr.Type != meta.TypeRegular || n.leftLocked(n.locAt, n.locGen, now) > 0
}

// readState returns n's attributes and location for an open for reading:
// those held, else those a revalidation of n's directory brings, else asked
// of the master for n alone. The location is the zero Location for
// anything but a regular file.
func (n *Node) readState(ctx context.Context) (*meta.Attr, Location, error) {
	strict := n.m.heldTTL == 0 || n.m.opts.StrictOpen
	if !strict {
		if n.openable(n.m.now()) {
			n.m.heldOpens.Add(1)
		} else {
			n.revalidate(ctx)
		}
	}
	a, left := n.heldAttr()
	if left <= 0 || strict {
		st := n.stampNow()
		fresh, err := n.m.ns.GetAttr(ctx, n.ino())
		if err != nil {
			return nil, Location{}, err
		}
		n.setFresh(fresh, st)
		a = *fresh
	}
	if a.Type != meta.TypeRegular {
		return &a, Location{}, nil
	}
	loc, ok := n.heldLoc()
	if !ok || strict {
		st := n.stampNow()
		var err error
		if loc, err = n.location(ctx); err != nil {
			return nil, Location{}, err
		}
		n.setLoc(loc, st)
	}
	return &a, loc, nil
}

// revalidate asks the master, in one StatDir call, for the attributes of n
// and of every other file of n's directory the kernel knows that an open
// would have to ask for, and where the directory lives, and holds what it
// answers. Anything that fails is left to the per-file calls.
func (n *Node) revalidate(ctx context.Context) {
	name, parent := n.Parent()
	if parent == nil {
		return
	}
	dir, ok := parent.Operations().(*Node)
	if !ok {
		return
	}
	// One revalidation of a directory at a time: the opens that find one
	// under way wait for it, and make their own only if it did not answer
	// for their file.
	dir.mu.Lock()
	if w := dir.revalidating; w != nil {
		dir.mu.Unlock()
		n.m.revalidationWaits.Add(1)
		select {
		case <-w:
		case <-ctx.Done():
			return
		}
		if n.openable(n.m.now()) {
			return
		}
		dir.mu.Lock()
	}
	var done chan struct{}
	if dir.revalidating == nil {
		done = make(chan struct{})
		dir.revalidating = done
	}
	dir.mu.Unlock()
	if done != nil {
		defer func() {
			dir.mu.Lock()
			dir.revalidating = nil
			dir.mu.Unlock()
			close(done)
		}()
	}
	now := n.m.now()
	names, nodes := []string{name}, []*Node{n}
	for cname, ch := range parent.Children() {
		if len(names) >= statDirMax {
			break
		}
		cn, ok := ch.Operations().(*Node)
		if !ok || cn == n || ch.IsDir() || cn.openable(now) {
			continue
		}
		names, nodes = append(names, cname), append(nodes, cn)
	}
	stamps := make([]stamp, len(nodes))
	for i, cn := range nodes {
		stamps[i] = cn.stampNow()
	}
	ds, err := n.m.ns.StatDir(ctx, dir.ino(), names)
	if err != nil || len(ds.Attrs) != len(names) {
		return
	}
	n.m.revalidations.Add(1)
	for i, cn := range nodes {
		a := ds.Attrs[i]
		if a == nil || a.Ino != cn.ino() || a.Type == meta.TypeDirectory {
			continue
		}
		cn.setFresh(a, stamps[i])
		cn.setNamed(stamps[i])
		if a.Type == meta.TypeRegular && a.Nlink == 1 {
			loc := ds.Loc
			loc.Path = ufs.Join(ds.Loc.Path, names[i])
			cn.setLoc(loc, stamps[i])
		}
	}
}

// setNamed records that the master said, in a call stamped st, that the
// node's name in its directory is the node's.
func (n *Node) setNamed(st stamp) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !st.at.Before(n.nameAt) {
		n.nameAt, n.nameGen = st.at, st.gen
	}
}

// heldLookup answers a lookup of name in n from the node the kernel knew
// under it, when the master said that name is the node's within the shorter
// of the timeouts (listings.ttl), and its attributes are held. Directories
// and files with several links are left to the master.
func (n *Node) heldLookup(name string, out *fuse.EntryOut) (*gofs.Inode, bool) {
	ttl := n.m.listings.ttl
	if ttl == 0 {
		return nil, false
	}
	ch := n.GetChild(name)
	if ch == nil || ch.IsDir() {
		return nil, false
	}
	cn, ok := ch.Operations().(*Node)
	if !ok {
		return nil, false
	}
	now := n.m.now()
	cn.mu.Lock()
	left := min(cn.leftLocked(cn.attrAt, cn.attrGen, now), cn.leftLocked(cn.nameAt, cn.nameGen, now)-(n.m.heldTTL-ttl))
	single := cn.attr.Nlink == 1
	cn.mu.Unlock()
	if left <= 0 || !single {
		return nil, false
	}
	n.m.heldLookups.Add(1)
	cn.fill(&out.Attr)
	out.SetEntryTimeout(left)
	out.SetAttrTimeout(left)
	return ch, true
}
