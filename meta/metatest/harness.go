// Package metatest is the conformance suite every meta engine runs: the same
// table of operations and outcomes, a model-based randomized test, and snapshot
// round trips. An engine's test calls Run with a constructor of empty stores.
package metatest

import (
	"bytes"
	"fmt"
	"sort"
	"syscall"
	"testing"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
)

// Run runs the whole suite against stores made by open.
func Run(t *testing.T, open func(t testing.TB) meta.Store) {
	t.Run("Errnos", func(t *testing.T) { testErrnos(t, open) })
	t.Run("Semantics", func(t *testing.T) { testSemantics(t, open) })
	t.Run("Ownership", func(t *testing.T) { testOwnership(t, open) })
	t.Run("ReadDirPages", func(t *testing.T) { testReadDirPages(t, open) })
	t.Run("Mounts", func(t *testing.T) { testMounts(t, open) })
	t.Run("LoadDir", func(t *testing.T) { testLoadDir(t, open) })
	t.Run("Requests", func(t *testing.T) { testRequests(t, open) })
	t.Run("Snapshot", func(t *testing.T) { testSnapshot(t, open) })
	t.Run("BatchIsolation", func(t *testing.T) { testBatchIsolation(t, open) })
	t.Run("BatchEntry", func(t *testing.T) { testBatchEntry(t, open) })
	t.Run("Delegations", func(t *testing.T) { testDelegations(t, open) })
	t.Run("DelegationSnapshot", func(t *testing.T) { testDelegationSnapshot(t, open) })
	t.Run("Model", func(t *testing.T) { testModel(t, open) })
}

// H applies entries to a store, one transaction each, with a clock that moves
// one second per entry.
type H struct {
	T     testing.TB
	S     meta.Store
	Clock int64
}

// NewH returns a harness over s.
func NewH(t testing.TB, s meta.Store) *H { return &H{T: t, S: s, Clock: 1_700_000_000e9} }

// Apply applies one entry and returns its result; an error fails the test.
func (h *H) Apply(op any) meta.Result {
	h.T.Helper()
	res, err := h.TryApply(op)
	if err != nil {
		h.T.Fatalf("apply %T: %v", op, err)
	}
	return res
}

// TryApply applies one entry and returns its result and error.
func (h *H) TryApply(op any) (meta.Result, error) {
	h.Clock += 1e9
	e := Entry(h.Clock, op)
	return h.applyEntry(e)
}

// As wraps op into an entry of the harness's next tick that speaks for
// session holder (metapb.Entry.holder), for Apply, Must and Expect.
func (h *H) As(holder uint64, op any) *metapb.Entry {
	e := Entry(h.Clock+1e9, op)
	e.Holder = holder
	return e
}

func (h *H) applyEntry(e *metapb.Entry) (meta.Result, error) {
	if e.TimeNs > h.Clock {
		h.Clock = e.TimeNs
	}
	var res meta.Result
	err := h.S.Update(func(tx meta.Txn) error {
		var err error
		res, err = meta.Apply(tx, e)
		return err
	})
	return res, err
}

// Must applies op and fails the test unless it succeeds.
func (h *H) Must(op any) meta.Result {
	h.T.Helper()
	res := h.Apply(op)
	if res.Errno != 0 {
		h.T.Fatalf("apply %T %v: %v", op, op, res.Errno)
	}
	return res
}

// Expect applies op, checks its errno, and for a failure checks that the state
// did not change.
func (h *H) Expect(want syscall.Errno, op any) meta.Result {
	h.T.Helper()
	var before map[string]string
	if want != 0 {
		before = Dump(h.T, h.S)
	}
	res := h.Apply(op)
	if res.Errno != want {
		h.T.Fatalf("apply %T %v: errno %v (%d), want %v (%d)", op, op, res.Errno, res.Errno, want, want)
	}
	if want != 0 {
		if diff := DiffDumps(before, Dump(h.T, h.S)); diff != "" {
			h.T.Fatalf("apply %T failed with %v but changed the state:\n%s", op, want, diff)
		}
	}
	return res
}

// Mkdir creates a directory and returns its inode number.
func (h *H) Mkdir(parent meta.Ino, name string) meta.Ino {
	h.T.Helper()
	return h.Must(&metapb.Mkdir{Parent: parent, Name: []byte(name), Mode: 0o755}).Ino
}

// Create creates a regular file and returns its inode number.
func (h *H) Create(parent meta.Ino, name string) meta.Ino {
	h.T.Helper()
	return h.Must(&metapb.CreateFile{Parent: parent, Name: []byte(name), Mode: 0o644}).Ino
}

// Attr returns an inode's attributes, failing the test if it is missing.
func (h *H) Attr(ino meta.Ino) *meta.Attr {
	h.T.Helper()
	var a *meta.Attr
	if err := h.S.View(func(tx meta.Txn) error {
		var err error
		a, err = meta.GetAttr(tx, ino)
		return err
	}); err != nil {
		h.T.Fatalf("getattr %d: %v", ino, err)
	}
	return a
}

