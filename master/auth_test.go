package master

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/skyfs/skyfs/internal/secrets"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
	"github.com/skyfs/skyfs/raftjournal"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// authEnv is a master over a fake journal behind the auth interceptors.
type authEnv struct {
	j     *fakeJournal
	admin *fakeAdmin
	addr  string
	log   *syncBuffer
}

const (
	testAdminToken = "skyfs_admin-token-for-tests-0123456789"
	testMountToken = "skyfs_mount-token-for-tests-0123456789"
)

func newAuthEnv(t *testing.T) *authEnv {
	t.Helper()
	e := &authEnv{j: newFakeJournal(), log: &syncBuffer{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = lis.Addr().String()
	e.admin = &fakeAdmin{status: raftjournal.Status{
		ID: "m1", Role: "leader", Serving: true, LeaderID: "m1", LeaderRPCAddr: e.addr,
		Members: []raftjournal.Member{{ID: "m1", RaftAddr: "127.0.0.1:1", RPCAddr: e.addr, Suffrage: "voter"}},
	}}
	logger := slog.New(slog.NewTextHandler(e.log, nil))
	srv, err := New(Config{Journal: e.j, Admin: e.admin, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAuth([]byte(testAdminToken), []byte(testMountToken), logger)
	a.logEvery = 0
	g := grpc.NewServer(grpc.ChainUnaryInterceptor(a.UnaryInterceptor()), grpc.ChainStreamInterceptor(a.StreamInterceptor()))
	srv.Register(g)
	go g.Serve(lis)
	t.Cleanup(func() {
		g.Stop()
		srv.Close()
	})
	return e
}

// conn dials the env with token (none when empty).
func (e *authEnv) conn(t *testing.T, token string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(secrets.Bearer([]byte(token))))
	}
	c, err := grpc.NewClient(e.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// calls is one call of every method, by name; each returns the call's error.
func authCalls() map[string]func(ctx context.Context, c *grpc.ClientConn) error {
	req := func() *pb.RequestID { return &pb.RequestID{Client: 9, Seq: uint64(time.Now().UnixNano())} }
	return map[string]func(ctx context.Context, c *grpc.ClientConn) error{
		"Mkdir": func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := pb.NewNamespaceClient(c).Mkdir(ctx, &pb.MkdirRequest{Request: req(), Parent: 1, Name: []byte("dxxx"), Mode: 0o755})
			return err
		},
		"GetAttr": func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := pb.NewNamespaceClient(c).GetAttr(ctx, &pb.GetAttrRequest{Ino: 1})
			return err
		},
		"ListMounts": func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := pb.NewMountsClient(c).ListMounts(ctx, &pb.ListMountsRequest{})
			return err
		},
		"MountAccess": func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := pb.NewMountsClient(c).MountAccess(ctx, &pb.MountAccessRequest{Id: 12345})
			return err
		},
		"AddMount": func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := pb.NewMountsClient(c).AddMount(ctx, &pb.AddMountRequest{Request: req(), Path: "/m", Uri: "nosuch://x"})
			return err
		},
		"RemoveMount": func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := pb.NewMountsClient(c).RemoveMount(ctx, &pb.RemoveMountRequest{Request: req(), Path: "/nomount"})
			return err
		},
		"Sync": func(ctx context.Context, c *grpc.ClientConn) error {
			s, err := pb.NewMountsClient(c).Sync(ctx, &pb.SyncRequest{Path: "/"})
			if err != nil {
				return err
			}
			for {
				if _, err := s.Recv(); err != nil {
					if err.Error() == "EOF" {
						return nil
					}
					if st, ok := status.FromError(err); ok && st.Code() == codes.Unknown {
						return nil
					}
					return err
				}
			}
		},
		"Status": func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := pb.NewClusterClient(c).Status(ctx, &pb.StatusRequest{Local: true})
			return err
		},
		"Checkpoint": func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := pb.NewClusterClient(c).Checkpoint(ctx, &pb.CheckpointRequest{})
			return err
		},
		"AddMember": func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := pb.NewClusterClient(c).AddMember(ctx, &pb.AddMemberRequest{Id: "m9", RaftAddr: "127.0.0.1:9", RpcAddr: "127.0.0.1:10"})
			return err
		},
		"TransferLeader": func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := pb.NewClusterClient(c).TransferLeader(ctx, &pb.TransferLeaderRequest{})
			return err
		},
		"RemoveMember": func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := pb.NewClusterClient(c).RemoveMember(ctx, &pb.RemoveMemberRequest{Id: "m1"})
			return err
		},
	}
}

