package router

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/routepolicy"
)

func compileFilter(t *testing.T, f *api.BGPFilter) *routepolicy.Filter {
	t.Helper()
	f.Default()
	c, err := routepolicy.Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// renderBest renders a prefix's best paths as "peer,peer" (best first).
func renderBest(d Destination) string {
	var s []string
	for _, p := range d.Paths {
		s = append(s, p.Peer.String())
	}
	return strings.Join(s, ",")
}

// TestAdjRIBBestPath: the router's best-path selection over the accepted
// paths follows GoBGP's order (local preference, AS path length, origin,
// MED, eBGP over iBGP, the lowest peer) and its multipath set (the paths
// equal to the best up to there); rejected paths never count, so a
// rejected path that would be best does not hide an accepted one.
func TestAdjRIBBestPath(t *testing.T) {
	ibgp, ebgp := peerImport{}, peerImport{ebgp: true}
	reject := peerImport{chain: routepolicy.Chain{Reject: true}, ebgp: true}
	p := pfx("10.65.2.0/26")
	path := func(peer string, lp uint32, asPath ...uint32) Path {
		return Path{Peer: addr(peer), NextHop: addr(peer), LocalPref: lp, ASPath: asPath}
	}
	for _, tc := range []struct {
		name  string
		paths []Path
		imps  []peerImport
		want  string
	}{
		{"local preference first", []Path{path("10.0.0.2", 100), path("10.0.0.3", 200, 65000, 65001)}, []peerImport{ibgp, ibgp}, "10.0.0.3"},
		{"shorter AS path", []Path{path("10.0.0.2", 100, 65000, 65001), path("10.0.0.3", 100, 65000)}, []peerImport{ebgp, ebgp}, "10.0.0.3"},
		{"eBGP over iBGP", []Path{path("10.0.0.2", 100, 65000), path("10.0.0.3", 100, 65001)}, []peerImport{ibgp, ebgp}, "10.0.0.3"},
		{"equal iBGP paths: multipath, lowest peer first", []Path{path("10.0.0.3", 100), path("10.0.0.2", 100)}, []peerImport{ibgp, ibgp}, "10.0.0.2,10.0.0.3"},
		{"a rejected better path hides nothing", []Path{path("10.0.0.254", 100, 65000), path("10.0.0.2", 100)}, []peerImport{reject, ibgp}, "10.0.0.2"},
		{"all rejected: no best path", []Path{path("10.0.0.254", 100, 65000)}, []peerImport{reject}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rib := newAdjRIB()
			for i, pa := range tc.paths {
				rib.set(p, pa, tc.imps[i])
			}
			if got := renderBest(rib.best(p)); got != tc.want {
				t.Errorf("best paths %q, want %q", got, tc.want)
			}
		})
	}
	// MED: lower wins between paths from the same neighbouring AS.
	rib := newAdjRIB()
	a, b := path("10.0.0.2", 100, 65000), path("10.0.0.3", 100, 65000)
	a.MED, b.MED = 20, 10
	rib.set(p, a, ebgp)
	rib.set(p, b, ebgp)
	if got := renderBest(rib.best(p)); got != "10.0.0.3" {
		t.Errorf("MED: best %q, want 10.0.0.3", got)
	}
}

