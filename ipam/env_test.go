package ipam_test

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
	"github.com/bgpfabric/bgpfabric/ipam"
)

// testTimeout bounds every test's datastore calls.
const testTimeout = 60 * time.Second

// addrOpt lets go-cmp compare netip values.
var addrOpt = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// env is an embedded etcd with a client, both stopped when the test ends.
type env struct {
	t     testing.TB
	ctx   context.Context
	etcd  *datastore.Embedded
	store *datastore.Client
}

// newEnv starts etcd and connects to it.
func newEnv(t testing.TB) *env {
	t.Helper()
	e := etcdtest.Start(t)
	return &env{t: t, ctx: testContext(t), etcd: e.Embedded, store: e.Client(t)}
}

func (e *env) ipam(cfg ipam.Config) *ipam.Client {
	e.t.Helper()
	cfg.Store = e.store
	if cfg.Logger == nil {
		cfg.Logger = testLogger(e.t)
	}
	c, err := ipam.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) apply(rs ...api.Resource) {
	e.t.Helper()
	for _, r := range rs {
		if _, err := e.store.Apply(e.ctx, r); err != nil {
			e.t.Fatalf("apply: %v", err)
		}
	}
}

func node(name string, labels map[string]string) *api.Node {
	return &api.Node{ObjectMeta: api.ObjectMeta{Name: name, Labels: labels}}
}

func ipPool(name, cidr string, blockSize int) *api.IPPool {
	return &api.IPPool{ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.IPPoolSpec{CIDR: cidr, BlockSize: blockSize}}
}

// blocks lists every block, by name.
func (e *env) blocks() map[string]*api.IPAMBlock {
	e.t.Helper()
	rs, _, err := e.store.List(e.ctx, api.KindIPAMBlock, "")
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]*api.IPAMBlock{}
	for _, r := range rs {
		b := r.(*api.IPAMBlock)
		if err := b.Validate(); err != nil {
			e.t.Errorf("stored block is invalid: %v", err)
		}
		out[b.Spec.CIDR] = b
	}
	return out
}

// allocations maps every allocated address to its handle, failing the
// test on an address allocated twice.
func (e *env) allocations() map[netip.Addr]string {
	e.t.Helper()
	out := map[netip.Addr]string{}
	for _, b := range e.blocks() {
		for ord, a := range b.Spec.Allocations {
			if a == nil {
				continue
			}
			ip, err := b.OrdinalToIP(ord)
			if err != nil {
				e.t.Fatal(err)
			}
			if h, dup := out[ip]; dup {
				e.t.Errorf("%s allocated twice (%s and %s)", ip, h, b.Spec.Attributes[*a].HandleID)
			}
			out[ip] = b.Spec.Attributes[*a].HandleID
		}
	}
	return out
}