var adminOnly = map[string]bool{
	"AddMount": true, "RemoveMount": true, "Sync": true, "Checkpoint": true,
	"AddMember": true, "TransferLeader": true, "RemoveMember": true,
}

func TestAuthRefusesAndChangesNothing(t *testing.T) {
	e := newAuthEnv(t)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name, token string
		code        codes.Code
	}{
		{"no token", "", codes.Unauthenticated},
		{"wrong token", "skyfs_not-the-token", codes.Unauthenticated},
		{"prefix of the admin token", testAdminToken[:len(testAdminToken)-1], codes.Unauthenticated},
		{"admin token with a suffix", testAdminToken + "x", codes.Unauthenticated},
	} {
		c := e.conn(t, tc.token)
		for name, call := range authCalls() {
			err := call(ctx, c)
			if status.Code(err) != tc.code {
				t.Errorf("%s: %s: %v, want %v", tc.name, name, err, tc.code)
			}
		}
	}
	mc := e.conn(t, testMountToken)
	for name, call := range authCalls() {
		err := call(ctx, mc)
		if adminOnly[name] {
			if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "admin role") {
				t.Errorf("mount token: %s: %v, want PermissionDenied naming the admin role", name, err)
			}
		}
	}
	// Everything refused proposed nothing but the mount token's Mkdir.
	if n := e.j.proposals.Load(); n != 1 {
		t.Errorf("%d proposals, want 1 (the mount token's mkdir)", n)
	}
	e.admin.mu.Lock()
	calls := e.admin.calls
	e.admin.mu.Unlock()
	if len(calls) != 0 {
		t.Errorf("admin calls made for refused requests: %v", calls)
	}
	log := e.log.String()
	if !strings.Contains(log, "auth: call refused") {
		t.Errorf("refusals not logged:\n%s", log)
	}
	for _, tok := range []string{testAdminToken, testMountToken, "skyfs_not-the-token", testAdminToken[:len(testAdminToken)-1]} {
		if strings.Contains(log, tok) {
			t.Errorf("the log shows a presented token %q", tok)
		}
	}
}

func TestAuthAdminMayDoEverything(t *testing.T) {
	e := newAuthEnv(t)
	ctx := ctxT(t)
	c := e.conn(t, testAdminToken)
	for name, call := range authCalls() {
		err := call(ctx, c)
		if code := status.Code(err); code == codes.Unauthenticated || code == codes.PermissionDenied {
			t.Errorf("admin token: %s: %v", name, err)
		}
	}
}

func TestAuthMalformedHeader(t *testing.T) {
	e := newAuthEnv(t)
	c := e.conn(t, "")
	for _, v := range []string{testAdminToken, "Basic " + testAdminToken, "bearer " + testAdminToken, "Bearer"} {
		ctx := metadata.AppendToOutgoingContext(ctxT(t), secrets.AuthHeader, v)
		_, err := pb.NewClusterClient(c).Status(ctx, &pb.StatusRequest{Local: true})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("authorization %q: %v", strings.ReplaceAll(v, testAdminToken, "<admin>"), err)
		}
	}
	ctx := metadata.AppendToOutgoingContext(ctxT(t), secrets.AuthHeader, "Bearer "+testMountToken, secrets.AuthHeader, "Bearer "+testAdminToken)
	if _, err := pb.NewClusterClient(c).Checkpoint(ctx, &pb.CheckpointRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("two authorization values: %v", err)
	}
}

// Every method of the Mounts and Cluster services has a role chosen on
// purpose; Namespace methods need the mount role; anything else is admin.
func TestRequiredRoleCoversEveryMethod(t *testing.T) {
	for _, sd := range []grpc.ServiceDesc{pb.Mounts_ServiceDesc, pb.Cluster_ServiceDesc} {
		for _, m := range sd.Methods {
			full := "/" + sd.ServiceName + "/" + m.MethodName
			if _, ok := methodRoles[full]; !ok {
				t.Errorf("%s has no role in methodRoles", full)
			}
		}
		for _, m := range sd.Streams {
			full := "/" + sd.ServiceName + "/" + m.StreamName
			if _, ok := methodRoles[full]; !ok {
				t.Errorf("%s has no role in methodRoles", full)
			}
		}
	}
	for _, m := range pb.Namespace_ServiceDesc.Methods {
		if r := RequiredRole("/" + pb.Namespace_ServiceDesc.ServiceName + "/" + m.MethodName); r != RoleMount {
			t.Errorf("%s needs %v", m.MethodName, r)
		}
	}
	if RequiredRole("/some.Other/Thing") != RoleAdmin {
		t.Error("an unknown method does not need the admin role")
	}
}

