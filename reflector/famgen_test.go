package reflector

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

func rd(n uint32) bgp.RouteDistinguisherInterface {
	return bgp.NewRouteDistinguisherTwoOctetAS(65000, n)
}

func rt(n uint32) *bgp.TwoOctetAsSpecificExtended {
	return bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, 65000, n, true)
}

var esi1 = bgp.EthernetSegmentIdentifier{Type: bgp.ESI_ARBITRARY, Value: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}}

func mac2(rdn uint32, mac, ip string, labels ...uint32) *bgp.EVPNNLRI {
	return bgp.NewEVPNMacIPAdvertisementRoute(rd(rdn), bgp.EthernetSegmentIdentifier{}, 0, mac, ip, labels)
}

func fsDst(p string) *bgp.FlowSpecIPv4Unicast {
	pp := netip.MustParsePrefix(p)
	return bgp.NewFlowSpecIPv4Unicast([]bgp.FlowSpecComponentInterface{
		bgp.NewFlowSpecDestinationPrefix(bgp.NewIPAddrPrefix(uint8(pp.Bits()), pp.Addr().String())),
		bgp.NewFlowSpecComponent(bgp.FLOW_SPEC_TYPE_IP_PROTO, []*bgp.FlowSpecComponentItem{
			bgp.NewFlowSpecComponentItem(bgp.DEC_NUM_OP_EQ, 6)}),
	})
}

// genCase is one NLRI and a variant that is the same route (or not).
type genCase struct {
	name     string
	f        family
	nlri     bgp.AddrPrefixInterface
	same     bgp.AddrPrefixInterface // differs only in what is not key: same key
	other    bgp.AddrPrefixInterface // a different route: another key
	hasExtra bool
}

