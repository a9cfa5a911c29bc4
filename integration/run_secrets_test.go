package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"google.golang.org/grpc/status"

	"github.com/skyfs/skyfs/client"
	"github.com/skyfs/skyfs/internal/miniotest"
	"github.com/skyfs/skyfs/internal/secrets"
)

// probeEnv makes the test binary the small gRPC client an unprivileged
// user could write (probeMountAccess): its value is the masters' addresses.
const probeEnv = "SKYFS_INTEGRATION_PROBE"

// probeMountAccess reports which of the files named in its arguments it can
// read, and asks the masters of probeEnv for the credentials of mounts 1 to
// 8, with the token of $SKYFS_TOKEN_FILE if it can read that, else none. It
// prints one line per file it read and per mount.
func probeMountAccess() int {
	for _, p := range os.Args[1:] {
		if f, err := os.Open(p); err == nil {
			if n, _ := f.Read(make([]byte, 1)); n > 0 {
				fmt.Printf("readable %s\n", p)
			}
			f.Close()
		}
	}
	cfg := client.Config{Masters: strings.Split(os.Getenv(probeEnv), ","), CallTimeout: 2 * time.Second, RetryTimeout: 5 * time.Second}
	if tf := os.Getenv("SKYFS_TOKEN_FILE"); tf != "" {
		if tok, err := secrets.ReadFile(tf); err == nil {
			cfg.Token = tok
		} else {
			fmt.Println("no token: cannot read the token file")
		}
	}
	c, err := client.New(cfg)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer c.Close()
	for id := uint64(1); id <= 8; id++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := c.MountAccess(ctx, id)
		cancel()
		if err != nil {
			fmt.Printf("mount %d: refused: %s\n", id, status.Code(err))
			continue
		}
		fmt.Printf("mount %d: %s %s", id, m.Path, m.Uri)
		for k, v := range m.Options {
			fmt.Printf(" %s=%s", k, v)
		}
		fmt.Println()
	}
	return 0
}

