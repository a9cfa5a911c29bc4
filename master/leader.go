package master

import (
	"context"
	"syscall"
	"time"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
)

// Timing of the leader's background duties.
const (
	// dutyEvery is how often Run checks whether this node serves and has
	// work (a wake-up comes sooner after an unmount).
	dutyEvery = 250 * time.Millisecond
	// rootRetryEvery spaces attempts to mount an unreachable root UFS.
	rootRetryEvery = 5 * time.Second
	// purgeBatch is the Max of each Purge entry.
	purgeBatch = 1024
	// dutyTimeout bounds one proposal of a background duty.
	dutyTimeout = 30 * time.Second
)

// Run performs the leader's background duties until ctx ends: when this node
// starts serving and the root is not mounted, it mounts Config.RootUFS at "/"
// (every leader tries, and a root that is mounted already is left alone); and
// while subtrees detached by unmounts wait, it proposes Purge entries. On a
// follower it only waits; when leadership is lost it closes the UFSs it opened.
func (s *Server) Run(ctx context.Context) {
	tick := time.NewTicker(dutyEvery)
	defer tick.Stop()
	serving, rootDone := false, false
	var nextRoot time.Time
	for {
		now := s.j.Serving()
		switch {
		case now && !serving:
			rootDone, nextRoot = false, time.Time{}
		case !now && serving:
			s.ufs.closeAll()
		}
		serving = now
		if serving {
			if !rootDone && !time.Now().Before(nextRoot) {
				rootDone = s.mountRoot(ctx)
				nextRoot = time.Now().Add(rootRetryEvery)
			}
			s.purge(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.kick:
		}
	}
}

// wake makes Run look for work now.
func (s *Server) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// dropUnmounted closes the UFSs of mounts that left the table.
func (s *Server) dropUnmounted() {
	var ids []uint64
	s.ufs.mu.Lock()
	for id := range s.ufs.fss {
		ids = append(ids, id)
	}
	s.ufs.mu.Unlock()
	for _, id := range ids {
		gone := false
		s.j.View(func(tx meta.Txn) error {
			_, err := meta.GetMount(tx, id)
			_, gone = meta.Errno(err)
			return nil
		})
		if gone {
			s.ufs.drop(id)
		}
	}
}

// mountRoot mounts the root UFS if the root has no mount; it reports whether
// there is nothing more to do.
func (s *Server) mountRoot(ctx context.Context) bool {
	if s.cfg.RootUFS == "" {
		return true
	}
	var mounted bool
	if err := s.j.View(func(tx meta.Txn) error {
		a, err := meta.GetAttr(tx, meta.RootIno)
		mounted = err == nil && a.MountID != 0
		return err
	}); err != nil || mounted {
		return err == nil
	}
	ctx, cancel := context.WithTimeout(ctx, dutyTimeout)
	defer cancel()
	if err := checkUFS(ctx, s.cfg.RootUFS, s.cfg.RootOptions); err != nil {
		s.log.Error("root UFS unreachable; will retry", "err", err)
		return false
	}
	res, err := s.propose(ctx, &metapb.Entry{Op: &metapb.Entry_AddMount{AddMount: &metapb.AddMount{
		Path: "/", Uri: s.cfg.RootUFS, Options: sealOptions(s.cfg.Sealer, s.cfg.RootOptions), Mode: 0o755,
		SyncIntervalNs: int64(s.cfg.RootSyncInterval),
	}}})
	switch {
	case err != nil:
		s.log.Warn("mount root UFS", "err", err)
		return false
	case res.Errno == syscall.EBUSY:
		return true // another leader mounted it
	case res.Errno != 0:
		s.log.Error("cannot mount the root UFS at /", "errno", res.Errno.Error())
		return true
	}
	s.log.Info("mounted the root UFS at /", "mount", res.Attr.MountID)
	return true
}

// purge proposes Purge entries while detached inodes wait.
func (s *Server) purge(ctx context.Context) {
	for s.j.Serving() {
		var pending bool
		if err := s.j.View(func(tx meta.Txn) (err error) {
			pending, err = meta.PurgePending(tx)
			return err
		}); err != nil || !pending {
			return
		}
		pctx, cancel := context.WithTimeout(ctx, dutyTimeout)
		res, err := s.propose(pctx, &metapb.Entry{Op: &metapb.Entry_Purge{Purge: &metapb.Purge{Max: purgeBatch}}})
		cancel()
		if err != nil || res.Errno != 0 {
			if err == nil {
				err = res.Errno
			}
			s.log.Warn("purge", "err", err)
			return
		}
	}
}
