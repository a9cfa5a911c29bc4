package master

import (
	"context"
	"fmt"
	"testing"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/meta/badgerstore"
	"github.com/skyfs/skyfs/proto/metapb"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// storeJournal is a single-node journal over any meta.Store, always
// serving and leased: it lets a benchmark time the service's own work over
// Badger, without Raft.
type storeJournal struct{ st meta.Store }

func (j storeJournal) Propose(_ context.Context, e *metapb.Entry) (res meta.Result, err error) {
	err = j.st.Update(func(tx meta.Txn) error {
		res, err = meta.Apply(tx, e)
		return err
	})
	return res, err
}

func (storeJournal) ReadBarrier(context.Context) error    { return nil }
func (j storeJournal) View(fn func(meta.Txn) error) error { return j.st.View(fn) }
func (storeJournal) Serving() bool                        { return true }
func (storeJournal) Leader() (string, string)             { return "m1", "" }
func (storeJournal) CheckLease(context.Context) error     { return nil }

// BenchmarkResolvePath times the Namespace service's ResolvePath of a file
// three levels down (the stat of a path), called in process over Badger
// (in memory), and counts its allocations: the per-call work the master
// adds to the RPC layer.
//
//	go test -run '^$' -bench ResolvePath -benchmem ./master/
func BenchmarkResolvePath(b *testing.B) {
	st, err := badgerstore.Open("", badgerstore.Options{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s, err := New(Config{Journal: storeJournal{st}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ns := &nsServer{s: s}
	ctx := context.Background()
	for i, p := range []string{"/a", "/a/b", "/a/b/f"} {
		req := &pb.RequestID{Client: 1, Seq: uint64(i + 1)}
		var en int32
		if i < 2 {
			r, err := ns.Mkdir(ctx, &pb.MkdirRequest{Request: req, Path: p, Mode: 0o755})
			if err != nil {
				b.Fatal(err)
			}
			en = r.Errno
		} else {
			r, err := ns.Create(ctx, &pb.CreateRequest{Request: req, Path: p, Mode: 0o644})
			if err != nil {
				b.Fatal(err)
			}
			en = r.Errno
		}
		if en != 0 {
			b.Fatalf("%s: errno %d", p, en)
		}
	}
	req := &pb.ResolvePathRequest{Path: "/a/b/f"}
	b.ResetTimer()
	b.ReportAllocs()
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			r, err := ns.ResolvePath(ctx, req)
			if err != nil || r.Errno != 0 || r.Attr.Type != pb.FileType_REGULAR {
				panic(fmt.Sprint(r, err))
			}
		}
	})
}
