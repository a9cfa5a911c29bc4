package fusefs

import (
	"maps"
	"slices"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

// posixSkips are the posixtest cases that cannot pass by design, with the
// reason.
var posixSkips = map[string]string{
	// The case expects a read lock taken with F_SETLK through a second
	// descriptor of the same process to conflict with the first
	// descriptor's write lock. POSIX record locks belong to the process,
	// so on ext4 (and on this mount, whose locks are the kernel's local
	// locks) the call succeeds: the case fails on the native filesystem
	// too. Cross-process conflicts are checked by TestLocksBetweenProcesses.
	"FcntlFlockLocksFile": "expects a process's own POSIX locks to conflict; they do not on ext4 either",
}

// TestPosix runs go-fuse's POSIX conformance table against a skyfs mount,
// one fresh mount per case.
func TestPosix(t *testing.T) {
	for _, name := range slices.Sorted(maps.Keys(posixtest.All)) {
		t.Run(name, func(t *testing.T) {
			if why, ok := posixSkips[name]; ok {
				t.Skip(why)
			}
			e := newEnv(t, Options{})
			posixtest.All[name](t, e.mnt)
		})
	}
}
