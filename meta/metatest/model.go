package metatest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
)

// The model is a tiny, obviously correct namespace: a map of inodes, each
// directory a map of names. The randomized test applies the same operations to
// the model and to the engine and compares outcomes and trees after every step.
//
// It keeps the times POSIX gives: a new inode has every time set to the
// entry's; adding or removing a name sets the directory's mtime and ctime;
// link, unlink (of a name whose inode lives on), rename (of the inode moved,
// of an inode exchanged, of a replaced inode that lives on) and chmod set the
// inode's ctime. A failed operation changes no time.

type mnode struct {
	ino      meta.Ino
	typ      meta.FileType
	mode     uint32
	uid, gid uint32
	nlink    uint32
	children map[string]meta.Ino // directories
	parent   meta.Ino            // directories
	mtime    int64
	ctime    int64
}

type model struct {
	nodes map[meta.Ino]*mnode
	// now is the time of the entry being applied.
	now int64
}

// newModel is an empty namespace whose root is made by the first entry, at
// time start.
func newModel(start int64) *model {
	root := &mnode{ino: meta.RootIno, typ: meta.TypeDirectory, mode: 0o755, children: map[string]meta.Ino{}, mtime: start, ctime: start}
	return &model{nodes: map[meta.Ino]*mnode{meta.RootIno: root}}
}

// touch records a change of directory d's names.
func (m *model) touch(d *mnode) { d.mtime, d.ctime = m.now, m.now }

func (m *model) isDir(ino meta.Ino) bool {
	n := m.nodes[ino]
	return n != nil && n.typ == meta.TypeDirectory
}

// parentDir answers the parent checks every operation starts with.
func (m *model) parentDir(ino meta.Ino) (*mnode, syscall.Errno) {
	n := m.nodes[ino]
	if n == nil {
		return nil, syscall.ENOENT
	}
	if n.typ != meta.TypeDirectory {
		return nil, syscall.ENOTDIR
	}
	return n, 0
}

func (m *model) subdirs(d *mnode) uint32 {
	var k uint32
	for _, c := range d.children {
		if m.isDir(c) {
			k++
		}
	}
	return k
}

// descends reports whether ino is anc or below it.
func (m *model) descends(ino, anc meta.Ino) bool {
	for ino != 0 {
		if ino == anc {
			return true
		}
		if ino == meta.RootIno {
			return false
		}
		ino = m.nodes[ino].parent
	}
	return false
}

func (m *model) create(parent meta.Ino, name string, typ meta.FileType, mode, uid, gid uint32, ino meta.Ino) syscall.Errno {
	p, en := m.parentDir(parent)
	if en != 0 {
		return en
	}
	if _, ok := p.children[name]; ok {
		return syscall.EEXIST
	}
	n := &mnode{ino: ino, typ: typ, mode: mode, uid: uid, gid: gid, nlink: 1, mtime: m.now, ctime: m.now}
	if typ == meta.TypeDirectory {
		n.children, n.parent = map[string]meta.Ino{}, parent
	}
	if typ == meta.TypeSymlink {
		n.mode = 0o777
	}
	m.nodes[ino] = n
	p.children[name] = ino
	m.touch(p)
	return 0
}

func (m *model) link(ino, parent meta.Ino, name string) syscall.Errno {
	n := m.nodes[ino]
	if n == nil {
		return syscall.ENOENT
	}
	if n.typ == meta.TypeDirectory {
		return syscall.EPERM
	}
	p, en := m.parentDir(parent)
	if en != 0 {
		return en
	}
	if _, ok := p.children[name]; ok {
		return syscall.EEXIST
	}
	p.children[name] = ino
	n.nlink++
	n.ctime = m.now
	m.touch(p)
	return 0
}

// drop removes one name of a non-directory.
func (m *model) drop(p *mnode, name string) {
	n := m.nodes[p.children[name]]
	delete(p.children, name)
	if n.nlink--; n.nlink == 0 {
		delete(m.nodes, n.ino)
	}
	n.ctime = m.now
}

func (m *model) unlink(parent meta.Ino, name string) syscall.Errno {
	p, en := m.parentDir(parent)
	if en != 0 {
		return en
	}
	c, ok := p.children[name]
	if !ok {
		return syscall.ENOENT
	}
	if m.isDir(c) {
		return syscall.EISDIR
	}
	m.drop(p, name)
	m.touch(p)
	return 0
}

func (m *model) rmdir(parent meta.Ino, name string) syscall.Errno {
	p, en := m.parentDir(parent)
	if en != 0 {
		return en
	}
	c, ok := p.children[name]
	if !ok {
		return syscall.ENOENT
	}
	if !m.isDir(c) {
		return syscall.ENOTDIR
	}
	if len(m.nodes[c].children) > 0 {
		return syscall.ENOTEMPTY
	}
	delete(p.children, name)
	delete(m.nodes, c)
	m.touch(p)
	return 0
}

