package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"

	"github.com/skyfs/skyfs/client"
	"github.com/skyfs/skyfs/internal/miniotest"
	"github.com/skyfs/skyfs/internal/secrets"
	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// secRun is a secured cluster: tokens, cluster key and mutual TLS written
// by skyfs init, a root UFS on MinIO whose secret comes from an option file,
// a second S3 mount added with the admin token, and one mountd serving "/".
type secRun struct {
	t      *testing.T
	keys   string // skyfs init --dir
	srv    *miniotest.Server
	c      *cluster
	h      *host
	secret string
	// marker is in the URI of the added mount: journaled in clear, it shows
	// that the raw scans of the data directories can see journal content.
	marker string
	// mountdAdmin is the admin port of mountd (/metrics).
	mountdAdmin string

	mu      sync.Mutex
	outputs []string // every CLI output, to look for secrets in
}

func (r *secRun) key(name string) string { return filepath.Join(r.keys, name) }

// run runs the skyfs binary with env and records its output.
func (r *secRun) run(env []string, args ...string) (int, string) {
	r.t.Helper()
	cmd := exec.Command(bin.skyfs, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	r.mu.Lock()
	r.outputs = append(r.outputs, out.String())
	r.mu.Unlock()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("skyfs %v: %v", args, err)
	}
	return code, out.String()
}

// baseEnv is the environment of a CLI run with TLS and no token.
func (r *secRun) baseEnv() []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "SKYFS_MASTERS=" + strings.Join(r.c.rpcAddrs(), ",")}
	return append(env, "SKYFS_TLS_CA_FILE="+r.key(secrets.CAName),
		"SKYFS_TLS_CERT_FILE="+r.key(secrets.ClientCertName), "SKYFS_TLS_KEY_FILE="+r.key(secrets.ClientKeyName))
}

// as runs skyfs with the token file tf ("" for none).
func (r *secRun) as(tf string, args ...string) (int, string) {
	r.t.Helper()
	env := r.baseEnv()
	if tf != "" {
		env = append(env, "SKYFS_TOKEN_FILE="+tf)
	}
	return r.run(env, args...)
}

func (r *secRun) admin(args ...string) string {
	r.t.Helper()
	code, out := r.as(r.key(secrets.AdminTokenName), args...)
	if code != 0 {
		r.t.Fatalf("skyfs %s: exit %d: %s", strings.Join(args, " "), code, out)
	}
	return out
}

