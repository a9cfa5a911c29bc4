package badgerstore_test

import (
	"testing"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/meta/badgerstore"
	"github.com/skyfs/skyfs/meta/metatest"
)

func open(t testing.TB) meta.Store {
	s, err := badgerstore.Open(t.TempDir(), badgerstore.Options{MemTableSize: 4 << 20, BlockCacheSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) { metatest.Run(t, open) }
