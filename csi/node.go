package csi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
)

type nodeServer struct {
	csipb.UnimplementedNodeServer
	d *Driver

	mu sync.Mutex
	// recs are the published volumes by target path; a record with PID 0
	// is a publish in progress.
	recs map[string]*record
	// busy are the target paths with a call in progress: a second call on
	// one answers ABORTED, as the specification asks.
	busy map[string]bool
}

// newNodeServer reads the records a previous run left and reports what it
// found.
func newNodeServer(d *Driver) (*nodeServer, error) {
	if err := os.MkdirAll(d.cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("csi: state dir: %w", err)
	}
	recs, bad, err := loadRecords(d.cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("csi: %w", err)
	}
	for _, err := range bad {
		d.log.Warn("csi: skipping a record", "err", err)
	}
	for _, r := range recs {
		if r.alive() {
			d.log.Info("csi: found a mount daemon", "volume", r.VolumeID, "target", r.Target, "pid", r.PID)
		} else {
			d.log.Warn("csi: the mount daemon of a published volume has exited; the next publish remounts it", "volume", r.VolumeID, "target", r.Target, "pid", r.PID)
		}
	}
	return &nodeServer{d: d, recs: recs, busy: map[string]bool{}}, nil
}

// acquire marks target busy; release ends that.
func (n *nodeServer) acquire(target string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.busy[target] {
		return errorf(codes.Aborted, "an operation on target %s is in progress", target)
	}
	n.busy[target] = true
	return nil
}

func (n *nodeServer) release(target string) {
	n.mu.Lock()
	delete(n.busy, target)
	n.mu.Unlock()
}

func (n *nodeServer) stateDir(target string) string {
	return filepath.Join(n.d.cfg.StateDir, targetKey(target))
}

func (n *nodeServer) NodeGetCapabilities(context.Context, *csipb.NodeGetCapabilitiesRequest) (*csipb.NodeGetCapabilitiesResponse, error) {
	rpc := func(t csipb.NodeServiceCapability_RPC_Type) *csipb.NodeServiceCapability {
		return &csipb.NodeServiceCapability{Type: &csipb.NodeServiceCapability_Rpc{Rpc: &csipb.NodeServiceCapability_RPC{Type: t}}}
	}
	return &csipb.NodeGetCapabilitiesResponse{Capabilities: []*csipb.NodeServiceCapability{
		rpc(csipb.NodeServiceCapability_RPC_GET_VOLUME_STATS),
		rpc(csipb.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER),
	}}, nil
}

func (n *nodeServer) NodeGetInfo(context.Context, *csipb.NodeGetInfoRequest) (*csipb.NodeGetInfoResponse, error) {
	return &csipb.NodeGetInfoResponse{NodeId: n.d.cfg.NodeID}, nil
}

// checkTarget checks a target path of a request.
func checkTarget(p string) error {
	switch {
	case p == "":
		return errorf(codes.InvalidArgument, "no target path")
	case !filepath.IsAbs(p) || filepath.Clean(p) != p:
		return errorf(codes.InvalidArgument, "target path %q is not a clean absolute path", p)
	}
	return nil
}

// NodePublishVolume mounts the volume on the target path with a mount
// daemon of its own, or answers the mount that is there already.
func (n *nodeServer) NodePublishVolume(ctx context.Context, req *csipb.NodePublishVolumeRequest) (*csipb.NodePublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, errorf(codes.InvalidArgument, "no volume id")
	}
	target := req.GetTargetPath()
	if err := checkTarget(target); err != nil {
		return nil, err
	}
	vc := req.GetVolumeCapability()
	if vc == nil {
		return nil, errorf(codes.InvalidArgument, "no volume capability")
	}
	if err := checkCapability(vc); err != nil {
		return nil, errorf(codes.InvalidArgument, "%v", err)
	}
	if req.GetStagingTargetPath() != "" {
		return nil, errorf(codes.InvalidArgument, "a staging target path was given, but this plugin does not stage volumes")
	}
	attrs, err := parseAttrs(req.GetVolumeContext(), n.d.cfg.Masters)
	if err != nil {
		return nil, errorf(codes.InvalidArgument, "volume %s: %v", req.GetVolumeId(), err)
	}
	opts, _ := mountOptions(vc.GetMount().GetMountFlags()) // checked above
	cred, err := credentialsFromSecrets(req.GetSecrets())
	if err != nil {
		return nil, err
	}
	key := targetKey(target)
	want := &record{
		VolumeID: req.GetVolumeId(), Target: target, Attrs: attrs,
		AccessMode: vc.GetAccessMode().GetMode().String(),
		ReadOnly:   req.GetReadonly() || attrs.ReadOnly || readOnlyMode(vc),
		Options:    opts,
		CacheDir:   filepath.Join(n.d.cfg.CacheRoot, key),
		LogFile:    filepath.Join(n.stateDir(target), "mountd.log"),
	}

	if err := n.acquire(target); err != nil {
		return nil, err
	}
	defer n.release(target)

	n.mu.Lock()
	have := n.recs[target]
	n.mu.Unlock()
	if have != nil {
		done, err := n.existing(have, want)
		if err != nil {
			return nil, err
		}
		if done {
			return &csipb.NodePublishVolumeResponse{}, nil
		}
	}
	if err := n.reserve(want); err != nil {
		return nil, err
	}
	if err := n.mount(ctx, want, cred); err != nil {
		n.mu.Lock()
		delete(n.recs, target)
		n.mu.Unlock()
		return nil, err
	}
	return &csipb.NodePublishVolumeResponse{}, nil
}

