// Package hdfs is the ufs backend on HDFS, built on github.com/colinmarc/hdfs/v2 (the
// namenode RPC and datanode protocols in pure Go). It registers the scheme "hdfs":
// hdfs://namenode:port/path, with options hdfs.user, hdfs.namenodes (an HA list
// "nn1:8020,nn2:8020" that replaces the URI's host) and Kerberos (see the Opt
// constants): a keytab and principal, or a credential cache, plus a krb5.conf.
//
// Directories are real, rename is the namenode's atomic rename2, and writes go to a
// hidden temporary file (".skyfs-tmp-*") in the target's directory that is renamed
// over the target on Close; listings skip those files. A fingerprint's ETag is made
// of the HDFS file ID (never reused), the length and the modification time, so every
// write through skyfs changes it. Copy streams through the client: HDFS has no
// server-side copy.
//
// The client library takes no context: ctx is checked before each call, and its
// deadline is set on data streams, but a namenode call in progress is not
// interrupted by cancellation.
//
// Package hdfs must never import anything from this module but ufs, never log, and
// never put a credential (keytab contents, passwords) in an error.
package hdfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/user"
	"path"
	"strings"
	"syscall"
	"time"

	hdfs "github.com/colinmarc/hdfs/v2"
	krb "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/skyfs/skyfs/ufs"
)

// Scheme is the URI scheme of this backend.
const Scheme = "hdfs"

// Option keys understood by Open.
const (
	OptUser                   = "hdfs.user"                      // user to act as without Kerberos; default the OS user
	OptNamenodes              = "hdfs.namenodes"                 // comma-separated namenode addresses; default the URI's host
	OptUseDatanodeHostname    = "hdfs.useDatanodeHostname"       // "true" to dial datanodes by hostname
	OptDataTransferProtection = "hdfs.dataTransferProtection"    // "", authentication, integrity or privacy
	OptKrb5Conf               = "hdfs.kerberos.krb5conf"         // path of krb5.conf; default $KRB5_CONFIG or /etc/krb5.conf
	OptPrincipal              = "hdfs.kerberos.principal"        // client principal "user[/host]@REALM" (with a keytab)
	OptKeytab                 = "hdfs.kerberos.keytab"           // path of the client's keytab
	OptCCache                 = "hdfs.kerberos.ccache"           // path of a credential cache (instead of a keytab)
	OptServicePrincipal       = "hdfs.kerberos.servicePrincipal" // namenode SPN, default "nn/_HOST"
	OptDialTimeout            = "hdfs.dialTimeout"               // timeout of a namenode or datanode dial, default 10s
)

const tmpPrefix = ".skyfs-tmp-"

// forbiddenChars are refused by the namenode in a path element.
const forbiddenChars = ":"

func init() {
	ufs.Register(Scheme, func(ctx context.Context, u *url.URL, opts ufs.Options) (ufs.FileSystem, error) {
		return Open(ctx, u, opts)
	})
}

// FS is a ufs.FileSystem on a directory of an HDFS cluster.
type FS struct {
	client *hdfs.Client
	root   string // absolute HDFS path of the mount's root
	name   string // "hdfs://nn:port/root", for messages
	lists  *listCache
}

var _ ufs.FileSystem = (*FS)(nil)

// Open connects to the namenode of hdfs://host:port/path and checks that the path
// is a directory.
func Open(ctx context.Context, u *url.URL, opts ufs.Options) (*FS, error) {
	root := path.Clean("/" + u.Path)
	name := (&url.URL{Scheme: Scheme, Host: u.Host, Path: root}).String()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("hdfs: open %s: %w: %s", name, ufs.ErrInvalid, fmt.Sprintf(format, args...))
	}
	if err := ufs.CheckPath(strings.TrimPrefix(root, "/")); err != nil {
		return nil, fmt.Errorf("hdfs: open %s: %w", name, err)
	}
	addrs := []string{u.Host}
	if v := opts.Get(OptNamenodes, ""); v != "" {
		addrs = strings.Split(v, ",")
	}
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, bad("namenode address %q: want host:port", a)
		}
	}
	dialTimeout := 10 * time.Second
	if v := opts.Get(OptDialTimeout, ""); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, bad("%s=%q is not a positive duration", OptDialTimeout, v)
		}
		dialTimeout = d
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	co := hdfs.ClientOptions{
		Addresses:              addrs,
		UseDatanodeHostname:    opts.Get(OptUseDatanodeHostname, "false") == "true",
		DataTransferProtection: opts.Get(OptDataTransferProtection, ""),
		NamenodeDialFunc:       dialer.DialContext,
		DatanodeDialFunc:       dialer.DialContext,
	}
	switch co.DataTransferProtection {
	case "", "authentication", "integrity", "privacy":
	default:
		return nil, bad("%s=%q: want authentication, integrity or privacy", OptDataTransferProtection, co.DataTransferProtection)
	}
	kc, err := kerberosClient(opts)
	if err != nil {
		return nil, fmt.Errorf("hdfs: open %s: kerberos: %w", name, err)
	}
	if kc != nil {
		co.KerberosClient = kc
		co.KerberosServicePrincipleName = opts.Get(OptServicePrincipal, "nn/_HOST")
	} else {
		co.User = opts.Get(OptUser, "")
		if co.User == "" {
			cur, err := user.Current()
			if err != nil {
				return nil, bad("no %s and no current user: %v", OptUser, err)
			}
			co.User = cur.Username
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("hdfs: open %s: %w", name, err)
	}
	client, err := hdfs.NewClient(co)
	if err != nil {
		return nil, fmt.Errorf("hdfs: open %s: %w", name, mapErr(err))
	}
	f := &FS{client: client, root: root, name: name, lists: newListCache()}
	fi, err := client.Stat(root)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("hdfs: open %s: %w", name, mapErr(err))
	}
	if !fi.IsDir() {
		client.Close()
		return nil, fmt.Errorf("hdfs: open %s: %w", name, ufs.ErrNotDir)
	}
	return f, nil
}

