package metrics

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
)

// The interceptor must not allocate per RPC once a method and code were
// seen.
func TestUnaryInterceptorAllocs(t *testing.T) {
	r := NewRPC(prometheus.NewRegistry())
	unary := r.UnaryInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/skyfs.v1.Namespace/Lookup"}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	ctx := context.Background()
	unary(ctx, nil, info, handler)
	if n := testing.AllocsPerRun(1000, func() { unary(ctx, nil, info, handler) }); n > 0 {
		t.Errorf("%v allocations per RPC", n)
	}
}

func BenchmarkUnaryInterceptor(b *testing.B) {
	r := NewRPC(prometheus.NewRegistry())
	unary := r.UnaryInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/skyfs.v1.Namespace/Lookup"}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			unary(ctx, nil, info, handler)
		}
	})
}
