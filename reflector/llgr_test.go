package reflector

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/api"
)

// llgrAttrs are attrs with local preference lp and the communities cs.
func llgrAttrs(lp uint32, nh string, cs ...uint32) *attrs {
	list := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil), bgp.NewPathAttributeLocalPref(lp),
	}
	if len(cs) > 0 {
		list = append(list, bgp.NewPathAttributeCommunities(cs))
	}
	return newAttrs(attrsInput{list: list, nextHop: netip.MustParseAddr(nh)})
}

// TestLLGRBestPath: a path with LLGR_STALE loses to any path without it,
// whatever its other attributes (RFC 9494 4.3); between two LLGR-stale
// paths the usual rules decide.
func TestLLGRBestPath(t *testing.T) {
	p1 := &ribPeer{addr: netip.MustParseAddr("127.0.0.2"), routerID: 1, client: true}
	p2 := &ribPeer{addr: netip.MustParseAddr("127.0.0.3"), routerID: 2, client: true}
	staleHigh := path{src: p1, a: llgrAttrs(500, "198.18.0.1", llgrStaleCommunity)}
	freshLow := path{src: p2, a: llgrAttrs(10, "198.18.0.2")}
	if !staleHigh.a.llgrStale || freshLow.a.llgrStale {
		t.Fatalf("llgrStale flags: %v %v", staleHigh.a.llgrStale, freshLow.a.llgrStale)
	}
	if comparePaths(&freshLow, &staleHigh) >= 0 || comparePaths(&staleHigh, &freshLow) <= 0 {
		t.Errorf("an LLGR-stale path with local pref 500 beats a fresh one with 10")
	}
	ps := []path{staleHigh, freshLow}
	bestPath{}.selectBest(ps)
	if ps[0].src != p2 {
		t.Errorf("selectBest chose %v, want the fresh path", ps[0].src.addr)
	}
	staleLow := path{src: p2, a: llgrAttrs(10, "198.18.0.2", 0xfde80001, llgrStaleCommunity)}
	if comparePaths(&staleHigh, &staleLow) >= 0 {
		t.Errorf("between LLGR-stale paths, local pref 500 does not beat 10")
	}
	if a := llgrAttrs(100, "198.18.0.1", noLLGRCommunity); !a.noLLGR || a.llgrStale {
		t.Errorf("NO_LLGR attrs: noLLGR %v llgrStale %v", a.noLLGR, a.llgrStale)
	}
}