// Lookup returns the inode named name in parent, or the errno.
func (h *H) Lookup(parent meta.Ino, name string) (meta.Ino, syscall.Errno) {
	h.T.Helper()
	var ino meta.Ino
	err := h.S.View(func(tx meta.Txn) error {
		a, err := meta.Lookup(tx, parent, []byte(name))
		if a != nil {
			ino = a.Ino
		}
		return err
	})
	if en, ok := meta.Errno(err); ok {
		return 0, en
	}
	if err != nil {
		h.T.Fatalf("lookup %q: %v", name, err)
	}
	return ino, 0
}

// Names lists a directory's names in order, in pages of page entries.
func (h *H) Names(dir meta.Ino, page int) []string {
	h.T.Helper()
	var names []string
	var after []byte
	for {
		var ents []meta.DirEntry
		var more bool
		err := h.S.View(func(tx meta.Txn) error {
			var err error
			ents, more, err = meta.ReadDir(tx, dir, after, page, false)
			return err
		})
		if err != nil {
			h.T.Fatalf("readdir %d: %v", dir, err)
		}
		for _, e := range ents {
			names = append(names, string(e.Name))
			after = e.Name
		}
		if !more {
			return names
		}
	}
}

// Entry wraps an operation message into a journal entry at time now.
func Entry(now int64, op any) *metapb.Entry {
	e := &metapb.Entry{Version: meta.EntryVersion, TimeNs: now}
	switch op := op.(type) {
	case *metapb.Mkdir:
		e.Op = &metapb.Entry_Mkdir{Mkdir: op}
	case *metapb.CreateFile:
		e.Op = &metapb.Entry_CreateFile{CreateFile: op}
	case *metapb.CompleteFile:
		e.Op = &metapb.Entry_CompleteFile{CompleteFile: op}
	case *metapb.Unlink:
		e.Op = &metapb.Entry_Unlink{Unlink: op}
	case *metapb.Rmdir:
		e.Op = &metapb.Entry_Rmdir{Rmdir: op}
	case *metapb.Rename:
		e.Op = &metapb.Entry_Rename{Rename: op}
	case *metapb.SetAttr:
		e.Op = &metapb.Entry_SetAttr{SetAttr: op}
	case *metapb.Symlink:
		e.Op = &metapb.Entry_Symlink{Symlink: op}
	case *metapb.Link:
		e.Op = &metapb.Entry_Link{Link: op}
	case *metapb.Mknod:
		e.Op = &metapb.Entry_Mknod{Mknod: op}
	case *metapb.SetXattr:
		e.Op = &metapb.Entry_SetXattr{SetXattr: op}
	case *metapb.RemoveXattr:
		e.Op = &metapb.Entry_RemoveXattr{RemoveXattr: op}
	case *metapb.AddMount:
		e.Op = &metapb.Entry_AddMount{AddMount: op}
	case *metapb.RemoveMount:
		e.Op = &metapb.Entry_RemoveMount{RemoveMount: op}
	case *metapb.LoadDir:
		e.Op = &metapb.Entry_LoadDir{LoadDir: op}
	case *metapb.Purge:
		e.Op = &metapb.Entry_Purge{Purge: op}
	case *metapb.Batch:
		e.Op = &metapb.Entry_Batch{Batch: op}
	case *metapb.OpenSession:
		e.Op = &metapb.Entry_OpenSession{OpenSession: op}
	case *metapb.EndSession:
		e.Op = &metapb.Entry_EndSession{EndSession: op}
	case *metapb.GrantRange:
		e.Op = &metapb.Entry_GrantRange{GrantRange: op}
	case *metapb.Delegate:
		e.Op = &metapb.Entry_Delegate{Delegate: op}
	case *metapb.Recall:
		e.Op = &metapb.Entry_Recall{Recall: op}
	case *metapb.Undelegate:
		e.Op = &metapb.Entry_Undelegate{Undelegate: op}
	case *metapb.Entry:
		return op
	default:
		panic(fmt.Sprintf("metatest: unknown op %T", op))
	}
	return e
}

// Dump returns every key and value of a store, for comparisons.
func Dump(t testing.TB, s meta.Store) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := s.View(func(tx meta.Txn) error {
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			out[string(k)] = string(v)
			return true, nil
		})
	})
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	return out
}

// DiffDumps describes the differences between two dumps, or returns "".
func DiffDumps(a, b map[string]string) string {
	var lines []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			lines = append(lines, fmt.Sprintf("- %x", k))
		} else if v != w {
			lines = append(lines, fmt.Sprintf("~ %x", k))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			lines = append(lines, fmt.Sprintf("+ %x", k))
		}
	}
	sort.Strings(lines)
	var buf bytes.Buffer
	for i, l := range lines {
		if i == 20 {
			fmt.Fprintf(&buf, "... %d more\n", len(lines)-i)
			break
		}
		buf.WriteString(l + "\n")
	}
	return buf.String()
}
