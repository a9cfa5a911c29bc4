package csi

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/skyfs/skyfs/client"
	"github.com/skyfs/skyfs/internal/bytesize"
	"github.com/skyfs/skyfs/internal/secrets"
)

// Keys of volume attributes, StorageClass parameters and secrets.
const (
	attrPath      = "path"
	attrMasters   = "masters"
	attrCacheSize = "cacheSize"
	attrReadOnly  = "readOnly"
	paramMode     = "mode"

	secretToken = "token"
	secretCA    = "ca.crt"
	secretCert  = "tls.crt"
	secretKey   = "tls.key"
)

// Limits of names and paths, as the namespace has them.
const (
	maxNameLen = 255
	maxPathLen = 4096
)

// minCacheSize is mountd's smallest cache: one block.
const minCacheSize = 4 << 20

// Credentials are what authenticates a caller to the masters: a token and
// TLS material, PEM. The zero value is no credential.
type Credentials struct {
	Token         []byte
	CA, Cert, Key []byte
}

// empty says whether c holds nothing.
func (c Credentials) empty() bool {
	return len(c.Token) == 0 && len(c.CA) == 0 && len(c.Cert) == 0 && len(c.Key) == 0
}

// tlsEnabled says whether c holds TLS material.
func (c Credentials) tlsEnabled() bool { return len(c.CA) > 0 || len(c.Cert) > 0 || len(c.Key) > 0 }

// LoadCredentials reads the credentials of the plugin itself from a token
// file and TLS files (each may be empty). Every file must be root-only.
func LoadCredentials(tokenFile string, tlsFiles secrets.TLSFiles) (Credentials, error) {
	var c Credentials
	read := func(p string, dst *[]byte) error {
		if p == "" {
			return nil
		}
		b, err := secrets.ReadFile(p)
		if err != nil {
			return err
		}
		*dst = b
		return nil
	}
	for _, f := range []struct {
		p   string
		dst *[]byte
	}{{tokenFile, &c.Token}, {tlsFiles.CA, &c.CA}, {tlsFiles.Cert, &c.Cert}, {tlsFiles.Key, &c.Key}} {
		if err := read(f.p, f.dst); err != nil {
			return Credentials{}, fmt.Errorf("csi: credentials: %w", err)
		}
	}
	if err := c.check(); err != nil {
		return Credentials{}, fmt.Errorf("csi: credentials: %w", err)
	}
	return c, nil
}

// credentialsFromSecrets reads a request's secrets. Keys other than those
// of Credentials are ignored; values are never echoed.
func credentialsFromSecrets(s map[string]string) (Credentials, error) {
	var c Credentials
	for k, dst := range map[string]*[]byte{secretToken: &c.Token, secretCA: &c.CA, secretCert: &c.Cert, secretKey: &c.Key} {
		if v := strings.TrimSpace(s[k]); v != "" {
			*dst = []byte(v)
		}
	}
	if err := c.check(); err != nil {
		return Credentials{}, errorf(codes.InvalidArgument, "secrets: %v", err)
	}
	return c, nil
}

// check says whether the TLS material is complete and parses.
func (c Credentials) check() error {
	if !c.tlsEnabled() {
		return nil
	}
	if len(c.CA) == 0 || len(c.Cert) == 0 || len(c.Key) == 0 {
		return fmt.Errorf("TLS needs all of %s, %s and %s", secretCA, secretCert, secretKey)
	}
	_, err := c.tlsConfig()
	return err
}

// tlsConfig is the client TLS configuration of c (nil without TLS).
func (c Credentials) tlsConfig() (*tls.Config, error) {
	if !c.tlsEnabled() {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.CA) {
		return nil, fmt.Errorf("%s holds no PEM certificate", secretCA)
	}
	pair, err := tls.X509KeyPair(c.Cert, c.Key)
	if err != nil {
		// The error of X509KeyPair names no key material.
		return nil, fmt.Errorf("%s and %s: %w", secretCert, secretKey, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair}, RootCAs: pool}, nil
}

// newClient returns a client of masters with c.
func newClient(masters []string, c Credentials) (*client.Client, error) {
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	return client.New(client.Config{Masters: masters, Token: c.Token, TLS: tc})
}

// checkCapability checks one volume capability: a mount volume (fs type
// empty or skyfs) with a known access mode. Mount flags are checked by
// mountOptions.
func checkCapability(vc *csipb.VolumeCapability) error {
	if vc == nil {
		return fmt.Errorf("a volume capability is nil")
	}
	if vc.GetBlock() != nil {
		return fmt.Errorf("block volumes are not supported: skyfs volumes are file systems")
	}
	m := vc.GetMount()
	if m == nil {
		return fmt.Errorf("a volume capability has no access type (want mount)")
	}
	switch m.GetFsType() {
	case "", "skyfs", "fuse.skyfs":
	default:
		return fmt.Errorf("fs type %q: skyfs volumes are skyfs", m.GetFsType())
	}
	switch vc.GetAccessMode().GetMode() {
	case csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
		csipb.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
		csipb.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY,
		csipb.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER,
		csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER,
		csipb.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
		csipb.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
	default:
		return fmt.Errorf("access mode %v is not supported", vc.GetAccessMode().GetMode())
	}
	if _, err := mountOptions(m.GetMountFlags()); err != nil {
		return err
	}
	return nil
}

// readOnlyMode says whether an access mode only reads.
func readOnlyMode(vc *csipb.VolumeCapability) bool {
	switch vc.GetAccessMode().GetMode() {
	case csipb.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY, csipb.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:
		return true
	}
	return false
}