func (m *model) rename(op meta.Ino, on string, np meta.Ino, nn string, flags uint32) syscall.Errno {
	if flags&^3 != 0 || flags == 3 {
		return syscall.EINVAL
	}
	o, en := m.parentDir(op)
	if en != 0 {
		return en
	}
	src, ok := o.children[on]
	if !ok {
		return syscall.ENOENT
	}
	n, en := m.parentDir(np)
	if en != 0 {
		return en
	}
	dst, dstOK := n.children[nn]
	if flags == meta.RenameExchange && !dstOK {
		return syscall.ENOENT
	}
	if flags == meta.RenameNoReplace && dstOK {
		return syscall.EEXIST
	}
	if dstOK && dst == src {
		return 0
	}
	if m.isDir(src) && m.descends(np, src) {
		return syscall.EINVAL
	}
	if flags == meta.RenameExchange {
		if m.isDir(dst) && m.descends(op, dst) {
			return syscall.EINVAL
		}
		o.children[on], n.children[nn] = dst, src
		if m.isDir(src) {
			m.nodes[src].parent = np
		}
		if m.isDir(dst) {
			m.nodes[dst].parent = op
		}
		m.nodes[src].ctime, m.nodes[dst].ctime = m.now, m.now
		m.touch(o)
		m.touch(n)
		return 0
	}
	if dstOK {
		switch {
		case m.isDir(src) && !m.isDir(dst):
			return syscall.ENOTDIR
		case !m.isDir(src) && m.isDir(dst):
			return syscall.EISDIR
		case m.isDir(dst) && len(m.nodes[dst].children) > 0:
			return syscall.ENOTEMPTY
		}
		if m.isDir(dst) {
			delete(n.children, nn)
			delete(m.nodes, dst)
		} else {
			m.drop(n, nn)
		}
	}
	delete(o.children, on)
	n.children[nn] = src
	if m.isDir(src) {
		m.nodes[src].parent = np
	}
	m.nodes[src].ctime = m.now
	m.touch(o)
	m.touch(n)
	return 0
}

// setattr is chmod and chown by c (nil: the superuser), as Linux decides
// them: see meta/perm.go.
func (m *model) setattr(ino meta.Ino, c *metapb.Caller, valid, mode, uid, gid uint32) syscall.Errno {
	n := m.nodes[ino]
	if n == nil {
		return syscall.ENOENT
	}
	mode &= 0o7777
	root := c == nil || c.Uid == 0
	member := func(g uint32) bool { return root || c.Gid == g || slices.Contains(c.Groups, g) }
	owns := root || c.Uid == n.uid
	if valid&meta.SetAttrUID != 0 && !root && (!owns || uid != n.uid) {
		return syscall.EPERM
	}
	if valid&meta.SetAttrGID != 0 && !root && (!owns || gid != n.gid && !member(gid)) {
		return syscall.EPERM
	}
	clearsOnly := mode|0o6000 == n.mode|0o6000 && mode&^n.mode == 0
	if valid&meta.SetAttrMode != 0 && !owns && !clearsOnly {
		return syscall.EPERM
	}
	newGID := n.gid
	if valid&meta.SetAttrGID != 0 {
		newGID = gid
	}
	if valid&meta.SetAttrMode != 0 {
		if !member(newGID) && !clearsOnly {
			mode &^= 0o2000
		}
		n.mode = mode
	} else if valid&(meta.SetAttrUID|meta.SetAttrGID) != 0 && n.typ != meta.TypeDirectory {
		n.mode &^= 0o4000
		if n.mode&0o010 != 0 {
			n.mode &^= 0o2000
		}
	}
	if valid&meta.SetAttrUID != 0 {
		n.uid = uid
	}
	n.gid = newGID
	n.ctime = m.now
	return 0
}

// step is one random operation, applied to both sides.
type step struct {
	op    any
	apply func(res meta.Result) syscall.Errno // applies it to the model
}

var modelNames = []string{"a", "b", "c", "d"}

