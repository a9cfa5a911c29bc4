package csi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultName is the plugin's name (CSIDriver object, provisioner field of a
// StorageClass, driver field of a persistent volume).
const DefaultName = "csi.skyfs.io"

// Defaults of Config.
const (
	DefaultStateDir  = "/var/lib/skyfs-csi"
	DefaultCacheRoot = "/var/cache/skyfs/csi"
	DefaultBasePath  = "/volumes"
	// DefaultMountTimeout bounds how long NodePublishVolume waits for a
	// mount daemon to report the mount ready.
	DefaultMountTimeout = 60 * time.Second
)

// OnDelete values: what DeleteVolume does with a volume's directory.
const (
	OnDeleteRemove = "delete"
	OnDeleteRetain = "retain"
)

// Config configures a Driver.
type Config struct {
	// Name and Version are reported by GetPluginInfo (Name default
	// DefaultName).
	Name, Version string
	// Controller and Node turn the two services on (one process may serve
	// both, as in a test).
	Controller, Node bool
	// Masters are the masters' host:port addresses: the cluster in which
	// the controller creates volumes, and the node's default for volumes
	// whose attributes name none.
	Masters []string
	// Credentials are the plugin's own credentials with the masters, used
	// by the controller when a request carries none.
	Credentials Credentials

	// BasePath is the namespace directory under which CreateVolume makes
	// volumes (default DefaultBasePath).
	BasePath string
	// OnDelete is OnDeleteRemove (default) or OnDeleteRetain.
	OnDelete string

	// NodeID identifies this node (NodeGetInfo); required with Node.
	NodeID string
	// MountdPath is the mountd binary the node starts.
	MountdPath string
	// StateDir holds the records of the node's mount daemons and their logs
	// (default DefaultStateDir).
	StateDir string
	// CacheRoot holds one block cache directory per mount (default
	// DefaultCacheRoot).
	CacheRoot string
	// MountTimeout bounds the wait for a mount daemon (default
	// DefaultMountTimeout).
	MountTimeout time.Duration

	// Logger receives the plugin's log; nil discards it.
	Logger *slog.Logger
}

// Driver is the CSI plugin: register it on a gRPC server with Register, or
// let Serve do everything.
type Driver struct {
	cfg  Config
	log  *slog.Logger
	node *nodeServer
}

// New checks cfg and returns a Driver. With Node, it reads the records of
// the mount daemons a previous run of the plugin started.
func New(cfg Config) (*Driver, error) {
	if !cfg.Controller && !cfg.Node {
		return nil, errors.New("csi: neither the controller nor the node service is enabled")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.BasePath == "" {
		cfg.BasePath = DefaultBasePath
	}
	if !path.IsAbs(cfg.BasePath) || path.Clean(cfg.BasePath) != cfg.BasePath || cfg.BasePath == "/" {
		return nil, fmt.Errorf("csi: base path %q: want a clean absolute path other than /", cfg.BasePath)
	}
	switch cfg.OnDelete {
	case "":
		cfg.OnDelete = OnDeleteRemove
	case OnDeleteRemove, OnDeleteRetain:
	default:
		return nil, fmt.Errorf("csi: on-delete %q: want %s or %s", cfg.OnDelete, OnDeleteRemove, OnDeleteRetain)
	}
	if cfg.Controller && len(cfg.Masters) == 0 {
		return nil, errors.New("csi: the controller needs the masters' addresses")
	}
	for _, m := range cfg.Masters {
		if _, _, err := net.SplitHostPort(m); err != nil {
			return nil, fmt.Errorf("csi: master %q: want HOST:PORT", m)
		}
	}
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	if cfg.CacheRoot == "" {
		cfg.CacheRoot = DefaultCacheRoot
	}
	if cfg.MountTimeout <= 0 {
		cfg.MountTimeout = DefaultMountTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Driver{cfg: cfg, log: log}
	if cfg.Node {
		if cfg.NodeID == "" {
			return nil, errors.New("csi: the node service needs a node id")
		}
		if cfg.MountdPath == "" {
			return nil, errors.New("csi: the node service needs the mountd binary")
		}
		n, err := newNodeServer(d)
		if err != nil {
			return nil, err
		}
		d.node = n
	}
	return d, nil
}

// Register registers the enabled services on s.
func (d *Driver) Register(s *grpc.Server) {
	csipb.RegisterIdentityServer(s, &identityServer{d: d})
	if d.cfg.Controller {
		csipb.RegisterControllerServer(s, &controllerServer{d: d})
	}
	if d.node != nil {
		csipb.RegisterNodeServer(s, d.node)
	}
}

// Listen listens on endpoint, "unix:///path/csi.sock" (or a bare path),
// removing a socket file a previous run left behind.
func Listen(endpoint string) (net.Listener, error) {
	p := endpoint
	if strings.HasPrefix(endpoint, "unix:") {
		u, err := url.Parse(endpoint)
		if err != nil {
			return nil, fmt.Errorf("csi: endpoint %q: %w", endpoint, err)
		}
		p = u.Path
		if p == "" {
			p = u.Opaque
		}
	} else if strings.Contains(endpoint, "://") {
		return nil, fmt.Errorf("csi: endpoint %q: only unix sockets are served", endpoint)
	}
	if p == "" {
		return nil, fmt.Errorf("csi: endpoint %q names no socket", endpoint)
	}
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if err := os.Remove(p); err != nil {
			return nil, fmt.Errorf("csi: remove old socket: %w", err)
		}
	}
	l, err := net.Listen("unix", p)
	if err != nil {
		return nil, fmt.Errorf("csi: %w", err)
	}
	return l, nil
}

// Serve serves the driver on l until ctx ends, then stops gracefully. Mount
// daemons keep running: they outlive the plugin.
func (d *Driver) Serve(ctx context.Context, l net.Listener) error {
	s := grpc.NewServer(grpc.ChainUnaryInterceptor(d.logCalls))
	d.Register(s)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		s.GracefulStop()
		<-errc
		return nil
	}
}

