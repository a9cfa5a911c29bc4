package csi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"strconv"
	"strings"
	"syscall"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skyfs/skyfs/client"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// defaultVolumeMode is the permission bits of a new volume's directory.
const defaultVolumeMode = 0o777

// removePage is how many entries DeleteVolume lists at a time.
const removePage = 512

type controllerServer struct {
	csipb.UnimplementedControllerServer
	d *Driver
}

func (s *controllerServer) ControllerGetCapabilities(context.Context, *csipb.ControllerGetCapabilitiesRequest) (*csipb.ControllerGetCapabilitiesResponse, error) {
	return &csipb.ControllerGetCapabilitiesResponse{Capabilities: []*csipb.ControllerServiceCapability{{
		Type: &csipb.ControllerServiceCapability_Rpc{Rpc: &csipb.ControllerServiceCapability_RPC{Type: csipb.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME}},
	}}}, nil
}

// client returns a client of the masters with the request's credentials,
// or the controller's own when the request carries none.
func (s *controllerServer) client(sec map[string]string) (*client.Client, error) {
	cred, err := credentialsFromSecrets(sec)
	if err != nil {
		return nil, err
	}
	if cred.empty() {
		cred = s.d.cfg.Credentials
	}
	cl, err := newClient(s.d.cfg.Masters, cred)
	if err != nil {
		return nil, errorf(codes.InvalidArgument, "credentials: %v", err)
	}
	return cl, nil
}

// createParams reads the StorageClass parameters of CreateVolume: the
// attributes they add to the volume, and the directory's mode. Keys with a
// "/" are the orchestrator's and are ignored.
func createParams(params map[string]string) (map[string]string, uint32, error) {
	attrs := map[string]string{}
	mode := uint32(defaultVolumeMode)
	for k, v := range params {
		switch k {
		case attrCacheSize:
			if _, err := parseCacheSize(v); err != nil {
				return nil, 0, fmt.Errorf("parameter %s: %w", k, err)
			}
			attrs[k] = v
		case attrReadOnly:
			if _, err := strconv.ParseBool(v); err != nil {
				return nil, 0, fmt.Errorf("parameter %s: %q is not true or false", k, v)
			}
			attrs[k] = v
		case paramMode:
			m, err := strconv.ParseUint(v, 8, 32)
			if err != nil || m > 0o7777 {
				return nil, 0, fmt.Errorf("parameter %s: %q is not an octal mode of at most 07777", k, v)
			}
			mode = uint32(m)
		default:
			if strings.Contains(k, "/") {
				continue // the orchestrator's (csi.storage.k8s.io/pvc/name, ...)
			}
			return nil, 0, fmt.Errorf("unknown parameter %q (known: %s, %s, %s)", k, attrCacheSize, attrReadOnly, paramMode)
		}
	}
	return attrs, mode, nil
}