// kerberosClient builds a logged-in Kerberos client from the options, or returns
// nil when no Kerberos option is set.
func kerberosClient(opts ufs.Options) (*krb.Client, error) {
	principal, kt, cc := opts.Get(OptPrincipal, ""), opts.Get(OptKeytab, ""), opts.Get(OptCCache, "")
	if principal == "" && kt == "" && cc == "" {
		return nil, nil
	}
	confPath := opts.Get(OptKrb5Conf, os.Getenv("KRB5_CONFIG"))
	if confPath == "" {
		confPath = "/etc/krb5.conf"
	}
	conf, err := krbconfig.Load(confPath)
	if err != nil {
		return nil, fmt.Errorf("load %s %q: %w", OptKrb5Conf, confPath, firstLine(err))
	}
	var cl *krb.Client
	switch {
	case cc != "":
		cache, err := credentials.LoadCCache(cc)
		if err != nil {
			return nil, fmt.Errorf("load %s %q: %w", OptCCache, cc, firstLine(err))
		}
		cl, err = krb.NewFromCCache(cache, conf, krb.DisablePAFXFAST(true))
		if err != nil {
			return nil, fmt.Errorf("credential cache %q: %w", cc, firstLine(err))
		}
	case kt != "" && principal != "":
		user, realm, ok := strings.Cut(principal, "@")
		if !ok || user == "" || realm == "" {
			return nil, fmt.Errorf("%w: %s=%q: want user[/host]@REALM", ufs.ErrInvalid, OptPrincipal, principal)
		}
		tab, err := keytab.Load(kt)
		if err != nil {
			return nil, fmt.Errorf("load %s %q: %w", OptKeytab, kt, firstLine(err))
		}
		cl = krb.NewWithKeytab(user, realm, tab, conf, krb.DisablePAFXFAST(true))
	default:
		return nil, fmt.Errorf("%w: give %s with %s, or %s", ufs.ErrInvalid, OptPrincipal, OptKeytab, OptCCache)
	}
	if err := cl.Login(); err != nil {
		return nil, fmt.Errorf("login: %w", firstLine(err))
	}
	return cl, nil
}

// firstLine keeps the first line of an error's message (gokrb5 and Java
// exceptions can be long), wrapping the original error.
func firstLine(err error) error {
	msg := err.Error()
	if i := strings.IndexAny(msg, "\r\n"); i >= 0 {
		return &lineError{msg: msg[:i], err: err}
	}
	return err
}

type lineError struct {
	msg string
	err error
}

func (e *lineError) Error() string { return e.msg }
func (e *lineError) Unwrap() error { return e.err }

// mapErr drops *os.PathError wrappers (the ufs.Error names the path) and maps
// errors to ufs sentinels.
func mapErr(err error) error {
	var pe *os.PathError
	for errors.As(err, &pe) {
		err = pe.Err
	}
	var remote hdfs.Error
	switch {
	case errors.Is(err, syscall.ENOTEMPTY):
		return ufs.ErrNotEmpty
	case errors.As(err, &remote):
		return &lineError{msg: remote.Exception() + ": " + firstLine(errors.New(remote.Message())).Error(), err: err}
	case errors.As(err, new(*net.OpError)):
		return &ufs.KindError{Kind: ufs.ErrUnavailable, Err: err}
	}
	return err
}

// abs returns the HDFS path of the ufs path p.
func (f *FS) abs(p string) string {
	if p == "" {
		return f.root
	}
	return path.Join(f.root, p)
}

func (f *FS) fail(op, p string, err error) error {
	return &ufs.Error{FS: f.name, Op: op, Path: p, Err: mapErr(err)}
}

