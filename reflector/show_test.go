package reflector

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// TestRoutesQuery: exact and longest-prefix lookups return every path of
// the destination, best first, with its attributes; unknown prefixes and
// addresses nothing; a family filter keeps to its family.
func TestRoutesQuery(t *testing.T) {
	r, addr := startReflector(t, testConfig("127.0.0.2", "127.0.0.3"))
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	b := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	collect(t, a, false, hasEORs)
	collect(t, b, false, hasEORs)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.1.0.0/16", "10.0.0.0/8"),
		bgp.NewPathAttributeLocalPref(200), bgp.NewPathAttributeCommunities([]uint32{65000<<16 | 7}),
		bgp.NewPathAttributeLargeCommunities([]*bgp.LargeCommunity{bgp.NewLargeCommunity(65000, 1, 2)}),
		bgp.NewPathAttributeMultiExitDisc(5)))
	b.send(t, ipv4Update("192.0.2.3", pfx("10.1.0.0/16"),
		bgp.NewPathAttributeOriginatorId("10.9.9.9"), bgp.NewPathAttributeClusterList([]string{"10.255.255.7"})))
	collect(t, b, false, hasKeys("10.1.0.0/16", "10.0.0.0/8"))
	a.send(t, ipv6Update("2001:db8::2", "2001:db8:1::/48"))
	// b's UPDATE reflects nothing (a's path is better): wait for the
	// RIB's four paths instead.
	waitPaths(t, r, 4)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	query := func(q RouteQuery) []RouteDestination {
		t.Helper()
		var out []RouteDestination
		if err := r.Routes(ctx, q, func(ds []RouteDestination) error { out = append(out, ds...); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	ip := netip.MustParseAddr
	want := []RouteDestination{{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Family: "ipv4-unicast", Paths: []RoutePath{
		{Peer: ip("127.0.0.2"), PeerAS: testASN, NextHop: ip("192.0.2.2"), Origin: "igp", ASPath: []uint32{}, LocalPref: 200, MED: 5,
			Communities: []string{"65000:7", "65000:1:2"}, Best: true},
		{Peer: ip("127.0.0.3"), PeerAS: testASN, NextHop: ip("192.0.2.3"), Origin: "igp", ASPath: []uint32{}, LocalPref: 100,
			OriginatorID: ip("10.9.9.9"), ClusterList: []netip.Addr{ip("10.255.255.7")}},
	}}}
	addrs := cmp.Comparer(func(x, y netip.Addr) bool { return x == y })
	pfxs := cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })
	if d := cmp.Diff(want, query(RouteQuery{Prefix: netip.MustParsePrefix("10.1.0.0/16")}), addrs, pfxs); d != "" {
		t.Errorf("exact 10.1.0.0/16 (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want, query(RouteQuery{Addr: ip("10.1.200.3")}), addrs, pfxs); d != "" {
		t.Errorf("longest match for 10.1.200.3 (-want +got):\n%s", d)
	}
	if got := query(RouteQuery{Addr: ip("10.2.0.1")}); len(got) != 1 || got[0].Prefix != netip.MustParsePrefix("10.0.0.0/8") {
		t.Errorf("longest match for 10.2.0.1: %+v, want 10.0.0.0/8", got)
	}
	v6 := query(RouteQuery{Addr: ip("2001:db8:1::5")})
	if len(v6) != 1 || v6[0].Prefix != netip.MustParsePrefix("2001:db8:1::/48") || v6[0].Family != "ipv6-unicast" ||
		v6[0].Paths[0].NextHop != ip("2001:db8::2") {
		t.Errorf("longest match for 2001:db8:1::5: %+v, want 2001:db8:1::/48 via 2001:db8::2", v6)
	}
	for _, q := range []RouteQuery{
		{Prefix: netip.MustParsePrefix("10.1.0.0/24")}, {Addr: ip("11.0.0.1")}, {Addr: ip("2001:db8:1::5"), Family: "ipv4-unicast"},
		{Addr: ip("10.1.0.1"), Family: "ipv6-unicast"}, {Prefix: netip.MustParsePrefix("2001:db8::/32")},
	} {
		if got := query(q); len(got) != 0 {
			t.Errorf("%+v: %+v, want nothing", q, got)
		}
	}
	if err := r.Routes(ctx, RouteQuery{Family: "l2vpn-nonesuch"}, func([]RouteDestination) error { return nil }); err == nil {
		t.Error("an unknown family is accepted")
	}
}

// TestRoutesDumpChunks: a whole-RIB dump comes in chunks of at most
// RouteChunk destinations, every destination once, and the RIB loop
// serves other work between chunks (route processing is not stalled for
// the whole dump).
func TestRoutesDumpChunks(t *testing.T) {
	r, addr := startReflector(t, testConfig("127.0.0.2", "127.0.0.3"))
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	b := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	collect(t, a, false, hasEORs)
	collect(t, b, false, hasEORs)
	const n = 2*RouteChunk + 100
	var all []netip.Prefix
	for i := range n {
		all = append(all, netip.PrefixFrom(netip.AddrFrom4([4]byte{20, byte(i >> 8), byte(i), 0}), 24))
	}
	for i := 0; i < n; i += 500 {
		a.send(t, ipv4Update("192.0.2.2", all[i:min(i+500, n)]))
	}
	last := all[n-1].String()
	collect(t, b, false, hasKeys(last))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := map[netip.Prefix]bool{}
	chunks := 0
	err := r.Routes(ctx, RouteQuery{}, func(ds []RouteDestination) error {
		chunks++
		if len(ds) > RouteChunk {
			return fmt.Errorf("a chunk of %d destinations, more than %d", len(ds), RouteChunk)
		}
		for _, d := range ds {
			if seen[d.Prefix] {
				return fmt.Errorf("%v twice", d.Prefix)
			}
			seen[d.Prefix] = true
		}
		// The loop is free between chunks: a route sent now is processed
		// while the dump is under way.
		if chunks == 1 {
			a.send(t, ipv4Withdraw(all[:1]))
			first := all[0].String()
			collectInto(t, b, false, map[string]route{first: {}}, func(m map[string]route) bool { _, ok := m[first]; return !ok })
			if _, ok := r.RIBStats(ctx); !ok {
				return fmt.Errorf("RIB loop not answering during the dump")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if chunks < 3 {
		t.Errorf("%d chunks for %d destinations, want at least 3", chunks, n)
	}
	if len(seen) < n-1 || len(seen) > n {
		t.Errorf("%d destinations dumped, want %d (or %d: one withdrawn during the dump)", len(seen), n, n-1)
	}
}

// waitPaths waits until the RIB holds n paths, asking at each change of
// the reflector's neighbours or at most every 10 ms.
func waitPaths(t *testing.T, r *Reflector, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if st, ok := r.RIBStats(ctx); ok && st.Paths == n {
			return
		}
		select {
		case <-ctx.Done():
			st, _ := r.RIBStats(context.Background())
			t.Fatalf("RIB has %d paths, want %d", st.Paths, n)
		case <-tick.C:
		}
	}
}

// TestRoutesDumpAbandoned: a dump whose reader fails after the first
// chunk (a client gone) ends with that error, and its iterator is stopped
// at once: no goroutine is left walking the table.
func TestRoutesDumpAbandoned(t *testing.T) {
	r, addr := startReflector(t, testConfig("127.0.0.2"))
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	collect(t, a, false, hasEORs)
	var all []netip.Prefix
	for i := range RouteChunk + 10 {
		all = append(all, netip.PrefixFrom(netip.AddrFrom4([4]byte{20, byte(i >> 8), byte(i), 0}), 24))
	}
	for i := 0; i < len(all); i += 500 {
		a.send(t, ipv4Update("192.0.2.2", all[i:min(i+500, len(all))]))
	}
	waitPaths(t, r, len(all))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gone := errors.New("client gone")
	calls := 0
	err := r.Routes(ctx, RouteQuery{}, func([]RouteDestination) error { calls++; return gone })
	if !errors.Is(err, gone) || calls != 1 {
		t.Fatalf("Routes: %v after %d chunks, want the reader's error after 1", err, calls)
	}
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	if strings.Contains(b.String(), "(*table).all") {
		t.Errorf("a goroutine still walks the table after the dump ended:\n%s", b.String())
	}
	// The loop still serves a whole dump.
	n := 0
	if err := r.Routes(ctx, RouteQuery{Family: "ipv4-unicast"}, func(ds []RouteDestination) error { n += len(ds); return nil }); err != nil || n != len(all) {
		t.Errorf("a dump after the abandoned one: %d destinations, %v; want %d", n, err, len(all))
	}
}
