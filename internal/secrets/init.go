package secrets

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Names of the files Init writes in its directory.
const (
	AdminTokenName = "admin.token"
	MountTokenName = "mount.token"
	ClusterKeyName = "cluster.key"
	CAName         = "ca.pem"
	CAKeyName      = "ca-key.pem"
	ServerCertName = "server.pem"
	ServerKeyName  = "server-key.pem"
	ClientCertName = "client.pem"
	ClientKeyName  = "client-key.pem"
)

// InitOptions say what Init writes.
type InitOptions struct {
	// TLS adds a CA, a master certificate valid for Hosts (and loopback)
	// and a client certificate.
	TLS   bool
	Hosts []string
	// Validity of the certificates (0: a year; the CA lives ten).
	Validity time.Duration
}

// Init writes a cluster's secrets into dir (created 0700): the admin and
// mount tokens, the cluster key and, with TLS, the CA and certificates,
// every file 0600 except the certificates (0644). It refuses to overwrite
// anything and returns the paths it wrote.
func Init(dir string, o InitOptions) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	names := []string{AdminTokenName, MountTokenName, ClusterKeyName}
	if o.TLS {
		names = append(names, CAName, CAKeyName, ServerCertName, ServerKeyName, ClientCertName, ClientKeyName)
	}
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			return nil, fmt.Errorf("%s already exists; skyfs init never overwrites a cluster's secrets", filepath.Join(dir, n))
		}
	}
	files := map[string][]byte{
		AdminTokenName: append(NewToken(), '\n'),
		MountTokenName: append(NewToken(), '\n'),
		ClusterKeyName: append(NewKey(), '\n'),
	}
	public := map[string]bool{}
	if o.TLS {
		validity := o.Validity
		if validity <= 0 {
			validity = 366 * 24 * time.Hour
		}
		ca, err := NewCA("skyfs cluster CA", 10*366*24*time.Hour)
		if err != nil {
			return nil, err
		}
		hosts := append([]string{"localhost", "127.0.0.1", "::1"}, o.Hosts...)
		now := time.Now().Add(-time.Hour)
		srv, err := ca.Issue(CertOptions{Name: "skyfs master", Hosts: hosts, Server: true, NotBefore: now, NotAfter: now.Add(validity)})
		if err != nil {
			return nil, err
		}
		cli, err := ca.Issue(CertOptions{Name: "skyfs client", NotBefore: now, NotAfter: now.Add(validity)})
		if err != nil {
			return nil, err
		}
		caKey, err := ca.KeyPEM()
		if err != nil {
			return nil, err
		}
		files[CAName], files[CAKeyName] = ca.CertPEM, caKey
		files[ServerCertName], files[ServerKeyName] = srv.CertPEM, srv.KeyPEM
		files[ClientCertName], files[ClientKeyName] = cli.CertPEM, cli.KeyPEM
		public[CAName], public[ServerCertName], public[ClientCertName] = true, true, true
	}
	var wrote []string
	for _, n := range names {
		p := filepath.Join(dir, n)
		var err error
		if public[n] {
			err = os.WriteFile(p, files[n], 0o644)
		} else {
			err = WriteFile(p, files[n])
		}
		clear(files[n])
		if err != nil {
			return wrote, err
		}
		wrote = append(wrote, p)
	}
	return wrote, nil
}

// Ensure makes dir hold a cluster's tokens and key: when it holds none of
// AdminTokenName, MountTokenName and ClusterKeyName (or does not exist), it
// writes all three as Init does and reports created; otherwise it leaves dir
// as it is. The files appear together or not at all: they are written into
// a new directory beside dir that is then renamed to dir, so that masters
// starting together with one dir agree on one set, whichever creates it.
func Ensure(dir string) (created bool, err error) {
	has, err := holdsAny(dir)
	if err != nil || has {
		return false, err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return false, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+"-new-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp) // gone after a successful rename
	if _, err := Init(tmp, InitOptions{}); err != nil {
		return false, err
	}
	// rename(2) replaces an empty directory and refuses a non-empty one
	// (os.Rename refuses any directory): when another process got there
	// first, its files stand.
	if err := syscall.Rename(tmp, dir); err != nil {
		if has, herr := holdsAny(dir); herr == nil && has {
			return false, nil
		}
		return false, fmt.Errorf("create %s: %w", dir, err)
	}
	return true, nil
}

// holdsAny reports whether dir holds any of the files Ensure writes.
func holdsAny(dir string) (bool, error) {
	for _, n := range []string{AdminTokenName, MountTokenName, ClusterKeyName} {
		_, err := os.Lstat(filepath.Join(dir, n))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
	}
	return false, nil
}
