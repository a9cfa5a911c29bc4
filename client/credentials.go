package client

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skyfs/skyfs/internal/secrets"
)

// loadToken fills cfg.Token from cfg.TokenFile (a root-only file).
func loadToken(cfg *Config) error {
	if len(cfg.Token) > 0 || cfg.TokenFile == "" {
		return nil
	}
	tok, err := secrets.ReadFile(cfg.TokenFile)
	if err != nil {
		return fmt.Errorf("client: token file: %w", err)
	}
	cfg.Token = tok
	return nil
}

// dialOptions are the options of every connection: TLS when configured,
// the token with every call, and fixed flow-control windows (no bandwidth
// probe, a PING, after received data; as masterd's).
func (c *Client) dialOptions() []grpc.DialOption {
	opts := []grpc.DialOption{grpc.WithInitialWindowSize(1 << 20), grpc.WithInitialConnWindowSize(1 << 20)}
	if c.cfg.TLS != nil {
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(c.cfg.TLS.Clone())))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if len(c.cfg.Token) > 0 {
		opts = append(opts, grpc.WithPerRPCCredentials(secrets.Bearer(c.cfg.Token)))
	}
	return opts
}