// TestAdjRIBReevaluate: a changed chain is applied again to the paths of
// its peer only; the prefixes whose accepted paths changed are reported,
// no others; set actions (local preference) change the best path; the
// accepted count follows.
func TestAdjRIBReevaluate(t *testing.T) {
	narrow := compileFilter(t, &api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: "in"}, Spec: api.BGPFilterSpec{
		ImportV4: []api.BGPFilterRule{{CIDR: "10.100.0.0/16", MatchOperator: api.MatchIn, Action: api.FilterAccept}}}})
	lp := uint32(300)
	wide := compileFilter(t, &api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: "in"}, Spec: api.BGPFilterSpec{
		ImportV4: []api.BGPFilterRule{{CIDR: "10.100.0.0/15", MatchOperator: api.MatchIn, Action: api.FilterAccept, LocalPref: &lp}}}})
	tor, rr := addr("10.0.0.254"), addr("10.0.0.253")
	torIn := peerImport{chain: routepolicy.Chain{Filters: []*routepolicy.Filter{narrow}, Reject: true}, ebgp: true}
	rib := newAdjRIB()
	in, out, both := pfx("10.100.1.0/24"), pfx("10.101.1.0/24"), pfx("10.101.2.0/24")
	for _, p := range []netip.Prefix{in, out, both} {
		rib.set(p, Path{Peer: tor, NextHop: tor, LocalPref: 100, ASPath: []uint32{65000}}, torIn)
	}
	rib.set(both, Path{Peer: rr, NextHop: addr("10.0.0.9"), LocalPref: 100}, peerImport{})
	if got := []string{renderBest(rib.best(in)), renderBest(rib.best(out)), renderBest(rib.best(both))}; !slices.Equal(got, []string{"10.0.0.254", "", "10.0.0.253"}) {
		t.Fatalf("before: %q", got)
	}
	if rib.accepted[tor] != 1 || rib.accepted[rr] != 1 {
		t.Errorf("accepted counts %v", rib.accepted)
	}
	var changed []string
	rib.reevaluate(map[netip.Addr]peerImport{tor: {chain: routepolicy.Chain{Filters: []*routepolicy.Filter{wide}, Reject: true}, ebgp: true}},
		func(p netip.Prefix) { changed = append(changed, p.String()) })
	slices.Sort(changed)
	// in: accepted before and after, but its local preference changed.
	if want := []string{"10.100.1.0/24", "10.101.1.0/24", "10.101.2.0/24"}; !slices.Equal(changed, want) {
		t.Errorf("changed %q, want %q", changed, want)
	}
	if got := renderBest(rib.best(both)); got != "10.0.0.254" {
		t.Errorf("the widened path with local preference 300: best %q, want the ToR's", got)
	}
	if got := rib.best(in).Paths[0].LocalPref; got != 300 {
		t.Errorf("local preference %d, want 300", got)
	}
	if rib.accepted[tor] != 3 {
		t.Errorf("accepted %d, want 3", rib.accepted[tor])
	}
	// The same chain again: nothing changed.
	changed = nil
	rib.reevaluate(map[netip.Addr]peerImport{tor: {chain: routepolicy.Chain{Filters: []*routepolicy.Filter{wide}, Reject: true}, ebgp: true}},
		func(p netip.Prefix) { changed = append(changed, p.String()) })
	if len(changed) != 0 {
		t.Errorf("an unchanged chain changed %q", changed)
	}
	// Withdrawn: gone, and counted out.
	rib.remove(out, tor)
	if rib.best(out).Paths != nil || rib.accepted[tor] != 2 {
		t.Errorf("after the withdrawal: best %v, accepted %d", rib.best(out), rib.accepted[tor])
	}
}

