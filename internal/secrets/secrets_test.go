package secrets

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFileRefusesOpenModes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token")
	if err := WriteFile(p, []byte("  tok\n")); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(p)
	if err != nil || string(got) != "tok" {
		t.Fatalf("ReadFile = %q, %v", got, err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		_, err := ReadFile(p)
		if !errors.Is(err, ErrInsecureFile) {
			t.Errorf("mode %04o: err %v, want ErrInsecureFile", mode, err)
		}
		if err != nil && strings.Contains(err.Error(), "tok\n") {
			t.Errorf("error shows the content: %v", err)
		}
	}
	os.Chmod(p, 0o400)
	if _, err := ReadFile(p); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
	if err := WriteFile(p, []byte("x")); err == nil {
		t.Error("WriteFile overwrote an existing file")
	}
	empty := filepath.Join(dir, "empty")
	WriteFile(empty, []byte("\n"))
	if _, err := ReadFile(empty); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty file: %v", err)
	}
	if _, err := ReadFile(dir); err == nil {
		t.Error("a directory was read as a secret")
	}
}

func TestKeyAndSeal(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key")
	if err := WriteFile(p, NewKey()); err != nil {
		t.Fatal(err)
	}
	key, err := ReadKey(p)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.Seal("very-secret", "s3.secretAccessKey")
	if !IsSealed(sealed) || strings.Contains(sealed, "very-secret") {
		t.Fatalf("sealed %q", sealed)
	}
	if s.Seal("very-secret", "a") == s.Seal("very-secret", "a") {
		t.Error("two seals of one value are equal: nonce reused")
	}
	if got, err := s.Open(sealed, "s3.secretAccessKey"); err != nil || got != "very-secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s.Open(sealed, "other"); !errors.Is(err, ErrOpen) {
		t.Errorf("open under other ad: %v", err)
	}
	other, _ := NewSealer(bytes.Repeat([]byte{1}, KeySize))
	if _, err := other.Open(sealed, "s3.secretAccessKey"); !errors.Is(err, ErrOpen) {
		t.Errorf("open under another key: %v", err)
	}
	for _, bad := range []string{SealedPrefix, SealedPrefix + "!!", SealedPrefix + "AAAA", "plain"} {
		if _, err := s.Open(bad, "x"); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	bad := filepath.Join(dir, "badkey")
	WriteFile(bad, []byte("abcd"))
	if _, err := ReadKey(bad); err == nil {
		t.Error("short key accepted")
	}
	if _, err := NewSealer([]byte("short")); !errors.Is(err, ErrBadKey) {
		t.Error("short key accepted by NewSealer")
	}
}

func TestNewToken(t *testing.T) {
	a, b := NewToken(), NewToken()
	if bytes.Equal(a, b) || len(a) < 40 || !bytes.HasPrefix(a, []byte("skyfs_")) {
		t.Fatalf("tokens %q %q", a, b)
	}
}

func TestInitWritesRootOnlyFilesAndValidCertificates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	wrote, err := Init(dir, InitOptions{TLS: true, Hosts: []string{"master1.example", "10.0.0.7"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(wrote) != 9 {
		t.Fatalf("wrote %v", wrote)
	}
	public := map[string]bool{CAName: true, ServerCertName: true, ClientCertName: true}
	for _, p := range wrote {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); !public[filepath.Base(p)] && perm != 0o600 {
			t.Errorf("%s: mode %04o", p, perm)
		}
	}
	if _, err := Init(dir, InitOptions{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second Init: %v", err)
	}
	files := func(cert, key string) TLSFiles {
		return TLSFiles{CA: filepath.Join(dir, CAName), Cert: filepath.Join(dir, cert), Key: filepath.Join(dir, key)}
	}
	srv, err := files(ServerCertName, ServerKeyName).ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := files(ClientCertName, ClientKeyName).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(srv.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"master1.example", "10.0.0.7", "127.0.0.1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: cli.RootCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("the master certificate is not valid for %s: %v", h, err)
		}
	}
	cl, _ := x509.ParseCertificate(cli.Certificates[0].Certificate[0])
	if _, err := cl.Verify(x509.VerifyOptions{Roots: srv.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the client certificate does not verify: %v", err)
	}
	if _, err := cl.Verify(x509.VerifyOptions{Roots: srv.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("the client certificate is valid for a server")
	}
}

func TestEnsureCreatesOneSetOnce(t *testing.T) {
	for _, pre := range []string{"absent", "empty"} {
		t.Run(pre, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state", "secrets")
			if pre == "empty" {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			// Masters starting together race for the directory.
			const n = 8
			created := make(chan bool, n)
			errs := make(chan error, n)
			for range n {
				go func() {
					c, err := Ensure(dir)
					created <- c
					errs <- err
				}()
			}
			wins := 0
			for range n {
				if <-created {
					wins++
				}
				if err := <-errs; err != nil {
					t.Errorf("Ensure: %v", err)
				}
			}
			if wins != 1 {
				t.Errorf("%d callers created the secrets, want 1", wins)
			}
			if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("directory: %v, %v; want mode 0700", fi, err)
			}
			ents, _ := os.ReadDir(filepath.Dir(dir))
			if len(ents) != 1 {
				t.Errorf("leftovers beside %s: %v", dir, ents)
			}
			tok, err := ReadFile(filepath.Join(dir, AdminTokenName))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ReadKey(filepath.Join(dir, ClusterKeyName)); err != nil {
				t.Error(err)
			}
			if c, err := Ensure(dir); c || err != nil {
				t.Errorf("Ensure again: %v, %v; want the files kept", c, err)
			}
			again, _ := ReadFile(filepath.Join(dir, AdminTokenName))
			if !bytes.Equal(tok, again) {
				t.Error("the admin token changed")
			}
		})
	}
	// A directory holding some of the files is left as it is.
	dir := t.TempDir()
	if err := WriteFile(filepath.Join(dir, MountTokenName), NewToken()); err != nil {
		t.Fatal(err)
	}
	if c, err := Ensure(dir); c || err != nil {
		t.Errorf("Ensure of a directory with a token: %v, %v", c, err)
	}
	if _, err := os.Stat(filepath.Join(dir, AdminTokenName)); err == nil {
		t.Error("Ensure added to a directory that had a token")
	}
}
