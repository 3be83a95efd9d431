package felix

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/felix/ifaces"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// Defaults of Config.
const (
	// DefaultResyncInterval is how often the agent re-reads the kernel
	// and repairs differences (Calico's route refresh is 90 s).
	DefaultResyncInterval = 90 * time.Second
	// DefaultStatusInterval is the shortest time between two status
	// writes.
	DefaultStatusInterval = time.Second
	// Backoff of dataplane retries.
	DefaultRetryMin = 100 * time.Millisecond
	DefaultRetryMax = 30 * time.Second
)

// Config configures an Agent.
type Config struct {
	// NodeName is this node's name, as WorkloadEndpoints, HostEndpoints
	// and IPAM block affinities name it. Required.
	NodeName string
	// Client is the datastore. Required; the caller closes it after Run.
	Client *datastore.Client
	// Netns is the network namespace to program. netns.None() (or the
	// zero value) means the caller's. The agent does not close it.
	Netns netns.NsHandle
	// Logger; nil discards.
	Logger *slog.Logger

	// ResyncInterval is how often the kernel is re-read and repaired;
	// zero means DefaultResyncInterval.
	ResyncInterval time.Duration
	// Status, if set, is the node's status writer (one lease per node,
	// shared with the router), which the caller closes after Run; nil
	// means the agent opens one of its own and closes it when Run ends.
	Status *datastore.StatusWriter
	// StatusTTL is how long the FelixStatus record outlives a crashed
	// agent when the agent opens its own status writer; zero means
	// datastore.DefaultStatusTTL.
	StatusTTL time.Duration
	// StatusInterval is the shortest time between status writes; zero
	// means DefaultStatusInterval.
	StatusInterval time.Duration
	// RetryMin and RetryMax bound the backoff of dataplane retries; zero
	// means DefaultRetryMin and DefaultRetryMax.
	RetryMin, RetryMax time.Duration

	// Metrics records apply timings and counts; nil records nothing.
	Metrics *Metrics

	// NewACL builds the ACL component for the namespace the agent
	// programs; nil means no ACLs (routes and interfaces only). A returned
	// ACL that implements io.Closer is closed when Run returns.
	NewACL func(ns netns.NsHandle, log *slog.Logger) (ACL, error)

	// NewNAT builds the outgoing NAT (IPPool natOutgoing) for the
	// namespace the agent programs, e.g. nft.NewNAT in it; nil means none.
	NewNAT func(ns netns.NsHandle) (NAT, error)

	// Dataplane overrides, for tests and for embedding: nil means the
	// real kernel in Netns.
	//
	// Routes is the kernel side of the route table.
	Routes routetable.Dataplane
	// Interfaces is the kernel side of the interface settings.
	Interfaces ifaces.Kernel
	// WatchLinks subscribes to link changes; it must deliver every
	// existing link first. The channel closes when ctx ends or the
	// subscription fails (the agent then resyncs and subscribes again).
	WatchLinks func(ctx context.Context) (<-chan routetable.LinkUpdate, error)
}

// withDefaults validates c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	if c.NodeName == "" {
		return c, errors.New("felix config: NodeName is required")
	}
	if c.Client == nil {
		return c, errors.New("felix config: Client is required")
	}
	if c.Netns == 0 {
		c.Netns = netns.None()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ResyncInterval <= 0 {
		c.ResyncInterval = DefaultResyncInterval
	}
	if c.StatusInterval <= 0 {
		c.StatusInterval = DefaultStatusInterval
	}
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	c.RetryMax = max(c.RetryMax, c.RetryMin)
	return c, nil
}