// TestLLGRRIBStateMachine drives the RIB side: a neighbour's stale paths
// become LLGR-stale (community added, best path moves away, NO_LLGR and
// unlisted families dropped), a second entry keeps the first deadline,
// the deadline removes them, and End-of-RIB ends the period.
func TestLLGRRIBStateMachine(t *testing.T) {
	rl := newRIBLoop(slog.New(slog.DiscardHandler), testASN, 1, newEngineMetrics())
	addr := netip.MustParseAddr("127.0.0.2")
	a := &ribPeer{addr: addr, routerID: 1, client: true}
	b := &ribPeer{addr: netip.MustParseAddr("127.0.0.3"), routerID: 2, client: true}
	for _, rp := range []*ribPeer{a, b} {
		rl.peers[rp.addr] = rp
		rl.ix.addPeer(rp)
	}
	v4, v6 := rl.tables[famV4], rl.tables[famV6]
	announce := func(tb *table, p string, rp *ribPeer, at *attrs) {
		if tb.announce(keyOf(netip.MustParsePrefix(p)), rp, rl.attrs.get(at), rl.attrs, &rl.cmp) {
			rp.prefixes++
		}
	}
	announce(v4, "10.1.0.0/24", a, llgrAttrs(200, "198.18.0.1"))
	announce(v4, "10.1.0.0/24", b, llgrAttrs(50, "198.18.0.2"))
	announce(v4, "10.2.0.0/24", a, llgrAttrs(200, "198.18.0.1"))
	announce(v4, "10.3.0.0/24", a, llgrAttrs(200, "198.18.0.1", noLLGRCommunity))
	announce(v6, "2001:db8::/64", a, llgrAttrs(200, "2001:db8::1"))
	rl.flush()
	paths := func(tb *table, p string) []path {
		n, ok := tb.lookup(keyOf(netip.MustParsePrefix(p)))
		if !ok {
			return nil
		}
		return tb.paths(n)
	}
	if ps := paths(v4, "10.1.0.0/24"); ps[0].src != a {
		t.Fatalf("before: best is %v, want a's (local pref 200)", ps[0].src.addr)
	}
	for _, tb := range rl.tables {
		tb.markStale(a) // a went away gracefully (peerDown)
	}

	now := time.Now()
	neg := llgrNeg{recv: families(0).with(famV4), keep: families(0).with(famV4)}
	neg.llst[famV4] = time.Minute
	if next := rl.enterLLGR(addr, neg, now); !next.Equal(now.Add(time.Minute)) {
		t.Fatalf("enterLLGR deadline %v, want %v", next, now.Add(time.Minute))
	}
	rl.flush()
	ps := paths(v4, "10.1.0.0/24")
	if len(ps) != 2 || ps[0].src != b || !ps[1].a.llgrStale || !ps[1].stale {
		t.Fatalf("10.1.0.0/24 after entering LLGR: %+v, want b's path best and a's LLGR-stale", ps)
	}
	if !slices.ContainsFunc(ps[1].a.list, func(p bgp.PathAttributeInterface) bool {
		c, ok := p.(*bgp.PathAttributeCommunities)
		return ok && slices.Contains(c.Value, llgrStaleCommunity)
	}) {
		t.Errorf("a's LLGR-stale path lacks the LLGR_STALE community: %v", ps[1].a.list)
	}
	if ps := paths(v4, "10.2.0.0/24"); len(ps) != 1 || !ps[0].a.llgrStale || ps[0].a.localPref != 200 {
		t.Errorf("10.2.0.0/24: %+v, want a's path LLGR-stale with its local pref", ps)
	}
	if ps := paths(v4, "10.3.0.0/24"); len(ps) != 0 {
		t.Errorf("10.3.0.0/24 (NO_LLGR) kept: %+v", ps)
	}
	if ps := paths(v6, "2001:db8::/64"); len(ps) != 0 {
		t.Errorf("IPv6 path kept although the neighbour listed only IPv4: %+v", ps)
	}
	if a.prefixes != 2 || a.llgr != neg.keep {
		t.Errorf("a: prefixes %d llgr %b, want 2 and IPv4", a.prefixes, a.llgr)
	}

	// A second period (a restarted again without synchronising) keeps
	// the first deadline.
	if next := rl.enterLLGR(addr, neg, now.Add(30*time.Second)); !next.Equal(now.Add(time.Minute)) {
		t.Errorf("second enterLLGR deadline %v, want the first %v", next, now.Add(time.Minute))
	}
	if next := rl.expireLLGR(addr, now.Add(59*time.Second)); !next.Equal(now.Add(time.Minute)) || a.prefixes != 2 {
		t.Errorf("before the deadline: next %v, prefixes %d", next, a.prefixes)
	}
	if next := rl.expireLLGR(addr, now.Add(time.Minute)); !next.IsZero() {
		t.Errorf("after the deadline: next %v, want none", next)
	}
	rl.flush()
	if ps := paths(v4, "10.1.0.0/24"); len(ps) != 1 || ps[0].src != b {
		t.Errorf("10.1.0.0/24 after the deadline: %+v, want b's path alone", ps)
	}
	if rl.peers[addr] != nil {
		t.Errorf("a still registered with %d prefixes", a.prefixes)
	}
	if n := len(rl.attrs.byKey); n != 1 {
		t.Errorf("%d interned attrs left, want b's alone", n)
	}

	// End-of-RIB ends the period: a later deadline removes nothing.
	c := &ribPeer{addr: netip.MustParseAddr("127.0.0.4"), routerID: 3, client: true}
	rl.peers[c.addr] = c
	rl.ix.addPeer(c)
	announce(v4, "10.4.0.0/24", c, llgrAttrs(100, "198.18.0.4"))
	v4.markStale(c)
	rl.enterLLGR(c.addr, neg, now)
	c.member = &member{rp: c}                                    // back
	announce(v4, "10.4.0.0/24", c, llgrAttrs(100, "198.18.0.4")) // re-announced
	rl.endOfRIB(c, families(0).with(famV4))
	if c.llgr != 0 {
		t.Errorf("End-of-RIB left llgr %b", c.llgr)
	}
	c.member = nil
	v4.markStale(c) // down again
	if next := rl.expireLLGR(c.addr, now.Add(time.Hour)); !next.IsZero() || c.prefixes != 1 {
		t.Errorf("the old deadline after End-of-RIB: next %v, prefixes %d, want the path kept", next, c.prefixes)
	}
}

