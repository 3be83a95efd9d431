package gobgp

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/routepolicy"
	"github.com/bgpfabric/bgpfabric/router"
)

func compileFilter(t *testing.T, name string, spec api.BGPFilterSpec) *routepolicy.Filter {
	t.Helper()
	f, err := routepolicy.Compile(&api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: name}, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func community(s string) api.Community {
	c, err := api.ParseCommunity(s)
	if err != nil {
		panic(err)
	}
	return c
}

// TestSessionPolicyOnTheWire: node a has an eBGP session with a ToR t.
// Under RFC 8212 (default reject, no filter) nothing passes either way,
// though t sent its routes. Filters set on the live session (UpdatePeer,
// no reset) then let through exactly what they accept, with their set
// actions (local-pref, MED, communities in; prepend and a large
// community out), and taking them away withdraws the routes again. The
// sessions are never reset.
func TestSessionPolicyOnTheWire(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a, ca := startSpeaker(t, ctx, "127.0.0.1", port)
	tor, ct := startSpeaker(t, ctx, "127.0.0.2", port, 65100)
	addrA, addrT := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	gr := router.GracefulRestart{Enabled: true, RestartTime: 120 * time.Second, StaleRoutesTime: 360 * time.Second}
	rfc8212 := routepolicy.Policy{Import: routepolicy.Chain{Reject: true}, Export: routepolicy.Chain{Reject: true}}
	toT := router.PeerConfig{Address: addrT, Port: uint16(port), PeerAS: 65100, LocalAS: 64512, LocalAddress: addrA, Passive: true,
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, IPv4: true, Policy: rfc8212, GracefulRestart: gr}
	must(t, a.AddPeer(ctx, toT))
	// t's routes first, so that they precede its End-of-RIB.
	def, google, rack := netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("8.8.8.8/32"), netip.MustParsePrefix("10.65.9.0/24")
	pool, other := netip.MustParsePrefix("10.65.1.0/26"), netip.MustParsePrefix("10.66.0.0/16")
	must(t, tor.Announce(ctx, []router.LocalRoute{{Prefix: def}, {Prefix: google}, {Prefix: rack, Communities: []api.Community{community("65100:1")}}}))
	must(t, a.Announce(ctx, []router.LocalRoute{{Prefix: pool}, {Prefix: other}}))
	must(t, tor.AddPeer(ctx, router.PeerConfig{Address: addrA, Port: uint16(port), PeerAS: 64512, LocalAS: 65100, LocalAddress: addrT,
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, IPv4: true, GracefulRestart: gr}))

	// RFC 8212: a received t's three routes and accepted none.
	received := func() router.PeerStatus {
		ps, err := a.Peers(ctx)
		must(t, err)
		for _, p := range ps {
			if p.Address == addrT {
				return p
			}
		}
		return router.PeerStatus{}
	}
	// t's End-of-RIB comes after its routes on a's best-path stream
	// (graceful restart on both ends makes GoBGP send it).
	ca.wait(t, "t's End-of-RIB at a", func() bool { return len(ca.eor[addrT]) > 0 })
	if st := received(); st.PrefixesReceived != 3 {
		t.Fatalf("a received %d routes from t, want 3", st.PrefixesReceived)
	}
	if st := received(); st.PrefixesAccepted != 0 {
		t.Errorf("RFC 8212 session: %d routes counted as accepted, want 0", st.PrefixesAccepted)
	}
	// And a's End-of-RIB at t, after which t must have none of a's
	// routes.
	ct.wait(t, "a's End-of-RIB at t", func() bool { return len(ct.eor[addrA]) > 0 })
	ct.mu.Lock()
	if len(ct.best) != 3 { // t's own three
		t.Errorf("t's table under RFC 8212 has %d destinations, want only its own 3: %v", len(ct.best), ct.best)
	}
	ct.mu.Unlock()
	ca.mu.Lock()
	if len(ca.best) != 2 { // a's own two
		t.Errorf("a's table under RFC 8212 has %d destinations, want only its own 2: %v", len(ca.best), ca.best)
	}
	ca.mu.Unlock()

	// Filters on the live session.
	in := compileFilter(t, "tor-in", api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{
		{CIDR: "0.0.0.0/0", MatchOperator: api.MatchEqual, Action: api.FilterAccept, LocalPref: ptrU32(50)},
		{Communities: []string{"65100:1"}, Action: api.FilterAccept, AddCommunities: []string{"64512:7"}, MED: ptrU32(33)},
	}})
	out := compileFilter(t, "pools-out", api.BGPFilterSpec{ExportV4: []api.BGPFilterRule{
		{CIDR: "10.65.0.0/16", MatchOperator: api.MatchIn, Action: api.FilterAccept, AddCommunities: []string{"64512:1:2"},
			PrependASPath: &api.BGPFilterASPathPrepend{ASNumber: 64512, Repeat: 2}},
	}})
	toT.Policy = routepolicy.Policy{Import: routepolicy.Chain{Filters: []*routepolicy.Filter{in}, Reject: true},
		Export: routepolicy.Chain{Filters: []*routepolicy.Filter{out}, Reject: true}}
	must(t, a.UpdatePeer(ctx, toT, false))
	ca.wait(t, "the default route and the rack route at a", func() bool { return len(ca.best[def]) == 1 && len(ca.best[rack]) == 1 })
	ct.wait(t, "the pool route at t", func() bool { return len(ct.best[pool]) == 1 })
	if st := received(); st.PrefixesAccepted != 2 || st.PrefixesReceived != 3 {
		t.Errorf("with the filters: received %d, accepted %d; want 3 and 2", st.PrefixesReceived, st.PrefixesAccepted)
	}
	ca.mu.Lock()
	if _, ok := ca.best[google]; ok {
		t.Error("8.8.8.8/32 accepted, which no rule accepts")
	}
	if p := ca.best[def][0]; p.LocalPref != 50 {
		t.Errorf("default route local-pref %d, want 50", p.LocalPref)
	}
	if p := ca.best[rack][0]; p.MED != 33 || !slices.Contains(p.Communities, community("64512:7")) || !slices.Contains(p.Communities, community("65100:1")) {
		t.Errorf("rack route MED %d communities %v, want 33 and 65100:1 plus 64512:7", p.MED, p.Communities)
	}
	ca.mu.Unlock()
	ct.mu.Lock()
	if _, ok := ct.best[other]; ok {
		t.Error("10.66.0.0/16 sent, which no export rule accepts")
	}
	if p := ct.best[pool][0]; !slices.Equal(p.ASPath, []uint32{64512, 64512, 64512}) || !slices.Contains(p.Communities, community("64512:1:2")) {
		t.Errorf("pool route at t: AS path %v communities %v, want prepended twice and 64512:1:2", p.ASPath, p.Communities)
	}
	ct.mu.Unlock()

	// Back to RFC 8212: withdrawn both ways, live.
	toT.Policy = rfc8212
	must(t, a.UpdatePeer(ctx, toT, false))
	ca.wait(t, "t's routes withdrawn at a", func() bool { return len(ca.best[def]) == 0 && len(ca.best[rack]) == 0 })
	ct.wait(t, "the pool route withdrawn at t", func() bool { return len(ct.best[pool]) == 0 })

	for _, c := range []struct {
		col  *collector
		peer netip.Addr
	}{{ca, addrT}, {ct, addrA}} {
		// Session events and routes come through separate watches: on a
		// loaded machine the Established event can arrive after the
		// routes. A reset would show as a second Established.
		c.col.wait(t, "the session to "+c.peer.String()+" reported Established", func() bool {
			return slices.Contains(c.col.hist[c.peer], api.BGPEstablished)
		})
		c.col.mu.Lock()
		n := 0
		for _, st := range c.col.hist[c.peer] {
			if st == api.BGPEstablished {
				n++
			}
		}
		if n != 1 || c.col.state[c.peer] != api.BGPEstablished {
			t.Errorf("session to %s went through %v: policy changes must not reset it", c.peer, c.col.hist[c.peer])
		}
		c.col.mu.Unlock()
	}
	// The speaker holds no policy of a deleted peer.
	must(t, a.DeletePeer(ctx, addrT))
	a.peerMu.Lock()
	if len(a.policies) != 0 {
		t.Errorf("policies left after the peer went: %v", a.policies)
	}
	a.peerMu.Unlock()
}

