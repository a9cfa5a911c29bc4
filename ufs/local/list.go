package local

import (
	"container/heap"
	"context"
	"errors"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/skyfs/skyfs/ufs"
)

// readBatch is how many directory entries List reads from the kernel at a time.
const readBatch = 512

// List implements ufs.FileSystem. The cursor is the sort key of the last entry
// returned. A directory is not sorted on disk, so each page scans the whole
// directory and keeps only the PageSize smallest keys after the cursor in a heap:
// memory is bounded by the page size, at the price of one directory scan per page.
func (f *FS) List(ctx context.Context, dir string, opts ufs.ListOptions) (ufs.Page, error) {
	if err := f.check(ctx, "list", dir); err != nil {
		return ufs.Page{}, err
	}
	pageSize := opts.PageSize
	if pageSize <= 0 {
		pageSize = ufs.DefaultPageSize
	}
	d, err := f.root.Open(osName(dir))
	if err != nil {
		return ufs.Page{}, f.fail("list", dir, err)
	}
	defer d.Close()
	st, err := d.Stat()
	if err != nil {
		return ufs.Page{}, f.fail("list", dir, err)
	}
	if !st.IsDir() {
		return ufs.Page{}, f.fail("list", dir, ufs.ErrNotDir)
	}

	// The pageSize+1 smallest keys after the cursor; the extra one tells whether
	// another page follows.
	h := &maxHeap{}
	for {
		if err := ctx.Err(); err != nil {
			return ufs.Page{}, f.fail("list", dir, err)
		}
		ents, err := d.ReadDir(readBatch)
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, tmpPrefix) {
				continue
			}
			isDir := e.IsDir()
			if e.Type()&fs.ModeSymlink != 0 {
				// Follow links that stay inside the root; skip the others.
				fi, err := f.root.Stat(ufs.Join(dir, name))
				if err != nil {
					continue
				}
				isDir = fi.IsDir()
			}
			key := name
			if isDir {
				key += "/"
			}
			if key <= opts.Cursor {
				continue
			}
			if h.Len() <= pageSize {
				heap.Push(h, key)
			} else if key < (*h)[0] {
				(*h)[0] = key
				heap.Fix(h, 0)
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(ents) == 0) {
			break
		}
		if err != nil {
			return ufs.Page{}, f.fail("list", dir, err)
		}
	}

	keys := []string(*h)
	slices.Sort(keys)
	var page ufs.Page
	if len(keys) > pageSize {
		keys = keys[:pageSize]
		page.Next = keys[len(keys)-1]
	}
	for _, key := range keys {
		name := strings.TrimSuffix(key, "/")
		p := ufs.Join(dir, name)
		fi, err := f.root.Stat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since the scan
			}
			return ufs.Page{}, f.fail("list", p, err)
		}
		page.Entries = append(page.Entries, info(p, fi))
	}
	return page, nil
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