// TestMakeRunSecrets runs `make run` with an S3 mount of MinIO added as its
// message suggests, and checks that the secret key stays in the daemons:
// an unprivileged user's gRPC client reads neither the cluster's files nor
// the credentials (root's, with the mount token, does: the probe can see
// them), and after the run no file of the state directory — journals,
// Badger's files, snapshots, logs, the cache — holds the secret.
func TestMakeRunSecrets(t *testing.T) {
	needMountd(t)
	for _, tool := range []string{"make", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip("no " + tool)
		}
	}
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t)
	marker := fmt.Sprintf("run-marker-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const content = "hello from the bucket"
	if _, err := srv.Client().PutObject(ctx, bucket, marker+"/in-bucket.txt", strings.NewReader(content), int64(len(content)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// A directory others may enter, so that what keeps them out of the
	// cluster's files is the files' own modes.
	base, err := os.MkdirTemp("", "skyfs-run-secrets-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	state, mnt := filepath.Join(base, "state"), filepath.Join(base, "mnt")
	port := freePortRange(t, 31)
	masters := fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", port+1, port+2, port+3)
	env := append(os.Environ(), "SKYFS_RUN_STATE="+state, "SKYFS_RUN_MNT="+mnt, "SKYFS_RUN_PORT="+strconv.Itoa(port))
	t.Cleanup(func() { forceUnmount(mnt); killRunDaemons(state) })

	r := startMakeRun(t, repo, env)
	sdir := filepath.Join(state, "secrets")
	adminTok, mountTok := filepath.Join(sdir, secrets.AdminTokenName), filepath.Join(sdir, secrets.MountTokenName)
	if !strings.Contains(r.banner, "SKYFS_TOKEN_FILE="+adminTok) {
		t.Errorf("make run's message does not say where the admin token is:\n%s", r.banner)
	}

	// The S3 mount, as the message shows it, with the secret in a file.
	optFile := filepath.Join(t.TempDir(), "s3-credentials")
	if err := os.WriteFile(optFile, []byte("s3.accessKeyId="+srv.AccessKey+"\ns3.secretAccessKey="+srv.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := exec.Command(filepath.Join(repo, "bin", "skyfs"), "mount", "/data", "s3://"+bucket+"/"+marker,
		"--option", "s3.endpoint="+srv.Endpoint, "--option", "s3.pathStyle=true", "--option", "s3.region="+miniotest.Region,
		"--option-file", optFile)
	cli.Env = append(os.Environ(), "SKYFS_MASTERS="+masters, "SKYFS_TOKEN_FILE="+adminTok)
	out, err := cli.CombinedOutput()
	if err != nil {
		t.Fatalf("skyfs mount: %v: %s", err, out)
	}
	// mountd, with the mount token, got the credentials.
	checkContent(t, filepath.Join(mnt, "data", "in-bucket.txt"), []byte(content))

	// The probe, where nobody can run it.
	probe := filepath.Join(base, "probe")
	copyFile(t, os.Args[0], probe, 0o755)
	var files []string
	filepath.WalkDir(state, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(state, p)
		top := strings.Split(rel, string(filepath.Separator))[0]
		_, master := strconv.Atoi(strings.TrimPrefix(top, "m")) // the masters' data: m1, m2, m3
		if err == nil && d.Type().IsRegular() && (top == "secrets" || strings.HasPrefix(top, "m") && master == nil) {
			files = append(files, p)
		}
		return nil
	})
	if len(files) < 10 {
		t.Fatalf("the state directory holds only %v", files)
	}
	probeEnvOf := func(tokenFile string) []string {
		return []string{"PATH=" + os.Getenv("PATH"), probeEnv + "=" + masters, "SKYFS_TOKEN_FILE=" + tokenFile}
	}
	asNobody := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--", probe}, files...)...)
	asNobody.Env = probeEnvOf(mountTok)
	nobodyOut, err := asNobody.CombinedOutput()
	if err != nil {
		t.Fatalf("the probe as nobody: %v: %s", err, nobodyOut)
	}
	if bytes.Contains(nobodyOut, []byte(srv.SecretKey)) {
		t.Errorf("an unprivileged user's RPC got the secret key:\n%s", nobodyOut)
	}
	if bytes.Contains(nobodyOut, []byte("readable ")) {
		t.Errorf("an unprivileged user reads the cluster's files:\n%s", nobodyOut)
	}
	if n := bytes.Count(nobodyOut, []byte("refused: Unauthenticated")); n != 8 {
		t.Errorf("%d of 8 MountAccess calls of nobody refused as unauthenticated:\n%s", n, nobodyOut)
	}
	asRoot := exec.Command(probe)
	asRoot.Env = probeEnvOf(mountTok)
	rootOut, err := asRoot.CombinedOutput()
	if err != nil || !bytes.Contains(rootOut, []byte("s3.secretAccessKey="+srv.SecretKey)) {
		t.Errorf("the probe with the mount token did not get the secret (it cannot tell a refusal from a miss): %v\n%s",
			err, bytes.ReplaceAll(rootOut, []byte(srv.SecretKey), []byte("<secret>")))
	}

	r.interrupt(t)
	checkRunStopped(t, state, mnt)

	// No file of the run holds the secret; the journal's content is seen.
	secret := []byte(srv.SecretKey)
	markerSeen := false
	var scanned int64
	filepath.WalkDir(state, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		scanFile(t, p, func(chunk []byte) {
			scanned += int64(len(chunk))
			if bytes.Contains(chunk, secret) {
				t.Errorf("the secret key is in %s", p)
			}
			markerSeen = markerSeen || (bytes.Contains(chunk, []byte(marker)) && filepath.Base(p) == "raft.db")
		})
		return nil
	})
	if !markerSeen {
		t.Error("the mount's URI was not found in any raft.db: the scan cannot see the journal")
	}
	// The cluster's files are root's alone.
	for _, p := range append(files, sdir, filepath.Join(state, "m1"), filepath.Join(state, "m1", "meta")) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %04o", p, fi.Mode().Perm())
		}
	}
	t.Logf("scanned %d bytes of %s", scanned, state)
}

// copyFile copies src to a new file dst with mode perm.
func copyFile(t *testing.T, src, dst string, perm os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
