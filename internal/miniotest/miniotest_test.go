package miniotest_test

import (
	"bytes"
	"context"
	"io"
	"os"
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
