package master

import (
	"context"
	"net/url"
	"strings"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/proto/metapb"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
	"github.com/skyfs/skyfs/ufs"
)

// mountServer is the Mounts service: the mount table, and metadata sync
// (sync.go).
type mountServer struct {
	pb.UnimplementedMountsServer
	s *Server
}

// mountPB converts a mount record, with its secret options redacted.
func mountPB(m *meta.Mount) *pb.Mount {
	if m == nil {
		return nil
	}
	return &pb.Mount{
		Id:             m.ID,
		Path:           m.Path,
		Uri:            ufs.RedactURI(m.URI),
		Options:        ufs.Options(m.Options).Redacted(),
		ReadOnly:       m.ReadOnly,
		SyncIntervalNs: m.SyncIntervalNs,
		RootIno:        m.RootIno,
		CreatedNs:      m.CreatedNs,
	}
}

// AddMount adds a UFS mount at a new path or an empty directory, once the UFS
// answered a listing of its root with the given options.
func (m *mountServer) AddMount(ctx context.Context, req *pb.AddMountRequest) (*pb.AddMountResponse, error) {
	uid, gid := callerOf(req.Caller)
	_, err := splitPath(req.Path)
	if err == nil {
		err = checkURI(req.Uri)
	}
	if err == nil {
		err = checkMountOptions(req.Options)
	}
	if err == nil {
		err = checkNotSealed(req.Options)
	}
	if err == nil && !m.s.j.Serving() {
		err = errNotServing
	}
	if err == nil {
		err = checkUFS(ctx, req.Uri, req.Options)
	}
	if err != nil {
		en, msg, err := m.s.outcome(err)
		if err != nil {
			return nil, err
		}
		return &pb.AddMountResponse{Errno: en, Message: msg}, nil
	}
	res, err := m.s.mutate(ctx, req.Request, func(_ meta.Txn, e *metapb.Entry) error {
		comps, err := splitPath(req.Path)
		if err != nil {
			return err
		}
		if err := checkURI(req.Uri); err != nil {
			return err
		}
		if req.SyncIntervalNs < 0 {
			return fail(syscall.EINVAL, "negative sync interval %d", req.SyncIntervalNs)
		}
		e.Op = &metapb.Entry_AddMount{AddMount: &metapb.AddMount{
			Path: meta.CleanPath(comps), Uri: req.Uri, Options: sealOptions(m.s.cfg.Sealer, req.Options), ReadOnly: req.ReadOnly,
			SyncIntervalNs: req.SyncIntervalNs, Uid: uid, Gid: gid, Mode: 0o755,
		}}
		return nil
	})
	en, msg, err := m.s.outcome(err)
	if err != nil {
		return nil, err
	}
	if en != 0 {
		return &pb.AddMountResponse{Errno: en, Message: msg}, nil
	}
	if res.Errno != 0 {
		return &pb.AddMountResponse{Errno: int32(res.Errno), Replayed: res.Replayed}, nil
	}
	resp := &pb.AddMountResponse{Replayed: res.Replayed}
	_ = m.s.j.View(func(tx meta.Txn) error {
		a, err := meta.GetAttr(tx, res.Ino)
		if err != nil {
			return err
		}
		mt, err := meta.GetMount(tx, a.MountID)
		resp.Mount = mountPB(mt)
		return err
	})
	return resp, nil
}

// RemoveMount removes a mount by id or path; its subtree leaves the namespace.
func (m *mountServer) RemoveMount(ctx context.Context, req *pb.RemoveMountRequest) (*pb.RemoveMountResponse, error) {
	res, err := m.s.mutate(ctx, req.Request, func(tx meta.Txn, e *metapb.Entry) error {
		path := req.Path
		if req.Id != 0 {
			mt, err := meta.GetMount(tx, req.Id)
			if _, ok := meta.Errno(err); ok {
				return fail(syscall.ENOENT, "no mount with id %d", req.Id)
			} else if err != nil {
				return err
			}
			path = mt.Path
		} else {
			comps, err := splitPath(path)
			if err != nil {
				return err
			}
			path = meta.CleanPath(comps)
			if mt, _, err := meta.ResolveMount(tx, path); err != nil || mt.Path != path {
				return fail(syscall.EINVAL, "no mount at %s", path)
			}
		}
		e.Op = &metapb.Entry_RemoveMount{RemoveMount: &metapb.RemoveMount{Path: path}}
		return nil
	})
	en, msg, err := m.s.outcome(err)
	if err != nil {
		return nil, err
	}
	if en != 0 {
		return &pb.RemoveMountResponse{Errno: en, Message: msg}, nil
	}
	if res.Errno == 0 {
		// The detached subtree is purged in the background; the UFS is
		// never touched.
		m.s.dropUnmounted()
		m.s.wake()
	}
	return &pb.RemoveMountResponse{Errno: int32(res.Errno), Replayed: res.Replayed}, nil
}