// existing handles a publish on a target that has a record: the same
// volume mounted is done, another volume is ALREADY_EXISTS, a mount whose
// daemon has exited is cleared for a new one (done false).
func (n *nodeServer) existing(have, want *record) (done bool, err error) {
	alive := have.alive()
	mounted, err := isMountPoint(have.Target)
	if err != nil {
		return false, errorf(codes.Internal, "mountinfo: %v", err)
	}
	switch {
	case alive && mounted && have.compatible(want):
		return true, nil
	case alive && mounted:
		return false, errorf(codes.AlreadyExists, "target %s holds volume %s published differently (path, masters, read-only or options)", have.Target, have.VolumeID)
	case alive:
		return false, errorf(codes.Unavailable, "the mount daemon of target %s is starting or stopping (pid %d); try again", have.Target, have.PID)
	}
	n.d.log.Warn("csi: remounting a target whose mount daemon has exited", "volume", have.VolumeID, "target", have.Target, "pid", have.PID)
	if mounted {
		if err := unix.Unmount(have.Target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return false, errorf(codes.Internal, "detach the dead mount at %s: %v", have.Target, err)
		}
	}
	if err := os.Remove(filepath.Join(n.stateDir(have.Target), stateFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, errorf(codes.Internal, "%v", err)
	}
	n.mu.Lock()
	delete(n.recs, have.Target)
	n.mu.Unlock()
	return false, nil
}

// reserve enters want as a publish in progress after checking the
// single-writer rule: a SINGLE_NODE_SINGLE_WRITER volume is published at
// one target of the node at a time.
func (n *nodeServer) reserve(want *record) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	single := csipb.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER.String()
	for _, r := range n.recs {
		if r.VolumeID == want.VolumeID && r.Target != want.Target && (r.AccessMode == single || want.AccessMode == single) {
			return errorf(codes.FailedPrecondition, "volume %s is published at %s with a single-writer access mode", want.VolumeID, r.Target)
		}
	}
	n.recs[want.Target] = want
	return nil
}

