package secrets

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles names the files of mutual TLS: the cluster CA's certificate, and
// this process's certificate and private key (the key in a root-only file).
type TLSFiles struct {
	CA, Cert, Key string
}

// Enabled reports whether any file is named.
func (f TLSFiles) Enabled() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// load reads the CA pool and the key pair.
func (f TLSFiles) load() (*x509.CertPool, tls.Certificate, error) {
	if f.CA == "" || f.Cert == "" || f.Key == "" {
		return nil, tls.Certificate{}, errors.New("TLS needs the CA certificate, a certificate and its key (all three files)")
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, tls.Certificate{}, fmt.Errorf("TLS CA %s holds no PEM certificate", f.CA)
	}
	keyPEM, err := ReadFile(f.Key)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("TLS key: %w", err)
	}
	defer clear(keyPEM)
	certPEM, err := os.ReadFile(f.Cert)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("TLS certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("TLS certificate %s and key %s: %w", f.Cert, f.Key, err)
	}
	return pool, pair, nil
}

// ServerConfig is the TLS configuration of a server that requires a client
// certificate signed by the cluster CA.
func (f TLSFiles) ServerConfig() (*tls.Config, error) {
	pool, pair, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}, nil
}

// ClientConfig is the TLS configuration of a client that presents its
// certificate and trusts only servers signed by the cluster CA.
func (f TLSFiles) ClientConfig() (*tls.Config, error) {
	pool, pair, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
	}, nil
}
