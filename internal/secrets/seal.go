package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// SealedPrefix starts every sealed value: "skyfs-sealed:v1:" and the URL-safe
// base64 of nonce and ciphertext.
const SealedPrefix = "skyfs-sealed:v1:"

// Errors of sealing.
var (
	// ErrBadKey is a key of the wrong size.
	ErrBadKey = errors.New("secrets: the cluster key must be 32 bytes")
	// ErrOpen is a sealed value that does not open under the key: another
	// cluster's key, or a corrupted value.
	ErrOpen = errors.New("secrets: a sealed value does not open with this cluster key")
)

// Sealer seals and opens values with AES-256-GCM under the cluster key. The
// additional data binds a value to its purpose (an option key), so that a
// sealed value cannot be moved to another option. It is safe for concurrent
// use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer under key (KeySize bytes). The caller may clear
// key afterwards.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, ErrBadKey
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// IsSealed reports whether v is a sealed value.
func IsSealed(v string) bool { return strings.HasPrefix(v, SealedPrefix) }

// Seal encrypts plaintext bound to ad and returns the sealed value.
func (s *Sealer) Seal(plaintext, ad string) string {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	out := s.aead.Seal(nonce, nonce, []byte(plaintext), []byte(ad))
	return SealedPrefix + base64.RawURLEncoding.EncodeToString(out)
}

// Open decrypts a sealed value bound to ad.
func (s *Sealer) Open(sealed, ad string) (string, error) {
	if !IsSealed(sealed) {
		return "", fmt.Errorf("secrets: not a sealed value")
	}
	raw, err := base64.RawURLEncoding.DecodeString(sealed[len(SealedPrefix):])
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return "", ErrOpen
	}
	n := s.aead.NonceSize()
	pt, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(ad))
	if err != nil {
		return "", ErrOpen
	}
	return string(pt), nil
}
