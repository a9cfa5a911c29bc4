package metrics

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skyfs/skyfs/ufs"
	_ "github.com/skyfs/skyfs/ufs/local"
	"github.com/skyfs/skyfs/ufs/ufstest"
)

func newLocal(t *testing.T) ufs.FileSystem {
	t.Helper()
	fsys, err := ufs.Open(t.Context(), "file://"+t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys
}

// The wrapper keeps the UFS contract, hard links included.
func TestUFSContract(t *testing.T) {
	m := NewUFS(prometheus.NewRegistry())
	ufstest.Run(t, func(t *testing.T) ufs.FileSystem { return m.Wrap(newLocal(t), "file") })
}

func TestUFSCounts(t *testing.T) {
	m := NewUFS(prometheus.NewRegistry())
	fsys := m.Wrap(newLocal(t), "file")
	ctx := t.Context()
	data := bytes.Repeat([]byte("x"), 1000)
	if _, err := fsys.Put(ctx, "a", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	w, err := fsys.Create(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:300])
	if got := testutil.ToFloat64(m.progress.WithLabelValues("file")); got != 1 {
		t.Errorf("uploads in progress during a streaming write = %v, want 1", got)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rc, err := fsys.Open(ctx, "a", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, rc)
	rc.Close()
	if _, err := fsys.Stat(ctx, "missing"); err == nil {
		t.Fatal("Stat of a missing file succeeded")
	}
	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"put calls", m.calls.WithLabelValues("file", opPut), 1},
		{"commit calls", m.calls.WithLabelValues("file", opCommit), 1},
		{"stat calls", m.calls.WithLabelValues("file", opStat), 1},
		{"not found", m.errs.WithLabelValues("file", opStat, "not_found"), 1},
		{"written", m.written.WithLabelValues("file"), 1300},
		{"read", m.read.WithLabelValues("file"), 1000},
		{"in progress", m.progress.WithLabelValues("file"), 0},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSchemeOf(t *testing.T) {
	for uri, want := range map[string]string{
		"s3://bucket/p":                  "s3",
		"FILE:///tmp":                    "file",
		"hdfs://nn:8020/x":               "hdfs",
		"s3://AKIA:secret@bucket/p":      "s3",
		"no-scheme":                      "other",
		"we/ird://x":                     "other",
		"averyveryverylongscheme://x/y/": "other",
	} {
		if got := SchemeOf(uri); got != want {
			t.Errorf("SchemeOf(%q) = %q, want %q", uri, got, want)
		}
	}
}

func TestRPCInterceptors(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := NewRPC(reg)
	unary := r.UnaryInterceptor()
	ok := func(context.Context, any) (any, error) { return "ok", nil }
	missing := func(context.Context, any) (any, error) { return nil, status.Error(codes.NotFound, "no") }
	info := &grpc.UnaryServerInfo{FullMethod: "/skyfs.v1.Namespace/Lookup"}
	for range 3 {
		unary(t.Context(), nil, info, ok)
	}
	unary(t.Context(), nil, info, missing)
	stream := r.StreamInterceptor()
	stream(nil, nil, &grpc.StreamServerInfo{FullMethod: "/skyfs.v1.Namespace/Watch"}, func(any, grpc.ServerStream) error { return nil })
	want := map[string]uint64{
		"/skyfs.v1.Namespace/Lookup OK":       3,
		"/skyfs.v1.Namespace/Lookup NotFound": 1,
		"/skyfs.v1.Namespace/Watch OK":        1,
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "skyfs_rpc_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var method, code string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "method":
					method = l.GetValue()
				case "code":
					code = l.GetValue()
				}
			}
			got[method+" "+code] = m.GetHistogram().GetSampleCount()
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d RPCs counted, want %d (all: %v)", k, got[k], n, got)
		}
	}
}

func TestAdmin(t *testing.T) {
	for _, pprofOn := range []bool{false, true} {
		reg := NewRegistry()
		NewRPC(reg)
		a, err := ListenAdmin("127.0.0.1:0", AdminMux(reg, pprofOn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, code := get(t, "http://"+a.Addr()+"/metrics")
		if code != http.StatusOK || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_") {
			t.Errorf("/metrics: %d, %.200s", code, body)
		}
		_, code = get(t, "http://"+a.Addr()+"/debug/pprof/")
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[pprofOn]; code != want {
			t.Errorf("pprof %v: /debug/pprof/ answered %d, want %d", pprofOn, code, want)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func get(t *testing.T, url string) (string, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}