// mountFlagOptions are the mount options a volume may set through its mount
// flags (a persistent volume's mountOptions): the ones that change how the
// mount behaves, never where its credentials or files are.
var mountFlagOptions = map[string]bool{
	"ro": false, "rw": false, "root_squash": false, "debug": false,
	"attr_timeout": true, "entry_timeout": true, "mount_timeout": true, "log_level": true,
}

// mountOptions checks mount flags, each "opt" or "opt=value" (or a comma
// list of them), and returns them as mountd -o items.
func mountOptions(flags []string) ([]string, error) {
	var out []string
	for _, f := range flags {
		for item := range strings.SplitSeq(f, ",") {
			if item == "" {
				continue
			}
			key, val, hasVal := strings.Cut(item, "=")
			wantVal, ok := mountFlagOptions[key]
			switch {
			case !ok:
				return nil, fmt.Errorf("mount flag %q is not supported (allowed: ro, rw, root_squash, debug, attr_timeout=, entry_timeout=, mount_timeout=, log_level=)", key)
			case wantVal && (!hasVal || val == ""):
				return nil, fmt.Errorf("mount flag %s needs a value", key)
			case !wantVal && hasVal:
				return nil, fmt.Errorf("mount flag %s takes no value", key)
			case strings.ContainsAny(val, " \t\n"):
				return nil, fmt.Errorf("mount flag %s: value holds white space", key)
			}
			out = append(out, item)
		}
	}
	return out, nil
}

// volumeAttrs are the attributes of a volume that NodePublishVolume reads.
type volumeAttrs struct {
	Path      string   `json:"path"`
	Masters   []string `json:"masters"`
	CacheSize int64    `json:"cache_size,omitempty"`
	ReadOnly  bool     `json:"read_only,omitempty"`
}

// parseAttrs reads a volume's attributes; defaultMasters are used when they
// name none.
func parseAttrs(attrs map[string]string, defaultMasters []string) (volumeAttrs, error) {
	var v volumeAttrs
	for k, val := range attrs {
		switch k {
		case attrPath:
			p, err := checkNamespacePath(val)
			if err != nil {
				return v, fmt.Errorf("attribute %s: %w", k, err)
			}
			v.Path = p
		case attrMasters:
			m, err := parseMasters(val)
			if err != nil {
				return v, fmt.Errorf("attribute %s: %w", k, err)
			}
			v.Masters = m
		case attrCacheSize:
			n, err := parseCacheSize(val)
			if err != nil {
				return v, fmt.Errorf("attribute %s: %w", k, err)
			}
			v.CacheSize = n
		case attrReadOnly:
			b, err := strconv.ParseBool(val)
			if err != nil {
				return v, fmt.Errorf("attribute %s: %q is not true or false", k, val)
			}
			v.ReadOnly = b
		default:
			if !strings.Contains(k, "/") {
				return v, fmt.Errorf("unknown attribute %q (known: %s, %s, %s, %s)", k, attrPath, attrMasters, attrCacheSize, attrReadOnly)
			}
		}
	}
	if v.Path == "" {
		return v, fmt.Errorf("attribute %s (the namespace directory to mount) is missing", attrPath)
	}
	if v.Masters == nil {
		v.Masters = slices.Clone(defaultMasters)
	}
	if len(v.Masters) == 0 {
		return v, fmt.Errorf("attribute %s is missing and the node plugin has no default masters", attrMasters)
	}
	return v, nil
}

// parseMasters reads "host:port,host:port".
func parseMasters(s string) ([]string, error) {
	var out []string
	for m := range strings.SplitSeq(s, ",") {
		m = strings.TrimSpace(m)
		host, port, err := net.SplitHostPort(m)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("master %q: want HOST:PORT", m)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return nil, fmt.Errorf("master %q: port must be a number from 1 to 65535", m)
		}
		if slices.Contains(out, m) {
			return nil, fmt.Errorf("master %q listed twice", m)
		}
		out = append(out, m)
	}
	return out, nil
}

// parseCacheSize reads a cache size as mountd does.
func parseCacheSize(s string) (int64, error) {
	n, err := bytesize.Parse(s)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	if n < minCacheSize {
		return 0, fmt.Errorf("%q is smaller than one cache block (4M)", s)
	}
	return n, nil
}

// checkNamespacePath checks an absolute namespace path and cleans it.
func checkNamespacePath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%q is not an absolute path", p)
	}
	if len(p) >= maxPathLen {
		return "", fmt.Errorf("path is longer than %d bytes", maxPathLen-1)
	}
	for comp := range strings.SplitSeq(p, "/") {
		if err := checkName(comp); comp != "" && err != nil {
			return "", fmt.Errorf("%q: %w", p, err)
		}
	}
	return path.Clean(p), nil
}

// checkName checks one name of the namespace.
func checkName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
		return fmt.Errorf("%q is not a usable name", name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("name %q holds / or NUL", name)
	case len(name) > maxNameLen:
		return fmt.Errorf("name is longer than %d bytes", maxNameLen)
	}
	return nil
}

// Secret keys the plugin reads from the CSI secrets of a request.
var SecretKeys = []string{secretToken, secretCA, secretCert, secretKey}

// ValidateParameters checks StorageClass parameters as CreateVolume does.
func ValidateParameters(params map[string]string) error {
	_, _, err := createParams(params)
	return err
}

// ValidateAttributes checks the attributes of a static volume as
// NodePublishVolume does; defaultMasters stand for the node plugin's
// --masters.
func ValidateAttributes(attrs map[string]string, defaultMasters []string) error {
	_, err := parseAttrs(attrs, defaultMasters)
	return err
}

// ValidateMountFlags checks the mount flags of a volume (a persistent
// volume's or StorageClass's mountOptions) as NodePublishVolume does.
func ValidateMountFlags(flags []string) error {
	_, err := mountOptions(flags)
	return err
}
