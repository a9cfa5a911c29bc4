package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/skyfs/skyfs/internal/miniotest"
)

// ufsRun is a cluster with a MinIO server, and every CLI output of the test,
// kept to look for secrets in.
type ufsRun struct {
	t   *testing.T
	c   *cluster
	srv *miniotest.Server
	mc  *minio.Client

	mu      sync.Mutex
	outputs []string
}

func newUFSRun(t *testing.T) *ufsRun {
	t.Helper()
	srv := miniotest.Start(t)
	return &ufsRun{t: t, srv: srv, mc: srv.Client(), c: newCluster(t, 3)}
}

// use makes u report to t (a subtest) until the returned function runs.
func (u *ufsRun) use(t *testing.T) func() {
	prev := u.t
	u.t = t
	return func() { u.t = prev }
}

// cli runs skyfs and records what it printed.
func (u *ufsRun) cli(args ...string) (int, string, string) {
	u.t.Helper()
	code, out, errs := u.c.cli(args...)
	u.mu.Lock()
	u.outputs = append(u.outputs, out, errs)
	u.mu.Unlock()
	return code, out, errs
}

func (u *ufsRun) mustCLI(args ...string) string {
	u.t.Helper()
	code, out, errs := u.cli(args...)
	if code != 0 {
		u.t.Fatalf("skyfs %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

// s3Options are the --option flags of a mount of the MinIO server.
func (u *ufsRun) s3Options(endpoint, secret string) []string {
	return []string{
		"--option", "s3.endpoint=" + endpoint,
		"--option", "s3.accessKeyId=" + u.srv.AccessKey,
		"--option", "s3.secretAccessKey=" + secret,
		"--option", "s3.pathStyle=true",
		"--option", "s3.region=" + miniotest.Region,
	}
}

// put writes an object with minio-go.
func (u *ufsRun) put(bucket, key, content string) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := u.mc.PutObject(ctx, bucket, key, strings.NewReader(content), int64(len(content)), minio.PutObjectOptions{}); err != nil {
		u.t.Fatalf("put %s: %v", key, err)
	}
}

// objects lists every key of the bucket under prefix.
func (u *ufsRun) objects(bucket, prefix string) map[string]int64 {
	u.t.Helper()
	out := make(map[string]int64)
	for o := range u.mc.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			u.t.Fatalf("list %s: %v", prefix, o.Err)
		}
		out[o.Key] = o.Size
	}
	return out
}

// names runs skyfs ls and returns the names it printed.
func (u *ufsRun) names(path string) string {
	u.t.Helper()
	return strings.Join(strings.Fields(u.mustCLI("ls", path)), " ")
}

