package hdfs

import (
	"container/heap"
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"sync"

	hdfs "github.com/colinmarc/hdfs/v2"

	"github.com/skyfs/skyfs/ufs"
)

// readdirBatch is how many entries one Readdir asks the namenode for (its own
// listing limit, dfs.ls.limit, is 1000 by default).
const readdirBatch = 1000

// maxListers is how many listings in progress are kept open for their next page.
const maxListers = 16

// entry is one directory entry with its sort key.
type entry struct {
	key string
	fi  fs.FileInfo
}

func sortKey(fi fs.FileInfo) string {
	if fi.IsDir() {
		return fi.Name() + "/"
	}
	return fi.Name()
}

// reorder turns entries arriving in name order (the namenode's) into SortKey
// order. A directory's key is its name plus "/", so it may have to wait for the
// names that start with its name followed by a byte below "/". Every later entry
// has a key at least its name, so a pending entry whose key is below the latest
// name can go out. Only directories whose name is a prefix of the latest name
// wait, so the pending set stays small.
type reorder struct {
	pending entryHeap
}

// push adds e, which must not sort before the previous push by name, and returns
// the entries now ready, in key order.
func (r *reorder) push(e entry, ready []entry) []entry {
	name := e.fi.Name()
	for len(r.pending) > 0 && r.pending[0].key < name {
		ready = append(ready, heap.Pop(&r.pending).(entry))
	}
	heap.Push(&r.pending, e)
	return ready
}

// flush returns every pending entry in key order.
func (r *reorder) flush(ready []entry) []entry {
	for len(r.pending) > 0 {
		ready = append(ready, heap.Pop(&r.pending).(entry))
	}
	return ready
}

type entryHeap []entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].key < h[j].key }
func (h entryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *entryHeap) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *entryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// source yields directory entries in name order, a batch at a time; io.EOF at
// the end.
type source func() ([]fs.FileInfo, error)

// lister yields the entries of one directory in key order.
type lister struct {
	dir   string
	src   source
	close func() error
	ro    reorder
	ready []entry
	eof   bool
}

// next returns the next entry in key order; ok is false at the end.
func (l *lister) next() (e entry, ok bool, err error) {
	for len(l.ready) == 0 {
		if l.eof {
			return entry{}, false, nil
		}
		batch, err := l.src()
		if errors.Is(err, io.EOF) || (err == nil && len(batch) == 0) {
			l.eof = true
			l.ready = l.ro.flush(l.ready)
			continue
		}
		if err != nil {
			return entry{}, false, err
		}
		for _, fi := range batch {
			if strings.HasPrefix(fi.Name(), tmpPrefix) {
				continue
			}
			l.ready = l.ro.push(entry{key: sortKey(fi), fi: fi}, l.ready)
		}
	}
	e = l.ready[0]
	l.ready = l.ready[1:]
	return e, true, nil
}

// page returns up to size entries with keys after cursor, and whether more
// follow. A fresh lister skips up to the cursor; a resumed one is already there.
func (l *lister) page(cursor string, size int) ([]entry, bool, error) {
	var out []entry
	for len(out) < size {
		e, ok, err := l.next()
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return out, false, nil
		}
		if e.key > cursor {
			out = append(out, e)
		}
	}
	// Peek: is there anything after this page?
	e, ok, err := l.next()
	if err != nil {
		return nil, false, err
	}
	if ok {
		l.ready = append([]entry{e}, l.ready...)
	}
	return out, ok, nil
}

// listCache keeps listers between pages, keyed by directory and cursor, so that
// a listing read page by page costs one pass over the directory.
type listCache struct {
	mu    sync.Mutex
	order []string
	m     map[string]*lister
}

func newListCache() *listCache { return &listCache{m: map[string]*lister{}} }

func cacheKey(dir, cursor string) string { return dir + "\x00" + cursor }

func (c *listCache) take(dir, cursor string) *lister {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := cacheKey(dir, cursor)
	l := c.m[k]
	if l != nil {
		delete(c.m, k)
	}
	return l
}

func (c *listCache) put(dir, cursor string, l *lister) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := cacheKey(dir, cursor)
	if old := c.m[k]; old != nil {
		old.close()
	}
	c.m[k] = l
	c.order = append(c.order, k)
	for len(c.m) > maxListers && len(c.order) > 0 {
		oldest := c.order[0]
		c.order = c.order[1:]
		if old := c.m[oldest]; old != nil {
			old.close()
			delete(c.m, oldest)
		}
	}
	if len(c.order) > 4*maxListers {
		live := c.order[:0]
		for _, k := range c.order {
			if c.m[k] != nil {
				live = append(live, k)
			}
		}
		c.order = live
	}
}

func (c *listCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, l := range c.m {
		l.close()
		delete(c.m, k)
	}
	c.order = nil
}

// List implements ufs.FileSystem. The cursor is the sort key of the last entry
// returned. The namenode lists by name, which is not key order; a reorder step
// fixes that with a small buffer. Without a kept lister (evicted, or another
// process) a page re-reads the directory from its start and skips to the cursor.
func (f *FS) List(ctx context.Context, dir string, opts ufs.ListOptions) (ufs.Page, error) {
	if err := f.check(ctx, "list", dir); err != nil {
		return ufs.Page{}, err
	}
	size := opts.PageSize
	if size <= 0 {
		size = ufs.DefaultPageSize
	}
	l := f.lists.take(dir, opts.Cursor)
	if l == nil {
		var err error
		if l, err = f.newLister(dir); err != nil {
			return ufs.Page{}, f.fail("list", dir, err)
		}
	}
	entries, more, err := l.page(opts.Cursor, size)
	if err != nil {
		l.close()
		return ufs.Page{}, f.fail("list", dir, err)
	}
	var page ufs.Page
	for _, e := range entries {
		p := ufs.Join(dir, e.fi.Name())
		page.Entries = append(page.Entries, ufs.FileInfo{Path: p, Name: e.fi.Name(), IsDir: e.fi.IsDir(), Fingerprint: fingerprint(e.fi)})
	}
	if more {
		page.Next = entries[len(entries)-1].key
		f.lists.put(dir, page.Next, l)
	} else {
		l.close()
	}
	return page, nil
}

func (f *FS) newLister(dir string) (*lister, error) {
	r, err := f.client.Open(f.abs(dir))
	if err != nil {
		return nil, err
	}
	if !r.Stat().IsDir() {
		r.Close()
		return nil, ufs.ErrNotDir
	}
	return &lister{dir: dir, src: readdirSource(r), close: r.Close}, nil
}

func readdirSource(r *hdfs.FileReader) source {
	return func() ([]fs.FileInfo, error) { return r.Readdir(readdirBatch) }
}
