package raftjournal

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/skyfs/skyfs/meta"
)

// Bounds of one wave.
const (
	maxWaveEntries = 512
	maxWaveBytes   = 1 << 20
)

// waves groups concurrent proposals and bounds how many groups are in flight
// in raft at once.
//
// raft commits whatever is queued when its leader loop comes round (one fsync
// of the log for all of it) and replicates each such group as it is written;
// under load that makes many small groups, each costing an fsync on the leader
// and on every follower, and the disk's fsync rate caps throughput. Here a
// proposal that arrives while max waves are in flight waits, with every other
// proposal arriving meanwhile, and they go to raft as one log entry (a
// journalpb.Batch, at most maxWaveEntries entries and about maxWaveBytes) when
// a wave finishes. A lone proposal never waits, and goes as a plain entry.
type waves struct {
	n        *Node
	max      int
	mu       sync.Mutex // guards inflight and pending
	inflight int
	pending  []*proposal
}

// proposal is one namespace entry on its way through raft.
type proposal struct {
	data []byte        // tagMeta and the encoded entry
	done chan struct{} // closed when res and err are final
	res  meta.Result
	err  error
}

// propose sends data (a tagMeta log entry) to raft in the next wave and waits
// for its outcome.
func (w *waves) propose(ctx context.Context, data []byte) (meta.Result, error) {
	p := &proposal{data: data, done: make(chan struct{})}
	w.mu.Lock()
	if w.inflight < w.max {
		w.inflight++
		w.mu.Unlock()
		go w.run([]*proposal{p})
	} else {
		w.pending = append(w.pending, p)
		w.mu.Unlock()
	}
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		return meta.Result{}, fmt.Errorf("raftjournal: %w", ctx.Err())
	}
}

// run sends waves to raft, one at a time, until none is pending.
func (w *waves) run(wave []*proposal) {
	for {
		w.send(wave)
		w.mu.Lock()
		wave = w.take()
		if len(wave) == 0 {
			w.inflight--
		}
		w.mu.Unlock()
		if len(wave) == 0 {
			return
		}
	}
}

// take removes the next wave from pending. w.mu must be held.
func (w *waves) take() []*proposal {
	n, size := 0, 0
	for n < len(w.pending) && n < maxWaveEntries && (n == 0 || size+len(w.pending[n].data) <= maxWaveBytes) {
		size += len(w.pending[n].data)
		n++
	}
	wave := w.pending[:n:n]
	w.pending = w.pending[n:]
	if len(w.pending) == 0 {
		w.pending = nil
	}
	return wave
}

// send proposes one wave and delivers each proposal's outcome.
func (w *waves) send(wave []*proposal) {
	fail := func(err error) {
		for _, p := range wave {
			p.err = err
			close(p.done)
		}
	}
	data := wave[0].data
	if len(wave) > 1 {
		entries := make([][]byte, len(wave))
		for i, p := range wave {
			entries[i] = p.data[1:]
		}
		var err error
		if data, err = encodeBatch(entries); err != nil {
			fail(fmt.Errorf("raftjournal: encode batch: %w", err))
			return
		}
	}
	// A committed entry was stored by a quorum that took it from this leader
	// after sent: like a VerifyLeader round begun then, it renews the lease.
	sent, term := time.Now(), w.n.raft.CurrentTerm()
	f := w.n.raft.Apply(data, 0)
	if err := f.Error(); err != nil {
		fail(w.n.waitErr(err))
		return
	}
	w.n.renewLease(sent, term)
	switch resp := f.Response().(type) {
	case meta.Result:
		if len(wave) == 1 {
			wave[0].res = resp
			close(wave[0].done)
			return
		}
	case []meta.Result:
		if len(resp) == len(wave) {
			for i, p := range wave {
				p.res = resp[i]
				close(p.done)
			}
			return
		}
	}
	fail(fmt.Errorf("raftjournal: entry applied without a result (%T)", f.Response()))
}
