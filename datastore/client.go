package datastore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/bgpfabric/bgpfabric/api"
)

// DefaultEndpoint is where the embedded datastore listens and clients
// look for it unless told otherwise: a socket in a directory of its own,
// which the server creates 0700 (and refuses if others may enter it).
const DefaultEndpoint = "unix:///run/bgpfabric/etcd/etcd.sock"

// DefaultDialTimeout bounds how long New waits for etcd to answer.
const DefaultDialTimeout = 5 * time.Second

// maxCallSendMsgSize lets a large ApplyAll transaction leave the client;
// the server's own limit (--max-request-bytes) decides whether it fits.
const maxCallSendMsgSize = 64 << 20

// Config says how to reach etcd.
type Config struct {
	// Endpoints are etcd client URLs: "unix:///run/bgpfabric/etcd/etcd.sock",
	// "http://127.0.0.1:2379", "https://etcd-1:2379".
	Endpoints []string
	// CertFile and KeyFile are the client certificate and key for etcd's
	// client-cert-auth; CAFile is the CA that signed the servers'
	// certificates. All empty means no TLS (unless an https endpoint is
	// used, which then verifies against the system roots). They are
	// refused with an endpoint that is not https:// (or unixs://): etcd's
	// client would drop TLS for it without a word.
	CertFile, KeyFile, CAFile string
	// Username and Password authenticate to an etcd with authentication
	// enabled; both or neither. Take the password from a file
	// (ReadPasswordFile) or the environment, never from a command-line
	// flag, which every user of the machine can read in the process list.
	Username, Password string
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
	if cfg.CertFile != "" || cfg.KeyFile != "" || cfg.CAFile != "" {
		if ep, ok := PlaintextEndpoint(cfg.Endpoints); ok {
			return nil, fmt.Errorf("connecting to etcd at %s: TLS files given, but endpoint %s is not https:// (or unixs://): its traffic would be plaintext", eps, ep)
		}
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, fmt.Errorf("connecting to etcd at %s: a username needs a password and a password a username", eps)
	}
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
		Username:             cfg.Username,
		Password:             cfg.Password,
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
		// With a username, New authenticates at once.
		return nil, fmt.Errorf("connecting to etcd at %s: %w%s", eps, err, authHint(err, cfg.Username))
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
		return nil, fmt.Errorf("connecting to etcd at %s: %w%s", eps, err, authHint(err, cfg.Username))
	}
	lg.Debug("connected to etcd", logKeyEndpoints, eps)
	return &Client{cli: cli, lg: lg, endpoints: eps, maxTxnOps: cfg.MaxTxnOps}, nil
}

// authHint explains an authentication failure.
func authHint(err error, user string) string {
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed):
		return fmt.Sprintf(" (user %q: wrong username or password)", user)
	case errors.Is(err, rpctypes.ErrUserEmpty):
		return " (etcd has authentication enabled: give a username and password)"
	case errors.Is(err, rpctypes.ErrPermissionDenied):
		return fmt.Sprintf(" (user %q may not read the bgpfabric keys)", user)
	}
	return ""
}

// PlaintextEndpoint returns the first of endpoints that is not
// TLS-protected (https:// or unixs://), if any: TLS options must not be
// given with such an endpoint, which etcd's client would serve without
// TLS.
func PlaintextEndpoint(endpoints []string) (string, bool) {
	for _, e := range endpoints {
		if !strings.HasPrefix(e, "https://") && !strings.HasPrefix(e, "unixs://") {
			return e, true
		}
	}
	return "", false
}

// maxPasswordFile bounds what ReadPasswordFile reads.
const maxPasswordFile = 4096

// ReadPasswordFile reads an etcd password from a file: its content
// without one trailing newline. An empty file is an error.
func ReadPasswordFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading etcd password: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		return "", fmt.Errorf("reading etcd password from %s: %w", path, err)
	}
	if len(b) > maxPasswordFile {
		return "", fmt.Errorf("reading etcd password from %s: longer than %d bytes", path, maxPasswordFile)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pw == "" {
		return "", fmt.Errorf("reading etcd password from %s: the file is empty", path)
	}
	return pw, nil
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