func ptrU32(v uint32) *uint32 { return &v }

// TestRangePolicyOnTheWire: a range of eBGP dynamic neighbours under a
// policy (a filter accepting one prefix in, RFC 8212's reject otherwise):
// a router that connects from the range gets exactly that, both ways.
func TestRangePolicyOnTheWire(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a, ca := startSpeaker(t, ctx, "127.0.0.1", port)
	b, cb := startSpeaker(t, ctx, "127.0.0.2", port, 65002)
	addrA, addrB := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	in := compileFilter(t, "in", api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{
		{CIDR: "10.65.0.0/16", MatchOperator: api.MatchIn, Action: api.FilterAccept}}})
	gr := router.GracefulRestart{Enabled: true, RestartTime: 120 * time.Second, StaleRoutesTime: 120 * time.Second}
	must(t, a.AddPeerRange(ctx, router.PeerRangeConfig{Prefix: netip.MustParsePrefix("127.0.0.0/24"), PeerAS: 65002, LocalAS: 64512,
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, GracefulRestart: gr,
		Policy: routepolicy.Policy{Import: routepolicy.Chain{Filters: []*routepolicy.Filter{in}, Reject: true}, Export: routepolicy.Chain{Reject: true}}}))
	accepted, rejected, own := netip.MustParsePrefix("10.65.2.0/26"), netip.MustParsePrefix("10.66.0.0/16"), netip.MustParsePrefix("10.65.1.0/26")
	must(t, b.Announce(ctx, []router.LocalRoute{{Prefix: accepted}, {Prefix: rejected}}))
	must(t, a.Announce(ctx, []router.LocalRoute{{Prefix: own}}))
	must(t, b.AddPeer(ctx, router.PeerConfig{Address: addrA, Port: uint16(port), PeerAS: 64512, LocalAS: 65002, LocalAddress: addrB,
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, IPv4: true, GracefulRestart: gr}))

	ca.wait(t, "B's End-of-RIB at A", func() bool { return len(ca.eor[addrB]) > 0 })
	cb.wait(t, "A's End-of-RIB at B", func() bool { return len(cb.eor[addrA]) > 0 })
	ca.mu.Lock()
	if len(ca.best[accepted]) != 1 || len(ca.best[rejected]) != 0 {
		t.Errorf("A's table from the range: %v; want only %s", ca.best, accepted)
	}
	ca.mu.Unlock()
	cb.mu.Lock()
	if len(cb.best[own]) != 0 {
		t.Errorf("A sent %s to a range whose export policy rejects everything", own)
	}
	cb.mu.Unlock()
}