func (f *FS) check(ctx context.Context, op string, paths ...string) error {
	for _, p := range paths {
		if err := ufs.CheckPath(p); err != nil {
			return &ufs.Error{FS: f.name, Op: op, Err: err}
		}
		if strings.ContainsAny(p, forbiddenChars) {
			return &ufs.Error{FS: f.name, Op: op, Path: p, Err: fmt.Errorf("%w: HDFS names cannot hold %q", ufs.ErrInvalidPath, forbiddenChars)}
		}
	}
	if err := ctx.Err(); err != nil {
		return &ufs.Error{FS: f.name, Op: op, Err: err}
	}
	return nil
}

// Capabilities implements ufs.FileSystem.
func (f *FS) Capabilities() ufs.Capabilities {
	return ufs.Capabilities{
		AtomicRename:       true,
		HardLinks:          false,
		RealDirectories:    true,
		ServerSideCopy:     false,
		MaxNameBytes:       ufs.MaxNameBytes,
		ForbiddenNameChars: forbiddenChars,
	}
}

// Close implements ufs.FileSystem.
func (f *FS) Close() error {
	f.lists.clear()
	return f.client.Close()
}

func fingerprint(fi fs.FileInfo) ufs.Fingerprint {
	var id uint64
	if s, ok := fi.Sys().(interface{ GetFileId() uint64 }); ok {
		id = s.GetFileId()
	}
	size := fi.Size()
	if fi.IsDir() {
		size = 0
	}
	mt := fi.ModTime()
	return ufs.Fingerprint{Size: size, ETag: fmt.Sprintf("%x-%x-%x", id, size, mt.UnixMilli()), ModTime: mt}
}

// Stat implements ufs.FileSystem.
func (f *FS) Stat(ctx context.Context, p string) (ufs.FileInfo, error) {
	if err := f.check(ctx, "stat", p); err != nil {
		return ufs.FileInfo{}, err
	}
	fi, err := f.client.Stat(f.abs(p))
	if err != nil {
		return ufs.FileInfo{}, f.fail("stat", p, err)
	}
	return ufs.FileInfo{Path: p, Name: ufs.Base(p), IsDir: fi.IsDir(), Fingerprint: fingerprint(fi)}, nil
}

// Mkdir implements ufs.FileSystem.
func (f *FS) Mkdir(ctx context.Context, p string) error {
	if err := f.check(ctx, "mkdir", p); err != nil {
		return err
	}
	if _, err := f.client.Stat(f.abs(p)); err == nil {
		return f.fail("mkdir", p, ufs.ErrExist)
	}
	if err := f.client.MkdirAll(path.Dir(f.abs(p)), 0o755); err != nil {
		return f.fail("mkdir", p, err)
	}
	if err := f.client.Mkdir(f.abs(p), 0o755); err != nil {
		return f.fail("mkdir", p, err)
	}
	return nil
}

// Delete implements ufs.FileSystem.
func (f *FS) Delete(ctx context.Context, p string) error {
	if err := f.check(ctx, "delete", p); err != nil {
		return err
	}
	if p == "" {
		return f.fail("delete", p, fmt.Errorf("%w: the root cannot be deleted", ufs.ErrInvalidPath))
	}
	if err := f.client.Remove(f.abs(p)); err != nil {
		return f.fail("delete", p, err)
	}
	return nil
}

// Rename implements ufs.FileSystem with the namenode's rename2 (overwrite).
func (f *FS) Rename(ctx context.Context, src, dst string) error {
	if err := f.check(ctx, "rename", src, dst); err != nil {
		return err
	}
	if src == "" || dst == "" {
		return f.fail("rename", src, fmt.Errorf("%w: the root cannot be renamed or replaced", ufs.ErrInvalidPath))
	}
	sfi, err := f.client.Stat(f.abs(src))
	if err != nil {
		return f.fail("rename", src, err)
	}
	if src == dst {
		return nil
	}
	if ufs.IsWithin(dst, src) {
		return f.fail("rename", src, fmt.Errorf("%w: cannot move %q into itself", ufs.ErrInvalid, dst))
	}
	if dfi, err := f.client.Stat(f.abs(dst)); err == nil {
		switch {
		case sfi.IsDir() && !dfi.IsDir():
			return f.fail("rename", src, ufs.ErrNotDir)
		case !sfi.IsDir() && dfi.IsDir():
			return f.fail("rename", src, ufs.ErrIsDir)
		case dfi.IsDir():
			if err := f.client.Remove(f.abs(dst)); err != nil { // only if empty
				return f.fail("rename", dst, err)
			}
		}
	}
	if err := f.client.MkdirAll(path.Dir(f.abs(dst)), 0o755); err != nil {
		return f.fail("rename", dst, err)
	}
	if err := f.client.Rename(f.abs(src), f.abs(dst)); err != nil {
		return f.fail("rename", src, err)
	}
	return nil
}