// TestLLGRCapabilityNegotiation: the reflector's OPEN carries the LLGR
// capability (code 71) with the configured LLST and the F bit per family,
// and the configured restart time; LLGR without graceful restart, or
// without LongLivedStaleTime, is not negotiated.
func TestLLGRCapabilityNegotiation(t *testing.T) {
	cfg := grConfig("127.0.0.2", "127.0.0.3")
	cfg.Neighbors[0].RestartTime = 7 * time.Second
	cfg.Neighbors[0].LongLivedStaleTime = 3600 * time.Second
	_, addr := startReflector(t, cfg)
	s := connect(t, addr, "127.0.0.2", speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90, gr: true, llgr: 60})
	var gr *bgp.CapGracefulRestart
	var ll *bgp.CapLongLivedGracefulRestart
	for _, p := range s.open.OptParams {
		if pc, ok := p.(*bgp.OptionParameterCapability); ok {
			for _, c := range pc.Capability {
				switch c := c.(type) {
				case *bgp.CapGracefulRestart:
					gr = c
				case *bgp.CapLongLivedGracefulRestart:
					ll = c
				}
			}
		}
	}
	if gr == nil || gr.Time != 7 {
		t.Fatalf("graceful restart capability %+v, want restart time 7", gr)
	}
	if ll == nil || len(ll.Tuples) != 2 {
		t.Fatalf("LLGR capability %+v, want IPv4 and IPv6", ll)
	}
	for _, tu := range ll.Tuples {
		if tu.Flags != 0x80 || tu.RestartTime != 3600 {
			t.Errorf("LLGR tuple %+v, want F bit and LLST 3600", tu)
		}
	}
	other := connect(t, addr, "127.0.0.3", speakerOpts{asn: testASN, id: "10.0.0.3", hold: 90, gr: true})
	for _, p := range other.open.OptParams {
		if pc, ok := p.(*bgp.OptionParameterCapability); ok {
			for _, c := range pc.Capability {
				if _, ok := c.(*bgp.CapLongLivedGracefulRestart); ok {
					t.Errorf("LLGR capability sent to a neighbour without LongLivedStaleTime")
				}
			}
		}
	}

	// Negotiation itself.
	sess := &session{cfg: NeighborConfig{GracefulRestart: true, LongLivedStaleTime: time.Hour}}
	c := bgp.NewCapLongLivedGracefulRestart([]*bgp.CapLongLivedGracefulRestartTuple{
		bgp.NewCapLongLivedGracefulRestartTuple(bgp.RF_IPv4_UC, true, 7200),
		bgp.NewCapLongLivedGracefulRestartTuple(bgp.RF_IPv6_UC, false, 0),
	})
	n := sess.parseLLGR(c)
	if n.recv != unicastFamilies || n.keep != families(0).with(famV4) || n.fwd != families(0).with(famV4) || n.llst[famV4] != time.Hour {
		t.Errorf("parseLLGR: %+v, want both received, IPv4 kept with F, LLST capped at our hour", n)
	}
	sess.cfg.LongLivedStaleTime = 0
	if n := sess.parseLLGR(c); n.recv != 0 {
		t.Errorf("parseLLGR without LongLivedStaleTime: %+v", n)
	}
}

