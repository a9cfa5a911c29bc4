package metrics

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// numCodes is the number of gRPC status codes (OK to Unauthenticated).
const numCodes = int(codes.Unauthenticated) + 1

// RPC times the RPCs of a gRPC server:
//
//	skyfs_rpc_duration_seconds{method,code}
//
// method is the full method name (/skyfs.v1.Namespace/Lookup), code the
// gRPC status code (OK, NotFound, ...); the histogram's count is the number
// of RPCs. The label values are resolved once per method and code, so an
// RPC costs one histogram observation and no lock.
type RPC struct {
	hist *prometheus.HistogramVec

	mu      sync.Mutex // serialises additions to methods
	methods atomic.Pointer[map[string]*[numCodes]prometheus.Observer]
}

// NewRPC returns the RPC metrics, registered in reg.
func NewRPC(reg prometheus.Registerer) *RPC {
	r := &RPC{hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "rpc", Name: "duration_seconds",
		Help:    "Latency of the gRPC requests served, by method and status code.",
		Buckets: LatencyBuckets,
	}, []string{"method", "code"})}
	m := make(map[string]*[numCodes]prometheus.Observer)
	r.methods.Store(&m)
	reg.MustRegister(r.hist)
	return r
}

// observer returns the histogram of method and code.
func (r *RPC) observer(method string, code codes.Code) prometheus.Observer {
	c := int(code)
	if c < 0 || c >= numCodes {
		c = int(codes.Unknown)
	}
	if obs := (*r.methods.Load())[method]; obs != nil && obs[c] != nil {
		return obs[c]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.methods.Load()
	obs := old[method]
	if obs == nil || obs[c] == nil {
		next := make(map[string]*[numCodes]prometheus.Observer, len(old)+1)
		for k, v := range old {
			next[k] = v
		}
		fresh := new([numCodes]prometheus.Observer)
		if obs != nil {
			*fresh = *obs
		}
		fresh[c] = r.hist.WithLabelValues(method, codes.Code(c).String())
		next[method] = fresh
		r.methods.Store(&next)
		obs = fresh
	}
	return obs[c]
}

// UnaryInterceptor times unary RPCs. Chain it with
// grpc.ChainUnaryInterceptor.
func (r *RPC) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		r.observer(info.FullMethod, status.Code(err)).Observe(time.Since(start).Seconds())
		return resp, err
	}
}

// StreamInterceptor times streaming RPCs, from start to end. Chain it with
// grpc.ChainStreamInterceptor.
func (r *RPC) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		r.observer(info.FullMethod, status.Code(err)).Observe(time.Since(start).Seconds())
		return err
	}
}