// CreateVolume makes the directory BasePath/NAME. The same name answers the
// same volume; a capacity is accepted and not enforced (capacity 0:
// unknown).
func (s *controllerServer) CreateVolume(ctx context.Context, req *csipb.CreateVolumeRequest) (*csipb.CreateVolumeResponse, error) {
	name := req.GetName()
	if name == "" {
		return nil, errorf(codes.InvalidArgument, "no volume name")
	}
	if err := checkName(name); err != nil {
		return nil, errorf(codes.InvalidArgument, "volume name: %v", err)
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, errorf(codes.InvalidArgument, "no volume capabilities")
	}
	for _, vc := range req.GetVolumeCapabilities() {
		if err := checkCapability(vc); err != nil {
			return nil, errorf(codes.InvalidArgument, "%v", err)
		}
	}
	if cr := req.GetCapacityRange(); cr != nil {
		if cr.GetRequiredBytes() < 0 || cr.GetLimitBytes() < 0 {
			return nil, errorf(codes.InvalidArgument, "negative capacity")
		}
		if cr.GetLimitBytes() > 0 && cr.GetRequiredBytes() > cr.GetLimitBytes() {
			return nil, errorf(codes.InvalidArgument, "required capacity %d exceeds the limit %d", cr.GetRequiredBytes(), cr.GetLimitBytes())
		}
	}
	if req.GetVolumeContentSource() != nil {
		return nil, errorf(codes.InvalidArgument, "volume content sources (snapshots, clones) are not supported")
	}
	if len(req.GetMutableParameters()) > 0 {
		return nil, errorf(codes.InvalidArgument, "mutable parameters are not supported")
	}
	attrs, mode, err := createParams(req.GetParameters())
	if err != nil {
		return nil, errorf(codes.InvalidArgument, "%v", err)
	}
	p := path.Join(s.d.cfg.BasePath, name)
	if len(p) >= maxPathLen {
		return nil, errorf(codes.InvalidArgument, "volume path is longer than %d bytes", maxPathLen-1)
	}
	cl, err := s.client(req.GetSecrets())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if err := mkdirAll(ctx, cl, s.d.cfg.BasePath); err != nil {
		return nil, fromMaster(err, "base path %s", s.d.cfg.BasePath)
	}
	if err := mkdirVolume(ctx, cl, p, mode); err != nil {
		return nil, err
	}
	attrs[attrPath] = p
	attrs[attrMasters] = strings.Join(s.d.cfg.Masters, ",")
	return &csipb.CreateVolumeResponse{Volume: &csipb.Volume{VolumeId: p, VolumeContext: maps.Clone(attrs)}}, nil
}

// mkdirVolume makes the volume's directory; an existing directory is the
// volume made before (CreateVolume is idempotent).
func mkdirVolume(ctx context.Context, cl *client.Client, p string, mode uint32) error {
	_, err := cl.Mkdir(ctx, &pb.MkdirRequest{Path: p, Mode: mode, Caller: &pb.Caller{}})
	if errors.Is(err, syscall.EEXIST) {
		a, serr := cl.Stat(ctx, p)
		if serr != nil {
			return fromMaster(serr, "volume %s", p)
		}
		if a.GetType() != pb.FileType_DIRECTORY {
			return errorf(codes.AlreadyExists, "%s exists and is not a directory", p)
		}
		return nil
	}
	if err != nil {
		return fromMaster(err, "volume %s", p)
	}
	return nil
}