// logCalls logs each call's method, outcome and duration; never its
// request, which may hold secrets.
func (d *Driver) logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	attrs := []any{"method", path.Base(info.FullMethod), "took", time.Since(start).Round(time.Microsecond)}
	if v, ok := req.(interface{ GetVolumeId() string }); ok && v.GetVolumeId() != "" {
		attrs = append(attrs, "volume", v.GetVolumeId())
	}
	if v, ok := req.(interface{ GetTargetPath() string }); ok && v.GetTargetPath() != "" {
		attrs = append(attrs, "target", v.GetTargetPath())
	}
	switch {
	case err != nil:
		d.log.Warn("csi call failed", append(attrs, "code", status.Code(err).String(), "err", status.Convert(err).Message())...)
	case strings.HasPrefix(info.FullMethod, "/csi.v1.Identity/"), strings.HasSuffix(info.FullMethod, "GetCapabilities"):
		d.log.Debug("csi call", attrs...)
	default:
		d.log.Info("csi call", attrs...)
	}
	return resp, err
}

// errorf is a gRPC status error.
func errorf(c codes.Code, format string, args ...any) error {
	return status.Errorf(c, format, args...)
}

type identityServer struct {
	csipb.UnimplementedIdentityServer
	d *Driver
}

func (s *identityServer) GetPluginInfo(context.Context, *csipb.GetPluginInfoRequest) (*csipb.GetPluginInfoResponse, error) {
	return &csipb.GetPluginInfoResponse{Name: s.d.cfg.Name, VendorVersion: s.d.cfg.Version}, nil
}

func (s *identityServer) GetPluginCapabilities(context.Context, *csipb.GetPluginCapabilitiesRequest) (*csipb.GetPluginCapabilitiesResponse, error) {
	resp := &csipb.GetPluginCapabilitiesResponse{}
	if s.d.cfg.Controller {
		resp.Capabilities = append(resp.Capabilities, &csipb.PluginCapability{
			Type: &csipb.PluginCapability_Service_{Service: &csipb.PluginCapability_Service{Type: csipb.PluginCapability_Service_CONTROLLER_SERVICE}},
		})
	}
	return resp, nil
}

func (s *identityServer) Probe(context.Context, *csipb.ProbeRequest) (*csipb.ProbeResponse, error) {
	return &csipb.ProbeResponse{}, nil
}
