//go:build !nodeonly

package datastore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"google.golang.org/grpc"
)

// Limits of the embedded server.
const (
	// EmbeddedMaxTxnOps is how many operations one transaction may hold on
	// the embedded etcd: enough for ApplyAll of a few thousand documents.
	EmbeddedMaxTxnOps = 10000
	// embeddedMaxRequestBytes lets such a transaction through.
	embeddedMaxRequestBytes = 64 << 20
	// defaultCompactionRetention is how much history the embedded etcd keeps.
	defaultCompactionRetention = time.Hour
)

// EmbeddedConfig configures an etcd server that runs inside this process.
type EmbeddedConfig struct {
	// DataDir holds etcd's data; it is created if needed and reused on
	// restart.
	DataDir string
	// Listen is the client URL: "unix:///run/bgpfabric/etcd/etcd.sock" or
	// "http://127.0.0.1:2379" (a loopback address; port 0 picks a free
	// port). Empty means a unix socket named etcd.sock in DataDir. A
	// socket is made mode 0600, in a directory that must be this user's
	// and closed to group and others (created 0700 if missing).
	Listen string
	// Logger receives the server's own log lines only when it has debug
	// enabled; etcd is silent otherwise. Nil discards.
	Logger *slog.Logger
	// CompactionRetention is how much history etcd keeps before periodic
	// automatic compaction. Zero means one hour; negative disables it.
	CompactionRetention time.Duration
}

// Embedded is a running single-member etcd server.
type Embedded struct {
	etcd     *embed.Etcd
	streams  *streamCloser
	endpoint string
	socket   string
	lg       *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// StartEmbedded starts etcd and returns when it serves clients, or fails
// when ctx ends first.
//
// The peer (raft) listener of the single member is bound to 127.0.0.1 with
// a port chosen by the kernel, so two embedded servers on one machine never
// conflict; nobody connects to it.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.DataDir == "" {
		return nil, errors.New("starting embedded etcd: DataDir is required")
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd: data dir %s: %w", cfg.DataDir, err)
	}
	listen := cfg.Listen
	if listen == "" {
		listen = "unix://" + filepath.Join(dataDir, "etcd.sock")
	}
	lu, err := parseListen(listen)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("starting embedded etcd: creating data dir: %w", err)
	}
	if lu.socket != "" {
		if err := prepareSocket(ctx, lu.socket); err != nil {
			return nil, fmt.Errorf("starting embedded etcd: %w", err)
		}
	}

	ec := embed.NewConfig()
	ec.Name = "bgpfabric"
	ec.Dir = dataDir
	ec.Logger = "zap"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zapLogger(lg))
	ec.ListenClientUrls = []url.URL{*lu.url}
	ec.AdvertiseClientUrls = []url.URL{*lu.url}
	peer := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	ec.ListenPeerUrls = []url.URL{peer}
	ec.AdvertisePeerUrls = []url.URL{peer}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.ListenMetricsUrls = nil
	ec.MaxTxnOps = EmbeddedMaxTxnOps
	ec.MaxRequestBytes = embeddedMaxRequestBytes
	ec.WatchProgressNotifyInterval = 5 * time.Second
	streams := newStreamCloser()
	ec.GRPCAdditionalServerOptions = []grpc.ServerOption{streams.option()}
	switch {
	case cfg.CompactionRetention == 0:
		ec.AutoCompactionMode = embed.CompactorModePeriodic
		ec.AutoCompactionRetention = defaultCompactionRetention.String()
	case cfg.CompactionRetention > 0:
		ec.AutoCompactionMode = embed.CompactorModePeriodic
		ec.AutoCompactionRetention = cfg.CompactionRetention.String()
	}

	e, err := embed.StartEtcd(ec)
	if err != nil {
		streams.closeStreams()
		return nil, fmt.Errorf("starting embedded etcd in %s on %s: %w", dataDir, listen, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		streams.closeStreams()
		e.Close()
		return nil, fmt.Errorf("starting embedded etcd in %s on %s: %w", dataDir, listen, err)
	case <-ctx.Done():
		streams.closeStreams()
		e.Close()
		return nil, fmt.Errorf("starting embedded etcd in %s on %s: waiting until ready: %w", dataDir, listen, ctx.Err())
	}

	if lu.socket != "" {
		if err := restrictSocket(lu.socket); err != nil {
			streams.closeStreams()
			e.Close()
			return nil, fmt.Errorf("starting embedded etcd in %s on %s: %w", dataDir, listen, err)
		}
	}

	endpoint := lu.url.String()
	if lu.socket == "" && len(e.Clients) > 0 {
		// The bound address, in case the port was 0.
		endpoint = "http://" + e.Clients[0].Addr().String()
	}
	lg.Info("embedded etcd ready", logKeyDataDir, dataDir, logKeyListen, endpoint)
	return &Embedded{etcd: e, streams: streams, endpoint: endpoint, socket: lu.socket, lg: lg}, nil
}

// ClientEndpoint is the endpoint to put in Config.Endpoints to reach the
// server, e.g. "unix:///run/bgpfabric/etcd/etcd.sock" or "http://127.0.0.1:2379".
func (e *Embedded) ClientEndpoint() string { return e.endpoint }

// Err delivers a fatal error of the running server.
func (e *Embedded) Err() <-chan error { return e.etcd.Err() }

// Close stops the server, waits until it has stopped and removes its unix
// socket. Open watches and lease keep-alives are cut, as a crash would cut
// them; their clients reconnect when a server is back. It may be called more
// than once.
func (e *Embedded) Close() error {
	e.closeOnce.Do(func() {
		e.streams.closeStreams()
		e.etcd.Close()
		if e.socket != "" {
			if err := os.Remove(e.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
				e.closeErr = fmt.Errorf("removing etcd socket: %w", err)
			}
		}
		e.lg.Info("embedded etcd stopped", logKeyListen, e.endpoint)
	})
	return e.closeErr
}