// mount creates the target, starts the daemon, records it and waits until
// the mount is ready.
func (n *nodeServer) mount(ctx context.Context, rec *record, cred Credentials) error {
	if err := os.MkdirAll(rec.Target, 0o750); err != nil {
		return errorf(codes.Internal, "create target: %v", err)
	}
	if err := os.MkdirAll(n.stateDir(rec.Target), 0o700); err != nil {
		return errorf(codes.Internal, "state dir: %v", err)
	}
	ready, exited, err := n.startMountd(rec, cred)
	if err != nil {
		return errorf(codes.Internal, "%v", err)
	}
	// Recorded before the wait: a plugin that dies meanwhile finds the
	// daemon when it comes back.
	if err := saveRecord(n.stateDir(rec.Target), rec); err != nil {
		ready.Close()
		signalDaemon(rec, syscall.SIGTERM)
		return errorf(codes.Internal, "%v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, n.d.cfg.MountTimeout)
	defer cancel()
	if err := readReady(wctx, ready); err != nil {
		n.abandon(rec, exited)
		code := codes.Internal
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			code = codes.DeadlineExceeded
		}
		msg := err.Error()
		if tail := logTail(rec.LogFile); tail != "" {
			msg += " (mountd log: " + tail + ")"
		}
		return errorf(code, "mount volume %s at %s: %s", rec.VolumeID, rec.Target, msg)
	}
	return nil
}

// abandon stops a daemon that did not get ready and clears its record.
func (n *nodeServer) abandon(rec *record, exited <-chan struct{}) {
	signalDaemon(rec, syscall.SIGKILL)
	<-exited
	if m, _ := isMountPoint(rec.Target); m {
		unix.Unmount(rec.Target, unix.MNT_DETACH)
	}
	os.Remove(filepath.Join(n.stateDir(rec.Target), stateFile))
}

// NodeUnpublishVolume unmounts the target, waits for its mount daemon to
// finish and exit, and removes the target, the cache and the record.
func (n *nodeServer) NodeUnpublishVolume(ctx context.Context, req *csipb.NodeUnpublishVolumeRequest) (*csipb.NodeUnpublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, errorf(codes.InvalidArgument, "no volume id")
	}
	target := req.GetTargetPath()
	if err := checkTarget(target); err != nil {
		return nil, err
	}
	if err := n.acquire(target); err != nil {
		return nil, err
	}
	defer n.release(target)

	n.mu.Lock()
	rec := n.recs[target]
	n.mu.Unlock()
	if rec != nil && rec.VolumeID != req.GetVolumeId() {
		return nil, errorf(codes.NotFound, "target %s holds volume %s, not %s", target, rec.VolumeID, req.GetVolumeId())
	}
	if err := unmount(target); err != nil {
		return nil, err
	}
	if rec != nil {
		if err := waitExit(ctx, rec.PID, rec.StartTime); err != nil {
			return nil, errorf(codes.DeadlineExceeded, "the mount daemon of %s (pid %d) is still finishing: %v", target, rec.PID, err)
		}
		if err := os.RemoveAll(rec.CacheDir); err != nil {
			return nil, errorf(codes.Internal, "remove cache: %v", err)
		}
	}
	if err := os.RemoveAll(n.stateDir(target)); err != nil {
		return nil, errorf(codes.Internal, "remove state: %v", err)
	}
	n.mu.Lock()
	delete(n.recs, target)
	n.mu.Unlock()
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, errorf(codes.Internal, "remove target: %v", err)
	}
	return &csipb.NodeUnpublishVolumeResponse{}, nil
}

// unmount unmounts target if it is a mount point.
func unmount(target string) error {
	for {
		m, err := isMountPoint(target)
		if err != nil {
			return errorf(codes.Internal, "mountinfo: %v", err)
		}
		if !m {
			return nil
		}
		err = unix.Unmount(target, 0)
		switch {
		case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
		case errors.Is(err, unix.EBUSY):
			return errorf(codes.FailedPrecondition, "target %s is busy", target)
		default:
			return errorf(codes.Internal, "unmount %s: %v", target, err)
		}
	}
}

// NodeGetVolumeStats reports the space and inodes of a published volume,
// as the masters report them for the namespace.
func (n *nodeServer) NodeGetVolumeStats(ctx context.Context, req *csipb.NodeGetVolumeStatsRequest) (*csipb.NodeGetVolumeStatsResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, errorf(codes.InvalidArgument, "no volume id")
	}
	p := req.GetVolumePath()
	if p == "" {
		return nil, errorf(codes.InvalidArgument, "no volume path")
	}
	n.mu.Lock()
	rec := n.recs[filepath.Clean(p)]
	n.mu.Unlock()
	if rec == nil || rec.VolumeID != req.GetVolumeId() || rec.PID == 0 {
		return nil, errorf(codes.NotFound, "volume %s is not published at %s", req.GetVolumeId(), p)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(rec.Target, &st); err != nil {
		return nil, errorf(codes.Internal, "statfs %s: %v", rec.Target, err)
	}
	bs := st.Bsize
	return &csipb.NodeGetVolumeStatsResponse{Usage: []*csipb.VolumeUsage{
		{Unit: csipb.VolumeUsage_BYTES, Total: int64(st.Blocks) * bs, Available: int64(st.Bavail) * bs, Used: int64(st.Blocks-st.Bfree) * bs},
		{Unit: csipb.VolumeUsage_INODES, Total: int64(st.Files), Available: int64(st.Ffree), Used: int64(st.Files - st.Ffree)},
	}}, nil
}
