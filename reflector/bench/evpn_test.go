package main

import (
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// TestEVPNBlob: the injector's EVPN UPDATEs decode (GoBGP's codec), fit
// 4,096 bytes, and the monitor's parser finds every route in them.
func TestEVPNBlob(t *testing.T) {
	const p = 500
	b := evpnBlob(3, p)
	seen := map[int]bool{}
	for len(b) > 0 {
		n := int(b[16])<<8 | int(b[17])
		if n > maxMsgLen {
			t.Fatalf("message of %d bytes", n)
		}
		m, err := bgp.ParseBGPMessage(b[:n])
		if err != nil {
			t.Fatalf("codec: %v", err)
		}
		u := m.Body.(*bgp.BGPUpdate)
		for _, a := range u.PathAttributes {
			if r, ok := a.(*bgp.PathAttributeMpReachNLRI); ok && r.Nexthop.String() != "198.18.0.4" {
				t.Errorf("next hop %v", r.Nexthop)
			}
		}
		evpnIndexes(b[headerLen:n], func(idx int) { seen[idx] = true })
		b = b[n:]
	}
	for i := range p {
		if !seen[3*p+i] {
			t.Fatalf("route %d not found (found %d)", 3*p+i, len(seen))
		}
	}
	if len(seen) != p {
		t.Errorf("found %d routes, want %d", len(seen), p)
	}
}
