package gobgp

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	bfapi "github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/router"
)

// TestConvertPath decodes paths built by GoBGP's own marshaller.
func TestConvertPath(t *testing.T) {
	age := time.Unix(1700000000, 0)
	v4 := bgp.NewIPAddrPrefix(32, "10.100.0.1")
	v6 := bgp.NewIPv6AddrPrefix(64, "2001:db8::")
	attrs4 := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		bgp.NewPathAttributeNextHop("10.98.0.2"),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{64513, 64514})}),
		bgp.NewPathAttributeCommunities([]uint32{64512<<16 | 7}),
		bgp.NewPathAttributeLargeCommunities([]*bgp.LargeCommunity{bgp.NewLargeCommunity(64512, 1, 2)}),
		bgp.NewPathAttributeLocalPref(200),
		bgp.NewPathAttributeMultiExitDisc(5),
	}
	attrs6 := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		bgp.NewPathAttributeMpReachNLRI("2001:db8::2", []bgp.AddrPrefixInterface{v6}),
	}
	tests := []struct {
		name     string
		nlri     bgp.AddrPrefixInterface
		attrs    []bgp.PathAttributeInterface
		neighbor string
		wantPfx  string
		want     router.Path
	}{
		{"ipv4 from a peer", v4, attrs4, "127.0.0.2", "10.100.0.1/32", router.Path{
			NextHop: netip.MustParseAddr("10.98.0.2"), Peer: netip.MustParseAddr("127.0.0.2"), PeerAS: 64513,
			ASPath:      []uint32{64513, 64514},
			Communities: []bfapi.Community{{Global: 64512, Local1: 7}, {Large: true, Global: 64512, Local1: 1, Local2: 2}},
			LocalPref:   200, MED: 5, Age: age,
		}},
		{"ipv6 local", v6, attrs6, "", "2001:db8::/64", router.Path{
			NextHop: netip.MustParseAddr("2001:db8::2"), Local: true, PeerAS: 64513, Age: age,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ap, err := apiutil.NewPath(tt.nlri, false, tt.attrs, age)
			if err != nil {
				t.Fatal(err)
			}
			ap.NeighborIp, ap.SourceAsn = tt.neighbor, 64513
			pfx, p, err := convertPath(ap)
			if err != nil {
				t.Fatal(err)
			}
			if pfx.String() != tt.wantPfx {
				t.Errorf("prefix %s, want %s", pfx, tt.wantPfx)
			}
			if diff := cmp.Diff(tt.want, p, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("path (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGroupPaths: paths group by destination in order of first
// appearance, withdrawals leave a destination empty, bad paths are skipped.
func TestGroupPaths(t *testing.T) {
	path := func(pfx, nh string, withdraw bool) *api.Path {
		p := netip.MustParsePrefix(pfx)
		ap, err := apiutil.NewPath(bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String()), withdraw,
			[]bgp.PathAttributeInterface{bgp.NewPathAttributeNextHop(nh)}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		ap.NeighborIp = nh
		return ap
	}
	bad := path("10.0.0.9/32", "10.98.0.2", false)
	bad.Nlri = nil
	got := groupPaths([]*api.Path{
		path("10.0.0.1/32", "10.98.0.2", false),
		path("10.0.0.2/32", "10.98.0.2", true),
		bad,
		path("10.0.0.1/32", "10.98.0.3", false),
	}, slog.New(slog.DiscardHandler))
	var short []string
	for _, d := range got {
		s := d.Prefix.String() + ":"
		for _, p := range d.Paths {
			s += " " + p.NextHop.String()
		}
		short = append(short, s)
	}
	want := []string{"10.0.0.1/32: 10.98.0.2 10.98.0.3", "10.0.0.2/32:"}
	if diff := cmp.Diff(want, short); diff != "" {
		t.Errorf("destinations (-want +got):\n%s", diff)
	}
}
