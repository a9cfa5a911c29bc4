package master

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/skyfs/skyfs/internal/secrets"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
	"github.com/skyfs/skyfs/ufs"
)

// Role is what a token allows.
type Role int

// Roles, weakest first: a role allows everything a weaker one does.
const (
	// RoleNone is an unauthenticated caller.
	RoleNone Role = iota
	// RoleMount is a mount daemon: namespace operations on behalf of a host,
	// the mount table without secrets, and the credentials of UFS mounts.
	RoleMount
	// RoleAdmin is the administrator: everything, including the mount
	// table, membership, checkpoints and sync.
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleMount:
		return "mount"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// methodRoles is the role each method needs beyond RoleMount. A method not
// listed here and not of the Namespace service needs RoleAdmin: a new
// service is closed until someone opens it.
var methodRoles = map[string]Role{
	pb.Mounts_GetMount_FullMethodName:    RoleMount,
	pb.Mounts_ListMounts_FullMethodName:  RoleMount,
	pb.Mounts_MountAccess_FullMethodName: RoleMount,
	pb.Cluster_Status_FullMethodName:     RoleMount,

	pb.Mounts_AddMount_FullMethodName:        RoleAdmin,
	pb.Mounts_RemoveMount_FullMethodName:     RoleAdmin,
	pb.Mounts_Sync_FullMethodName:            RoleAdmin,
	pb.Cluster_AddMember_FullMethodName:      RoleAdmin,
	pb.Cluster_RemoveMember_FullMethodName:   RoleAdmin,
	pb.Cluster_TransferLeader_FullMethodName: RoleAdmin,
	pb.Cluster_Checkpoint_FullMethodName:     RoleAdmin,
	"/grpc.health.v1.Health/Check":           RoleMount,
}

// RequiredRole returns the role a gRPC method (its full name) needs.
func RequiredRole(fullMethod string) Role {
	if r, ok := methodRoles[fullMethod]; ok {
		return r
	}
	if strings.HasPrefix(fullMethod, "/"+pb.Namespace_ServiceDesc.ServiceName+"/") {
		return RoleMount
	}
	return RoleAdmin
}

// Auth checks the token of every call against the admin and mount tokens.
// It is safe for concurrent use.
type Auth struct {
	admin, mount []byte
	scoped       []scopedToken
	log          *slog.Logger

	mu       sync.Mutex
	lastLog  time.Time
	dropped  int
	logEvery time.Duration
}

// NewAuth returns an Auth for the admin and mount tokens (either may be nil:
// no token then has that role; the admin token has every role). It keeps
// copies of the tokens.
func NewAuth(adminToken, mountToken []byte, log *slog.Logger) *Auth {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Auth{admin: clone(adminToken), mount: clone(mountToken), log: log, logEvery: 100 * time.Millisecond}
}

// scopedToken is a mount token that may fetch the credentials of some UFS
// mounts only.
type scopedToken struct {
	tok    []byte
	scopes []string
}

// AddScopedMountToken adds a mount token limited to the namespace subtrees
// paths: a mount daemon presenting it gets the credentials of a UFS mount
// only when that mount can hold files under one of the paths (the mount is
// at, under or above one of them). Its other calls are those of the mount
// role. Call it before serving.
func (a *Auth) AddScopedMountToken(tok []byte, paths []string) error {
	if len(tok) == 0 {
		return errors.New("empty token")
	}
	if len(paths) == 0 {
		return errors.New("a scoped token needs at least one path")
	}
	scopes := make([]string, 0, len(paths))
	for _, p := range paths {
		if !path.IsAbs(p) || path.Clean(p) != p || strings.IndexByte(p, 0) >= 0 {
			return fmt.Errorf("scope %q is not a clean absolute path", p)
		}
		scopes = append(scopes, p)
	}
	a.scoped = append(a.scoped, scopedToken{tok: clone(tok), scopes: scopes})
	return nil
}

// InScope reports whether the UFS mount at mountPath can hold files under
// one of scopes (nil scopes: no limit).
func InScope(scopes []string, mountPath string) bool {
	if scopes == nil {
		return true
	}
	m := strings.TrimPrefix(mountPath, "/")
	for _, s := range scopes {
		s = strings.TrimPrefix(s, "/")
		if ufs.IsWithin(m, s) || ufs.IsWithin(s, m) {
			return true
		}
	}
	return false
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// roleKey carries the caller's role in a handler's context.
type roleKey struct{}

// CallerRole returns the role the interceptors granted the call of ctx;
// RoleAdmin when authentication is off.
func CallerRole(ctx context.Context) Role {
	if r, ok := ctx.Value(roleKey{}).(Role); ok {
		return r
	}
	return RoleAdmin
}

// scopeKey carries the subtrees a scoped mount token is limited to.
type scopeKey struct{}

// CallerScopes returns the namespace subtrees the caller's token is limited
// to, or nil when it is not limited.
func CallerScopes(ctx context.Context) []string {
	s, _ := ctx.Value(scopeKey{}).([]string)
	return s
}

// roleOf returns the role of a presented token and, for a scoped mount
// token, its scopes. Every token is always compared, in constant time, so
// the time taken says nothing about any of them.
func (a *Auth) roleOf(tok []byte) (Role, []string) {
	isAdmin := len(a.admin) > 0 && subtle.ConstantTimeCompare(tok, a.admin) == 1
	isMount := len(a.mount) > 0 && subtle.ConstantTimeCompare(tok, a.mount) == 1
	var scopes []string
	for _, st := range a.scoped {
		if subtle.ConstantTimeCompare(tok, st.tok) == 1 {
			scopes = st.scopes
		}
	}
	switch {
	case isAdmin:
		return RoleAdmin, nil
	case isMount:
		return RoleMount, nil
	case scopes != nil:
		return RoleMount, scopes
	}
	return RoleNone, nil
}

// check authenticates the call of ctx for method and returns the context the
// handler gets.
func (a *Auth) check(ctx context.Context, method string) (context.Context, error) {
	need := RequiredRole(method)
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(secrets.AuthHeader)
	if len(vals) == 0 {
		a.refused(ctx, method, "no token")
		return nil, status.Errorf(codes.Unauthenticated, "no credential: this cluster needs a token (give --token-file or the token_file option)")
	}
	tok, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok || len(vals) > 1 {
		a.refused(ctx, method, "malformed authorization")
		return nil, status.Errorf(codes.Unauthenticated, "malformed credential: want one \"authorization: Bearer <token>\"")
	}
	role, scopes := a.roleOf([]byte(tok))
	if role == RoleNone {
		a.refused(ctx, method, "unknown token")
		return nil, status.Errorf(codes.Unauthenticated, "invalid token")
	}
	if role < need {
		a.refused(ctx, method, "role "+role.String()+" lacks "+need.String())
		return nil, status.Errorf(codes.PermissionDenied, "%s needs the %s role; this token has the %s role", shortMethod(method), need, role)
	}
	ctx = context.WithValue(ctx, roleKey{}, role)
	if scopes != nil {
		ctx = context.WithValue(ctx, scopeKey{}, scopes)
	}
	return ctx, nil
}

// refused logs a refused call, without the token, at most every logEvery
// (a flood of bad calls must not flood the log).
func (a *Auth) refused(ctx context.Context, method, why string) {
	a.mu.Lock()
	now := time.Now()
	if now.Sub(a.lastLog) < a.logEvery {
		a.dropped++
		a.mu.Unlock()
		return
	}
	dropped := a.dropped
	a.lastLog, a.dropped = now, 0
	a.mu.Unlock()
	from := "unknown"
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		from = p.Addr.String()
	}
	a.log.Warn("auth: call refused", "method", method, "peer", from, "reason", why, "refusals_not_logged", dropped)
}

func shortMethod(m string) string {
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		return m[i+1:]
	}
	return m
}

