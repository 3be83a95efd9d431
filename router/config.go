package router

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// ProtoRouter is the route protocol number (rtm_protocol) of the routes
// the router installs, by which it recognises them as its own. 81 is
// unassigned in iproute2's rt_protos (like felix's 80); add "81 bgpfabric"
// to /etc/iproute2/rt_protos.d/bgpfabric.conf to see the name in `ip route`.
const ProtoRouter = routetable.ProtoRouter

// Defaults.
const (
	DefaultStatusInterval = 10 * time.Second
	// DefaultControlDir is where `bgpfabric routes` looks for a node's
	// control socket, router.<node>.sock.
	DefaultControlDir = "/run/bgpfabric"
)

// Config configures a Router.
type Config struct {
	// NodeName is this node's Node resource. Required.
	NodeName string
	// Resources delivers the Nodes, BGPConfigurations and BGPPeers.
	// Required; DatastoreResources(client) is the production one.
	Resources ResourceSource
	// Status, if set, receives the node's BGPStatus (written under a
	// lease by the production StatusWriter).
	Status StatusSink
	// Speaker is the BGP engine: router/gobgp's in production. Required.
	Speaker Speaker
	// Netns is the node's network namespace for the route feed and the
	// kernel routes; 0 or netns.None() is the caller's. (The Speaker's
	// sockets are in the process's namespace: see router/gobgp.)
	Netns netns.NsHandle
	// Dataplane is where learned routes are installed; nil means netlink
	// in Netns. FIB is the feed of felix's routes; nil means a netlink
	// subscription in Netns.
	Dataplane routetable.Dataplane
	FIB       FIBSource
	// WatchLinks subscribes to the node's link changes: after one, the
	// installed routes are compared with the kernel again and repaired
	// (the kernel deletes the routes through a link that goes down, and
	// nothing else would put them back when it comes up while the BGP
	// table is unchanged). Nil means a netlink subscription in Netns
	// when Dataplane is nil, and no subscription otherwise.
	WatchLinks func(ctx context.Context) (<-chan routetable.LinkUpdate, error)
	// Addresses is the feed of the node's interface addresses, whose
	// service addresses the router advertises (services.go). Nil means a
	// netlink subscription in Netns when Dataplane is nil, and no
	// addresses otherwise.
	Addresses AddressSource
	// Protocol marks our kernel routes (default ProtoRouter);
	// FelixProtocol is the protocol of the routes we export (default
	// routetable.ProtoFelix).
	Protocol, FelixProtocol uint8
	// ListenAddresses restricts where the speaker accepts sessions;
	// empty means every address (0.0.0.0 and ::).
	ListenAddresses []netip.Addr
	// Secrets resolves BGP passwords.
	Secrets Secrets
	// Policy holds the import and export filters; nil accepts everything.
	Policy *Policy
	// StatusInterval is how often the peers' counters are refreshed in
	// the status and metrics (state changes are written at once).
	// Zero means DefaultStatusInterval.
	StatusInterval time.Duration
	// StatusWriteInterval is the shortest time between two writes of
	// the BGPStatus (state changes in between coalesce, latest wins).
	// Zero means latest.DefaultMinInterval (1 s).
	StatusWriteInterval time.Duration
	// RetryDelay is how long the router waits before trying a failed
	// speaker call again (and the first pause of its resource-sync
	// backoff). Zero means DefaultRetryDelay.
	RetryDelay time.Duration
	// ControlSocket, if set, is a unix socket path on which the router
	// serves its BGP table and installed routes (GET /routes, JSON) for
	// `bgpfabric routes`.
	ControlSocket string
	// Metrics, if set, registers the router's Prometheus metrics.
	Metrics prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
	// Supervision is what the router does when a Speaker that can die
	// (a LossWatcher: router/speakerproc) dies: restart backoff and
	// quarantine (supervise.go, docs/robustness.md).
	Supervision Supervision
	// BFD creates the node's BFD server when the first session that
	// enables BFD appears (bfd.go); the router owns and closes it. Nil
	// means no BFD: sessions that ask for it run without it (logged).
	BFD func() (BFDServer, error)
}

// ResourceSource delivers the resources the router depends on to a
// datastore.SyncHandler: a datastore.Syncer in production.
type ResourceSource interface {
	Run(ctx context.Context, h datastore.SyncHandler) error
}

// StatusSink stores the node's BGP status record.
type StatusSink interface {
	Put(ctx context.Context, r *api.BGPStatus) error
	Close() error
}

func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("router config: NodeName is required"))
	}
	if c.Resources == nil {
		errs = append(errs, errors.New("router config: Resources is required"))
	}
	if c.Speaker == nil {
		errs = append(errs, errors.New("router config: Speaker is required"))
	}
	if c.Protocol == 0 {
		c.Protocol = ProtoRouter
	}
	if c.FelixProtocol == 0 {
		c.FelixProtocol = routetable.ProtoFelix
	}
	if c.Protocol == c.FelixProtocol {
		errs = append(errs, errors.New("router config: Protocol must differ from FelixProtocol"))
	}
	if c.Netns == 0 {
		c.Netns = netns.None()
	}
	if c.StatusInterval <= 0 {
		c.StatusInterval = DefaultStatusInterval
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = DefaultRetryDelay
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.FIB == nil {
		c.FIB = NetlinkFIB{Netns: c.Netns}
	}
	c.Supervision = c.Supervision.withDefaults()
	return c, errors.Join(errs...)
}
