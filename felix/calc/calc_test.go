package calc

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bgpfabric/bgpfabric/api"
)

// step is one input to a Calc.
type step struct {
	snapshot []api.Resource // when non-nil (or snap set): a snapshot
	snap     bool
	update   api.Resource
	remove   *Key
}

func upd(r api.Resource) step       { return step{update: r} }
func snap(rs ...api.Resource) step  { return step{snapshot: rs, snap: true} }
func rm(kind, ns, name string) step { return step{remove: &Key{Kind: kind, Namespace: ns, Name: name}} }
func rmWEP(ns, name string) step    { return rm(api.KindWorkloadEndpoint, ns, name) }
func rmBlock(b *api.IPAMBlock) step { return rm(api.KindIPAMBlock, "", b.Name) }
func sortStrings(s []string)        { slices.Sort(s) }
func (s step) apply(c *Calc)        { s.applyTo(c) }
func (s step) applyTo(c *Calc) {
	switch {
	case s.snap:
		c.OnSnapshot(s.snapshot)
	case s.update != nil:
		c.OnUpdate(s.update)
	case s.remove != nil:
		c.OnRemove(*s.remove)
	}
}

var cmpOpts = []cmp.Option{cmpopts.EquateEmpty(), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })}

func TestCalc(t *testing.T) {
	b1 := block("10.65.0.0/26", thisNode)
	b2 := block("10.65.0.64/26", "node-2")
	b6 := block("fd00:65::/122", thisNode)
	for _, tc := range []struct {
		name string
		// setup runs first; its delta is taken and thrown away.
		setup []step
		steps []step
		// want is the whole state after steps, delta what the last
		// TakeDelta (after setup) returned.
		wantRoutes []Route
		wantIfaces []Interface
		wantDelta  []string
		wantCounts *Counts
	}{
		{
			name: "local workloads and blocks; other nodes' ignored",
			steps: []step{snap(
				wep("ns", "a", thisNode, "wla", "10.65.0.1/32"),
				wep("ns", "b", thisNode, "wlb", "10.65.0.2/32", "fd00:65::2/128"),
				wep("ns", "c", "node-2", "wlc", "10.65.0.65/32"),
				b1, b2, b6, pool("p", "10.65.0.0/16"), hep("h1", thisNode), hep("h2", "node-2"), gnp("ignored"),
			)},
			wantRoutes: []Route{bh("10.65.0.0/26"), wr("10.65.0.1/32", "wla"), wr("10.65.0.2/32", "wlb"), bh("fd00:65::/122"), wr("fd00:65::2/128", "wlb")},
			wantIfaces: []Interface{v4if("wla"), {Name: "wlb", IPv4: true, IPv6: true}},
			wantDelta: []string{
				"+iface wla v4=true v6=false ndp=[]", "+iface wlb v4=true v6=true ndp=[]",
				"+route 10.65.0.1/32 dev wla", "+route 10.65.0.2/32 dev wlb", "+route blackhole 10.65.0.0/26",
				"+route blackhole fd00:65::/122", "+route fd00:65::2/128 dev wlb",
			},
			wantCounts: &Counts{WorkloadEndpoints: 2, HostEndpoints: 1, Blocks: 2, Pools: 1, Routes: 5, Interfaces: 2},
		},
		{
			name:       "endpoint moves to another node",
			setup:      []step{upd(wep("ns", "a", thisNode, "wla", "10.65.0.1/32"))},
			steps:      []step{upd(wep("ns", "a", "node-2", "wla", "10.65.0.1/32"))},
			wantDelta:  []string{"-iface wla", "-route 10.65.0.1/32"},
			wantCounts: &Counts{},
		},
		{
			name:       "endpoint moves to this node",
			setup:      []step{upd(wep("ns", "a", "node-2", "wla", "10.65.0.1/32"))},
			steps:      []step{upd(wep("ns", "a", thisNode, "wla", "10.65.0.1/32"))},
			wantRoutes: []Route{wr("10.65.0.1/32", "wla")},
			wantIfaces: []Interface{v4if("wla")},
			wantDelta:  []string{"+iface wla v4=true v6=false ndp=[]", "+route 10.65.0.1/32 dev wla"},
		},
		{
			name:       "endpoint changes interface and address",
			setup:      []step{upd(wep("ns", "a", thisNode, "wla", "10.65.0.1/32"))},
			steps:      []step{upd(wep("ns", "a", thisNode, "wlx", "10.65.0.9/32"))},
			wantRoutes: []Route{wr("10.65.0.9/32", "wlx")},
			wantIfaces: []Interface{v4if("wlx")},
			wantDelta:  []string{"+iface wlx v4=true v6=false ndp=[]", "+route 10.65.0.9/32 dev wlx", "-iface wla", "-route 10.65.0.1/32"},
		},
		{
			name:       "unchanged update gives an empty delta",
			setup:      []step{upd(wep("ns", "a", thisNode, "wla", "10.65.0.1/32")), upd(b1)},
			steps:      []step{upd(wep("ns", "a", thisNode, "wla", "10.65.0.1/32")), upd(block("10.65.0.0/26", thisNode))},
			wantRoutes: []Route{bh("10.65.0.0/26"), wr("10.65.0.1/32", "wla")},
			wantIfaces: []Interface{v4if("wla")},
		},
		{
			name:      "change and undo between two deltas cancel out",
			setup:     []step{upd(wep("ns", "a", thisNode, "wla", "10.65.0.1/32"))},
			steps:     []step{rmWEP("ns", "a"), upd(wep("ns", "a", thisNode, "wla", "10.65.0.1/32"))},
			wantDelta: nil, wantRoutes: []Route{wr("10.65.0.1/32", "wla")}, wantIfaces: []Interface{v4if("wla")},
		},
		{
			name:  "deletion",
			setup: []step{upd(wep("ns", "a", thisNode, "wla", "10.65.0.1/32")), upd(b1)},
			steps: []step{rmWEP("ns", "a"), rmBlock(b1),
				rmWEP("ns", "never-seen"), rm(api.KindIPPool, "", "nope")},
			wantDelta: []string{"-iface wla", "-route 10.65.0.0/26", "-route 10.65.0.1/32"},
		},
		{
			name:       "block affinity moves away, then back",
			setup:      []step{upd(b1)},
			steps:      []step{upd(block("10.65.0.0/26", "node-2")), upd(block("10.65.0.64/26", thisNode))},
			wantRoutes: []Route{bh("10.65.0.64/26")},
			wantDelta:  []string{"+route blackhole 10.65.0.64/26", "-route 10.65.0.0/26"},
		},
		{
			name:      "block without affinity or being released has no blackhole",
			setup:     []step{upd(b1)},
			steps:     []step{upd(releasing(block("10.65.0.0/26", thisNode))), upd(block("10.65.1.0/26", ""))},
			wantDelta: []string{"-route 10.65.0.0/26"},
		},
		{
			name: "resync snapshot drops what is missing",
			setup: []step{
				upd(wep("ns", "a", thisNode, "wla", "10.65.0.1/32")),
				upd(wep("ns", "b", thisNode, "wlb", "10.65.0.2/32")),
				upd(b1), upd(b6), upd(pool("p", "10.65.0.0/16")), upd(hep("h1", thisNode)),
			},
			steps:      []step{snap(wep("ns", "b", thisNode, "wlb", "10.65.0.2/32"), b6)},
			wantRoutes: []Route{wr("10.65.0.2/32", "wlb"), bh("fd00:65::/122")},
			wantIfaces: []Interface{v4if("wlb")},
			wantDelta:  []string{"-iface wla", "-route 10.65.0.0/26", "-route 10.65.0.1/32"},
			wantCounts: &Counts{WorkloadEndpoints: 1, Blocks: 1, Routes: 2, Interfaces: 1},
		},
		{
			name: "two endpoints claim one address: the smaller key wins, the other takes over",
			steps: []step{
				upd(wep("ns", "z", thisNode, "wlz", "10.65.0.1/32")),
				upd(wep("ns", "a", thisNode, "wla", "10.65.0.1/32")),
			},
			wantRoutes: []Route{wr("10.65.0.1/32", "wla")},
			wantIfaces: []Interface{v4if("wla"), v4if("wlz")},
			wantDelta:  []string{"+iface wla v4=true v6=false ndp=[]", "+iface wlz v4=true v6=false ndp=[]", "+route 10.65.0.1/32 dev wla"},
		},
		{
			name: "losing claimant removed: the other's route returns",
			setup: []step{
				upd(wep("ns", "z", thisNode, "wlz", "10.65.0.1/32")),
				upd(wep("ns", "a", thisNode, "wla", "10.65.0.1/32")),
			},
			steps:      []step{rmWEP("ns", "a")},
			wantRoutes: []Route{wr("10.65.0.1/32", "wlz")},
			wantIfaces: []Interface{v4if("wlz")},
			wantDelta:  []string{"+route 10.65.0.1/32 dev wlz", "-iface wla"},
		},
		{
			name:       "a workload in a /32 block: the workload route wins over the blackhole",
			steps:      []step{upd(block("10.65.0.7/32", thisNode)), upd(wep("ns", "a", thisNode, "wla", "10.65.0.7/32"))},
			wantRoutes: []Route{wr("10.65.0.7/32", "wla")},
			wantIfaces: []Interface{v4if("wla")},
			wantDelta:  []string{"+iface wla v4=true v6=false ndp=[]", "+route 10.65.0.7/32 dev wla"},
		},
		{
			name:       "IPv6 gateway: proxy NDP on the interface, union over its endpoints",
			steps:      []step{upd(wep6gw("ns", "a", thisNode, "wla", "fe80::1", "fd00:65::1/128")), upd(wep6gw("ns", "b", thisNode, "wla", "fe80::2", "10.65.0.3/32"))},
			wantRoutes: []Route{wr("10.65.0.3/32", "wla"), wr("fd00:65::1/128", "wla")},
			wantIfaces: []Interface{{Name: "wla", IPv4: true, IPv6: true, ProxyNDP: []netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fe80::2")}}},
			wantDelta:  []string{"+iface wla v4=true v6=true ndp=[fe80::1 fe80::2]", "+route 10.65.0.3/32 dev wla", "+route fd00:65::1/128 dev wla"},
		},
		{
			name:       "endpoint without interface name: no routes, no interface",
			steps:      []step{upd(wep("ns", "a", thisNode, "", "10.65.0.1/32"))},
			wantCounts: &Counts{WorkloadEndpoints: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(Config{NodeName: thisNode})
			for _, s := range tc.setup {
				s.apply(c)
			}
			c.TakeDelta()
			for _, s := range tc.steps {
				s.apply(c)
			}
			if diff := cmp.Diff(tc.wantDelta, renderDelta(c.TakeDelta()), cmpOpts...); diff != "" {
				t.Errorf("delta (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRoutes, c.Routes(), cmpOpts...); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantIfaces, c.Interfaces(), cmpOpts...); diff != "" {
				t.Errorf("interfaces (-want +got):\n%s", diff)
			}
			if tc.wantCounts != nil {
				if diff := cmp.Diff(*tc.wantCounts, c.Counts()); diff != "" {
					t.Errorf("counts (-want +got):\n%s", diff)
				}
			}
			if d := c.TakeDelta(); !d.Empty() {
				t.Errorf("second TakeDelta not empty: %v", renderDelta(d))
			}
		})
	}
}