// mkdirAll makes p and its missing parents.
func mkdirAll(ctx context.Context, cl *client.Client, p string) error {
	cur := ""
	for c := range strings.SplitSeq(strings.TrimPrefix(p, "/"), "/") {
		cur += "/" + c
		_, err := cl.Mkdir(ctx, &pb.MkdirRequest{Path: cur, Mode: 0o755, Caller: &pb.Caller{}})
		if errors.Is(err, syscall.EEXIST) {
			a, serr := cl.Stat(ctx, cur)
			if serr != nil {
				return serr
			}
			if a.GetType() != pb.FileType_DIRECTORY {
				return fmt.Errorf("%s: %w", cur, syscall.ENOTDIR)
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ownVolume says whether id names a volume this controller creates: a
// directory directly under BasePath.
func (s *controllerServer) ownVolume(id string) bool {
	p, err := checkNamespacePath(id)
	return err == nil && p == id && path.Dir(p) == s.d.cfg.BasePath
}

// DeleteVolume removes the volume's directory with everything in it, or
// keeps it (OnDelete retain). An id that is not a volume of this controller,
// or one already gone, is done.
func (s *controllerServer) DeleteVolume(ctx context.Context, req *csipb.DeleteVolumeRequest) (*csipb.DeleteVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, errorf(codes.InvalidArgument, "no volume id")
	}
	if !s.ownVolume(id) {
		s.d.log.Info("delete volume: not a volume under the base path; nothing removed", "volume", id, "base", s.d.cfg.BasePath)
		return &csipb.DeleteVolumeResponse{}, nil
	}
	if s.d.cfg.OnDelete == OnDeleteRetain {
		s.d.log.Info("delete volume: retained", "volume", id)
		return &csipb.DeleteVolumeResponse{}, nil
	}
	cl, err := s.client(req.GetSecrets())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if err := removeAll(ctx, cl, id); err != nil && !errors.Is(err, syscall.ENOENT) {
		return nil, fromMaster(err, "remove %s", id)
	}
	return &csipb.DeleteVolumeResponse{}, nil
}

// removeAll removes p and, if it is a directory, everything in it.
func removeAll(ctx context.Context, cl *client.Client, p string) error {
	a, err := cl.Stat(ctx, p)
	if err != nil {
		return err
	}
	if a.GetType() != pb.FileType_DIRECTORY {
		_, err := cl.Unlink(ctx, &pb.UnlinkRequest{Path: p})
		return err
	}
	for {
		// A page at a time, from the start again: the directory shrinks.
		page, err := cl.ReadDir(ctx, &pb.ReadDirRequest{Path: p, Limit: removePage})
		if err != nil {
			return err
		}
		for _, e := range page.GetEntries() {
			if err := removeAll(ctx, cl, path.Join(p, string(e.GetName()))); err != nil && !errors.Is(err, syscall.ENOENT) {
				return err
			}
		}
		if !page.GetMore() || len(page.GetEntries()) == 0 {
			break
		}
	}
	_, err = cl.Rmdir(ctx, &pb.RmdirRequest{Path: p})
	return err
}

// ValidateVolumeCapabilities confirms the capabilities of an existing
// volume: any absolute namespace path that is a directory.
func (s *controllerServer) ValidateVolumeCapabilities(ctx context.Context, req *csipb.ValidateVolumeCapabilitiesRequest) (*csipb.ValidateVolumeCapabilitiesResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, errorf(codes.InvalidArgument, "no volume id")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, errorf(codes.InvalidArgument, "no volume capabilities")
	}
	p, err := checkNamespacePath(id)
	if err != nil {
		return nil, errorf(codes.NotFound, "volume %q: not a skyfs volume id (%v)", id, err)
	}
	cl, err := s.client(req.GetSecrets())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	a, err := cl.Stat(ctx, p)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) || (err == nil && a.GetType() != pb.FileType_DIRECTORY) {
		return nil, errorf(codes.NotFound, "volume %s does not exist", p)
	}
	if err != nil {
		return nil, fromMaster(err, "volume %s", p)
	}
	for _, vc := range req.GetVolumeCapabilities() {
		if err := checkCapability(vc); err != nil {
			return &csipb.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
		}
	}
	if _, _, err := createParams(req.GetParameters()); err != nil {
		return &csipb.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
	}
	return &csipb.ValidateVolumeCapabilitiesResponse{Confirmed: &csipb.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}

// fromMaster turns an error of the masters into a gRPC status: a status
// error keeps its code (unauthenticated, unavailable), an errno becomes the
// closest code.
func fromMaster(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	var errno syscall.Errno
	if errors.As(err, &errno) {
		code := codes.Internal
		switch errno {
		case syscall.ENOENT:
			code = codes.NotFound
		case syscall.EEXIST, syscall.ENOTDIR:
			code = codes.AlreadyExists
		case syscall.EACCES, syscall.EPERM:
			code = codes.PermissionDenied
		case syscall.EINVAL, syscall.ENAMETOOLONG:
			code = codes.InvalidArgument
		case syscall.ENOSPC:
			code = codes.ResourceExhausted
		}
		return errorf(code, "%s: %v", what, err)
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return errorf(st.Code(), "%s: %s", what, st.Message())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errorf(codes.DeadlineExceeded, "%s: %v", what, err)
	}
	return errorf(codes.Unavailable, "%s: %v", what, err)
}
