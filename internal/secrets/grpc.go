package secrets

import (
	"context"

	"google.golang.org/grpc/credentials"
)

// AuthHeader is the gRPC metadata key of the token; its value is
// "Bearer <token>".
const AuthHeader = "authorization"

// bearer is a token as gRPC per-call credentials.
type bearer struct{ value string }

// Bearer returns per-call credentials that send token as
// "authorization: Bearer <token>" with every call. The token is sent over
// plaintext connections too (the masters serve credentials of UFS mounts only
// over TLS or loopback; use TLS across hosts).
func Bearer(token []byte) credentials.PerRPCCredentials {
	return bearer{value: "Bearer " + string(token)}
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{AuthHeader: b.value}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// String never shows the token.
func (bearer) String() string { return "Bearer <redacted>" }