// TestGoBGPPolicyAgreesWithEvaluator: the GoBGP statements that a chain
// becomes accept on the wire exactly the routes that package
// routepolicy's Evaluate accepts, over every operator, length bounds,
// standard and large communities, several filters and the default: the
// evaluator is the reference, the wire the test of the translation.
func TestGoBGPPolicyAgreesWithEvaluator(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a, ca := startSpeaker(t, ctx, "127.0.0.1", port)
	tor, _ := startSpeaker(t, ctx, "127.0.0.2", port, 65100)
	addrA, addrT := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	f1 := compileFilter(t, "f1", api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{
		{CIDR: "10.0.0.0/8", MatchOperator: api.MatchNotIn, Communities: []string{"65100:9"}, Action: api.FilterAccept},
		{CIDR: "10.0.0.0/8", MatchOperator: api.MatchNotIn, Action: api.FilterReject},
		{CIDR: "10.1.0.0/16", MatchOperator: api.MatchIn, PrefixLength: &api.BGPFilterPrefixLength{Min: ptrInt(24), Max: ptrInt(26)}, Action: api.FilterAccept},
		{CIDR: "10.1.0.0/16", MatchOperator: api.MatchIn, Action: api.FilterReject},
		{CIDR: "10.2.0.0/16", MatchOperator: api.MatchEqual, Action: api.FilterAccept},
	}})
	f2 := compileFilter(t, "f2", api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{
		{PrefixLength: &api.BGPFilterPrefixLength{Min: ptrInt(28)}, Action: api.FilterReject},
		{CIDR: "10.3.0.0/16", MatchOperator: api.MatchNotEqual, Communities: []string{"65100:1", "65100:1:1"}, Action: api.FilterAccept},
		{Communities: []string{"65100:2:2"}, Action: api.FilterAccept},
	}})
	chain := routepolicy.Chain{Filters: []*routepolicy.Filter{f1, f2}, Reject: true}
	must(t, a.AddPeer(ctx, router.PeerConfig{Address: addrT, Port: uint16(port), PeerAS: 65100, LocalAS: 64512, LocalAddress: addrA, Passive: true,
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, IPv4: true, GracefulRestart: router.GracefulRestart{Enabled: true, RestartTime: time.Minute, StaleRoutesTime: time.Minute},
		Policy: routepolicy.Policy{Import: chain}}))

	type rt struct {
		p     string
		comms []string
	}
	routes := []rt{
		{"192.168.0.0/16", nil}, {"192.168.1.0/24", []string{"65100:9"}}, {"0.0.0.0/0", nil},
		{"10.1.0.0/16", nil}, {"10.1.2.0/24", nil}, {"10.1.2.64/26", nil}, {"10.1.2.0/27", nil},
		{"10.2.0.0/16", nil}, {"10.2.1.0/24", nil},
		{"10.3.0.0/16", []string{"65100:1"}}, {"10.3.1.0/24", []string{"65100:1"}}, {"10.3.2.0/24", []string{"65100:1:1"}},
		{"10.3.3.0/24", []string{"65100:7"}}, {"10.4.0.0/16", []string{"65100:2:2"}}, {"10.4.1.16/28", []string{"65100:2:2"}},
		{"10.5.0.0/16", nil},
	}
	var local []router.LocalRoute
	want := map[netip.Prefix]bool{}
	for _, r := range routes {
		lr := router.LocalRoute{Prefix: netip.MustParsePrefix(r.p)}
		for _, c := range r.comms {
			lr.Communities = append(lr.Communities, community(c))
		}
		local = append(local, lr)
		if _, ok := chain.Evaluate(routepolicy.Import, routepolicy.Route{Prefix: lr.Prefix, Communities: lr.Communities, FromPeer: true}); ok {
			want[lr.Prefix] = true
		}
	}
	if len(want) < 5 || len(want) > len(routes)-5 {
		t.Fatalf("the evaluator accepts %d of %d routes: the cases do not exercise both outcomes", len(want), len(routes))
	}
	must(t, tor.Announce(ctx, local))
	must(t, tor.AddPeer(ctx, router.PeerConfig{Address: addrA, Port: uint16(port), PeerAS: 64512, LocalAS: 65100, LocalAddress: addrT,
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, IPv4: true, GracefulRestart: router.GracefulRestart{Enabled: true, RestartTime: time.Minute, StaleRoutesTime: time.Minute}}))
	ca.wait(t, "t's End-of-RIB at a", func() bool { return len(ca.eor[addrT]) > 0 })
	ca.mu.Lock()
	defer ca.mu.Unlock()
	for _, r := range local {
		got := len(ca.best[r.Prefix]) > 0 && !ca.best[r.Prefix][0].Local
		if got != want[r.Prefix] {
			t.Errorf("%s %v: accepted on the wire %v, by the evaluator %v", r.Prefix, r.Communities, got, want[r.Prefix])
		}
	}
}

