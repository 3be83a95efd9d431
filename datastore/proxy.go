//go:build !nodeonly

package datastore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/proxy/grpcproxy"
	"google.golang.org/grpc"
)

// ProxyConfig configures a Proxy.
type ProxyConfig struct {
	// Upstream is the client the proxy reaches etcd through. Required;
	// the caller closes it after the proxy.
	Upstream *Client
	// Listen is the proxy's endpoint: unix:///absolute/path.sock.
	Listen string
	// Logger; nil discards.
	Logger *slog.Logger
}

// Proxy is etcd's own gRPC proxy (go.etcd.io/etcd/server/v3/proxy/grpcproxy)
// in this process: agents that connect to it instead of etcd share its
// upstream watches (identical watch ranges are coalesced into one; a
// watch from an older revision joins once it has caught up), and their
// leases and reads go through its connection. It serves the KV, Watch,
// Lease and Cluster services, which is what the agents use. See
// docs/scale.md.
type Proxy struct {
	srv      *grpc.Server
	ln       net.Listener
	socket   string
	cancel   context.CancelFunc
	served   chan error
	endpoint string
}

// StartProxy starts a proxy on cfg.Listen; Close stops it.
func StartProxy(ctx context.Context, cfg ProxyConfig) (*Proxy, error) {
	if cfg.Upstream == nil {
		return nil, errors.New("starting the datastore proxy: no upstream client")
	}
	path, ok := strings.CutPrefix(cfg.Listen, "unix://")
	if !ok || !filepath.IsAbs(path) || len(path) > maxUnixPath {
		return nil, fmt.Errorf("starting the datastore proxy: listen %q: want unix:///absolute/path.sock (at most %d bytes)", cfg.Listen, maxUnixPath)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("starting the datastore proxy: removing an old socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("starting the datastore proxy: %w", err)
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	zl := zapLogger(lg)
	cli := cfg.Upstream.cli
	pctx, cancel := context.WithCancel(ctx)
	kvp, _ := grpcproxy.NewKvProxy(cli)
	watchp, _ := grpcproxy.NewWatchProxy(pctx, zl, cli)
	leasep, _ := grpcproxy.NewLeaseProxy(pctx, cli)
	clusterp, _ := grpcproxy.NewClusterProxy(zl, cli, cfg.Listen, "")
	srv := grpc.NewServer(grpc.MaxConcurrentStreams(math.MaxUint32))
	pb.RegisterKVServer(srv, kvp)
	pb.RegisterWatchServer(srv, watchp)
	pb.RegisterLeaseServer(srv, leasep)
	pb.RegisterClusterServer(srv, clusterp)
	p := &Proxy{srv: srv, ln: ln, socket: path, cancel: cancel, served: make(chan error, 1), endpoint: cfg.Listen}
	go func() { p.served <- srv.Serve(ln) }()
	lg.Info("datastore proxy serving", logKeyListen, cfg.Listen, logKeyEndpoints, cfg.Upstream.endpoints)
	return p, nil
}

// Endpoint is the proxy's endpoint, for Config.Endpoints.
func (p *Proxy) Endpoint() string { return p.endpoint }

// Close stops serving (open streams are cut) and removes the socket.
func (p *Proxy) Close() error {
	p.cancel()
	p.srv.Stop()
	err := <-p.served
	if errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	if rerr := os.Remove(p.socket); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}
