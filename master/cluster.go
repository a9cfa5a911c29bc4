package master

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/skyfs/skyfs/proto/skyfspb"
	"github.com/skyfs/skyfs/raftjournal"
)

// peerStatusTimeout bounds how long Status waits for another member.
const peerStatusTimeout = 2 * time.Second

// clusterServer is the Cluster service.
type clusterServer struct {
	pb.UnimplementedClusterServer
	s *Server
}

// memberPB is a node's report about itself; its addresses come from its entry
// in the configuration.
func memberPB(st raftjournal.Status) *pb.Member {
	m := &pb.Member{
		Id: st.ID, Role: st.Role, Term: st.Term, LastIndex: st.LastLogIndex, AppliedIndex: st.AppliedIndex,
		CommitIndex: st.CommitIndex, LastSnapshotIndex: st.LastSnapshotIndex,
	}
	for _, c := range st.Members {
		if c.ID == st.ID {
			m.RaftAddr, m.RpcAddr, m.Voter = c.RaftAddr, c.RPCAddr, c.Suffrage == "voter"
		}
	}
	return m
}

// Status reports this master and, unless local is set, every other member as
// it answers for itself. Followers answer too.
func (c *clusterServer) Status(ctx context.Context, req *pb.StatusRequest) (*pb.StatusResponse, error) {
	if c.s.admin == nil {
		id, addr := c.s.j.Leader()
		return &pb.StatusResponse{LeaderId: id, LeaderRpcAddr: addr}, nil
	}
	self := c.s.admin.Status()
	resp := &pb.StatusResponse{LeaderId: self.LeaderID, LeaderRpcAddr: self.LeaderRPCAddr}
	me := memberPB(self)
	if req.Local {
		resp.Members = []*pb.Member{me}
		return resp, nil
	}
	resp.Members = make([]*pb.Member, len(self.Members))
	var wg sync.WaitGroup
	for i, m := range self.Members {
		if m.ID == self.ID {
			resp.Members[i] = me
			continue
		}
		wg.Go(func() {
			resp.Members[i] = c.s.askPeer(ctx, m)
		})
	}
	wg.Wait()
	if len(resp.Members) == 0 {
		resp.Members = []*pb.Member{me}
	}
	return resp, nil
}

// askPeer asks another member for its own status.
func (s *Server) askPeer(ctx context.Context, m raftjournal.Member) *pb.Member {
	voter := m.Suffrage == "voter"
	out := &pb.Member{Id: m.ID, RaftAddr: m.RaftAddr, RpcAddr: m.RPCAddr, Voter: voter, Role: "unreachable"}
	if m.RPCAddr == "" {
		out.Error = "RPC address unknown"
		return out
	}
	conn, err := s.peerConn(m.RPCAddr)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, peerStatusTimeout)
	defer cancel()
	resp, err := pb.NewClusterClient(conn).Status(ctx, &pb.StatusRequest{Local: true})
	if err != nil {
		out.Error = status.Convert(err).Message()
		return out
	}
	if len(resp.Members) != 1 {
		out.Error = "unexpected answer"
		return out
	}
	got := resp.Members[0]
	got.Voter = voter
	return got
}

// peerConn returns a (cached) connection to another master.
func (s *Server) peerConn(addr string) (*grpc.ClientConn, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, err
	}
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	if c, ok := s.peers[addr]; ok {
		return c, nil
	}
	opts := s.cfg.PeerDialOptions
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	c, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, err
	}
	s.peers[addr] = c
	return c, nil
}

// admin returns the Admin or an Unimplemented status.
func (c *clusterServer) admin() (Admin, error) {
	if c.s.admin == nil {
		return nil, status.Error(codes.Unimplemented, "this master has no cluster administration")
	}
	return c.s.admin, nil
}

// adminError maps a failed admin operation: leadership problems send the
// client to the leader, context errors keep their codes, the rest are
// FailedPrecondition with the journal's message.
func (c *clusterServer) adminError(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return c.s.rpcError(err)
	case isNotLeader(err):
		return c.s.notLeader(err)
	}
	return status.Error(codes.FailedPrecondition, err.Error())
}

// AddMember adds a voting member; it catches up by snapshot and log.
func (c *clusterServer) AddMember(ctx context.Context, req *pb.AddMemberRequest) (*pb.AddMemberResponse, error) {
	a, err := c.admin()
	if err != nil {
		return nil, err
	}
	if req.Id == "" {
		return nil, status.Error(codes.InvalidArgument, "member id is empty")
	}
	for _, addr := range []string{req.RaftAddr, req.RpcAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "bad address %q: %v", addr, err)
		}
	}
	if !c.s.j.Serving() {
		return nil, c.s.notLeader(errNotServing)
	}
	if err := a.AddVoter(ctx, raftjournal.Peer{ID: req.Id, RaftAddr: req.RaftAddr, RPCAddr: req.RpcAddr}); err != nil {
		return nil, c.adminError(err)
	}
	c.s.log.Info("member added", "id", req.Id, "raft", req.RaftAddr, "rpc", req.RpcAddr)
	return &pb.AddMemberResponse{}, nil
}

// RemoveMember removes a member from the configuration.
func (c *clusterServer) RemoveMember(ctx context.Context, req *pb.RemoveMemberRequest) (*pb.RemoveMemberResponse, error) {
	a, err := c.admin()
	if err != nil {
		return nil, err
	}
	if req.Id == "" {
		return nil, status.Error(codes.InvalidArgument, "member id is empty")
	}
	if !c.s.j.Serving() {
		return nil, c.s.notLeader(errNotServing)
	}
	known := false
	for _, m := range a.Status().Members {
		known = known || m.ID == req.Id
	}
	if !known {
		return nil, status.Errorf(codes.NotFound, "no member %q", req.Id)
	}
	if err := a.RemoveServer(ctx, req.Id); err != nil {
		return nil, c.adminError(err)
	}
	c.s.log.Info("member removed", "id", req.Id)
	return &pb.RemoveMemberResponse{}, nil
}

// TransferLeader hands leadership to another member.
func (c *clusterServer) TransferLeader(ctx context.Context, req *pb.TransferLeaderRequest) (*pb.TransferLeaderResponse, error) {
	a, err := c.admin()
	if err != nil {
		return nil, err
	}
	if !c.s.j.Serving() {
		return nil, c.s.notLeader(errNotServing)
	}
	if req.Id != "" {
		known := false
		for _, m := range a.Status().Members {
			known = known || m.ID == req.Id
		}
		if !known {
			return nil, status.Errorf(codes.NotFound, "no member %q", req.Id)
		}
		if req.Id == a.Status().ID {
			return &pb.TransferLeaderResponse{LeaderId: req.Id}, nil
		}
	}
	if err := a.TransferLeadership(ctx, req.Id); err != nil {
		return nil, c.adminError(err)
	}
	id, _ := c.s.j.Leader()
	c.s.log.Info("leadership transferred", "to", id)
	return &pb.TransferLeaderResponse{LeaderId: id}, nil
}

// Checkpoint forces a snapshot of the journal on this master.
func (c *clusterServer) Checkpoint(ctx context.Context, _ *pb.CheckpointRequest) (*pb.CheckpointResponse, error) {
	a, err := c.admin()
	if err != nil {
		return nil, err
	}
	if !c.s.j.Serving() {
		return nil, c.s.notLeader(errNotServing)
	}
	idx, err := a.Checkpoint(ctx)
	if err != nil {
		return nil, c.adminError(err)
	}
	return &pb.CheckpointResponse{Index: idx}, nil
}