// FuzzAuthorization presents any authorization header: only the exact
// "Bearer <token>" of a role is let through, with that role.
func FuzzAuthorization(f *testing.F) {
	for _, s := range []string{"", "Bearer ", "Bearer " + testAdminToken, "Bearer " + testMountToken, "bearer " + testAdminToken,
		"Bearer " + testAdminToken + "\x00", "Bearer  " + testMountToken, "Bearer " + testMountToken[:10]} {
		f.Add(s, uint8(0))
	}
	a := NewAuth([]byte(testAdminToken), []byte(testMountToken), nil)
	methods := []string{pb.Namespace_Mkdir_FullMethodName, pb.Mounts_AddMount_FullMethodName, pb.Mounts_MountAccess_FullMethodName,
		pb.Cluster_Checkpoint_FullMethodName, "/unknown.Service/Method", ""}
	f.Fuzz(func(t *testing.T, value string, m uint8) {
		method := methods[int(m)%len(methods)]
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(secrets.AuthHeader, value))
		got, err := a.check(ctx, method)
		want := RoleNone
		switch value {
		case "Bearer " + testAdminToken:
			want = RoleAdmin
		case "Bearer " + testMountToken:
			want = RoleMount
		}
		if err == nil {
			if want == RoleNone || want < RequiredRole(method) || CallerRole(got) != want {
				t.Fatalf("%q on %s let through with role %v", value, method, CallerRole(got))
			}
			return
		}
		if want >= RequiredRole(method) {
			t.Fatalf("%q on %s refused: %v", value, method, err)
		}
		if c := status.Code(err); c != codes.Unauthenticated && c != codes.PermissionDenied {
			t.Fatalf("refusal with code %v", c)
		}
		if strings.Contains(status.Convert(err).Message(), "skyfs_") {
			t.Fatalf("the refusal shows the presented value: %v", err)
		}
	})
}

// MountAccess hands credentials out only over TLS or to a loopback peer.
func TestMountAccessOnlyOverTLSOrLoopback(t *testing.T) {
	e := newEnv(t)
	e.mount(t, "/m", false)
	remote := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 4000}
	for _, tc := range []struct {
		name string
		p    *peer.Peer
		ok   bool
	}{
		{"loopback", &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}}, true},
		{"loopback v6", &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv6loopback, Port: 1}}, true},
		{"remote plaintext", &peer.Peer{Addr: remote}, false},
		{"remote TLS", &peer.Peer{Addr: remote, AuthInfo: credentials.TLSInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}}, true},
		{"remote, integrity only", &peer.Peer{Addr: remote, AuthInfo: credentials.TLSInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.IntegrityOnly}}}, false},
	} {
		ctx := peer.NewContext(asMount(ctxT(t)), tc.p)
		r, err := (&mountServer{s: e.srv}).MountAccess(ctx, &pb.MountAccessRequest{Id: 1})
		if tc.ok && (err != nil || r.GetMount() == nil) {
			t.Errorf("%s: %v %v", tc.name, err, r)
		}
		if !tc.ok && (status.Code(err) != codes.PermissionDenied || r != nil) {
			t.Errorf("%s: %v %v, want PermissionDenied", tc.name, err, r)
		}
	}
}

