package ipam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

// Store is the part of the datastore IPAM uses; *datastore.Client
// implements it. Errors follow the datastore's: ErrNotFound,
// ErrAlreadyExists from Create, ErrConflict from Update and Delete.
type Store interface {
	Get(ctx context.Context, kind, namespace, name string) (api.Resource, error)
	List(ctx context.Context, kind, namespace string) ([]api.Resource, int64, error)
	Create(ctx context.Context, r api.Resource) (api.Resource, error)
	Update(ctx context.Context, r api.Resource) (api.Resource, error)
	Delete(ctx context.Context, kind, namespace, name, resourceVersion string) error
}

// DefaultMaxConflicts is how many compare-and-swap races one call may lose
// before it gives up.
const DefaultMaxConflicts = 100

// Config configures a Client.
type Config struct {
	// Store is the datastore; required.
	Store Store
	// MaxConflicts bounds the lost compare-and-swap races of one call
	// (default DefaultMaxConflicts).
	MaxConflicts int
	// StrictAffinity is set on the blocks this client claims: no other
	// node may borrow from them.
	StrictAffinity bool
	// Logger receives debug logs; nil discards.
	Logger *slog.Logger
	// Now returns the time for allocation timestamps; nil is time.Now.
	Now func() time.Time
}

// Client allocates and releases addresses. It is safe for concurrent use.
// Correctness comes from the datastore's compare-and-swap, not from
// locks: any number of Clients, in any number of processes, may work on
// the same pools. Within one Client, calls for the same node and writes to
// the same block are serialized, which spares them races they would only
// lose to each other.
type Client struct {
	store        Store
	maxConflicts int
	strict       bool
	log          *slog.Logger
	now          func() time.Time

	conflicts atomic.Uint64
	// nodes serializes AutoAssign per node, blocks every write per block
	// (see keyedMutex).
	nodes, blocks keyedMutex
}

// New returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.Store == nil {
		return nil, errors.New("ipam: Config.Store is required")
	}
	c := &Client{store: cfg.Store, maxConflicts: cfg.MaxConflicts, strict: cfg.StrictAffinity, log: cfg.Logger, now: cfg.Now}
	if c.maxConflicts <= 0 {
		c.maxConflicts = DefaultMaxConflicts
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Stats are the client's counters since New.
type Stats struct {
	// Conflicts is how many compare-and-swap races the client lost (and
	// retried).
	Conflicts uint64
}

// Stats returns the counters.
func (c *Client) Stats() Stats { return Stats{Conflicts: c.conflicts.Load()} }

// budget counts the races one call has lost.
type budget struct {
	c    *Client
	lost int
	what string
}

// conflict records a lost race and waits a short random time so that the
// racers spread out. It returns ErrTooManyConflicts once the budget is
// spent, or the context's error.
func (b *budget) conflict(ctx context.Context, on string) error {
	b.lost++
	b.c.conflicts.Add(1)
	if b.lost > b.c.maxConflicts {
		return fmt.Errorf("%s: giving up after %d conflicting updates (last on %s): %w", b.what, b.lost-1, on, ErrTooManyConflicts)
	}
	// Jittered exponential backoff: up to 1ms, 2ms, ... capped at 20ms.
	ceil := min(time.Millisecond<<min(b.lost-1, 5), 20*time.Millisecond)
	t := time.NewTimer(rand.N(ceil) + 50*time.Microsecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", b.what, ctx.Err())
	}
}

// listBlocks reads every block, sorted by CIDR (IPv4 first).
func (c *Client) listBlocks(ctx context.Context) ([]*api.IPAMBlock, error) {
	rs, _, err := c.store.List(ctx, api.KindIPAMBlock, "")
	if err != nil {
		return nil, fmt.Errorf("listing IPAM blocks: %w", err)
	}
	out := make([]*api.IPAMBlock, 0, len(rs))
	for _, r := range rs {
		if b, ok := r.(*api.IPAMBlock); ok {
			if _, err := b.Prefix(); err == nil {
				out = append(out, b)
			}
		}
	}
	slices.SortFunc(out, func(a, b *api.IPAMBlock) int {
		pa, _ := a.Prefix()
		pb, _ := b.Prefix()
		return comparePrefix(pa, pb)
	})
	return out, nil
}

// listPools reads every pool. Pools that do not decode are skipped.
func (c *Client) listPools(ctx context.Context) ([]pool, map[string]*api.IPPool, error) {
	rs, _, err := c.store.List(ctx, api.KindIPPool, "")
	if err != nil {
		return nil, nil, fmt.Errorf("listing IP pools: %w", err)
	}
	var out []pool
	raw := map[string]*api.IPPool{}
	for _, r := range rs {
		p, ok := r.(*api.IPPool)
		if !ok {
			continue
		}
		dp, err := decodePool(p)
		if err != nil {
			c.log.Warn("skipping pool", logKeyPool, p.Name, logKeyError, err)
			continue
		}
		out = append(out, dp)
		raw[p.Name] = p
	}
	return out, raw, nil
}

// getBlock reads one block by name.
func (c *Client) getBlock(ctx context.Context, name string) (*api.IPAMBlock, error) {
	r, err := c.store.Get(ctx, api.KindIPAMBlock, "", name)
	if err != nil {
		return nil, err
	}
	b, ok := r.(*api.IPAMBlock)
	if !ok {
		return nil, fmt.Errorf("block %s: stored value is a %T", name, r)
	}
	return b, nil
}

// nodeLabels returns the labels of a registered node.
func (c *Client) nodeLabels(ctx context.Context, node string) (map[string]string, error) {
	r, err := c.store.Get(ctx, api.KindNode, "", node)
	if errors.Is(err, datastore.ErrNotFound) {
		return nil, fmt.Errorf("node %s: %w", node, ErrNodeNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading node %s: %w", node, err)
	}
	return r.GetObjectMeta().Labels, nil
}
