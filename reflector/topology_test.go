package reflector

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// ebgpRoute is what an eBGP neighbour sees of a route.
type ebgpRoute struct {
	NextHop      string
	ASPath       string
	HasLocalPref bool
	HasRRAttrs   bool // ORIGINATOR_ID or CLUSTER_LIST
}

func readEBGPRoute(t *testing.T, s *rawSpeaker, prefix string) ebgpRoute {
	t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer s.conn.SetReadDeadline(time.Time{})
	for {
		u, err := s.nextUpdate(false)
		if err != nil {
			t.Fatalf("waiting for %s: %v", prefix, err)
		}
		found := false
		for _, n := range u.NLRI {
			found = found || n.String() == prefix
		}
		if !found {
			continue
		}
		var r ebgpRoute
		for _, a := range u.PathAttributes {
			switch v := a.(type) {
			case *bgp.PathAttributeNextHop:
				r.NextHop = v.Value.String()
			case *bgp.PathAttributeAsPath:
				for _, seg := range v.Value {
					r.ASPath += fmt.Sprint(seg.GetAS())
				}
			case *bgp.PathAttributeLocalPref:
				r.HasLocalPref = true
			case *bgp.PathAttributeOriginatorId, *bgp.PathAttributeClusterList:
				r.HasRRAttrs = true
			}
		}
		return r
	}
}

func ebgpUpdate(nh string, asPath []uint32, prefixes ...string) *bgp.BGPMessage {
	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, asPath)}),
		bgp.NewPathAttributeNextHop(nh),
	}
	var nlri []*bgp.IPAddrPrefix
	for _, p := range pfx(prefixes...) {
		nlri = append(nlri, bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String()))
	}
	return bgp.NewBGPUpdateMessage(nil, attrs, nlri)
}

// TestEBGP: routes to an eBGP neighbour get next-hop-self, our AS
// prepended and no LOCAL_PREF or reflection attributes; routes from it
// with our AS in the AS_PATH are dropped, the others reach clients.
func TestEBGP(t *testing.T) {
	const peerAS = 65100
	cfg := testConfig("127.0.0.2")
	cfg.Neighbors = append(cfg.Neighbors, NeighborConfig{Address: netip.MustParseAddr("127.0.0.5"), ASN: peerAS, Passive: true})
	cfg.Policy.EBGPDefaultAccept = true // eBGP without filters (RFC 8212 would send nothing)
	_, addr := startReflector(t, cfg)
	client := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	ext := connect(t, addr, "127.0.0.5", speakerOpts{asn: peerAS, id: "10.0.0.5", hold: 90})
	collect(t, client, false, hasEORs)
	collect(t, ext, false, hasEORs)

	client.send(t, ipv4Update("192.0.2.2", pfx("10.30.0.0/24")))
	got := readEBGPRoute(t, ext, "10.30.0.0/24")
	want := ebgpRoute{NextHop: "127.0.0.1", ASPath: "[65000]"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("route exported to eBGP (-want +got):\n%s", d)
	}

	ext.send(t,
		ebgpUpdate("192.0.2.5", []uint32{peerAS, testASN}, "10.31.0.0/24"), // a loop
		ebgpUpdate("192.0.2.5", []uint32{peerAS}, "10.32.0.0/24"),
	)
	view := collect(t, client, false, hasKeys("10.32.0.0/24"))
	wantView := map[string]route{
		"10.32.0.0/24": {Prefix: "10.32.0.0/24", NextHop: "192.0.2.5", LocalPref: 100},
	}
	if d := cmp.Diff(wantView, view); d != "" {
		t.Errorf("client's routes from eBGP (-want +got):\n%s", d)
	}
}

// TestRedundantPair: two reflectors of one cluster, GoBGP clients peer
// with both; when one is stopped the clients keep every route through the
// other.
func TestRedundantPair(t *testing.T) {
	nstest.SkipShort(t, "GoBGP clients")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	clients := []string{"127.0.11.1", "127.0.11.2", "127.0.11.3"}
	var rrs []netip.AddrPort
	var stops []func()
	for i, a := range []string{"127.0.10.1", "127.0.10.2"} {
		cfg := testConfig(clients...)
		cfg.RouterID = netip.MustParseAddr(fmt.Sprintf("10.255.0.%d", i+1))
		cfg.ListenAddrs = []string{a + ":0"}
		_, addr, stop := runReflector(t, cfg)
		t.Cleanup(stop)
		rrs, stops = append(rrs, addr), append(stops, stop)
	}
	var cs []*goClient
	for i, a := range clients {
		c := newGoClient(t, ctx, fmt.Sprintf("10.0.11.%d", i+1), a, false, rrs...)
		c.announce(t, ctx, netip.MustParsePrefix(fmt.Sprintf("10.50.%d.0/24", i)), fmt.Sprintf("192.0.2.%d", i+1))
		cs = append(cs, c)
	}
	all := func(wantPaths int) func() bool {
		return func() bool {
			for i, c := range cs {
				for j := range cs {
					if j != i && len(c.paths(ctx, fmt.Sprintf("10.50.%d.0/24", j))) != wantPaths {
						return false
					}
				}
			}
			return true
		}
	}
	waitFor(t, ctx, "every route from both reflectors", all(2))
	stops[0]()
	waitFor(t, ctx, "clients to lose the first reflector", func() bool {
		for _, c := range cs {
			if c.established(ctx) != 1 {
				return false
			}
		}
		return true
	})
	if !all(1)() {
		t.Fatal("a client lost a route when one reflector of the pair stopped")
	}
	for i, c := range cs {
		for j := range cs {
			if p := c.paths(ctx, fmt.Sprintf("10.50.%d.0/24", j)); j != i && p[0].Neighbor != "127.0.10.2" {
				t.Errorf("client %d: path %+v, want via 127.0.10.2", i, p)
			}
		}
	}
}

