// Package metrics holds what masterd and mountd share to expose Prometheus
// metrics: the admin HTTP server (/metrics and, when enabled, /debug/pprof),
// gRPC interceptors that time every RPC by method and status code, and a
// ufs.FileSystem wrapper that counts UFS calls, errors, bytes and latency.
//
// Labels are always drawn from small fixed sets (an operation, a method, a
// status code, a URI scheme): never a path, a URI, an option or anything
// else a user supplies, so that no credential can reach a metric.
//
// Every metric name starts with "skyfs_".
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace is the prefix of every metric name.
const Namespace = "skyfs"

// LatencyBuckets are the buckets of latency histograms, in seconds: from
// 50 µs to about 30 s.
var LatencyBuckets = prometheus.ExponentialBuckets(50e-6, 2.5, 16)

// NewRegistry returns a registry holding the Go runtime and process
// collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// AdminMux returns the handler of an admin port: /metrics from reg and,
// when pprof is set, the net/http/pprof handlers under /debug/pprof/.
func AdminMux(reg *prometheus.Registry, pprofOn bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if pprofOn {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// AdminServer is an admin HTTP server on its own listener.
type AdminServer struct {
	srv  *http.Server
	lis  net.Listener
	done chan struct{}
}

// ListenAdmin listens on addr (host:port) and serves h there until Close.
// Errors of the serve loop after a successful listen go to log.
func ListenAdmin(addr string, h http.Handler, log *slog.Logger) (*AdminServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return ServeAdmin(lis, h, log), nil
}

// ServeAdmin serves h on lis until Close, which closes lis. Errors of the
// serve loop go to log (nil: dropped).
func ServeAdmin(lis net.Listener, h http.Handler, log *slog.Logger) *AdminServer {
	a := &AdminServer{
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		lis:  lis,
		done: make(chan struct{}),
	}
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) && log != nil {
			log.Error("admin server stopped", "addr", lis.Addr().String(), "err", err)
		}
	}()
	return a
}

// Addr returns the address the server listens on.
func (a *AdminServer) Addr() string { return a.lis.Addr().String() }

// Close stops the server, letting requests in progress finish for up to a
// few seconds (a pprof profile may be cut short).
func (a *AdminServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := a.srv.Shutdown(ctx)
	if err != nil {
		a.srv.Close()
	}
	<-a.done
	return err
}