// TestUFSS3 mounts a bucket full of objects on a three-master cluster and
// checks, with an independent S3 client, that the namespace shows the bucket
// and that changes made through skyfs land in it and changes made in the
// bucket appear after a sync.
func TestUFSS3(t *testing.T) {
	u := newUFSRun(t)
	bucket := u.srv.Bucket(t)
	for key, content := range map[string]string{
		"data/top.txt":            "top",
		"data/a/b/c.txt":          "c",
		"data/a/file2":            "file two",
		"data/a/marker/":          "",
		"data/implicit/x/y.txt":   "y",
		"data/implicit/x/z.txt":   "z",
		"outside/not-mounted.txt": "no",
	} {
		u.put(bucket, key, content)
	}
	opts := u.s3Options(u.srv.Endpoint, u.srv.SecretKey)

	t.Run("MountAndList", func(t *testing.T) {
		defer u.use(t)()
		u.mustCLI(append([]string{"mount", "/warehouse", "s3://" + bucket + "/data"}, opts...)...)
		for path, want := range map[string]string{
			"/warehouse":            "a implicit top.txt",
			"/warehouse/a":          "b file2 marker",
			"/warehouse/a/marker":   "",
			"/warehouse/implicit/x": "y.txt z.txt",
		} {
			if got := u.names(path); got != want {
				t.Errorf("ls %s = %q, want %q", path, got, want)
			}
		}
		var ms []struct {
			Path    string            `json:"path"`
			URI     string            `json:"uri"`
			Options map[string]string `json:"options"`
		}
		if err := json.Unmarshal([]byte(u.mustCLI("mounts", "--output", "json")), &ms); err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 || ms[0].Path != "/warehouse" || ms[0].Options["s3.secretAccessKey"] != "REDACTED" {
			t.Errorf("mounts = %+v", ms)
		}
		if out := u.mustCLI("mounts"); !strings.Contains(out, "/warehouse") {
			t.Errorf("mounts = %q", out)
		}
	})

	t.Run("ChangesReachTheBucket", func(t *testing.T) {
		defer u.use(t)()
		u.mustCLI("mkdir", "/warehouse/newdir")
		u.mustCLI("mv", "/warehouse/top.txt", "/warehouse/newdir/top2.txt")
		u.mustCLI("rm", "/warehouse/a/file2")
		u.mustCLI("mv", "/warehouse/implicit", "/warehouse/moved")
		got := u.objects(bucket, "data/")
		for _, key := range []string{"data/newdir/", "data/newdir/top2.txt", "data/moved/x/y.txt", "data/moved/x/z.txt"} {
			if _, ok := got[key]; !ok {
				t.Errorf("object %s missing; bucket has %v", key, got)
			}
		}
		for _, key := range []string{"data/top.txt", "data/a/file2", "data/implicit/x/y.txt"} {
			if _, ok := got[key]; ok {
				t.Errorf("object %s still there", key)
			}
		}
		if got := u.names("/warehouse/moved/x"); got != "y.txt z.txt" {
			t.Errorf("ls /warehouse/moved/x = %q", got)
		}
	})

	t.Run("BucketChangesAfterSync", func(t *testing.T) {
		defer u.use(t)()
		u.put(bucket, "data/direct.txt", "direct")
		u.put(bucket, "data/newprefix/deep/n.txt", "n")
		u.put(bucket, "data/newdir/top2.txt", "overwritten with more bytes")
		if err := u.mc.RemoveObject(context.Background(), bucket, "data/a/b/c.txt", minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := u.names("/warehouse"); got != "a moved newdir" {
			t.Errorf("before sync ls /warehouse = %q", got)
		}
		out := u.mustCLI("sync", "/warehouse", "--recursive")
		if !strings.HasPrefix(out, "synced /warehouse:") || strings.Count(out, "\n") != 1 {
			t.Errorf("sync printed %q", out)
		}
		if got := u.names("/warehouse"); got != "a direct.txt moved newdir newprefix" {
			t.Errorf("after sync ls /warehouse = %q", got)
		}
		// b was an implicit directory: its only object is gone, so is b.
		if got := u.names("/warehouse/a"); got != "marker" {
			t.Errorf("after sync ls /warehouse/a = %q", got)
		}
		if got := u.names("/warehouse/newprefix/deep"); got != "n.txt" {
			t.Errorf("ls /warehouse/newprefix/deep = %q", got)
		}
		var st struct {
			Size uint64 `json:"size"`
		}
		if err := json.Unmarshal([]byte(u.mustCLI("stat", "--output", "json", "/warehouse/newdir/top2.txt")), &st); err != nil {
			t.Fatal(err)
		}
		if st.Size != uint64(len("overwritten with more bytes")) {
			t.Errorf("overwritten object has size %d", st.Size)
		}
	})

	t.Run("BadMounts", func(t *testing.T) {
		defer u.use(t)()
		refused := freeAddrs(t, 1)[0] // nothing listens there
		tests := []struct {
			name string
			uri  string
			opts []string
			want string
		}{
			{"wrong key", "s3://" + bucket + "/data", u.s3Options(u.srv.Endpoint, "wrong-secret-key-0123456789"), "permission denied"},
			{"missing bucket", "s3://no-such-bucket-here/data", opts, "no such file or directory"},
			{"refused endpoint", "s3://" + bucket, append(u.s3Options("http://"+refused, u.srv.SecretKey), "--option", "s3.maxAttempts=2"), "input/output error"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				code, out, errs := u.cli(append([]string{"mount", "/bad", tc.uri}, tc.opts...)...)
				t.Logf("%s", errs)
				if code != 1 || out != "" || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "skyfs: mount /bad: ") {
					t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
				}
				if !strings.Contains(errs, tc.want) {
					t.Errorf("stderr %q does not say %q", errs, tc.want)
				}
			})
		}
		if got := u.names("/"); got != "warehouse" {
			t.Errorf("after refused mounts ls / = %q", got)
		}
	})

	t.Run("Unmount", func(t *testing.T) {
		defer u.use(t)()
		before := u.objects(bucket, "")
		u.mustCLI("unmount", "/warehouse")
		if got := strings.TrimSpace(u.mustCLI("mounts", "--output", "json")); got != "[]" {
			t.Errorf("mounts after unmount = %s", got)
		}
		if got := u.names("/"); got != "" {
			t.Errorf("ls / after unmount = %q", got)
		}
		if after := u.objects(bucket, ""); len(after) != len(before) {
			t.Errorf("unmount changed the bucket: %d objects, was %d", len(after), len(before))
		}
	})

	t.Run("NoSecretAnywhere", func(t *testing.T) {
		defer u.use(t)()
		secrets := []string{u.srv.SecretKey, "wrong-secret-key-0123456789"}
		u.mu.Lock()
		outputs := append([]string(nil), u.outputs...)
		u.mu.Unlock()
		for _, nd := range u.c.nodes {
			b, err := os.ReadFile(nd.logPath)
			if err != nil {
				t.Fatal(err)
			}
			outputs = append(outputs, string(b))
		}
		for i, o := range outputs {
			for _, s := range secrets {
				if strings.Contains(o, s) {
					t.Errorf("output %d holds a secret: %q", i, o)
				}
			}
		}
	})
}

// TestUFSRootS3 creates a cluster whose root is a bucket: the leader mounts it
// at / by itself, and a new leader leaves it be.
func TestUFSRootS3(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t)
	u := &ufsRun{t: t, srv: srv, mc: srv.Client()}
	u.put(bucket, "root/hello.txt", "hello")
	cfg := []byte(`{"root_ufs": "s3://` + bucket + `/root", "root_ufs_options": {` +
		`"s3.endpoint": "` + srv.Endpoint + `", "s3.accessKeyId": "` + srv.AccessKey + `", ` +
		`"s3.secretAccessKey": "` + srv.SecretKey + `", "s3.pathStyle": "true", "s3.region": "` + miniotest.Region + `"}}`)
	path := t.TempDir() + "/masterd.json"
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	u.c = newCluster(t, 3, "--config", path)
	waitFor(t, 30*time.Second, "the root mount", func() bool {
		code, out, _ := u.cli("mounts", "--output", "json")
		return code == 0 && strings.Contains(out, `"path": "/"`)
	})
	if got := u.names("/"); got != "hello.txt" {
		t.Errorf("ls / = %q", got)
	}
	u.mustCLI("mkdir", "/made")
	if _, ok := u.objects(bucket, "root/")["root/made/"]; !ok {
		t.Errorf("mkdir at the root left no marker")
	}
	for _, nd := range u.c.nodes {
		b, _ := os.ReadFile(nd.logPath)
		if bytes.Contains(b, []byte(srv.SecretKey)) {
			t.Errorf("%s log holds the secret", nd.id)
		}
	}
}
