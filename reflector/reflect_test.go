package reflector

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

const testASN = 65000

func testConfig(clients ...string) Config {
	cfg := Config{RouterID: netip.MustParseAddr("10.255.0.1"), ASN: testASN, ClusterID: netip.MustParseAddr("10.255.255.1")}
	for _, c := range clients {
		cfg.Neighbors = append(cfg.Neighbors, NeighborConfig{Address: netip.MustParseAddr(c), ASN: testASN, Client: true, Passive: true})
	}
	return cfg
}

// route is a received route rendered for comparison.
type route struct {
	Prefix       string
	NextHop      string
	OriginatorID string
	ClusterList  string
	LocalPref    uint32
	PathID       uint32
}

// collect reads UPDATEs until End-of-RIB or until want routes are present,
// and returns the routes by prefix (withdrawals delete).
func collect(t *testing.T, s *rawSpeaker, addPath bool, until func(map[string]route) bool) map[string]route {
	t.Helper()
	return collectInto(t, s, addPath, map[string]route{}, until)
}

// collectInto is collect applying the UPDATEs to an existing view.
func collectInto(t *testing.T, s *rawSpeaker, addPath bool, got map[string]route, until func(map[string]route) bool) map[string]route {
	t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer s.conn.SetReadDeadline(time.Time{})
	for !until(got) {
		u, err := s.nextUpdate(addPath)
		if err != nil {
			t.Fatalf("reading: %v (have %v)", err, got)
		}
		if eor, rf := u.IsEndOfRib(); eor {
			got["EOR "+rf.String()] = route{}
			continue
		}
		applyUpdate(got, u)
	}
	return got
}

func applyUpdate(got map[string]route, u *bgp.BGPUpdate) {
	key := func(p bgp.AddrPrefixInterface) string {
		if id := p.PathIdentifier(); id != 0 {
			return fmt.Sprintf("%s#%d", p.String(), id)
		}
		return p.String()
	}
	for _, w := range u.WithdrawnRoutes {
		delete(got, key(w))
	}
	var r route
	var nlri []bgp.AddrPrefixInterface
	for _, n := range u.NLRI {
		nlri = append(nlri, n)
	}
	for _, a := range u.PathAttributes {
		switch v := a.(type) {
		case *bgp.PathAttributeNextHop:
			r.NextHop = v.Value.String()
		case *bgp.PathAttributeOriginatorId:
			r.OriginatorID = v.Value.String()
		case *bgp.PathAttributeClusterList:
			r.ClusterList = fmt.Sprint(v.Value)
		case *bgp.PathAttributeLocalPref:
			r.LocalPref = v.Value
		case *bgp.PathAttributeMpReachNLRI:
			r.NextHop = v.Nexthop.String()
			nlri = append(nlri, v.Value...)
		case *bgp.PathAttributeMpUnreachNLRI:
			for _, w := range v.Value {
				delete(got, key(w))
			}
		}
	}
	for _, n := range nlri {
		rr := r
		rr.Prefix = n.String()
		rr.PathID = n.PathIdentifier()
		got[key(n)] = rr
	}
}

func hasKeys(keys ...string) func(map[string]route) bool {
	return func(m map[string]route) bool {
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				return false
			}
		}
		return true
	}
}

var hasEORs = hasKeys("EOR ipv4-unicast", "EOR ipv6-unicast")

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestReflectsBetweenClients(t *testing.T) {
	_, addr := startReflector(t, testConfig("127.0.0.2", "127.0.0.3", "127.0.0.4"))
	ctx := context.Background()
	var sp [3]*rawSpeaker
	for i := range sp {
		s, err := dialSpeaker(ctx, addr, fmt.Sprintf("127.0.0.%d", i+2), speakerOpts{asn: testASN, id: fmt.Sprintf("10.0.0.%d", i+2), hold: 90})
		if err != nil {
			t.Fatal(err)
		}
		defer s.conn.Close()
		sp[i] = s
		collect(t, s, false, hasEORs)
	}
	sp[0].send(t, ipv4Update("192.0.2.2", pfx("10.1.0.0/24", "10.1.1.0/24")))
	want := map[string]route{
		"10.1.0.0/24": {Prefix: "10.1.0.0/24", NextHop: "192.0.2.2", OriginatorID: "10.0.0.2", ClusterList: "[10.255.255.1]", LocalPref: 100},
		"10.1.1.0/24": {Prefix: "10.1.1.0/24", NextHop: "192.0.2.2", OriginatorID: "10.0.0.2", ClusterList: "[10.255.255.1]", LocalPref: 100},
	}
	for _, s := range sp[1:] {
		got := collect(t, s, false, hasKeys("10.1.0.0/24", "10.1.1.0/24"))
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("reflected routes (-want +got):\n%s", d)
		}
	}
	// The originator gets nothing back; a probe from another client shows
	// that nothing was queued before it.
	sp[1].send(t, ipv4Update("192.0.2.3", pfx("10.2.0.0/24")))
	got := collect(t, sp[0], false, hasKeys("10.2.0.0/24"))
	if len(got) != 1 {
		t.Errorf("originator received %v, want only 10.2.0.0/24", got)
	}
	view := collect(t, sp[2], false, hasKeys("10.2.0.0/24"))
	sp[0].send(t, ipv4Withdraw(pfx("10.1.0.0/24")))
	view["10.1.0.0/24"] = route{}
	collectInto(t, sp[2], false, view, func(m map[string]route) bool { _, ok := m["10.1.0.0/24"]; return !ok })
}
