package memstore_test

import (
	"testing"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/meta/memstore"
	"github.com/skyfs/skyfs/meta/metatest"
)

func TestConformance(t *testing.T) {
	metatest.Run(t, func(testing.TB) meta.Store { return memstore.New() })
}
