package raftjournal

import (
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// tlsStream is raft's StreamLayer over mutual TLS: it accepts only peers
// that present a certificate the server configuration verifies (the
// cluster CA's), and dials peers with this node's certificate, verifying
// theirs against the same CA. A stranger's connection fails its handshake
// before raft reads a byte of it.
type tlsStream struct {
	net.Listener
	advertise net.Addr
	cfg       *tls.Config
}

// newTLSTransport is raft's network transport over mutual TLS.
func newTLSTransport(bind string, advertise net.Addr, cfg *tls.Config, hl hclog.Logger) (*raft.NetworkTransport, error) {
	if cfg == nil || len(cfg.Certificates) == 0 || cfg.ClientCAs == nil || cfg.RootCAs == nil {
		return nil, errors.New("raft TLS needs a certificate, ClientCAs and RootCAs")
	}
	srv := cfg.Clone()
	srv.ClientAuth = tls.RequireAndVerifyClientCert
	if srv.MinVersion < tls.VersionTLS13 {
		srv.MinVersion = tls.VersionTLS13
	}
	l, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	s := &tlsStream{Listener: tls.NewListener(l, srv), advertise: advertise, cfg: srv}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: s, MaxPool: transportPool, Timeout: transportTimeout, Logger: hl,
	}), nil
}

// Accept returns the next connection; its handshake happens on first use,
// in raft's goroutine for the connection, so a slow stranger cannot hold
// up the accept loop.
func (s *tlsStream) Accept() (net.Conn, error) { return s.Listener.Accept() }

// Addr is the advertised address.
func (s *tlsStream) Addr() net.Addr { return s.advertise }

// Dial connects to a peer and completes the handshake within timeout.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	host, _, err := net.SplitHostPort(string(address))
	if err != nil {
		return nil, err
	}
	c := s.cfg.Clone()
	c.ServerName = host
	c.ClientAuth = tls.NoClientCert
	c.ClientCAs = nil
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(address), c)
}