func (m *model) randomStep(r *rand.Rand) step {
	inos := make([]meta.Ino, 0, len(m.nodes)+1)
	for ino := range m.nodes {
		inos = append(inos, ino)
	}
	slices.Sort(inos)
	var dirs []meta.Ino
	for _, ino := range inos {
		if m.isDir(ino) {
			dirs = append(dirs, ino)
		}
	}
	// Mostly directories, sometimes any inode, rarely one that never existed.
	pick := func() meta.Ino {
		switch x := r.IntN(20); {
		case x == 0:
			return 1 << 40
		case x < 4:
			return inos[r.IntN(len(inos))]
		}
		return dirs[r.IntN(len(dirs))]
	}
	name := func() string { return modelNames[r.IntN(len(modelNames))] }
	parent, nm := pick(), name()
	// Owners and callers come from a few users, so that they often match.
	id := func() uint32 { return r.Uint32N(3) }
	switch r.IntN(11) {
	case 0, 1:
		mode, uid, gid := r.Uint32N(0o10000), id(), id()
		return step{&metapb.Mkdir{Parent: parent, Name: []byte(nm), Mode: mode, Uid: uid, Gid: gid}, func(res meta.Result) syscall.Errno {
			return m.create(parent, nm, meta.TypeDirectory, mode, uid, gid, res.Ino)
		}}
	case 2:
		mode, uid, gid := r.Uint32N(0o10000), id(), id()
		return step{&metapb.CreateFile{Parent: parent, Name: []byte(nm), Mode: mode, Uid: uid, Gid: gid}, func(res meta.Result) syscall.Errno {
			return m.create(parent, nm, meta.TypeRegular, mode, uid, gid, res.Ino)
		}}
	case 3:
		if r.IntN(2) == 0 {
			typ := []metapb.FileType{metapb.FileType_FIFO, metapb.FileType_SOCKET, metapb.FileType_CHAR_DEVICE, metapb.FileType_BLOCK_DEVICE}[r.IntN(4)]
			mode, uid, gid := r.Uint32N(0o10000), id(), id()
			return step{&metapb.Mknod{Parent: parent, Name: []byte(nm), Type: typ, Mode: mode, Rdev: 0x103, Uid: uid, Gid: gid}, func(res meta.Result) syscall.Errno {
				return m.create(parent, nm, meta.FileType(typ), mode, uid, gid, res.Ino)
			}}
		}
		uid, gid := id(), id()
		return step{&metapb.Symlink{Parent: parent, Name: []byte(nm), Target: []byte("t"), Uid: uid, Gid: gid}, func(res meta.Result) syscall.Errno {
			return m.create(parent, nm, meta.TypeSymlink, 0o777, uid, gid, res.Ino)
		}}
	case 4:
		ino := pick()
		return step{&metapb.Link{Ino: ino, NewParent: parent, NewName: []byte(nm)}, func(meta.Result) syscall.Errno {
			return m.link(ino, parent, nm)
		}}
	case 5:
		return step{&metapb.Unlink{Parent: parent, Name: []byte(nm)}, func(meta.Result) syscall.Errno {
			return m.unlink(parent, nm)
		}}
	case 6:
		return step{&metapb.Rmdir{Parent: parent, Name: []byte(nm)}, func(meta.Result) syscall.Errno {
			return m.rmdir(parent, nm)
		}}
	case 7, 10:
		// chmod or chown, by the superuser or a user who may or may not own
		// the inode and be in its group; a chmod often only clears set-id
		// bits (the kernel's kill on write).
		ino := pick()
		op := &metapb.SetAttr{Ino: ino, Valid: 1 + r.Uint32N(meta.SetAttrGID<<1-1), Mode: r.Uint32N(0o10000), Uid: id(), Gid: id()}
		if n := m.nodes[ino]; n != nil && r.IntN(4) == 0 {
			op.Mode = n.mode &^ (r.Uint32N(4) << 10)
		}
		if u := r.Uint32N(4); u > 0 {
			op.Caller = &metapb.Caller{Uid: u - 1, Gid: id()}
			if r.IntN(2) == 0 {
				op.Caller.Groups = []uint32{id()}
			}
		}
		return step{op, func(meta.Result) syscall.Errno {
			return m.setattr(ino, op.Caller, op.Valid, op.Mode, op.Uid, op.Gid)
		}}
	}
	np, nn := pick(), name()
	flags := []uint32{0, 0, 0, meta.RenameNoReplace, meta.RenameExchange, 3}[r.IntN(6)]
	return step{renf(parent, nm, np, nn, flags), func(meta.Result) syscall.Errno {
		return m.rename(parent, nm, np, nn, flags)
	}}
}