// commIs holds when a view has p with exactly the communities comm
// ("65535:6"; "" for none).
func commIs(p, comm string) func(view) bool {
	return func(v view) bool { r, ok := v[p]; return ok && strings.Contains(r, "comm=["+comm+"]") }
}

var hasEOR4 = has("EOR ipv4-unicast")

// TestLLGRHelper: a client that negotiated LLGR goes away; when its
// restart time ends its routes stay, with LLGR_STALE, at a neighbour that
// negotiated LLGR and are withdrawn at one that did not; its NO_LLGR
// route goes everywhere. It comes back, re-announces one route and sends
// End-of-RIB: the other goes, the re-announced one loses LLGR_STALE.
func TestLLGRHelper(t *testing.T) {
	cfg := grConfig("127.0.0.2", "127.0.0.3", "127.0.0.4")
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].LongLivedStaleTime = time.Hour
	}
	r, addr := startReflector(t, cfg)
	ao := speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90, gr: true, grTime: 1, llgr: 3600}
	a := connect(t, addr, "127.0.0.2", ao)
	llgrMon := connect(t, addr, "127.0.0.3", speakerOpts{asn: testASN, id: "10.0.0.3", hold: 90, gr: true, llgr: 3600})
	plainMon := connect(t, addr, "127.0.0.4", speakerOpts{asn: testASN, id: "10.0.0.4", hold: 90, gr: true})
	lv, pv := view{}, view{}
	readView(t, llgrMon, lv, hasEOR4)
	readView(t, plainMon, pv, hasEOR4)
	collect(t, a, false, hasEORs)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.30.0.0/24", "10.30.1.0/24")))
	a.send(t, ipv4Update("192.0.2.2", pfx("10.30.2.0/24"), bgp.NewPathAttributeCommunities([]uint32{noLLGRCommunity})))
	for _, m := range []struct {
		s *rawSpeaker
		v view
	}{{llgrMon, lv}, {plainMon, pv}} {
		readView(t, m.s, m.v, func(v view) bool {
			return commIs("10.30.0.0/24", "")(v) && commIs("10.30.1.0/24", "")(v) && commIs("10.30.2.0/24", "65535:7")(v)
		})
	}

	a.conn.Close() // a restart: no NOTIFICATION
	down := time.Now()
	readView(t, llgrMon, lv, func(v view) bool {
		return commIs("10.30.0.0/24", "65535:6")(v) && commIs("10.30.1.0/24", "65535:6")(v) && hasNot("10.30.2.0/24")(v)
	})
	if el := time.Since(down); el < 800*time.Millisecond {
		t.Errorf("LLGR-stale after %v, before the 1 s restart time", el)
	}
	readView(t, plainMon, pv, hasNot("10.30.0.0/24", "10.30.1.0/24", "10.30.2.0/24"))
	for _, n := range r.Neighbors() {
		if n.Address == "127.0.0.2" && n.PrefixesIn != 2 {
			t.Errorf("a holds %d prefixes in the RIB, want its 2 LLGR-stale ones", n.PrefixesIn)
		}
	}

	a2 := connect(t, addr, "127.0.0.2", ao)
	collect(t, a2, false, hasKeys("EOR ipv4-unicast"))
	a2.send(t, ipv4Update("192.0.2.2", pfx("10.30.0.0/24")))
	readView(t, llgrMon, lv, commIs("10.30.0.0/24", ""))
	readView(t, plainMon, pv, commIs("10.30.0.0/24", ""))
	if _, ok := lv["10.30.1.0/24"]; !ok {
		t.Errorf("the LLGR-stale route went before End-of-RIB: %v", lv)
	}
	a2.send(t, bgp.NewEndOfRib(bgp.RF_IPv4_UC))
	readView(t, llgrMon, lv, hasNot("10.30.1.0/24"))
	if !commIs("10.30.0.0/24", "")(lv) {
		t.Errorf("after End-of-RIB: %v, want 10.30.0.0/24 fresh", lv)
	}
}