// nobody runs a command as uid and gid 65534 with no groups.
func nobody(args ...string) (string, error) {
	cmd := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func newSecRun(t *testing.T) *secRun {
	t.Helper()
	needMountd(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv")
	}
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t)
	r := &secRun{t: t, srv: srv, secret: srv.SecretKey, keys: filepath.Join(t.TempDir(), "keys"),
		marker: fmt.Sprintf("journal-marker-%d", time.Now().UnixNano())}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mc := srv.Client()
	for _, k := range []string{"root/hello.txt", r.marker + "/in-bucket.txt"} {
		if _, err := mc.PutObject(ctx, bucket, k, strings.NewReader("hello"), 5, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// skyfs init writes everything root-only.
	code, out := r.run([]string{"PATH=" + os.Getenv("PATH")}, "init", "--dir", r.keys, "--tls", "--hosts", "127.0.0.1")
	if code != 0 {
		t.Fatalf("skyfs init: %d: %s", code, out)
	}
	if code, out := r.run([]string{"PATH=" + os.Getenv("PATH")}, "init", "--dir", r.keys); code == 0 || !strings.Contains(out, "already exists") {
		t.Errorf("a second skyfs init into the same directory: %d: %s", code, out)
	}
	if fi, err := os.Stat(r.keys); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("keys directory: %v %v", fi.Mode(), err)
	}
	for _, n := range []string{secrets.AdminTokenName, secrets.MountTokenName, secrets.ClusterKeyName, secrets.CAKeyName, secrets.ServerKeyName, secrets.ClientKeyName} {
		if fi, err := os.Stat(r.key(n)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", n, fi.Mode(), err)
		}
	}

	// The root UFS's secret is in an option file, outside every scanned
	// directory, never on a command line.
	optFile := filepath.Join(t.TempDir(), "root.options")
	if err := os.WriteFile(optFile, []byte("# root UFS credentials\ns3.accessKeyId="+srv.AccessKey+"\ns3.secretAccessKey="+r.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.c = newCluster(t, 3,
		"--admin-token-file", r.key(secrets.AdminTokenName), "--mount-token-file", r.key(secrets.MountTokenName),
		"--cluster-key-file", r.key(secrets.ClusterKeyName),
		"--tls-ca-file", r.key(secrets.CAName), "--tls-cert-file", r.key(secrets.ServerCertName), "--tls-key-file", r.key(secrets.ServerKeyName),
		"--root-ufs", "s3://"+bucket+"/root", "--root-ufs-option-file", optFile,
		"--root-ufs-option", "s3.endpoint="+srv.Endpoint, "--root-ufs-option", "s3.pathStyle=true",
		"--root-ufs-option", "s3.region="+miniotest.Region)
	waitFor(t, 60*time.Second, "the root mount", func() bool {
		code, out := r.as(r.key(secrets.AdminTokenName), "mounts", "--output", "json")
		return code == 0 && strings.Contains(out, `"path": "/"`)
	})
	// The added mount's secret comes from a file too (skyfs mount
	// --option-file), so no command line of the test holds it.
	mountOpts := filepath.Join(filepath.Dir(optFile), "warehouse.options")
	if err := os.WriteFile(mountOpts, []byte("s3.secretAccessKey = "+r.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.admin("mount", "/warehouse", "s3://"+bucket+"/"+r.marker, "--option-file", mountOpts,
		"--option", "s3.endpoint="+srv.Endpoint, "--option", "s3.accessKeyId="+srv.AccessKey,
		"--option", "s3.pathStyle=true", "--option", "s3.region="+miniotest.Region)

	r.mountdAdmin = freeAddrs(t, 1)[0]
	r.h = newHost(t, r.c, "h1", "/", secOpts(r)+",admin_addr="+r.mountdAdmin)
	// Let other users reach the mount point (t.TempDir is 0700).
	for d := filepath.Dir(r.h.mnt); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			os.Chmod(d, fi.Mode().Perm()|0o755)
		}
	}
	r.h.start()
	return r
}

// secOpts are the mount options of a host of the secured cluster.
func secOpts(r *secRun) string {
	return strings.Join([]string{
		"token_file=" + r.key(secrets.MountTokenName),
		"tls_ca_file=" + r.key(secrets.CAName),
		"tls_cert_file=" + r.key(secrets.ClientCertName),
		"tls_key_file=" + r.key(secrets.ClientKeyName),
	}, ",")
}

// TestSecurity runs a secured cluster and tries to break it.
func TestSecurity(t *testing.T) {
	r := newSecRun(t)
	h := r.h
	checkContent(t, h.path("hello.txt"), []byte("hello"))
	checkContent(t, h.path("warehouse/in-bucket.txt"), []byte("hello"))
	if err := os.WriteFile(h.path("warehouse/written.txt"), []byte("written through the mount"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.path("private.txt"), []byte("private"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(h.path("private.txt"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(h.path("private.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.path("public.txt"), []byte("public"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(h.path("public.txt"), "user.note", []byte("a note"), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
		t.Errorf("setxattr: %v", err)
	}

	t.Run("Unprivileged", func(t *testing.T) {
		if out, err := nobody("cat", h.path("public.txt")); err != nil || out != "public" {
			t.Fatalf("nobody cannot read a 0644 file (the test setup is wrong): %v: %s", err, out)
		}
		out, err := nobody("cat", h.path("private.txt"))
		if err == nil || !strings.Contains(out, "Permission denied") {
			t.Errorf("nobody read uid 1000's 0600 file: %v: %q", err, out)
		}
		if out, err := nobody("sh", "-c", "echo x >> "+h.path("private.txt")); err == nil || !strings.Contains(out, "Permission denied") {
			t.Errorf("nobody wrote uid 1000's 0600 file: %v: %q", err, out)
		}
		for _, f := range []string{secrets.MountTokenName, secrets.AdminTokenName, secrets.ClusterKeyName, secrets.ClientKeyName} {
			if out, err := nobody("cat", r.key(f)); err == nil || strings.Contains(out, "skyfs_") {
				t.Errorf("nobody read %s: %v: %q", f, err, out)
			}
		}
		// Even pointed at the mount token, the CLI run by nobody has no
		// credential to send.
		out, err = nobody("env", "SKYFS_MASTERS="+strings.Join(r.c.rpcAddrs(), ","), bin.skyfs, "--token-file", r.key(secrets.MountTokenName), "mkdir", "/by-nobody")
		if err == nil {
			t.Errorf("nobody's skyfs mkdir succeeded: %s", out)
		}
		if _, err := os.Stat(h.path("by-nobody")); err == nil {
			t.Error("/by-nobody exists")
		}
	})

	t.Run("RootSquash", func(t *testing.T) {
		if err := os.Mkdir(h.path("open"), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(h.path("open"), 0o777); err != nil {
			t.Fatal(err)
		}
		h2 := newHost(t, r.c, "squashed", "/", secOpts(r)+",root_squash")
		for d := filepath.Dir(h2.mnt); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
				os.Chmod(d, fi.Mode().Perm()|0o755)
			}
		}
		h2.start()
		checkContent(t, h2.path("public.txt"), []byte("public"))
		if _, err := os.ReadFile(h2.path("private.txt")); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("squashed root read uid 1000's 0600 file: %v", err)
		}
		if err := os.Chmod(h2.path("public.txt"), 0o666); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("squashed root changed the mode of root's file: %v", err)
		}
		if err := os.WriteFile(h2.path("by-squashed-root.txt"), []byte("x"), 0o644); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("squashed root created a file in root's 0755 directory: %v", err)
		}
		if err := os.WriteFile(h2.path("open/by-squashed-root.txt"), []byte("x"), 0o644); err != nil {
			t.Fatalf("squashed root cannot create in a 0777 directory: %v", err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(h.path("open/by-squashed-root.txt"), &st); err != nil || st.Uid != 65534 || st.Gid != 65534 {
			t.Errorf("a file squashed root created is owned by %d:%d (%v), want 65534:65534", st.Uid, st.Gid, err)
		}
		h2.umount()
	})

	t.Run("Tokens", func(t *testing.T) {
		wrong := filepath.Join(t.TempDir(), "wrong.token")
		if err := secrets.WriteFile(wrong, []byte("skyfs_this-is-not-the-token")); err != nil {
			t.Fatal(err)
		}
		loose := filepath.Join(t.TempDir(), "loose.token")
		b, _ := os.ReadFile(r.key(secrets.AdminTokenName))
		os.WriteFile(loose, b, 0o644)
		mountTok := r.key(secrets.MountTokenName)
		for _, tc := range []struct {
			name, token string
			args        []string
			want        string
		}{
			{"no token", "", []string{"mkdir", "/no-token"}, "no credential"},
			{"no token, admin", "", []string{"mount", "/no-token-mount", "file:///tmp"}, "no credential"},
			{"wrong token", wrong, []string{"mkdir", "/wrong-token"}, "invalid token"},
			{"wrong token, admin", wrong, []string{"journal", "checkpoint"}, "invalid token"},
			{"readable token file", loose, []string{"mkdir", "/loose-token"}, "chmod 600"},
			{"mount token, mount", mountTok, []string{"mount", "/by-mount-token", "file:///tmp"}, "admin role"},
			{"mount token, unmount", mountTok, []string{"unmount", "/warehouse"}, "admin role"},
			{"mount token, checkpoint", mountTok, []string{"journal", "checkpoint"}, "admin role"},
			{"mount token, remove member", mountTok, []string{"cluster", "remove", "m3"}, "admin role"},
			{"mount token, transfer", mountTok, []string{"cluster", "transfer-leader"}, "admin role"},
			{"mount token, sync", mountTok, []string{"sync", "/warehouse"}, "admin role"},
		} {
			code, out := r.as(tc.token, tc.args...)
			if code == 0 || !strings.Contains(out, tc.want) || strings.Count(strings.TrimSpace(out), "\n") > 0 {
				t.Errorf("%s: skyfs %v: exit %d, %q; want one line with %q", tc.name, tc.args, code, out, tc.want)
			}
		}
		// The mount token does namespace operations.
		if code, out := r.as(mountTok, "mkdir", "/by-mount-token-dir"); code != 0 {
			t.Errorf("mount token: mkdir: %d %s", code, out)
		}
		// Nothing refused changed anything.
		ls := r.admin("ls", "/")
		for _, name := range []string{"no-token", "wrong-token", "loose-token", "by-mount-token", "by-nobody"} {
			if strings.Contains(" "+strings.Join(strings.Fields(ls), " ")+" ", " "+name+" ") {
				t.Errorf("/%s exists after a refused request", name)
			}
		}
		mounts := r.admin("mounts", "--output", "json")
		if strings.Count(mounts, `"path"`) != 2 || !strings.Contains(mounts, `"/warehouse"`) {
			t.Errorf("the mount table changed: %s", mounts)
		}
		// Three members, each answering its peers over TLS with the token
		// (polled: a loaded machine may miss one answer).
		waitFor(t, 30*time.Second, "three members answering", func() bool {
			st := r.admin("cluster", "status", "--output", "json")
			return strings.Count(st, `"id"`) == 3 && !strings.Contains(st, "unreachable")
		})
		for _, nd := range r.c.nodes {
			log, _ := readLog(nd)
			if !strings.Contains(log, "auth: call refused") && nd == r.c.byRPC(r.c.rpcAddrs()[0]) {
				t.Logf("%s logged no refusal (the CLI may have gone to another master)", nd.id)
			}
		}
	})

	t.Run("TLS", func(t *testing.T) {
		ca, caKey := loadCA(t, r.key(secrets.CAName), r.key(secrets.CAKeyName))
		cluster := &secrets.CA{Cert: ca, Key: caKey}
		foreign, err := secrets.NewCA("foreign", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		past := time.Now().Add(-72 * time.Hour)
		tlsWith := func(issuer *secrets.CA, nb, na time.Time) *tls.Config {
			c, err := issuer.Issue(secrets.CertOptions{Name: "intruder", NotBefore: nb, NotAfter: na})
			if err != nil {
				t.Fatal(err)
			}
			pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
			if err != nil {
				t.Fatal(err)
			}
			return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS13}
		}
		for _, tc := range []struct {
			name string
			tls  *tls.Config
		}{
			{"plaintext", nil},
			{"foreign certificate", tlsWith(foreign, time.Time{}, time.Time{})},
			{"expired certificate", tlsWith(cluster, past, past.Add(time.Hour))},
			{"no client certificate", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}},
		} {
			cl, err := client.New(client.Config{Masters: r.c.rpcAddrs(), TokenFile: r.key(secrets.AdminTokenName), TLS: tc.tls,
				CallTimeout: time.Second, RetryTimeout: 3 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err = cl.Mkdir(ctx, &pb.MkdirRequest{Parent: 1, Name: []byte("tls-" + strings.ReplaceAll(tc.name, " ", "-")), Mode: 0o755})
			cancel()
			cl.Close()
			if err == nil {
				t.Errorf("%s: mkdir succeeded", tc.name)
			}
		}
		ls := r.admin("ls", "/")
		if strings.Contains(ls, "tls-") {
			t.Errorf("a refused connection made a directory: %s", ls)
		}
	})

	t.Run("NoSecretAnywhere", func(t *testing.T) {
		// A master restarted with an admin port serves metrics and a
		// status page; those are scanned too.
		nd := r.c.nodes[2]
		r.c.stop(nd)
		adminAddr := freeAddrs(t, 1)[0]
		nd.extra = append(nd.extra, "--admin-addr", adminAddr)
		r.c.start(nd)
		var pages []string
		waitFor(t, 30*time.Second, "the admin ports", func() bool {
			pages = pages[:0]
			for _, u := range []string{adminAddr + "/metrics", adminAddr + "/", r.mountdAdmin + "/metrics"} {
				resp, err := http.Get("http://" + u)
				if err != nil {
					return false
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || len(b) == 0 {
					return false
				}
				pages = append(pages, string(b))
			}
			return true
		})
		r.c.waitLeader(30 * time.Second)
		checkContent(t, h.path("warehouse/written.txt"), []byte("written through the mount"))

		secret := []byte(r.secret)
		tokens := [][]byte{}
		for _, n := range []string{secrets.AdminTokenName, secrets.MountTokenName} {
			b, err := secrets.ReadFile(r.key(n))
			if err != nil {
				t.Fatal(err)
			}
			tokens = append(tokens, b)
		}
		var scanned, bytesScanned int
		markerSeen := false
		look := func(where string, b []byte) {
			scanned++
			bytesScanned += len(b)
			if bytes.Contains(b, secret) {
				t.Errorf("the secret access key is in %s", where)
			}
			for _, tok := range tokens {
				if bytes.Contains(b, tok) {
					t.Errorf("a token is in %s", where)
				}
			}
			markerSeen = markerSeen || (bytes.Contains(b, []byte(r.marker)) && strings.Contains(where, "raft.db"))
		}
		// Every file under the masters' data and log directory, and the
		// host's cache directory and log, as raw bytes.
		for _, root := range []string{r.c.dir, filepath.Dir(h.cacheDir)} {
			filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return nil
				}
				scanFile(t, p, func(chunk []byte) { look(p, chunk) })
				return nil
			})
		}
		if !markerSeen {
			t.Errorf("the mount URI marker was not found in any raft.db: the raw scan cannot see the journal")
		}
		// The daemons' command lines and environments.
		pids := map[string]int{"mountd": h.cmd.Process.Pid}
		for _, nd := range r.c.nodes {
			nd.mu.Lock()
			if nd.cmd != nil {
				pids[nd.id] = nd.cmd.Process.Pid
			}
			nd.mu.Unlock()
		}
		for name, pid := range pids {
			for _, f := range []string{"cmdline", "environ"} {
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				look(name+" /proc/"+f, b)
			}
		}
		// Every CLI output and the admin pages.
		r.mu.Lock()
		for i, o := range r.outputs {
			look(fmt.Sprintf("CLI output %d", i), []byte(o))
		}
		r.mu.Unlock()
		for i, p := range pages {
			look(fmt.Sprintf("admin page %d", i), []byte(p))
		}
		// The mounted tree: names, contents, xattrs.
		filepath.WalkDir(h.mnt, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			look("the name "+p, []byte(p))
			if d.Type().IsRegular() && !strings.HasSuffix(p, "private.txt") {
				if b, err := os.ReadFile(p); err == nil {
					look(p, b)
				}
			}
			buf := make([]byte, 64<<10)
			n, err := unix.Llistxattr(p, buf)
			if err != nil {
				return nil
			}
			for _, name := range strings.Split(string(buf[:n]), "\x00") {
				if name == "" {
					continue
				}
				look("xattr name on "+p, []byte(name))
				v := make([]byte, 64<<10)
				if m, err := unix.Lgetxattr(p, name, v); err == nil {
					look("xattr "+name+" on "+p, v[:m])
				}
			}
			return nil
		})
		t.Logf("scanned %d places, %d bytes", scanned, bytesScanned)
	})
}

// scanFile calls look with the file's content in chunks that overlap by
// 4 KiB, so that a needle shorter than that is whole in some chunk, without
// holding a big file (Badger's value log) in memory.
func scanFile(t *testing.T, path string, look func([]byte)) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	const chunk, overlap = 4 << 20, 4 << 10
	buf := make([]byte, chunk+overlap)
	keep := 0
	for {
		n, err := io.ReadFull(f, buf[keep:])
		if n > 0 {
			look(buf[:keep+n])
		}
		if err != nil {
			return
		}
		keep = copy(buf, buf[keep+n-overlap:keep+n])
	}
}

// loadCA reads the cluster CA that skyfs init wrote.
func loadCA(t *testing.T, certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	cb, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(cb)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := secrets.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	kblk, _ := pem.Decode(kb)
	key, err := x509.ParseECPrivateKey(kblk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}