// TestFilterChangeInRouter: with a speaker that reports received paths,
// the router applies the sessions' import filters itself: the speaker's
// sessions get an import policy that accepts everything (their export
// policy stays), what the filter rejects never reaches the kernel (RFC
// 8212 on eBGP without a filter), and a filter change moves routes in
// and out of the kernel without any call into the speaker (no soft
// reset). BGPStatus counts the accepted paths.
func TestFilterChangeInRouter(t *testing.T) {
	sp := NewFakePathSpeaker()
	h := start(t, func(c *Config) { c.Speaker = sp })
	h.sp = sp.FakeSpeaker
	filter := func(cidr string) *api.BGPFilter {
		return &api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: "tor-in"}, Spec: api.BGPFilterSpec{
			ImportV4: []api.BGPFilterRule{{CIDR: cidr, MatchOperator: api.MatchIn, Action: api.FilterAccept}}}}
	}
	tor := &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "tor"}, Spec: api.BGPPeerSpec{
		PeerIP: "10.0.0.254", ASNumber: ptr(uint32(65000)), Filters: []string{"tor-in"}}}
	edge := &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "edge"}, Spec: api.BGPPeerSpec{
		PeerIP: "10.0.0.252", ASNumber: ptr(uint32(65100))}}
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), meshConfig("90s"), tor, edge, filter("10.100.0.0/16"))
	waitUntil(t, "three peers", func() bool { return len(h.sp.PeerConfigs()) == 3 })
	for _, a := range []string{"10.0.0.254", "10.0.0.252", "10.0.0.2"} {
		p, _ := peerPolicy(h.sp, a)
		if !p.Import.AcceptsAll() {
			t.Errorf("peer %s: the speaker got import policy %s, want accept-all (the router evaluates it)", a, chainOf(p.Import))
		}
	}
	if p, _ := peerPolicy(h.sp, "10.0.0.252"); !p.Export.Reject {
		t.Error("the eBGP session without filters lost RFC 8212's export reject")
	}
	h.fib.ch <- FIBBatch{Snapshot: true}
	recv := func(peer, prefix string, asPath ...uint32) Received {
		return Received{Prefix: pfx(prefix), Peer: addr(peer), Path: Path{Peer: addr(peer), NextHop: addr(peer), PeerAS: 65000, LocalPref: 100, ASPath: asPath}}
	}
	sp.Receive(
		recv("10.0.0.254", "10.100.1.0/24", 65000),
		recv("10.0.0.254", "10.101.1.0/24", 65000),
		recv("10.0.0.252", "10.102.0.0/24", 65100), // RFC 8212: no filter, not accepted
		// A rejected eBGP path that GoBGP would prefer hides nothing.
		recv("10.0.0.254", "10.65.2.0/26", 65000),
		recv("10.0.0.2", "10.65.2.0/26", 65001, 65002),
	)
	want := []string{"10.100.1.0/24 via 10.0.0.254 proto 81", "10.65.2.0/26 via 10.0.0.2 proto 81"}
	waitUntil(t, "the accepted routes installed", func() bool { return cmp.Equal(want, renderKernel(h.dp, 81)) })
	h.sp.Calls()

	h.res.put(t, filter("10.100.0.0/15"))
	want = []string{"10.100.1.0/24 via 10.0.0.254 proto 81", "10.101.1.0/24 via 10.0.0.254 proto 81", "10.65.2.0/26 via 10.0.0.2 proto 81"}
	waitUntil(t, "the widened filter's routes installed", func() bool { return cmp.Equal(want, renderKernel(h.dp, 81)) })
	h.res.put(t, filter("10.101.0.0/16"))
	want = []string{"10.101.1.0/24 via 10.0.0.254 proto 81", "10.65.2.0/26 via 10.0.0.2 proto 81"}
	waitUntil(t, "the changed filter's routes installed", func() bool { return cmp.Equal(want, renderKernel(h.dp, 81)) })
	if calls := h.sp.Calls(); len(calls) != 0 {
		t.Errorf("a change of import filters called the speaker: %q", calls)
	}
	// A filter that accepts the ToR's 10.65.2.0/26 makes it the best path
	// (the shorter AS path).
	h.res.put(t, filter("10.0.0.0/8"))
	want = []string{"10.100.1.0/24 via 10.0.0.254 proto 81", "10.101.1.0/24 via 10.0.0.254 proto 81", "10.65.2.0/26 via 10.0.0.254 proto 81"}
	waitUntil(t, "the ToR's path best once accepted", func() bool { return cmp.Equal(want, renderKernel(h.dp, 81)) })

	// Withdrawn by the peer: gone.
	sp.Receive(Received{Prefix: pfx("10.101.1.0/24"), Peer: addr("10.0.0.254"), Withdrawn: true})
	want = []string{"10.100.1.0/24 via 10.0.0.254 proto 81", "10.65.2.0/26 via 10.0.0.254 proto 81"}
	waitUntil(t, "the withdrawn route removed", func() bool { return cmp.Equal(want, renderKernel(h.dp, 81)) })
}

// TestOwnPrefixNeverLearned: a path for a prefix the node announces
// itself (its block, here sent back by a peer that prefers it while the
// node drains) is never installed, with either kind of speaker; when the
// node stops announcing the prefix, the learned path is installed.
func TestOwnPrefixNeverLearned(t *testing.T) {
	for _, withPaths := range []bool{false, true} {
		t.Run(map[bool]string{false: "best paths", true: "received paths"}[withPaths], func(t *testing.T) {
			var psp *FakePathSpeaker
			var mod func(*Config)
			if withPaths {
				psp = NewFakePathSpeaker()
				mod = func(c *Config) { c.Speaker = psp }
			}
			h := start(t, mod)
			if psp != nil {
				h.sp = psp.FakeSpeaker
			}
			h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), meshConfig("90s"))
			waitUntil(t, "speaker started", func() bool { _, ok := h.sp.Started(); return ok })
			h.fib.ch <- FIBBatch{Snapshot: true, Routes: []FIBEvent{{Route: blackhole("10.65.1.0/26")}}}
			waitUntil(t, "own block announced", func() bool { return len(h.sp.Announced()) == 1 })
			back := Path{NextHop: addr("10.0.0.2"), Peer: addr("10.0.0.2"), LocalPref: 100}
			other := Path{NextHop: addr("10.0.0.2"), Peer: addr("10.0.0.2"), LocalPref: 100}
			if psp != nil {
				psp.Receive(Received{Prefix: pfx("10.65.1.0/26"), Peer: back.Peer, Path: back},
					Received{Prefix: pfx("10.65.2.0/26"), Peer: other.Peer, Path: other})
			} else {
				h.sp.Learn(Destination{Prefix: pfx("10.65.1.0/26"), Paths: []Path{back}},
					Destination{Prefix: pfx("10.65.2.0/26"), Paths: []Path{other}})
			}
			// The other prefix shows that the paths were processed.
			waitUntil(t, "the other node's block installed", func() bool {
				return slices.Contains(renderKernel(h.dp, 81), "10.65.2.0/26 via 10.0.0.2 proto 81")
			})
			if got := renderKernel(h.dp, 81); !cmp.Equal(got, []string{"10.65.2.0/26 via 10.0.0.2 proto 81"}) {
				t.Errorf("kernel %q: the node's own block learned back", got)
			}
			// Not ours any more: the learned path is the route.
			h.fib.ch <- FIBBatch{Routes: []FIBEvent{{Route: blackhole("10.65.1.0/26"), Deleted: true}}}
			waitUntil(t, "the block learned once not ours", func() bool {
				return slices.Contains(renderKernel(h.dp, 81), "10.65.1.0/26 via 10.0.0.2 proto 81")
			})
		})
	}
}