// A scoped mount token gets the credentials of the mounts that can hold
// files under its subtrees only; the unscoped mount token gets every one.
func TestScopedMountToken(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/a", "/c"} {
		e.mount(t, p, false)
	}
	mk, err := e.ns.Mkdir(ctxT(t), &pb.MkdirRequest{Request: e.req(), Parent: 1, Name: []byte("scratch"), Mode: 0o755})
	mustOK(t, "mkdir", mk.GetErrno(), mk.GetMessage(), err)
	e.mount(t, "/a/b", false)
	lm, err := e.mt.ListMounts(ctxT(t), &pb.ListMountsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]uint64{}
	for _, m := range lm.Mounts {
		ids[m.Path] = m.Id
	}

	a := NewAuth([]byte(testAdminToken), []byte(testMountToken), nil)
	if err := a.AddScopedMountToken([]byte("skyfs_scoped-ab-x"), []string{"/a/b/x"}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddScopedMountToken([]byte("skyfs_scoped-scratch"), []string{"/scratch", "/c"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{nil, {"relative"}, {"/a/../b"}, {"/a/"}} {
		if err := a.AddScopedMountToken([]byte("skyfs_x"), bad); err == nil {
			t.Errorf("scopes %q accepted", bad)
		}
	}
	access := func(token, path string) error {
		ctx := metadata.NewIncomingContext(ctxT(t), metadata.Pairs(secrets.AuthHeader, "Bearer "+token))
		ctx, err := a.check(ctx, pb.Mounts_MountAccess_FullMethodName)
		if err != nil {
			return err
		}
		r, err := (&mountServer{s: e.srv}).MountAccess(ctx, &pb.MountAccessRequest{Id: ids[path]})
		if err == nil && (r.GetMount() == nil || r.GetMount().GetPath() != path) {
			t.Fatalf("MountAccess %s: %v", path, r)
		}
		return err
	}
	for _, tc := range []struct {
		token, path string
		ok          bool
	}{
		{testMountToken, "/a", true},
		{testMountToken, "/c", true},
		{testMountToken, "/a/b", true},
		{"skyfs_scoped-ab-x", "/a", true},   // above the scope: holds /a/b/x's parents
		{"skyfs_scoped-ab-x", "/a/b", true}, // holds the scope
		{"skyfs_scoped-ab-x", "/c", false},
		{"skyfs_scoped-scratch", "/c", true},
		{"skyfs_scoped-scratch", "/a", false},
		{"skyfs_scoped-scratch", "/a/b", false},
	} {
		err := access(tc.token, tc.path)
		if tc.ok && err != nil {
			t.Errorf("%s on %s: %v", tc.token, tc.path, err)
		}
		if !tc.ok && status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s on %s: %v, want PermissionDenied", tc.token, tc.path, err)
		}
	}
	// A scoped token is a mount token for everything else.
	ctx := metadata.NewIncomingContext(ctxT(t), metadata.Pairs(secrets.AuthHeader, "Bearer skyfs_scoped-scratch"))
	if _, err := a.check(ctx, pb.Namespace_Mkdir_FullMethodName); err != nil {
		t.Errorf("scoped token on Mkdir: %v", err)
	}
	if _, err := a.check(ctx, pb.Mounts_AddMount_FullMethodName); status.Code(err) != codes.PermissionDenied {
		t.Errorf("scoped token on AddMount: %v", err)
	}
}

// A master without tokens hands credentials to no one over the wire, unless
// told to with InsecureVendCredentials; a caller with a verified client
// certificate is authenticated without a token.
func TestMountAccessNeedsAuthentication(t *testing.T) {
	e := newEnv(t)
	r, err := e.mt.AddMount(ctxT(t), &pb.AddMountRequest{
		Request: e.req(), Path: "/m", Uri: "file://" + t.TempDir(),
		Options: map[string]string{"s3.secretAccessKey": "hunter2"},
	})
	mustOK(t, "add mount", r.GetErrno(), r.GetMessage(), err)
	id := r.Mount.Id

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer() // no interceptors: a master without tokens
	e.srv.Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	c, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	mc := pb.NewMountsClient(c)

	ma, err := mc.MountAccess(ctxT(t), &pb.MountAccessRequest{Id: id})
	if status.Code(err) != codes.PermissionDenied || ma != nil || !strings.Contains(status.Convert(err).Message(), "--insecure-vend-credentials") {
		t.Errorf("MountAccess without tokens: %v, %v; want PermissionDenied naming --insecure-vend-credentials", ma, err)
	}
	// The rest of the service still answers.
	if lm, err := mc.ListMounts(ctxT(t), &pb.ListMountsRequest{}); err != nil || len(lm.Mounts) != 1 {
		t.Errorf("ListMounts without tokens: %v, %v", lm, err)
	}

	verified := &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 4000}, AuthInfo: credentials.TLSInfo{
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
		State:          tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{}}}},
	}}
	ma, err = (&mountServer{s: e.srv}).MountAccess(peer.NewContext(ctxT(t), verified), &pb.MountAccessRequest{Id: id})
	if err != nil || ma.GetMount().GetOptions()["s3.secretAccessKey"] != "hunter2" {
		t.Errorf("MountAccess with a verified client certificate: %v, %v", ma, err)
	}

	e.srv.cfg.InsecureVendCredentials = true
	ma, err = mc.MountAccess(ctxT(t), &pb.MountAccessRequest{Id: id})
	if err != nil || ma.GetMount().GetOptions()["s3.secretAccessKey"] != "hunter2" {
		t.Errorf("MountAccess with InsecureVendCredentials: %v, %v", ma, err)
	}
}
