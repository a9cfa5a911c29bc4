package fusefs

import (
	"context"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/skyfs/skyfs/cache"
)

// Mounted is a mount being served, for a daemon that must stop it cleanly:
// the go-fuse server, and Drain for the work the kernel handed over before
// it unmounted.
type Mounted struct {
	*fuse.Server
	m *mount
}

// Serve is Mount, returning a Mounted.
func Serve(dir string, ns Namespace, c *cache.Cache, opts Options) (*Mounted, error) {
	srv, m, err := mountFS(dir, ns, c, opts)
	if err != nil {
		return nil, err
	}
	return &Mounted{Server: srv, m: m}, nil
}

// drainGrace is how long Drain waits for file handles the kernel has not
// released: after an unmount the kernel drops releases it had not yet
// handed over, so such a handle may never be released.
const drainGrace = 2 * time.Second

// Drain waits, once the serve loop has ended (Wait returned: the kernel
// unmounted), until the releases the kernel sent before the unmount have
// finished. A release uploads what a failed close left behind, so the
// caller must not close the cache or the namespace before Drain returns.
// It returns the number of file handles that were never released, or the
// error of ctx when it ended first.
func (s *Mounted) Drain(ctx context.Context) (int64, error) {
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		releasing, open := s.m.releasing.Load(), s.m.handles.Load()
		if releasing == 0 && (open == 0 || time.Since(start) > drainGrace) {
			return open, nil
		}
		select {
		case <-ctx.Done():
			return open, ctx.Err()
		case <-tick.C:
		}
	}
}