// TestLLGRStaleTimeExpiry: a client that never comes back has its
// LLGR-stale routes removed when the long-lived stale time it advertised
// (1 s, below our hour) runs out after its restart time (1 s).
func TestLLGRStaleTimeExpiry(t *testing.T) {
	cfg := grConfig("127.0.0.2", "127.0.0.3")
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].LongLivedStaleTime = time.Hour
	}
	r, addr := startReflector(t, cfg)
	a := connect(t, addr, "127.0.0.2", speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90, gr: true, grTime: 1, llgr: 1})
	mon := connect(t, addr, "127.0.0.3", speakerOpts{asn: testASN, id: "10.0.0.3", hold: 90, gr: true, llgr: 3600})
	v := view{}
	readView(t, mon, v, hasEOR4)
	collect(t, a, false, hasEORs)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.31.0.0/24")))
	readView(t, mon, v, commIs("10.31.0.0/24", ""))
	a.conn.Close()
	down := time.Now()
	readView(t, mon, v, commIs("10.31.0.0/24", "65535:6"))
	readView(t, mon, v, hasNot("10.31.0.0/24"))
	if el := time.Since(down); el < 1800*time.Millisecond {
		t.Errorf("LLGR-stale route removed after %v, before restart time plus LLST (2 s)", el)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, _ := r.RIBStats(ctx); st.Paths != 0 {
		t.Errorf("RIB holds %d paths, want none", st.Paths)
	}
}

// TestLLGRReconnectWithoutForwardingState: a client back in its
// long-lived stale period without the F bit has its stale routes removed
// at once (RFC 9494 4.2), not at End-of-RIB.
func TestLLGRReconnectWithoutForwardingState(t *testing.T) {
	cfg := grConfig("127.0.0.2", "127.0.0.3")
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].LongLivedStaleTime = time.Hour
	}
	_, addr := startReflector(t, cfg)
	ao := speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90, gr: true, grTime: 1, llgr: 3600}
	a := connect(t, addr, "127.0.0.2", ao)
	mon := connect(t, addr, "127.0.0.3", speakerOpts{asn: testASN, id: "10.0.0.3", hold: 90, gr: true, llgr: 3600})
	v := view{}
	readView(t, mon, v, hasEOR4)
	collect(t, a, false, hasEORs)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.32.0.0/24")))
	readView(t, mon, v, commIs("10.32.0.0/24", ""))
	a.conn.Close()
	readView(t, mon, v, commIs("10.32.0.0/24", "65535:6"))
	ao.llgrNoF = true
	connect(t, addr, "127.0.0.2", ao)
	readView(t, mon, v, hasNot("10.32.0.0/24"))
}