func ptrInt(v int) *int { return &v }

// TestAcceptedCountSkipsLoops: a route whose AS path holds our own AS is
// dropped by GoBGP before any policy (RFC 4271 9.1.2) but stays in the
// Adj-RIB-In, unmarked in its listing: the accepted count of a peer with
// an import policy must not count it, though the policy would accept it.
// (A ToR sends a node its own block back, prepended with the node's AS.)
func TestAcceptedCountSkipsLoops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a, ca := startSpeaker(t, ctx, "127.0.0.1", port)
	tor, _ := startSpeaker(t, ctx, "127.0.0.2", port, 65100)
	addrA, addrT := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	gr := router.GracefulRestart{Enabled: true, RestartTime: 120 * time.Second, StaleRoutesTime: 360 * time.Second}
	all := compileFilter(t, "all-in", api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{{Action: api.FilterAccept}}})
	must(t, a.AddPeer(ctx, router.PeerConfig{Address: addrT, Port: uint16(port), PeerAS: 65100, LocalAS: 64512, LocalAddress: addrA, Passive: true,
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, IPv4: true, GracefulRestart: gr,
		Policy: routepolicy.Policy{Import: routepolicy.Chain{Filters: []*routepolicy.Filter{all}, Reject: true}}}))
	looped, fine := netip.MustParsePrefix("10.65.1.0/26"), netip.MustParsePrefix("10.65.2.0/26")
	loop := compileFilter(t, "loop-out", api.BGPFilterSpec{ExportV4: []api.BGPFilterRule{
		{CIDR: looped.String(), MatchOperator: api.MatchEqual, Action: api.FilterAccept, PrependASPath: &api.BGPFilterASPathPrepend{ASNumber: 64512, Repeat: 1}},
	}})
	must(t, tor.Announce(ctx, []router.LocalRoute{{Prefix: looped}, {Prefix: fine}}))
	must(t, tor.AddPeer(ctx, router.PeerConfig{Address: addrA, Port: uint16(port), PeerAS: 64512, LocalAS: 65100, LocalAddress: addrT,
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, IPv4: true, GracefulRestart: gr,
		Policy: routepolicy.Policy{Export: routepolicy.Chain{Filters: []*routepolicy.Filter{loop}}}}))
	ca.wait(t, "t's End-of-RIB at a", func() bool { return len(ca.eor[addrT]) > 0 })
	ca.mu.Lock()
	_, gotLooped := ca.best[looped]
	_, gotFine := ca.best[fine]
	ca.mu.Unlock()
	if gotLooped || !gotFine {
		t.Fatalf("a's table: looped route present %v, the other %v; want only the other", gotLooped, gotFine)
	}
	ps, err := a.Peers(ctx)
	must(t, err)
	for _, p := range ps {
		if p.Address == addrT && p.PrefixesAccepted != 1 {
			t.Errorf("accepted %d prefixes from t, want 1 (the looped one is not accepted)", p.PrefixesAccepted)
		}
	}
}

