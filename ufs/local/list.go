package local

import (
	"container/heap"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/skyfs/skyfs/ufs"
)

// readBatch is how many directory entries List reads from the kernel at a time.
const readBatch = 512

// windowSize is how many keys one directory scan keeps: the page asked for, and
// the following ones for the next pages of the same listing.
var windowSize = 8192

// maxWindows is how many listings in progress keep their window.
const maxWindows = 16

// List implements ufs.FileSystem. The cursor is the sort key of the last entry
// returned. A directory is not sorted on disk, so a scan reads all its names and
// keeps the windowSize smallest after the cursor in a heap, then stats only those;
// the page is served from that window and the rest is kept for the next pages (at
// most maxWindows listings, evicted oldest first; an evicted listing scans again).
// Memory is bounded by the window, whatever the size of the directory, and each
// entry is stat'ed about once per listing.
func (f *FS) List(ctx context.Context, dir string, opts ufs.ListOptions) (ufs.Page, error) {
	if err := f.check(ctx, "list", dir); err != nil {
		return ufs.Page{}, err
	}
	pageSize := opts.PageSize
	if pageSize <= 0 {
		pageSize = ufs.DefaultPageSize
	}
	w := f.windows.take(dir, opts.Cursor)
	if w == nil || (len(w.items) < pageSize && w.more) {
		var err error
		if w, err = f.scan(ctx, dir, opts.Cursor, max(pageSize, windowSize)); err != nil {
			return ufs.Page{}, err
		}
	}
	var page ufs.Page
	n := min(pageSize, len(w.items))
	for _, it := range w.items[:n] {
		page.Entries = append(page.Entries, info(ufs.Join(dir, it.fi.Name()), it.fi))
	}
	rest := &window{items: w.items[n:], more: w.more}
	if len(rest.items) > 0 || rest.more {
		page.Next = w.items[n-1].key
		if len(rest.items) > 0 {
			f.windows.put(dir, page.Next, rest)
		}
	}
	return page, nil
}

// scan reads the directory and returns the entries with the smallest keys after
// cursor, at least one unless the listing is over. It selects the limit smallest
// names first (no stat), then stats them: a key is the name, or the name and "/"
// for a directory, so every key up to the largest selected name is certain to be
// in order; a directory key beyond it waits for the next scan.
func (f *FS) scan(ctx context.Context, dir, cursor string, limit int) (*window, error) {
	for {
		w, err := f.scanOnce(ctx, dir, cursor, limit)
		if err != nil || len(w.items) > 0 || !w.more {
			return w, err
		}
		limit *= 2 // only directories past the largest name: look further
	}
}

func (f *FS) scanOnce(ctx context.Context, dir, cursor string, limit int) (*window, error) {
	sub, d, err := f.openDir(dir)
	if err != nil {
		return nil, err
	}
	defer sub.Close()
	defer d.Close()
	// The limit+1 smallest names that may have a key after the cursor; the
	// extra one tells whether more follow.
	h := &maxHeap{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, f.fail("list", dir, err)
		}
		names, err := d.Readdirnames(readBatch)
		for _, name := range names {
			switch {
			case strings.HasPrefix(name, tmpPrefix), name+"/" <= cursor:
			case h.Len() <= limit:
				heap.Push(h, name)
			case name < (*h)[0]:
				(*h)[0] = name
				heap.Fix(h, 0)
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(names) == 0) {
			break
		}
		if err != nil {
			return nil, f.fail("list", dir, err)
		}
	}
	names := []string(*h)
	slices.Sort(names)
	w := &window{}
	if len(names) > limit {
		names, w.more = names[:limit], true
	}
	for _, name := range names {
		fi, err := f.statEntry(sub, dir, name)
		if err != nil {
			continue // removed meanwhile, or a link leading out of the root
		}
		key := name
		if fi.IsDir() {
			key += "/"
		}
		if key > cursor {
			w.items = append(w.items, item{key: key, fi: fi})
		}
	}
	slices.SortFunc(w.items, func(a, b item) int { return strings.Compare(a.key, b.key) })
	if w.more && len(names) > 0 {
		last := names[len(names)-1]
		i := len(w.items)
		for i > 0 && w.items[i-1].key > last {
			i--
		}
		w.items = w.items[:i]
	}
	return w, nil
}

// openDir opens the directory dir as a root of its own (so that its entries are
// stat'ed with one fstatat each) and as a file to read names from.
func (f *FS) openDir(dir string) (*os.Root, *os.File, error) {
	st, err := f.root.Stat(osName(dir))
	if err != nil {
		return nil, nil, f.fail("list", dir, err)
	}
	if !st.IsDir() {
		return nil, nil, f.fail("list", dir, ufs.ErrNotDir)
	}
	sub, err := f.root.OpenRoot(osName(dir))
	if err != nil {
		return nil, nil, f.fail("list", dir, err)
	}
	d, err := sub.Open(".")
	if err != nil {
		sub.Close()
		return nil, nil, f.fail("list", dir, err)
	}
	return sub, d, nil
}

// statEntry stats the entry name of dir (opened as sub). A symbolic link is
// followed if it stays inside the mount's root; otherwise it is an error.
func (f *FS) statEntry(sub *os.Root, dir, name string) (fs.FileInfo, error) {
	fi, err := sub.Lstat(name)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return fi, err
	}
	return f.root.Stat(ufs.Join(dir, name))
}

// window is the next entries of a listing in progress.
type window struct {
	items []item // sorted by key
	more  bool   // entries after the last one exist
}

// item is a directory entry and its sort key.
type item struct {
	key string
	fi  fs.FileInfo
}

// windowCache keeps windows between pages, keyed by directory and cursor.
type windowCache struct {
	mu    sync.Mutex
	order []string
	m     map[string]*window
}

func (c *windowCache) take(dir, cursor string) *window {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := dir + "\x00" + cursor
	w := c.m[k]
	delete(c.m, k)
	return w
}

func (c *windowCache) put(dir, cursor string, w *window) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*window{}
	}
	k := dir + "\x00" + cursor
	c.m[k] = w
	c.order = append(c.order, k)
	for len(c.m) > maxWindows && len(c.order) > 0 {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	if len(c.order) > 4*maxWindows {
		live := c.order[:0]
		for _, k := range c.order {
			if c.m[k] != nil {
				live = append(live, k)
			}
		}
		c.order = live
	}
}

// maxHeap is a max-heap of sort keys.
type maxHeap []string

func (h maxHeap) Len() int           { return len(h) }
func (h maxHeap) Less(i, j int) bool { return h[i] > h[j] }
func (h maxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *maxHeap) Push(x any)        { *h = append(*h, x.(string)) }
func (h *maxHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
