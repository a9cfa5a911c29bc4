// Package miniotest starts a real MinIO server for tests: the `minio` binary from
// PATH, listening on 127.0.0.1 at a free port, with a fresh data directory and fixed
// test credentials. Start gives a test its own server; Shared gives every test of a
// binary one server started on first use (Main stops it when the tests end).
//
// When `minio` is not on PATH the test is skipped with a message, unless
// SKYFS_REQUIRE_MINIO=1 (set by CI), in which case it fails.
//
// Package miniotest must never be imported by non-test code, never talk to
// anything but 127.0.0.1, and never sleep as a means of synchronisation: it polls
// the server's health endpoint with a deadline.
package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Test credentials of every server this package starts.
const (
	AccessKey = "skyfs-test-access"
	SecretKey = "skyfs-test-secret-0123456789"
)

// Region is the region the servers report.
const Region = "us-east-1"

// RequireEnv is the environment variable that turns a missing minio binary into a
// test failure instead of a skip.
const RequireEnv = "SKYFS_REQUIRE_MINIO"

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 60 * time.Second

// Server is a running MinIO server.
type Server struct {
	// Endpoint is the server's URL, "http://127.0.0.1:PORT".
	Endpoint string
	// Host is "127.0.0.1:PORT".
	Host string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string
	// Dir is the data directory.
	Dir string

	cmd      *exec.Cmd
	exited   chan struct{}
	stopOnce sync.Once
	client   *minio.Client
}

// Start starts a server for this test alone; it is killed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := findBinary(t)
	s, err := start(bin, t.TempDir())
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

var shared struct {
	once sync.Once
	srv  *Server
	dir  string
	err  error
}

// Shared returns the server shared by all tests of this test binary, starting it
// on first use. Use Main in TestMain to stop it when the tests end; without it,
// the server dies with the test binary (it is started with a parent-death signal).
func Shared(t testing.TB) *Server {
	t.Helper()
	bin := findBinary(t)
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "miniotest-")
		if err != nil {
			shared.err = err
			return
		}
		shared.dir = dir
		shared.srv, shared.err = start(bin, dir)
	})
	if shared.err != nil {
		t.Fatalf("miniotest: shared server: %v", shared.err)
	}
	return shared.srv
}

// Main runs the tests and then stops the shared server, if one was started, and
// removes its data. Use it as: func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	return code
}

// findBinary returns the path of minio, or skips (fails under RequireEnv).
func findBinary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("minio")
	if err == nil {
		return bin
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("miniotest: the minio binary is not on PATH and %s=1: install it (go install github.com/minio/minio@...)", RequireEnv)
	}
	t.Skip("miniotest: minio binary not on PATH; skipping the S3 tests (set " + RequireEnv + "=1 to fail instead)")
	return ""
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs minio on dir and waits until it is ready, retrying with another port
// if the chosen one was taken in the meantime.
func start(bin, dir string) (*Server, error) {
	var lastErr error
	for range 3 {
		s, err := startOnce(bin, dir)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startOnce(bin, dir string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	consolePort, err := freePort()
	if err != nil {
		return nil, err
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "server", "--quiet", "--address", host,
		"--console-address", fmt.Sprintf("127.0.0.1:%d", consolePort), dir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+AccessKey,
		"MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_REGION="+Region,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CALLHOME_ENABLE=off",
		"MINIO_API_REQUESTS_DEADLINE=1m",
	)
	cmd.Stdout = &lockedWriter{w: &bytes.Buffer{}}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start minio: %w", err)
	}
	s := &Server{
		Endpoint:  "http://" + host,
		Host:      host,
		AccessKey: AccessKey,
		SecretKey: SecretKey,
		Dir:       dir,
		cmd:       cmd,
		exited:    make(chan struct{}),
	}
	go func() {
		cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w; minio output: %s", err, strings.TrimSpace(cmd.Stdout.(*lockedWriter).String()))
	}
	s.client, err = minio.New(host, &minio.Options{
		Creds:  credentials.NewStaticV4(AccessKey, SecretKey, ""),
		Region: Region,
	})
	if err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls the liveness and readiness endpoints until both answer 200.
func (s *Server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok := true
		for _, path := range []string{"/minio/health/live", "/minio/health/ready"} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+path, nil)
			resp, err := client.Do(req)
			if err != nil {
				ok = false
				break
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-s.exited:
			return errors.New("minio exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("minio not ready after %v", startTimeout)
		case <-tick.C:
		}
	}
}

// Stop kills the server and waits for it to exit. It may be called more than
// once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	})
	<-s.exited
}

// Client returns a minio-go client of the server, independent of skyfs's code, for
// setting up and checking test data.
func (s *Server) Client() *minio.Client { return s.client }

// Bucket creates a bucket with a fresh unique name and returns the name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := "test-" + hex.EncodeToString(b[:])
	s.CreateBucket(t, name)
	return name
}

// CreateBucket creates the bucket name.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: Region}); err != nil {
		t.Fatalf("miniotest: create bucket %s: %v", name, err)
	}
}

// Output returns what the server printed so far, for diagnosing a failure.
func (s *Server) Output() string { return s.cmd.Stdout.(*lockedWriter).String() }

// lockedWriter is a bytes.Buffer safe for the process's writes and our reads.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w.Len() > 1<<20 {
		return len(b), nil // keep the last words bounded
	}
	return l.w.Write(b)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
