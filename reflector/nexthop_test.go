package reflector

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestKeepOriginalNextHop: an eBGP neighbour with KeepNextHop receives
// reflected routes with the next hop they came with, while another eBGP
// neighbour still gets next-hop-self; the rest of the eBGP export (our AS
// prepended, no LOCAL_PREF or reflection attributes) is the same. The two
// are in separate update groups.
func TestKeepOriginalNextHop(t *testing.T) {
	cfg := testConfig("127.0.0.2")
	cfg.Neighbors = append(cfg.Neighbors,
		NeighborConfig{Address: netip.MustParseAddr("127.0.0.5"), ASN: 65100, Passive: true},
		NeighborConfig{Address: netip.MustParseAddr("127.0.0.6"), ASN: 65200, Passive: true, KeepNextHop: true},
	)
	cfg.Policy.EBGPDefaultAccept = true // eBGP without filters (RFC 8212 would send nothing)
	r, addr := startReflector(t, cfg)
	client := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	self := connect(t, addr, "127.0.0.5", speakerOpts{asn: 65100, id: "10.0.0.5", hold: 90})
	keep := connect(t, addr, "127.0.0.6", speakerOpts{asn: 65200, id: "10.0.0.6", hold: 90})
	for _, s := range []*rawSpeaker{client, self, keep} {
		collect(t, s, false, hasEORs)
	}

	client.send(t, ipv4Update("192.0.2.2", pfx("10.40.0.0/24")))
	if d := cmp.Diff(ebgpRoute{NextHop: "127.0.0.1", ASPath: "[65000]"}, readEBGPRoute(t, self, "10.40.0.0/24")); d != "" {
		t.Errorf("to the next-hop-self neighbour (-want +got):\n%s", d)
	}
	if d := cmp.Diff(ebgpRoute{NextHop: "192.0.2.2", ASPath: "[65000]"}, readEBGPRoute(t, keep, "10.40.0.0/24")); d != "" {
		t.Errorf("to the keepOriginalNextHop neighbour (-want +got):\n%s", d)
	}
	// A route from one eBGP neighbour reaches the other with its next hop.
	self.send(t, ebgpUpdate("192.0.2.5", []uint32{65100}, "10.41.0.0/24"))
	if d := cmp.Diff(ebgpRoute{NextHop: "192.0.2.5", ASPath: "[65000 65100]"}, readEBGPRoute(t, keep, "10.41.0.0/24")); d != "" {
		t.Errorf("eBGP to keepOriginalNextHop neighbour (-want +got):\n%s", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, _ := r.RIBStats(ctx); st.UpdateGroups != 3 {
		t.Errorf("%d update groups, want 3 (client, eBGP next-hop-self, eBGP keep)", st.UpdateGroups)
	}
}