// BenchmarkAdjRIBReevaluate: 100,000 paths of one peer evaluated again
// under a changed filter (BenchmarkFilterChange100k's change without the
// speaker and the kernel).
func BenchmarkAdjRIBReevaluate(b *testing.B) {
	chain := func(cidr string) peerImport {
		f := &api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: "in"}, Spec: api.BGPFilterSpec{
			ImportV4: []api.BGPFilterRule{{CIDR: cidr, MatchOperator: api.MatchIn, Action: api.FilterAccept}, {Action: api.FilterReject}}}}
		f.Default()
		c, err := routepolicy.Compile(f)
		if err != nil {
			b.Fatal(err)
		}
		return peerImport{chain: routepolicy.Chain{Filters: []*routepolicy.Filter{c}}}
	}
	narrow, wide := chain("10.100.0.0/16"), chain("10.100.0.0/15")
	peer := addr("127.0.0.2")
	rib := newAdjRIB()
	for j := range 100000 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + j>>16), byte(j >> 8), byte(j)}), 32)
		rib.set(p, Path{Peer: peer, NextHop: addr("10.98.0.2"), LocalPref: 100, Communities: []api.Community{{Global: 1, Local1: 2}}}, narrow)
	}
	b.ResetTimer()
	for i := range b.N {
		pi := wide
		if i%2 == 1 {
			pi = narrow
		}
		n := 0
		rib.reevaluate(map[netip.Addr]peerImport{peer: pi}, func(p netip.Prefix) { n++; _ = rib.best(p) })
		if n != 100000-65536 {
			b.Fatalf("%d changed", n)
		}
	}
}

// TestReflectingNodeKeepsImportPolicyInSpeaker: a node that reflects
// (routeReflectorClusterID) passes learned routes on, so its speaker's
// sessions keep the import chain (the speaker's table must hold only
// what the policy accepts), and the router installs what the speaker
// reports as accepted without filtering it again.
func TestReflectingNodeKeepsImportPolicyInSpeaker(t *testing.T) {
	sp := NewFakePathSpeaker()
	h := start(t, func(c *Config) { c.Speaker = sp })
	h.sp = sp.FakeSpeaker
	n1 := node("n1", "10.0.0.1/24")
	n1.Spec.BGP.RouteReflectorClusterID = "10.0.0.1"
	tor := &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "tor"}, Spec: api.BGPPeerSpec{
		PeerIP: "10.0.0.254", ASNumber: ptr(uint32(65000)), Filters: []string{"tor-in"}}}
	f := &api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: "tor-in"}, Spec: api.BGPFilterSpec{
		ImportV4: []api.BGPFilterRule{{CIDR: "10.100.0.0/16", MatchOperator: api.MatchIn, Action: api.FilterAccept}}}}
	h.res.snapshot(t, n1, node("n2", "10.0.0.2/24"), meshConfig("90s"), tor, f)
	waitUntil(t, "the ToR's session", func() bool { _, ok := peerPolicy(h.sp, "10.0.0.254"); return ok })
	if g, _ := h.sp.Started(); g.ExportPolicy != ExportNoExternal {
		t.Fatalf("export policy %v: not a reflecting node", g.ExportPolicy)
	}
	if p, _ := peerPolicy(h.sp, "10.0.0.254"); chainOf(p.Import) != "tor-in,reject" {
		t.Errorf("the reflecting node's speaker got import %s, want tor-in,reject", chainOf(p.Import))
	}
	h.fib.ch <- FIBBatch{Snapshot: true}
	// What the speaker reports it accepted: installed as it is.
	sp.Receive(Received{Prefix: pfx("10.100.1.0/24"), Peer: addr("10.0.0.254"),
		Path: Path{Peer: addr("10.0.0.254"), NextHop: addr("10.0.0.254"), LocalPref: 100, ASPath: []uint32{65000}}})
	want := []string{"10.100.1.0/24 via 10.0.0.254 proto 81"}
	waitUntil(t, "the accepted route installed", func() bool { return cmp.Equal(want, renderKernel(h.dp, 81)) })
}
