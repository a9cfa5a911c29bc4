package raftjournal

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/skyfs/skyfs/internal/secrets"
)

// tlsFor returns a node's TLS configuration: a certificate issued by ca
// (valid from notBefore to notAfter; zero for now) and trust in trusted.
func tlsFor(t *testing.T, ca *secrets.CA, trusted *x509.Certificate, notBefore, notAfter time.Time) *tls.Config {
	t.Helper()
	c, err := ca.Issue(secrets.CertOptions{Name: "node", Hosts: []string{"127.0.0.1"}, Server: true, NotBefore: notBefore, NotAfter: notAfter})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(trusted)
	return &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, RootCAs: pool, MinVersion: tls.VersionTLS13}
}

// A cluster runs over mutual TLS, and a stranger — a foreign CA's
// certificate, an expired certificate of the cluster's own CA, or no TLS at
// all — can neither send AppendEntries nor call an election: the members'
// terms and state do not move.
func TestTLSTransportRefusesStrangers(t *testing.T) {
	ca, err := secrets.NewCA("cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := secrets.NewCA("foreign", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, 3, func(cfg *Config) { cfg.TLS = tlsFor(t, ca, ca.Cert, time.Time{}, time.Time{}) })
	l := c.leader()
	propose(t, c.nodes[l], createEntry("before"))
	follower := (l + 1) % 3
	target := raft.ServerAddress(c.cfgs[follower].RaftAddr)
	termBefore := c.nodes[follower].Status().Term
	namesBefore := rootNames(t, c.nodes[follower])

	past := time.Now().Add(-48 * time.Hour)
	strangers := map[string]func() raft.Transport{
		"foreign certificate": func() raft.Transport {
			return strangerTLS(t, tlsFor(t, foreign, ca.Cert, time.Time{}, time.Time{}))
		},
		"expired certificate": func() raft.Transport {
			return strangerTLS(t, tlsFor(t, ca, ca.Cert, past, past.Add(time.Hour)))
		},
		"no TLS": func() raft.Transport {
			tr, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 1, 2*time.Second, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tr.Close() })
			return tr
		},
	}
	for name, mk := range strangers {
		tr := mk()
		var vresp raft.RequestVoteResponse
		err := tr.RequestVote("m1", target, &raft.RequestVoteRequest{
			RPCHeader: raft.RPCHeader{ID: []byte("intruder"), Addr: []byte("127.0.0.1:1")},
			Term:      termBefore + 100, LastLogIndex: 1 << 40, LastLogTerm: termBefore + 99,
		}, &vresp)
		if err == nil {
			t.Errorf("%s: RequestVote was answered (granted=%v)", name, vresp.Granted)
		}
		var aresp raft.AppendEntriesResponse
		err = tr.AppendEntries("m1", target, &raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{ID: []byte("intruder"), Addr: []byte("127.0.0.1:1")},
			Term:      termBefore + 100, PrevLogEntry: 0, LeaderCommitIndex: 1 << 40,
			Entries: []*raft.Log{{Index: 1 << 30, Term: termBefore + 100, Type: raft.LogCommand, Data: []byte("garbage")}},
		}, &aresp)
		if err == nil {
			t.Errorf("%s: AppendEntries was answered (success=%v)", name, aresp.Success)
		}
	}
	if got := c.nodes[follower].Status().Term; got != termBefore {
		t.Errorf("the follower's term moved from %d to %d", termBefore, got)
	}
	after := rootNames(t, c.nodes[follower])
	if len(after) != len(namesBefore) {
		t.Errorf("the follower's namespace changed: %v -> %v", namesBefore, after)
	}
	// The cluster still works.
	propose(t, c.nodes[c.leader()], createEntry("after"))
}

// strangerTLS is a transport that dials with cfg.
func strangerTLS(t *testing.T, cfg *tls.Config) raft.Transport {
	t.Helper()
	tr, err := newTLSTransport("127.0.0.1:0", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}
