package s3_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/skyfs/skyfs/ufs"
	ufss3 "github.com/skyfs/skyfs/ufs/s3"
)

const emptyListing = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`

// TestRetries checks the retry policy against a fake endpoint on loopback that
// fails a number of times before answering.
func TestRetries(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		code     string
		failures int32
		attempts string
		wantReqs int32
		wantErr  error
	}{
		{"ThrottledThenOK", 503, "SlowDown", 2, "5", 3, nil},
		{"ServerErrorThenOK", 500, "InternalError", 1, "5", 2, nil},
		{"ThrottledTooLong", 503, "SlowDown", 100, "3", 3, ufs.ErrUnavailable},
		{"DeniedNotRetried", 403, "AccessDenied", 100, "5", 1, ufs.ErrPermission},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var reqs atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if reqs.Add(1) <= c.failures {
					w.Header().Set("Content-Type", "application/xml")
					w.WriteHeader(c.status)
					w.Write([]byte("<Error><Code>" + c.code + "</Code><Message>injected</Message></Error>"))
					return
				}
				w.Header().Set("Content-Type", "application/xml")
				w.Write([]byte(emptyListing))
			}))
			defer srv.Close()
			fsys, err := ufs.Open(t.Context(), "s3://b/p", map[string]string{
				ufss3.OptEndpoint:        srv.URL,
				ufss3.OptPathStyle:       "true",
				ufss3.OptAccessKeyID:     "id",
				ufss3.OptSecretAccessKey: "fake-secret-value",
				ufss3.OptMaxAttempts:     c.attempts,
				ufss3.OptMaxBackoff:      "20ms",
			})
			if err == nil {
				fsys.Close()
			}
			if !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
				t.Fatalf("Open error %v, want %v", err, c.wantErr)
			}
			if got := reqs.Load(); got != c.wantReqs {
				t.Fatalf("%d requests, want %d", got, c.wantReqs)
			}
			if err != nil && (strings.Contains(err.Error(), "fake-secret-value") || !strings.Contains(err.Error(), c.code)) {
				t.Fatalf("error message: %v", err)
			}
		})
	}
}

// TestNoSDKLogging checks that the SDK writes nothing to stderr, even on a
// response it would warn about (a GET without a checksum).
func TestNoSDKLogging(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/obj") {
			w.Header().Set("ETag", `"abc"`)
			w.Write([]byte("hello"))
			return
		}
		w.Write([]byte(emptyListing))
	}))
	defer srv.Close()

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	defer func() { os.Stderr = saved }()

	fsys, err := ufs.Open(t.Context(), "s3://b/p", map[string]string{
		ufss3.OptEndpoint: srv.URL, ufss3.OptPathStyle: "true",
		ufss3.OptAccessKeyID: "id", ufss3.OptSecretAccessKey: "fake-secret-value",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	rc, err := fsys.Open(t.Context(), "obj", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != "hello" {
		t.Fatalf("read %q, %v", b, err)
	}
	os.Stderr = saved
	w.Close()
	logged, _ := io.ReadAll(r)
	if len(logged) > 0 {
		t.Fatalf("the SDK logged to stderr: %s", logged)
	}
}