func genCases() []genCase {
	lbl := func(l uint32) bgp.MPLSLabelStack { return *bgp.NewMPLSLabelStack(l) }
	return []genCase{
		{"evpn type 2 mac", famEVPN, mac2(1, "aa:bb:cc:00:00:01", "", 100), mac2(1, "aa:bb:cc:00:00:01", "", 200), mac2(2, "aa:bb:cc:00:00:01", "", 100), true},
		{"evpn type 2 mac+ipv4, two labels", famEVPN, mac2(1, "aa:bb:cc:00:00:01", "10.0.0.1", 100, 5000),
			bgp.NewEVPNMacIPAdvertisementRoute(rd(1), esi1, 0, "aa:bb:cc:00:00:01", "10.0.0.1", []uint32{7}),
			mac2(1, "aa:bb:cc:00:00:01", "10.0.0.2", 100, 5000), true},
		{"evpn type 2 mac+ipv6", famEVPN, mac2(1, "aa:bb:cc:00:00:01", "2001:db8::1", 100), mac2(1, "aa:bb:cc:00:00:01", "2001:db8::1", 101),
			mac2(1, "aa:bb:cc:00:00:02", "2001:db8::1", 100), true},
		{"evpn type 5 ipv4", famEVPN, bgp.NewEVPNIPPrefixRoute(rd(1), bgp.EthernetSegmentIdentifier{}, 0, 24, "10.1.0.0", "0.0.0.0", 5000),
			bgp.NewEVPNIPPrefixRoute(rd(1), esi1, 0, 24, "10.1.0.0", "10.9.9.9", 6000),
			bgp.NewEVPNIPPrefixRoute(rd(1), bgp.EthernetSegmentIdentifier{}, 0, 25, "10.1.0.0", "0.0.0.0", 5000), true},
		{"evpn type 5 ipv6", famEVPN, bgp.NewEVPNIPPrefixRoute(rd(1), bgp.EthernetSegmentIdentifier{}, 0, 64, "2001:db8::", "::", 5000),
			bgp.NewEVPNIPPrefixRoute(rd(1), esi1, 0, 64, "2001:db8::", "2001:db8::9", 5001),
			bgp.NewEVPNIPPrefixRoute(rd(2), bgp.EthernetSegmentIdentifier{}, 0, 64, "2001:db8::", "::", 5000), true},
		{"evpn type 1", famEVPN, bgp.NewEVPNEthernetAutoDiscoveryRoute(rd(1), esi1, 0, 100), bgp.NewEVPNEthernetAutoDiscoveryRoute(rd(1), esi1, 0, 200),
			bgp.NewEVPNEthernetAutoDiscoveryRoute(rd(1), esi1, 1, 100), true},
		{"evpn type 3", famEVPN, bgp.NewEVPNMulticastEthernetTagRoute(rd(1), 0, "10.0.0.1"), nil,
			bgp.NewEVPNMulticastEthernetTagRoute(rd(1), 0, "10.0.0.2"), false},
		{"evpn type 4", famEVPN, bgp.NewEVPNEthernetSegmentRoute(rd(1), esi1, "10.0.0.1"), nil,
			bgp.NewEVPNEthernetSegmentRoute(rd(1), esi1, "10.0.0.2"), false},
		{"vpnv4", famVPNv4, bgp.NewLabeledVPNIPAddrPrefix(24, "10.2.0.0", lbl(100), rd(1)), bgp.NewLabeledVPNIPAddrPrefix(24, "10.2.0.0", lbl(300), rd(1)),
			bgp.NewLabeledVPNIPAddrPrefix(24, "10.2.0.0", lbl(100), rd(2)), true},
		{"vpnv6", famVPNv6, bgp.NewLabeledVPNIPv6AddrPrefix(48, "2001:db8:1::", lbl(100), rd(1)), bgp.NewLabeledVPNIPv6AddrPrefix(48, "2001:db8:1::", lbl(7), rd(1)),
			bgp.NewLabeledVPNIPv6AddrPrefix(56, "2001:db8:1::", lbl(100), rd(1)), true},
		{"ipv4 labeled", famLUv4, bgp.NewLabeledIPAddrPrefix(32, "10.3.0.1", lbl(16)), bgp.NewLabeledIPAddrPrefix(32, "10.3.0.1", lbl(17)),
			bgp.NewLabeledIPAddrPrefix(32, "10.3.0.2", lbl(16)), true},
		{"ipv6 labeled", famLUv6, bgp.NewLabeledIPv6AddrPrefix(128, "2001:db8::1", lbl(16)), bgp.NewLabeledIPv6AddrPrefix(128, "2001:db8::1", lbl(18)),
			bgp.NewLabeledIPv6AddrPrefix(128, "2001:db8::2", lbl(16)), true},
		{"ipv4 flowspec", famFSv4, fsDst("10.4.0.0/24"), nil, fsDst("10.4.1.0/24"), false},
		{"evpn type 9, unknown: reflected whole", famEVPN, evpnRaw(9, 1, 2, 3), nil, evpnRaw(9, 1, 2, 4), false},
		{"rtc", famRTC, bgp.NewRouteTargetMembershipNLRI(65000, rt(1)), nil, bgp.NewRouteTargetMembershipNLRI(65000, rt(2)), false},
		{"rtc default", famRTC, &bgp.RouteTargetMembershipNLRI{}, nil, bgp.NewRouteTargetMembershipNLRI(65001, rt(1)), false},
	}
}

