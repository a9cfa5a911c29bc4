package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// Defaults of Config.
const (
	DefaultCallTimeout  = 3 * time.Second
	DefaultRetryTimeout = 60 * time.Second
	DefaultMinBackoff   = 20 * time.Millisecond
	DefaultMaxBackoff   = 200 * time.Millisecond
)

// Config configures a Client.
type Config struct {
	// Masters are host:port addresses of some or all masters. Required.
	Masters []string
	// CallTimeout bounds one attempt of a call (default DefaultCallTimeout).
	CallTimeout time.Duration
	// RetryTimeout bounds all attempts of a call whose ctx has no deadline
	// (default DefaultRetryTimeout).
	RetryTimeout time.Duration
	// MinBackoff and MaxBackoff bound the pause between attempts that found no
	// leader (defaults DefaultMinBackoff, DefaultMaxBackoff).
	MinBackoff, MaxBackoff time.Duration
	// ClientID is this client's request id namespace; zero picks a random one.
	// Two clients must never share one.
	ClientID uint64
	// Logger receives retry decisions at debug level; nil discards them.
	Logger *slog.Logger
	// Token is sent with every call ("authorization: Bearer <token>");
	// TokenFile is read for it when Token is empty (a root-only file).
	Token     []byte
	TokenFile string
	// TLS, when set, secures every connection (credentials.go); nil
	// connects in plaintext.
	TLS *tls.Config
}

// Errors of the client.
var (
	// ErrNoMasters is returned by New without masters.
	ErrNoMasters = errors.New("client: no masters given")
	// ErrClosed is returned by calls after Close.
	ErrClosed = errors.New("client: closed")
)

// Error is a POSIX outcome that the master explained. errors.Is(err, errno)
// and errors.As(err, &syscall.Errno) hold for it.
type Error struct {
	Errno   syscall.Errno
	Message string
}

func (e *Error) Error() string { return e.Message + ": " + e.Errno.Error() }

// Unwrap returns the errno.
func (e *Error) Unwrap() error { return e.Errno }

// errnoError is the error for a response's errno and message (nil for 0).
func errnoError(errno int32, msg string) error {
	switch {
	case errno == 0:
		return nil
	case msg == "":
		return syscall.Errno(errno)
	}
	return &Error{Errno: syscall.Errno(errno), Message: msg}
}

// Client talks to a group of masters. It is safe for concurrent use.
type Client struct {
	cfg Config
	log *slog.Logger
	id  uint64
	seq atomic.Uint64
	// holder is the session named on every call (SetHolder); zero for none.
	holder atomic.Uint64

	mu      sync.Mutex
	masters []string
	next    int    // the master to try when no leader is known
	leader  string // the master believed to lead; "" when unknown
	conns   map[string]*grpc.ClientConn
	closed  bool
}

// New returns a client of the masters in cfg. It connects lazily.
func New(cfg Config) (*Client, error) {
	if len(cfg.Masters) == 0 {
		return nil, ErrNoMasters
	}
	for _, m := range cfg.Masters {
		if _, _, err := net.SplitHostPort(m); err != nil {
			return nil, fmt.Errorf("client: master address %q: %w", m, err)
		}
	}
	if err := loadToken(&cfg); err != nil {
		return nil, err
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.RetryTimeout <= 0 {
		cfg.RetryTimeout = DefaultRetryTimeout
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	c := &Client{cfg: cfg, log: cfg.Logger, id: cfg.ClientID, masters: slices.Clone(cfg.Masters), conns: make(map[string]*grpc.ClientConn)}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for c.id == 0 {
		c.id = rand.Uint64() // math/rand/v2's source is seeded from the OS
	}
	return c, nil
}

// ID returns the client's request id namespace.
func (c *Client) ID() uint64 { return c.id }

// Leader returns the master the client currently believes leads ("" if none).
func (c *Client) Leader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// Close closes the client's connections.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for addr, conn := range c.conns {
		errs = append(errs, conn.Close())
		delete(c.conns, addr)
	}
	return errors.Join(errs...)
}

