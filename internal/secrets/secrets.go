// Package secrets holds what skyfs's daemons and commands share about
// secrets: reading tokens and keys from root-only files, generating them,
// sealing values with AES-256-GCM under the cluster key, and the gRPC
// per-call credential that carries a token.
//
// A secret file must be a regular file that neither its group nor others
// may read or write (mode 0600 or stricter): a file anyone else can read is
// refused with one line that says how to fix it. Values read are returned
// as byte slices so callers can clear them; they are never logged, and the
// errors of this package name files, never their contents.
//
// The package imports nothing else of this module and must never log.
package secrets

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Errors of the package.
var (
	// ErrInsecureFile is a secret file that group or others may access.
	ErrInsecureFile = errors.New("secret file is accessible by group or others")
	// ErrEmpty is a secret file that holds nothing.
	ErrEmpty = errors.New("secret file is empty")
)

// maxSecretFile bounds what ReadFile reads: a token or key is small.
const maxSecretFile = 64 << 10

// ReadFile reads a secret (a token, a key) from path, trimmed of surrounding
// white space. The file must be a regular file with no permission bits for
// group or others.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: %w (chmod 600 %s)", path, perm, ErrInsecureFile, path)
	}
	if fi.Size() > maxSecretFile {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a secret file", path, maxSecretFile)
	}
	b := make([]byte, fi.Size()+1)
	n, err := f.Read(b)
	if err != nil && n == 0 && fi.Size() > 0 {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	b = b[:n]
	start, end := 0, len(b)
	for start < end && isSpace(b[start]) {
		start++
	}
	for end > start && isSpace(b[end-1]) {
		end--
	}
	out := make([]byte, end-start)
	copy(out, b[start:end])
	clear(b)
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", path, ErrEmpty)
	}
	return out, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// WriteFile writes a secret to path with mode 0600, creating the directory
// (0700) if needed. It refuses to overwrite an existing file.
func WriteFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; remove it first to replace it", path)
		}
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// tokenPrefix marks skyfs tokens, so that a token found somewhere is
// recognisable (and a grep for leaked tokens is easy).
const tokenPrefix = "skyfs_"

// NewToken returns a new random token: 256 bits, URL-safe base64.
func NewToken() []byte {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return []byte(tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]))
}

// KeySize is the size of the cluster key: AES-256.
const KeySize = 32

// NewKey returns a new random cluster key, hex-encoded as it is stored in
// its file.
func NewKey() []byte {
	var b [KeySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	out := []byte(hex.EncodeToString(b[:]))
	clear(b[:])
	return out
}

// ReadKey reads the cluster key from a secret file holding it in hex.
func ReadKey(path string) ([]byte, error) {
	b, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	s := strings.TrimSpace(string(b))
	key := make([]byte, KeySize)
	n, err := hex.Decode(key, []byte(s))
	if err != nil || n != KeySize || len(s) != 2*KeySize {
		clear(key)
		return nil, fmt.Errorf("%s: want %d hex digits (a %d-bit key; skyfs init writes one)", path, 2*KeySize, 8*KeySize)
	}
	return key, nil
}