// compare checks that the engine's tree equals the model's.
func (m *model) compare(t testing.TB, s meta.Store) {
	t.Helper()
	seen := 0
	err := s.View(func(tx meta.Txn) error {
		var walk func(ino meta.Ino, path string) error
		walk = func(ino meta.Ino, path string) error {
			mn := m.nodes[ino]
			a, err := meta.GetAttr(tx, ino)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			wantNlink := mn.nlink
			if mn.typ == meta.TypeDirectory {
				wantNlink = 2 + m.subdirs(mn)
			}
			if a.Type != mn.typ || a.Mode != mn.mode || a.Nlink != wantNlink || a.UID != mn.uid || a.GID != mn.gid {
				return fmt.Errorf("%s: engine %v %o %d:%d nlink %d, model %v %o %d:%d nlink %d",
					path, a.Type, a.Mode, a.UID, a.GID, a.Nlink, mn.typ, mn.mode, mn.uid, mn.gid, wantNlink)
			}
			if a.Mtime != mn.mtime || a.Ctime != mn.ctime {
				return fmt.Errorf("%s (%v): engine mtime %d ctime %d, model %d %d",
					path, a.Type, a.Mtime, a.Ctime, mn.mtime, mn.ctime)
			}
			if mn.typ != meta.TypeDirectory {
				return nil
			}
			seen++
			ents, _, err := meta.ReadDir(tx, ino, nil, 100, false)
			if err != nil {
				return err
			}
			if len(ents) != len(mn.children) {
				return fmt.Errorf("%s: engine lists %d entries, model %d", path, len(ents), len(mn.children))
			}
			for _, e := range ents {
				want, ok := mn.children[string(e.Name)]
				if !ok || want != e.Ino {
					return fmt.Errorf("%s/%s: engine inode %d, model %d (%v)", path, e.Name, e.Ino, want, ok)
				}
				if err := walk(e.Ino, path+"/"+string(e.Name)); err != nil {
					return err
				}
			}
			return nil
		}
		return walk(meta.RootIno, "")
	})
	if err != nil {
		t.Fatal(err)
	}
	var dirs int
	for _, n := range m.nodes {
		if n.typ == meta.TypeDirectory {
			dirs++
		}
	}
	if seen != dirs {
		t.Fatalf("walked %d directories, model has %d", seen, dirs)
	}
}

// testModel runs random operation sequences against the engine and the model.
// Several entries share one transaction at times, as in a journal batch.
func testModel(t *testing.T, open func(testing.TB) meta.Store) {
	sequences, length := 60, 80
	if testing.Short() {
		sequences = 10
	}
	okByOp := make(map[string]int)
	total := 0
	for seq := range sequences {
		r := rand.New(rand.NewPCG(uint64(seq), 0x5eed))
		s := open(t)
		clock := int64(1e9)
		m := newModel(clock + 1)
		for i := 0; i < length; {
			batch := 1 + r.IntN(4)
			steps := make([]step, batch)
			for j := range steps {
				steps[j] = m.randomStep(r)
			}
			// Sometimes the steps go as the operations of one Batch entry,
			// when they are all of the kinds a batch carries.
			var ops *metapb.Batch
			if r.IntN(3) == 0 {
				ops = asBatch(steps)
			}
			var results []meta.Result
			var times []int64
			err := s.Update(func(tx meta.Txn) error {
				results, times = results[:0], times[:0]
				if ops != nil {
					clock++
					res, err := meta.Apply(tx, Entry(clock, ops))
					if err != nil {
						return err
					}
					if res.Errno != 0 || len(res.Ops) != len(steps) {
						return fmt.Errorf("batch refused: %v, %d results", res.Errno, len(res.Ops))
					}
					for _, r := range res.Ops {
						results, times = append(results, r), append(times, clock)
					}
					return nil
				}
				for _, st := range steps {
					clock++
					res, err := meta.Apply(tx, Entry(clock, st.op))
					if err != nil {
						return err
					}
					results, times = append(results, res), append(times, clock)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("sequence %d step %d: %v", seq, i, err)
			}
			for j, st := range steps {
				m.now = times[j]
				want := st.apply(results[j])
				if results[j].Errno != want {
					t.Fatalf("sequence %d step %d: %T %v: engine %v, model %v", seq, i+j, st.op, st.op, results[j].Errno, want)
				}
				total++
				if want == 0 {
					okByOp[fmt.Sprintf("%T", st.op)]++
					if ops != nil {
						okByOp["batched"]++
					}
				}
			}
			i += batch
			m.compare(t, s)
			checkInvariants(t, s)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// A model test in which operations mostly fail would prove little.
	batched := okByOp["batched"]
	delete(okByOp, "batched")
	ok := 0
	for _, n := range okByOp {
		ok += n
	}
	if len(okByOp) < 8 || ok < total/4 || batched < ok/20 {
		t.Fatalf("only %d of %d operations succeeded, %d in batches (%v)", ok, total, batched, okByOp)
	}
	t.Logf("%d operations, %d succeeded (%d in batches): %v", total, ok, batched, okByOp)
}

// asBatch returns steps as the operations of one Batch entry, or nil when
// one of them is of a kind a batch does not carry.
func asBatch(steps []step) *metapb.Batch {
	ops := make([]any, len(steps))
	for i, st := range steps {
		switch st.op.(type) {
		case *metapb.CreateFile, *metapb.Mkdir, *metapb.Unlink, *metapb.Rename:
			ops[i] = st.op
		default:
			return nil
		}
	}
	return bop(0, 0, ops...)
}