// UnaryInterceptor authenticates unary calls.
func (a *Auth) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := a.check(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor authenticates streaming calls.
func (a *Auth) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := a.check(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &roleStream{ServerStream: ss, ctx: ctx})
	}
}

type roleStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *roleStream) Context() context.Context { return s.ctx }

// errNoAuthCredentials is MountAccess's refusal on a master that cannot
// tell who calls.
const errNoAuthCredentials = "this master has no tokens, so it hands UFS credentials to no one: " +
	"start the masters with --secrets-dir or token files (skyfs init writes them) and give mount daemons the mount token, " +
	"or accept that anyone who reaches the port reads them with --insecure-vend-credentials"

// authenticated reports whether the caller of ctx proved who it is: with a
// token the interceptors accepted, or with a client certificate the TLS
// handshake verified against the cluster CA.
func authenticated(ctx context.Context) bool {
	if _, ok := ctx.Value(roleKey{}).(Role); ok {
		return true
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	return ok && len(ti.State.VerifiedChains) > 0
}

// secureChannel reports whether the call of ctx came over TLS or from a
// loopback address: the only channels credentials of UFS mounts travel on.
func secureChannel(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return true // an in-process call
	}
	if p.AuthInfo != nil {
		if ci, ok := p.AuthInfo.(interface {
			GetCommonAuthInfo() credentials.CommonAuthInfo
		}); ok && ci.GetCommonAuthInfo().SecurityLevel == credentials.PrivacyAndIntegrity {
			return true
		}
	}
	if p.Addr == nil {
		return true
	}
	switch a := p.Addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
