package master

import (
	"bytes"
	"strings"
	"syscall"
	"testing"

	"github.com/skyfs/skyfs/internal/secrets"
	"github.com/skyfs/skyfs/meta"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

func TestSecretOptionsAreSealedInTheJournal(t *testing.T) {
	e := newEnv(t)
	sl, err := secrets.NewSealer(bytes.Repeat([]byte{7}, secrets.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	e.srv.cfg.Sealer, e.srv.ufs.sealer = sl, sl
	const secret = "sealed-secret-value-0123456789"
	dir := t.TempDir()
	writeTree(t, dir, "a/b.txt")
	r, err := e.mt.AddMount(ctxT(t), &pb.AddMountRequest{
		Request: e.req(), Path: "/m", Uri: "file://" + dir,
		Options: map[string]string{"test.secretKey": secret, "test.region": "r1"},
	})
	mustOK(t, "add mount", r.GetErrno(), r.GetMessage(), err)
	// The journal entry and the stored record hold ciphertext.
	ent := e.j.lastEntry()
	b, _ := meta.EncodeEntry(ent)
	if bytes.Contains(b, []byte(secret)) {
		t.Fatal("the journal entry holds the secret in clear")
	}
	if v := ent.GetAddMount().GetOptions()["test.secretKey"]; !secrets.IsSealed(v) {
		t.Fatalf("journaled option is %q, want a sealed value", v)
	}
	if got := ent.GetAddMount().GetOptions()["test.region"]; got != "r1" {
		t.Errorf("a plain option was changed to %q", got)
	}
	// The UFS opens with the opened options: the tree loads.
	if names := e.list(t, "/m"); strings.Join(names, ",") != "a" {
		t.Errorf("list /m = %v", names)
	}
	// ListMounts redacts; MountAccess opens.
	lm, err := e.mt.ListMounts(ctxT(t), &pb.ListMountsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var id uint64
	for _, m := range lm.Mounts {
		if m.Path == "/m" {
			id = m.Id
			if v := m.Options["test.secretKey"]; v != "REDACTED" {
				t.Errorf("ListMounts shows %q", v)
			}
		}
	}
	ma, err := e.mt.MountAccess(ctxT(t), &pb.MountAccessRequest{Id: id})
	if err != nil || ma.Errno != 0 {
		t.Fatalf("MountAccess: %v %v", err, ma)
	}
	if got := ma.Mount.Options["test.secretKey"]; got != secret {
		t.Errorf("MountAccess gives %q", got)
	}
	// Another key opens nothing, and says so without the value.
	other, _ := secrets.NewSealer(bytes.Repeat([]byte{8}, secrets.KeySize))
	e.srv.cfg.Sealer = other
	ma, err = e.mt.MountAccess(ctxT(t), &pb.MountAccessRequest{Id: id})
	if err != nil || syscall.Errno(ma.Errno) != syscall.EACCES || ma.Mount != nil {
		t.Fatalf("MountAccess under another key: %v %v", err, ma)
	}
	// A caller cannot hand in a sealed value.
	r, err = e.mt.AddMount(ctxT(t), &pb.AddMountRequest{
		Request: e.req(), Path: "/n", Uri: "file://" + dir,
		Options: map[string]string{"test.secretKey": ent.GetAddMount().GetOptions()["test.secretKey"]},
	})
	if err != nil || syscall.Errno(r.GetErrno()) != syscall.EINVAL {
		t.Fatalf("AddMount with a sealed value: %v %v", err, r)
	}
}
