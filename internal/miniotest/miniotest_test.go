package miniotest_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/skyfs/skyfs/internal/miniotest"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

func TestSharedServer(t *testing.T) {
	s := miniotest.Shared(t)
	if s2 := miniotest.Shared(t); s2 != s {
		t.Fatalf("Shared started a second server")
	}
	bucket := s.Bucket(t)
	ctx := t.Context()
	data := []byte("hello minio")
	if _, err := s.Client().PutObject(ctx, bucket, "dir/obj", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	obj, err := s.Client().GetObject(ctx, bucket, "dir/obj", minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	defer obj.Close()
	got, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %q, %v", got, err)
	}
}

func TestStartStop(t *testing.T) {
	s := miniotest.Start(t)
	if s.Endpoint == "" || s.AccessKey != miniotest.AccessKey || s.SecretKey != miniotest.SecretKey {
		t.Fatalf("server fields: %+v", s)
	}
	s.Bucket(t)
	s.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, err := s.Client().ListBuckets(ctx); err == nil {
		t.Fatalf("server still answers after Stop")
	}
}

// TestMissingBinary runs this test binary again with an empty PATH: without
// SKYFS_REQUIRE_MINIO the child test skips, with it the child test fails.
func TestMissingBinary(t *testing.T) {
	if os.Getenv("MINIOTEST_CHILD") == "1" {
		miniotest.Start(t)
		t.Fatalf("Start returned without minio on PATH")
	}
	cases := []struct {
		name    string
		require string
		wantErr bool
		want    string
	}{
		{"Skip", "", false, "--- SKIP: TestMissingBinary"},
		{"Required", "1", true, "--- FAIL: TestMissingBinary"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMissingBinary$", "-test.v")
			cmd.Env = append(os.Environ(), "PATH=", "MINIOTEST_CHILD=1", miniotest.RequireEnv+"="+c.require)
			out, err := cmd.CombinedOutput()
			if (err != nil) != c.wantErr || !strings.Contains(string(out), c.want) || !strings.Contains(string(out), "minio") {
				t.Fatalf("child exited with %v, output:\n%s", err, out)
			}
		})
	}
}