// TestLLGRConfigValidation: bad times are refused with the field's path.
func TestLLGRConfigValidation(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"restartTime: 5000s", "neighbors[0].restartTime: must be whole seconds from 1s to 4095s"},
		{"restartTime: 1500ms", "neighbors[0].restartTime: must be whole seconds"},
		{"longLivedStaleTime: 20000000s", "neighbors[0].longLivedStaleTime: must be whole seconds up to 16777215s"},
		{"longLivedStaleTime: 1h\n  gracefulRestart: false", "neighbors[0].longLivedStaleTime: needs gracefulRestart"},
		{"longLivedStaleTime: soon", `neighbors[0].longLivedStaleTime: "soon" is not a duration`},
	} {
		_, err := ParseConfigFile([]byte("routerID: 10.0.0.1\nasNumber: 65000\nneighbors:\n- address: 10.0.0.2\n  " + tc.yaml + "\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
	_, err := ParseConfigFile([]byte("routerID: 10.0.0.1\nasNumber: 65000\ndynamicNeighbors:\n- prefix: 10.1.0.0/16\n  longLivedStaleTime: 1.5s\n"))
	if err == nil || !strings.Contains(err.Error(), "dynamicNeighbors[0].longLivedStaleTime") {
		t.Errorf("dynamic range: error %v", err)
	}
	c, err := ParseConfigFile([]byte(`routerID: 10.0.0.1
asNumber: 65000
neighbors:
- address: 10.0.0.2
  restartTime: 5s
  longLivedStaleTime: 1h
dynamicNeighbors:
- prefix: 10.1.0.0/16
  longLivedStaleTime: 10m
`))
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Neighbors[0]; n.RestartTime != 5*time.Second || n.LongLivedStaleTime != time.Hour {
		t.Errorf("neighbour: restart %v LLST %v", n.RestartTime, n.LongLivedStaleTime)
	}
	if nc, ok := c.dynamicFor(netip.MustParseAddr("10.1.2.3")); !ok || nc.LongLivedStaleTime != 10*time.Minute {
		t.Errorf("dynamic neighbour: %+v", nc)
	}
	bad := Config{RouterID: netip.MustParseAddr("10.0.0.1"), ASN: 65000, Neighbors: []NeighborConfig{
		{Address: netip.MustParseAddr("10.0.0.2"), ASN: 65000, LongLivedStaleTime: time.Hour},
	}}
	if _, err := bad.validate(); err == nil || !strings.Contains(err.Error(), "Neighbors[0] (10.0.0.2).LongLivedStaleTime: needs GracefulRestart") {
		t.Errorf("Config without GracefulRestart: %v", err)
	}
}

// TestLLGRPolicyChange: a path of a client in its long-lived stale period
// that a new import policy accepts (it was rejected, kept in the
// Adj-RIB-In) enters the RIB LLGR-stale too.
func TestLLGRPolicyChange(t *testing.T) {
	rejectIn := func(cidr string) PolicyConfig {
		return PolicyConfig{
			Filters: []*api.BGPFilter{filter("in", api.BGPFilterSpec{
				ImportV4: []api.BGPFilterRule{{CIDR: cidr, MatchOperator: api.MatchIn, Action: api.FilterReject}}})},
			Neighbors: map[netip.Addr][]string{netip.MustParseAddr("127.0.0.2"): {"in"}},
		}
	}
	cfg := grConfig("127.0.0.2", "127.0.0.3")
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].LongLivedStaleTime = time.Hour
	}
	cfg.Policy = rejectIn("10.34.1.0/24")
	r, addr := startReflector(t, cfg)
	a := connect(t, addr, "127.0.0.2", speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90, gr: true, grTime: 1, llgr: 3600})
	mon := connect(t, addr, "127.0.0.3", speakerOpts{asn: testASN, id: "10.0.0.3", hold: 90, gr: true, llgr: 3600})
	v := view{}
	readView(t, mon, v, hasEOR4)
	collect(t, a, false, hasEORs)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.34.0.0/24", "10.34.1.0/24")))
	readView(t, mon, v, commIs("10.34.0.0/24", ""))
	a.conn.Close()
	readView(t, mon, v, commIs("10.34.0.0/24", "65535:6"))
	if err := r.SetPolicy(rejectIn("10.35.0.0/16")); err != nil {
		t.Fatal(err)
	}
	readView(t, mon, v, has("10.34.1.0/24"))
	if !commIs("10.34.1.0/24", "65535:6")(v) {
		t.Errorf("newly accepted path of the LLGR-stale client: %q, want LLGR_STALE", v["10.34.1.0/24"])
	}
}