func nlriBytes(t *testing.T, p bgp.AddrPrefixInterface) []byte {
	t.Helper()
	b, err := p.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGenSplitJoin: every family's NLRI splits into key and extra and
// joins back to the same bytes; what the RFCs make part of the route
// (RD, prefix, MAC, ...) is in the key, labels, ESIs and gateways are not.
func TestGenSplitJoin(t *testing.T) {
	for _, c := range genCases() {
		t.Run(c.name, func(t *testing.T) {
			b := nlriBytes(t, c.nlri)
			if n, ok := genFrame(c.f, b); !ok || n != len(b) {
				t.Fatalf("genFrame = %d, %v; want %d", n, ok, len(b))
			}
			key, extra, ok := genSplit(c.f, b)
			if !ok {
				t.Fatalf("genSplit refused % x", b)
			}
			if (len(extra) > 0) != c.hasExtra {
				t.Errorf("extra % x, want some: %v", extra, c.hasExtra)
			}
			if got := genJoin(nil, c.f, string(key), string(extra)); !bytes.Equal(got, b) {
				t.Errorf("genJoin:\n got % x\nwant % x", got, b)
			}
			wd := genJoin(nil, c.f, string(key), genWithdrawExtra(string(key)))
			if k2, _, ok := genSplit(c.f, wd); !ok || !bytes.Equal(k2, key) {
				t.Errorf("a withdrawal's NLRI % x keys as % x, want % x", wd, k2, key)
			}
			if c.same != nil {
				k2, e2, _ := genSplit(c.f, nlriBytes(t, c.same))
				if !bytes.Equal(k2, key) {
					t.Errorf("the same route keys differently: % x vs % x", k2, key)
				}
				if bytes.Equal(e2, extra) {
					t.Errorf("the variant's extra equals the original's")
				}
			}
			if k2, _, _ := genSplit(c.f, nlriBytes(t, c.other)); bytes.Equal(k2, key) {
				t.Errorf("another route has the same key % x", key)
			}
		})
	}
}

// TestGenSplitRefuses: NLRI that frame but break their family's rules.
func TestGenSplitRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		f    family
		b    []byte
	}{
		{"vpn shorter than label and RD", famVPNv4, []byte{64, 0, 0, 1, 0, 0, 0, 0, 0}},
		{"vpnv4 prefix over 32 bits", famVPNv4, append([]byte{88 + 40}, make([]byte, 16)...)},
		{"labeled without a label", famLUv4, []byte{16, 0, 0}},
		{"rtc of 8 bits", famRTC, []byte{8, 1}},
		{"empty flowspec", famFSv4, []byte{0}},
		{"flowspec of an unknown component type", famFSv4, []byte{3, 0xff, 0x81, 6}},
		{"flowspec components out of order", famFSv4, []byte{6, 3, 0x81, 6, 1, 8, 10}},
		{"flowspec operator list without its end", famFSv4, []byte{4, 3, 0x01, 6, 0x01}},
		{"evpn type 2 of MAC length 0", famEVPN, append([]byte{2, 33}, make([]byte, 33)...)},
		{"evpn type 5 of a bad length", famEVPN, append([]byte{5, 30}, make([]byte, 30)...)},
	} {
		if n, ok := genFrame(c.f, c.b); !ok || n != len(c.b) {
			t.Fatalf("%s: genFrame = %d, %v", c.name, n, ok)
		}
		if _, _, ok := genSplit(c.f, c.b); ok {
			t.Errorf("%s: genSplit accepted % x", c.name, c.b)
		}
	}
}

// evpnRaw is an EVPN route of a type the codec does not know.

func evpnRaw(typ byte, v ...byte) bgp.AddrPrefixInterface {
	return &rawPrefix{b: append([]byte{typ, byte(len(v))}, v...)}
}

// rawPrefix is an NLRI given as bytes (for the cases the codec cannot
// build); it implements what the tests use.
type rawPrefix struct {
	bgp.EVPNNLRI
	b []byte
}

func (p *rawPrefix) Serialize(...*bgp.MarshallingOption) ([]byte, error) { return p.b, nil }

// TestGenEncodeSkipsOversized: a route too long for a 4,096-byte UPDATE
// (a flowspec NLRI from a neighbour with extended messages) is left out,
// and the routes after it are still sent.
func TestGenEncodeSkipsOversized(t *testing.T) {
	tab := newTable(famFSv4, newIndex())
	big := append([]byte{genWhole}, make([]byte, 4080)...)
	// (the encoder does not parse keys: zeros will do)
	kBig, _ := tab.genKey(big, true)
	small, _, _ := genSplit(famFSv4, nlriBytes(t, fsDst("10.4.0.0/24")))
	kSmall, _ := tab.genKey(small, true)
	oa := &outAttrs{bytes: []byte{0x40, 1, 1, 0}}
	var p partition
	p.announce(oa, nlriItem{k: kBig})
	p.announce(oa, nlriItem{k: kSmall})
	b := p.encodeWith(nil, encoding{f: famFSv4, keys: tab.keys, max: maxMsgLen})
	if countMessages(b) != 1 || len(b) > maxMsgLen {
		t.Fatalf("%d messages, %d bytes", countMessages(b), len(b))
	}
	m, err := bgp.ParseBGPMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Body.(*bgp.BGPUpdate).PathAttributes[0].(*bgp.PathAttributeMpReachNLRI)
	if len(r.Value) != 1 || r.Value[0].String() != fsDst("10.4.0.0/24").String() {
		t.Errorf("sent %v", r.Value)
	}
}