// TestAcceptedCache: a large peer's accepted count is listed again only
// after acceptedCountEvery or under a new import policy; a small peer's
// always; a peer without a policy is forgotten.
func TestAcceptedCache(t *testing.T) {
	var c acceptedCache
	a := netip.MustParseAddr("10.0.0.1")
	t0 := time.Now()
	if _, ok := c.get(a, "p1", 100000, t0); ok {
		t.Fatal("empty cache answered")
	}
	c.put(a, "p1", 100000, 65536, t0)
	for _, tc := range []struct {
		name     string
		policy   string
		received uint64
		at       time.Duration
		want     uint64
		ok       bool
	}{
		{"same policy, soon", "p1", 100000, time.Second, 65536, true},
		{"fewer received than cached accepted", "p1", 20000, time.Second, 20000, true},
		{"new policy", "p2", 100000, time.Second, 0, false},
		{"interval over", "p1", 100000, acceptedCountEvery, 0, false},
		{"small peer", "p1", acceptedCountBig, time.Second, 0, false},
	} {
		n, ok := c.get(a, tc.policy, tc.received, t0.Add(tc.at))
		if n != tc.want || ok != tc.ok {
			t.Errorf("%s: got %d %v, want %d %v", tc.name, n, ok, tc.want, tc.ok)
		}
	}
	c.retain(map[netip.Addr]string{})
	if _, ok := c.get(a, "p1", 100000, t0.Add(time.Second)); ok {
		t.Error("a peer without a policy still cached")
	}
}
