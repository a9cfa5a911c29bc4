package fusefs

import (
	"bytes"
	"context"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/skyfs/skyfs/meta"
)

// dirHandle is one open directory. It streams the listing from the master
// one page at a time. Entry positions are offsets: 0 is ".", 1 is "..", and
// entry i of the listing is 2+i; a DirEntry's Off is the position after it,
// which seekdir takes back. To seek, the handle remembers where each page it
// fetched started (its first position and the name before it), so memory is
// one page plus one name per page read.
type dirHandle struct {
	n *Node

	mu    sync.Mutex
	pages []pageMark // where each page fetched so far starts
	cur   int        // index in pages of the page held, -1 for none
	page  []meta.DirEntry
	more  bool   // entries follow the page held
	plus  bool   // the page held carries attributes
	pos   uint64 // position of the next entry to return
}

// pageMark locates one page of the listing.
type pageMark struct {
	start uint64 // listing index of the page's first entry
	after string // cursor: the name before the page ("" for the first)
}

var (
	_ = (gofs.FileReaddirenter)((*dirHandle)(nil))
	_ = (gofs.FileSeekdirer)((*dirHandle)(nil))
	_ = (gofs.FileLookuper)((*dirHandle)(nil))
	_ = (gofs.FileReleasedirer)((*dirHandle)(nil))
	_ = (gofs.FileFsyncdirer)((*dirHandle)(nil))
)

// OpendirHandle implements gofs.NodeOpendirHandler.
func (n *Node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	n.mu.Lock()
	typ := n.attr.Type
	n.mu.Unlock()
	if typ != meta.TypeDirectory {
		return nil, 0, syscall.ENOTDIR
	}
	return &dirHandle{n: n, cur: -1}, 0, 0
}

// load fetches page i of the listing (pages[i] must exist) and makes it
// the page held.
func (d *dirHandle) load(ctx context.Context, i int, plus bool) syscall.Errno {
	ents, more, err := d.n.m.ns.ReadDir(ctx, d.n.ino(), d.pages[i].after, d.n.m.opts.ReadDirPage, plus)
	if err != nil {
		return toErrno(err)
	}
	d.cur, d.page, d.more, d.plus = i, ents, more, plus
	if more && len(ents) > 0 && i == len(d.pages)-1 {
		d.pages = append(d.pages, pageMark{
			start: d.pages[i].start + uint64(len(ents)),
			after: string(ents[len(ents)-1].Name),
		})
	}
	return 0
}

// seekEntry makes the page holding listing index e the page held and
// returns e's index in it. It reports false at the end of the listing.
func (d *dirHandle) seekEntry(ctx context.Context, e uint64) (int, bool, syscall.Errno) {
	if len(d.pages) == 0 {
		d.pages = append(d.pages, pageMark{})
	}
	// Start from the last page known to start at or before e.
	i := len(d.pages) - 1
	for i > 0 && d.pages[i].start > e {
		i--
	}
	if d.cur != i {
		if en := d.load(ctx, i, false); en != 0 {
			return 0, false, en
		}
	}
	for {
		start := d.pages[d.cur].start
		if e < start+uint64(len(d.page)) {
			return int(e - start), true, 0
		}
		if !d.more || len(d.page) == 0 {
			return 0, false, 0
		}
		if en := d.load(ctx, d.cur+1, false); en != 0 {
			return 0, false, en
		}
	}
}

// Readdirent implements gofs.FileReaddirenter.
func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch d.pos {
	case 0:
		d.pos = 1
		return &fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: d.n.ino(), Off: 1}, 0
	case 1:
		d.pos = 2
		ino := d.n.ino()
		if _, p := d.n.Parent(); p != nil {
			ino = p.StableAttr().Ino
		}
		return &fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: ino, Off: 2}, 0
	}
	i, ok, en := d.seekEntry(ctx, d.pos-2)
	if en != 0 || !ok {
		return nil, en
	}
	e := &d.page[i]
	d.pos++
	return &fuse.DirEntry{Name: string(e.Name), Mode: typeMode(e.Type), Ino: e.Ino, Off: d.pos}, 0
}

// Seekdir implements gofs.FileSeekdirer.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off == 0 {
		// rewinddir: list afresh.
		d.pages, d.cur, d.page, d.more = nil, -1, nil, false
	}
	d.pos = off
	return 0
}

// Lookup implements gofs.FileLookuper: READDIRPLUS asks for the attributes
// of the entry Readdirent returned last. They come with the page, fetched
// again with attributes the first time the kernel asks for them.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	d.mu.Lock()
	var a *meta.Attr
	if d.cur >= 0 && d.pos >= 3 {
		if i := int(d.pos - 3 - d.pages[d.cur].start); i >= 0 && i < len(d.page) && string(d.page[i].Name) == name {
			if d.page[i].Attr == nil && !d.plus {
				d.addAttrs(ctx)
			}
			a = d.page[i].Attr
		}
	}
	d.mu.Unlock()
	if a == nil {
		return d.n.Lookup(ctx, name, out)
	}
	return d.n.childNode(ctx, name, a, out), 0
}

// addAttrs fetches the page held again with attributes and attaches them to
// the entries that are still the same.
func (d *dirHandle) addAttrs(ctx context.Context) {
	d.plus = true
	mark := d.pages[d.cur]
	ents, _, err := d.n.m.ns.ReadDir(ctx, d.n.ino(), mark.after, d.n.m.opts.ReadDirPage, true)
	if err != nil {
		return
	}
	j := 0
	for i := range d.page {
		for j < len(ents) && bytes.Compare(ents[j].Name, d.page[i].Name) < 0 {
			j++
		}
		if j < len(ents) && bytes.Equal(ents[j].Name, d.page[i].Name) && ents[j].Ino == d.page[i].Ino {
			d.page[i].Attr = ents[j].Attr
		}
	}
}

// Releasedir implements gofs.FileReleasedirer.
func (d *dirHandle) Releasedir(ctx context.Context, releaseFlags uint32) {
	d.mu.Lock()
	d.pages, d.page = nil, nil
	d.mu.Unlock()
}

// Fsyncdir implements gofs.FileFsyncdirer: directories are journaled by the
// master as they change.
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno { return 0 }