// TestHierarchy: a top reflector with two lower reflectors as its
// clients, each with clients of its own; a route crosses the hierarchy
// with both lower clusters and the top's in CLUSTER_LIST.
func TestHierarchy(t *testing.T) {
	top := testConfig("127.0.20.1", "127.0.20.2")
	top.ClusterID = netip.MustParseAddr("10.255.255.100")
	top.RouterID = netip.MustParseAddr("10.255.0.100")
	top.ListenAddrs = []string{"127.0.20.100:0"}
	_, topAddr := startReflector(t, top)
	var lower []netip.AddrPort
	for i := range 2 {
		a := fmt.Sprintf("127.0.20.%d", i+1)
		cfg := testConfig(fmt.Sprintf("127.0.2%d.1", i+1))
		cfg.RouterID = netip.MustParseAddr(fmt.Sprintf("10.255.0.%d", i+1))
		cfg.ClusterID = netip.MustParseAddr(fmt.Sprintf("10.255.255.%d", i+1))
		cfg.ListenAddrs = []string{a + ":0"}
		cfg.ConnectRetry = 200 * time.Millisecond
		cfg.Neighbors = append(cfg.Neighbors, NeighborConfig{ // the top: a non-client
			Address: topAddr.Addr(), Port: topAddr.Port(), LocalAddress: netip.MustParseAddr(a), ASN: testASN,
		})
		_, addr := startReflector(t, cfg)
		lower = append(lower, addr)
	}
	c1 := connect(t, lower[0], "127.0.21.1", opts("10.0.21.1"))
	c2 := connect(t, lower[1], "127.0.22.1", opts("10.0.22.1"))
	collect(t, c1, false, hasEORs)
	collect(t, c2, false, hasEORs)
	c1.send(t, ipv4Update("192.0.2.21", pfx("10.60.0.0/24")))
	got := collect(t, c2, false, hasKeys("10.60.0.0/24"))["10.60.0.0/24"]
	want := route{Prefix: "10.60.0.0/24", NextHop: "192.0.2.21", OriginatorID: "10.0.21.1",
		ClusterList: "[10.255.255.2 10.255.255.100 10.255.255.1]", LocalPref: 100}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("route across the hierarchy (-want +got):\n%s", d)
	}
}

// TestThousandClients: 1,000 raw-speaker clients on 127.x addresses
// establish through a dynamic-neighbour range, and a route from the first
// reaches the last.
func TestThousandClients(t *testing.T) {
	nstest.SkipShort(t, "1,000 sessions")
	const n = 1000
	cfg := testConfig()
	cfg.DynamicNeighbors = []DynamicNeighbor{{Prefix: netip.MustParsePrefix("127.1.0.0/16"), ASN: testASN, Client: true}}
	r, addr := startReflector(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	sp := make([]*rawSpeaker, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			local := fmt.Sprintf("127.1.%d.%d", i/200, i%200+1)
			s, err := dialSpeaker(ctx, addr, local, speakerOpts{asn: testASN, id: fmt.Sprintf("10.1.%d.%d", i/200, i%200+1), hold: 90})
			if err != nil {
				errs <- fmt.Errorf("client %s: %w", local, err)
				return
			}
			sp[i] = s
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, s := range sp {
		defer s.conn.Close()
	}
	// A client's handshake ends when it reads our KEEPALIVE; we reach
	// Established when we read its own, a moment later.
	waitFor(t, ctx, fmt.Sprintf("%d sessions established", n), func() bool {
		est := 0
		for _, ns := range r.Neighbors() {
			if ns.State == StateEstablished && ns.Dynamic {
				est++
			}
		}
		return est == n
	})
	t.Logf("%d clients established in %v", n, time.Since(start).Round(time.Millisecond))
	// The others' End-of-RIBs were queued before the route: drain the last
	// client's until the route arrives.
	sp[0].send(t, ipv4Update("192.0.2.1", pfx("10.70.0.0/24")))
	collect(t, sp[n-1], false, hasKeys("10.70.0.0/24"))
}