// GetMount returns one mount by id.
func (m *mountServer) GetMount(ctx context.Context, req *pb.GetMountRequest) (*pb.GetMountResponse, error) {
	var mt *meta.Mount
	err := m.s.read(ctx, func(tx meta.Txn) (err error) {
		mt, err = meta.GetMount(tx, req.Id)
		if _, ok := meta.Errno(err); ok {
			return fail(syscall.ENOENT, "no mount with id %d", req.Id)
		}
		return err
	})
	en, msg, err := m.s.outcome(err)
	if err != nil {
		return nil, err
	}
	return &pb.GetMountResponse{Errno: en, Message: msg, Mount: mountPB(mt)}, nil
}

// ListMounts returns the mount table, secrets redacted.
func (m *mountServer) ListMounts(ctx context.Context, _ *pb.ListMountsRequest) (*pb.ListMountsResponse, error) {
	var mounts []*meta.Mount
	err := m.s.read(ctx, func(tx meta.Txn) (err error) {
		mounts, err = meta.ListMounts(tx)
		return err
	})
	en, msg, err := m.s.outcome(err)
	if err != nil {
		return nil, err
	}
	resp := &pb.ListMountsResponse{Errno: en, Message: msg}
	for _, mt := range mounts {
		resp.Mounts = append(resp.Mounts, mountPB(mt))
	}
	return resp, nil
}

// checkURI checks that a mount URI parses and names a scheme.
func checkURI(uri string) error {
	if uri == "" {
		return fail(syscall.EINVAL, "empty UFS URI")
	}
	u, err := url.Parse(uri)
	if err != nil {
		return fail(syscall.EINVAL, "bad UFS URI: %s", ufs.RedactURI(uri))
	}
	if u.Scheme == "" {
		return fail(syscall.EINVAL, "UFS URI %s has no scheme", ufs.RedactURI(uri))
	}
	return nil
}

// MountAccess returns a mount with its credentials, for mount daemons.
func (m *mountServer) MountAccess(ctx context.Context, req *pb.MountAccessRequest) (*pb.MountAccessResponse, error) {
	if !authenticated(ctx) && !m.s.cfg.InsecureVendCredentials {
		return nil, status.Error(codes.PermissionDenied, errNoAuthCredentials)
	}
	if !secureChannel(ctx) {
		return nil, status.Error(codes.PermissionDenied, "mount credentials are served only over TLS or loopback: configure TLS between mount daemons and masters")
	}
	var mt *meta.Mount
	err := m.s.read(ctx, func(tx meta.Txn) (err error) {
		mt, err = meta.GetMount(tx, req.Id)
		return err
	})
	if err == nil && !InScope(CallerScopes(ctx), mt.Path) {
		return nil, status.Errorf(codes.PermissionDenied, "the mount at %s is outside the subtrees this mount token serves (%s)", mt.Path, strings.Join(CallerScopes(ctx), ", "))
	}
	if err == nil {
		mt, err = openMount(m.s.cfg.Sealer, mt)
	}
	en, msg, err := m.s.outcome(err)
	if err != nil {
		return nil, err
	}
	resp := &pb.MountAccessResponse{Errno: en, Message: msg}
	if mt != nil {
		resp.Mount = mountPB(mt)
		resp.Mount.Uri, resp.Mount.Options = mt.URI, mt.Options
	}
	return resp, nil
}
