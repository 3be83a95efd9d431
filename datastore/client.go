package datastore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/bgpfabric/bgpfabric/api"
)

// DefaultDialTimeout bounds how long New waits for etcd to answer.
const DefaultDialTimeout = 5 * time.Second

// maxCallSendMsgSize lets a large ApplyAll transaction leave the client;
// the server's own limit (--max-request-bytes) decides whether it fits.
const maxCallSendMsgSize = 64 << 20

// Config says how to reach etcd.
type Config struct {
	// Endpoints are etcd client URLs: "unix:///run/bgpfabric/etcd.sock",
	// "http://127.0.0.1:2379", "https://etcd-1:2379".
	Endpoints []string
	// CertFile and KeyFile are the client certificate and key for etcd's
	// client-cert-auth; CAFile is the CA that signed the servers'
	// certificates. All empty means no TLS (unless an https endpoint is
	// used, which then verifies against the system roots).
	CertFile, KeyFile, CAFile string
	// DialTimeout bounds New's first contact and each reconnect attempt.
	// Zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// MaxTxnOps, when set, is the server's --max-txn-ops; ApplyAll refuses
	// larger batches before sending them. When zero the server's answer
	// decides (either way nothing is written).
	MaxTxnOps int
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
}

// Client reads and writes bgpfabric resources in etcd. It is safe for
// concurrent use.
type Client struct {
	cli       *clientv3.Client
	lg        *slog.Logger
	endpoints string
	maxTxnOps int
}

// New connects to etcd and checks that it answers a read within the dial
// timeout, so that a wrong or dead endpoint is an error here, naming the
// endpoints, instead of a hang in the first call.
func New(ctx context.Context, cfg Config) (*Client, error) {
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("connecting to etcd: no endpoints given")
	}
	eps := strings.Join(cfg.Endpoints, ",")
	timeout := cfg.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	ccfg := clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          timeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: timeout,
		MaxCallSendMsgSize:   maxCallSendMsgSize,
		Logger:               zapLogger(lg),
		DialOptions: []grpc.DialOption{
			// Reconnect quickly after an etcd restart: gRPC's default
			// backoff grows to two minutes.
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
				MinConnectTimeout: timeout,
			}),
		},
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" || cfg.CAFile != "" {
		if (cfg.CertFile == "") != (cfg.KeyFile == "") {
			return nil, fmt.Errorf("connecting to etcd at %s: the client certificate and key must be given together", eps)
		}
		tlsInfo := transport.TLSInfo{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, TrustedCAFile: cfg.CAFile}
		tc, err := tlsInfo.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("connecting to etcd at %s: loading TLS files: %w", eps, err)
		}
		ccfg.TLS = tc
	}
	cli, err := clientv3.New(ccfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd at %s: %w", eps, err)
	}
	// clientv3 dials lazily: ask for something to know that etcd is there
	// and has a leader.
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := cli.Get(pctx, api.KeyRoot, clientv3.WithCountOnly()); err != nil {
		cli.Close()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("connecting to etcd at %s: no answer within %s: %w", eps, timeout, err)
		}
		return nil, fmt.Errorf("connecting to etcd at %s: %w", eps, err)
	}
	lg.Debug("connected to etcd", logKeyEndpoints, eps)
	return &Client{cli: cli, lg: lg, endpoints: eps, maxTxnOps: cfg.MaxTxnOps}, nil
}

// Close ends the connection; watches and status writers of the client stop.
func (c *Client) Close() error {
	if err := c.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("closing etcd client of %s: %w", c.endpoints, err)
	}
	return nil
}

// Etcd returns the underlying etcd client, for what this package does not
// cover (maintenance, compaction, raw benchmarks). Writes through it bypass
// validation.
func (c *Client) Etcd() *clientv3.Client { return c.cli }

// closed reports whether Close was called.
func (c *Client) closed() bool { return c.cli.Ctx().Err() != nil }