// newRequest returns the id of a new mutation.
func (c *Client) newRequest() *pb.RequestID {
	return &pb.RequestID{Client: c.id, Seq: c.seq.Add(1)}
}

// target returns the master to try next and a connection to it.
func (c *Client) target() (string, *grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return "", nil, ErrClosed
	}
	addr := c.leader
	if addr == "" {
		addr = c.masters[c.next%len(c.masters)]
	}
	conn, err := c.connLocked(addr)
	return addr, conn, err
}

func (c *Client) connLocked(addr string) (*grpc.ClientConn, error) {
	if conn, ok := c.conns[addr]; ok {
		return conn, nil
	}
	conn, err := grpc.NewClient(addr, c.dialOptions()...)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", addr, err)
	}
	c.conns[addr] = conn
	return conn, nil
}

// redirect records that addr leads; "" forgets the leader and moves on to
// the next master after failed.
func (c *Client) redirect(failed, addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if addr != "" {
		c.leader = addr
		if !slices.Contains(c.masters, addr) {
			c.masters = append(c.masters, addr)
		}
		return
	}
	if c.leader == failed || c.leader == "" {
		c.leader = ""
		if i := slices.Index(c.masters, failed); i >= 0 {
			c.next = i + 1
		} else {
			c.next++
		}
	}
}

// call runs fn against the leader, following redirects and retrying across
// failover until it succeeds, fails for good, or ctx (or the retry budget)
// ends.
func (c *Client) call(ctx context.Context, op string, fn func(ctx context.Context, conn *grpc.ClientConn) error) error {
	return c.callFor(ctx, op, c.cfg.CallTimeout, fn)
}

// callFor is call with its own bound on one attempt; 0 leaves an attempt
// bounded by ctx alone (for streams and calls that wait on a UFS).
func (c *Client) callFor(ctx context.Context, op string, attemptTimeout time.Duration, fn func(ctx context.Context, conn *grpc.ClientConn) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RetryTimeout)
		defer cancel()
	}
	backoff := c.cfg.MinBackoff
	var last error
	for attempt := 0; ; attempt++ {
		addr, conn, err := c.target()
		if err != nil {
			return err
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if attemptTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, attemptTimeout)
		}
		if h := c.holder.Load(); h != 0 {
			actx = metadata.AppendToOutgoingContext(actx, HolderMetadata, strconv.FormatUint(h, 10))
		}
		err = fn(actx, conn)
		cancel()
		if err == nil {
			c.redirect("", addr) // addr answered as leader
			return nil
		}
		if ctx.Err() != nil {
			if last == nil {
				last = err
			}
			return fmt.Errorf("client: %s: %w (last error: %v)", op, ctx.Err(), status.Convert(last).Message())
		}
		last = err
		hint, retry := classify(err)
		if !retry {
			return err
		}
		c.log.Debug("client: retrying", "op", op, "master", addr, "attempt", attempt, "hint", hint, "err", err)
		if hint != "" && hint != addr {
			c.redirect(addr, hint)
			if attempt < 3 {
				continue // a fresh redirect: go at once
			}
		} else {
			c.redirect(addr, "")
		}
		pause := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, c.cfg.MaxBackoff)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return fmt.Errorf("client: %s: %w (last error: %v)", op, ctx.Err(), status.Convert(last).Message())
		}
	}
}

// classify says whether a failed attempt may be retried, and names the
// leader a "not leader" answer pointed to.
func classify(err error) (hint string, retry bool) {
	st, ok := status.FromError(err)
	if !ok {
		return "", false
	}
	switch st.Code() {
	case codes.Unavailable:
		for _, d := range st.Details() {
			if nl, ok := d.(*pb.NotLeader); ok {
				return nl.LeaderRpcAddr, true
			}
		}
		return "", true
	case codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted:
		// The attempt's own deadline: the master hung or is partitioned.
		return "", true
	}
	return "", false
}
