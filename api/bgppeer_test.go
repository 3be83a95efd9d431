package api

import (
	"net/netip"
	"strings"
	"testing"
)

func TestBGPPeerValidate(t *testing.T) {
	base := func() *BGPPeer {
		return &BGPPeer{ObjectMeta: ObjectMeta{Name: "tor"}, Spec: BGPPeerSpec{PeerIP: "10.0.0.254", ASNumber: ptr(uint32(65100))}}
	}
	spec := func(f func(*BGPPeerSpec)) func(*BGPPeer) { return func(p *BGPPeer) { f(&p.Spec) } }
	runValidation(t, base, []validationCase[*BGPPeer]{
		{"global peer", func(*BGPPeer) {}, nil},
		{"v4 with port", spec(func(s *BGPPeerSpec) { s.PeerIP = "10.0.0.254:1179" }), nil},
		{"v6", spec(func(s *BGPPeerSpec) { s.PeerIP = "fd00::fe" }), nil},
		{"v6 with port", spec(func(s *BGPPeerSpec) { s.PeerIP = "[fd00::fe]:1179" }), nil},
		{"v6 brackets without port", spec(func(s *BGPPeerSpec) { s.PeerIP = "[fd00::fe]" }), []string{"spec.peerIP"}},
		{"v4 in brackets", spec(func(s *BGPPeerSpec) { s.PeerIP = "[10.0.0.1]:179" }), []string{"spec.peerIP"}},
		{"port 0", spec(func(s *BGPPeerSpec) { s.PeerIP = "10.0.0.1:0" }), []string{"spec.peerIP"}},
		{"port too big", spec(func(s *BGPPeerSpec) { s.PeerIP = "10.0.0.1:65536" }), []string{"spec.peerIP"}},
		{"hostname", spec(func(s *BGPPeerSpec) { s.PeerIP = "tor1.example.com" }), []string{"spec.peerIP"}},
		{"zone", spec(func(s *BGPPeerSpec) { s.PeerIP = "fe80::1%eth0" }), []string{"spec.peerIP"}},
		{"no peer", spec(func(s *BGPPeerSpec) { s.PeerIP = "" }), []string{"spec.peerIP"}},
		{"both peers", spec(func(s *BGPPeerSpec) { s.PeerSelector = "all()" }), []string{"spec.peerSelector"}},
		{"peerIP needs ASN", spec(func(s *BGPPeerSpec) { s.ASNumber = nil }), []string{"spec.asNumber"}},
		{"ASN 0", spec(func(s *BGPPeerSpec) { s.ASNumber = ptr(uint32(0)) }), []string{"spec.asNumber"}},
		{"selector peer without ASN", spec(func(s *BGPPeerSpec) {
			s.PeerIP, s.ASNumber, s.PeerSelector = "", nil, "has(route-reflector)"
		}), nil},
		{"bad peer selector", spec(func(s *BGPPeerSpec) { s.PeerIP, s.PeerSelector = "", "rr == " }), []string{"spec.peerSelector"}},
		{"node", spec(func(s *BGPPeerSpec) { s.Node = "node-1" }), nil},
		{"bad node", spec(func(s *BGPPeerSpec) { s.Node = "Node 1" }), []string{"spec.node"}},
		{"node selector", spec(func(s *BGPPeerSpec) { s.NodeSelector = "rack == 'r1'" }), nil},
		{"node and node selector", spec(func(s *BGPPeerSpec) { s.Node, s.NodeSelector = "n1", "all()" }), []string{"spec.nodeSelector"}},
		{"bad node selector", spec(func(s *BGPPeerSpec) { s.NodeSelector = "rack = 'r1'" }), []string{"spec.nodeSelector"}},
		{"password", spec(func(s *BGPPeerSpec) {
			s.Password = &BGPPassword{SecretKeyRef: &SecretKeySelector{Name: "bgp", Key: "tor_1.pw"}}
		}), nil},
		{"password without ref", spec(func(s *BGPPeerSpec) { s.Password = &BGPPassword{} }), []string{"spec.password.secretKeyRef"}},
		{"password ref incomplete", spec(func(s *BGPPeerSpec) {
			s.Password = &BGPPassword{SecretKeyRef: &SecretKeySelector{Key: "a b"}}
		}), []string{"spec.password.secretKeyRef.key", "spec.password.secretKeyRef.name"}},
		{"timers", spec(func(s *BGPPeerSpec) { s.KeepaliveTime, s.HoldTime = "10s", "30s" }), nil},
		{"hold only", spec(func(s *BGPPeerSpec) { s.HoldTime = "3s" }), nil},
		{"bad timers", spec(func(s *BGPPeerSpec) { s.KeepaliveTime, s.HoldTime = "30s", "10s" }), []string{"spec.keepaliveTime"}},
		{"bad hold", spec(func(s *BGPPeerSpec) { s.HoldTime = "1s" }), []string{"spec.holdTime"}},
		{"source address", spec(func(s *BGPPeerSpec) { s.SourceAddress = SourceAddressNone }), nil},
		{"bad source address", spec(func(s *BGPPeerSpec) { s.SourceAddress = "10.0.0.1" }), []string{"spec.sourceAddress"}},
		{"ttl security", spec(func(s *BGPPeerSpec) { s.TTLSecurity = ptr(1) }), nil},
		{"local AS", spec(func(s *BGPPeerSpec) { s.LocalASNumber = ptr(uint32(4200000000)) }), nil},
		{"local AS 0", spec(func(s *BGPPeerSpec) { s.LocalASNumber = ptr(uint32(0)) }), []string{"spec.localASNumber"}},
		{"next hop modes", spec(func(s *BGPPeerSpec) { s.NextHopMode = "Keep"; s.KeepOriginalNextHop = true }), nil},
		{"next hop self", spec(func(s *BGPPeerSpec) { s.NextHopMode = "Self" }), nil},
		{"next hop self and keep", spec(func(s *BGPPeerSpec) { s.NextHopMode = "Self"; s.KeepOriginalNextHop = true }), []string{"spec.nextHopMode"}},
		{"next hop mode bad", spec(func(s *BGPPeerSpec) { s.NextHopMode = "self" }), []string{"spec.nextHopMode"}},
		{"ttl security range", spec(func(s *BGPPeerSpec) { s.TTLSecurity = ptr(256) }), []string{"spec.ttlSecurity"}},
		{"multihop range", spec(func(s *BGPPeerSpec) { s.EBGPMultihop = ptr(0) }), []string{"spec.ebgpMultihop"}},
		{"filters", spec(func(s *BGPPeerSpec) { s.Filters = []string{"tor-in", "pools-out"} }), nil},
		{"bad filter name", spec(func(s *BGPPeerSpec) { s.Filters = []string{"ok", "Not OK"} }), []string{"spec.filters[1]"}},
		{"ttl security and multihop", spec(func(s *BGPPeerSpec) { s.TTLSecurity, s.EBGPMultihop = ptr(1), ptr(2) }), []string{"spec.ebgpMultihop"}},
		{"families unicast on a global peer", spec(func(s *BGPPeerSpec) { s.Families = []string{"ipv6-unicast", "ipv4-unicast"} }), nil},
		{"families evpn on reflectors", spec(func(s *BGPPeerSpec) {
			s.NodeSelector, s.Families = "has(route-reflector)", []string{"ipv4-unicast", "l2vpn-evpn", "ipv4-vpn", "rtc"}
		}), nil},
		{"families evpn on a node", spec(func(s *BGPPeerSpec) { s.Node, s.Families = "rr1", []string{"l2vpn-evpn"} }), nil},
		{"families evpn on a global peer", spec(func(s *BGPPeerSpec) { s.Families = []string{"ipv4-unicast", "l2vpn-evpn"} }), []string{"spec.families[1]"}},
		{"families unknown", spec(func(s *BGPPeerSpec) { s.Node, s.Families = "rr1", []string{"ipv4-unicast", "ipv4-mcast"} }), []string{"spec.families[1]"}},
		{"families twice", spec(func(s *BGPPeerSpec) { s.Node, s.Families = "rr1", []string{"rtc", "ipv4-vpn", "rtc"} }), []string{"spec.families[2]"}},
		// peerPrefix: dynamic neighbours.
		{"peer prefix, iBGP by default", spec(func(s *BGPPeerSpec) {
			s.PeerIP, s.ASNumber, s.PeerPrefix, s.NodeSelector = "", nil, "10.0.0.0/16", "has(rr)"
		}), nil},
		{"peer prefix v6 with AS and settings", spec(func(s *BGPPeerSpec) {
			s.PeerIP, s.PeerPrefix, s.TTLSecurity, s.MaxPrefixes = "", "fd00:1::/64", ptr(1), 100
			s.Password = &BGPPassword{SecretKeyRef: &SecretKeySelector{Name: "bgp", Key: "range"}}
		}), nil},
		{"peer prefix everything", spec(func(s *BGPPeerSpec) { s.PeerIP, s.PeerPrefix = "", "0.0.0.0/0" }), nil},
		{"peer prefix and peerIP", spec(func(s *BGPPeerSpec) { s.PeerPrefix = "10.0.0.0/16" }), []string{"spec.peerPrefix"}},
		{"peer prefix and peer selector", spec(func(s *BGPPeerSpec) {
			s.PeerIP, s.PeerSelector, s.PeerPrefix = "", "all()", "10.0.0.0/16"
		}), []string{"spec.peerPrefix"}},
		{"peer prefix without length", spec(func(s *BGPPeerSpec) { s.PeerIP, s.PeerPrefix = "", "10.0.0.1" }), []string{"spec.peerPrefix"}},
		{"peer prefix host bits", spec(func(s *BGPPeerSpec) { s.PeerIP, s.PeerPrefix = "", "10.0.0.1/16" }), []string{"spec.peerPrefix"}},
		{"peer prefix garbage", spec(func(s *BGPPeerSpec) { s.PeerIP, s.PeerPrefix = "", "rack-1" }), []string{"spec.peerPrefix"}},
		{"peer prefix zone", spec(func(s *BGPPeerSpec) { s.PeerIP, s.PeerPrefix = "", "fe80::%eth0/64" }), []string{"spec.peerPrefix"}},
		{"peer prefix mapped", spec(func(s *BGPPeerSpec) { s.PeerIP, s.PeerPrefix = "", "::ffff:10.0.0.0/104" }), []string{"spec.peerPrefix"}},
		{"peer prefix ASN 0", spec(func(s *BGPPeerSpec) {
			s.PeerIP, s.PeerPrefix, s.ASNumber = "", "10.0.0.0/16", ptr(uint32(0))
		}), []string{"spec.asNumber"}},
	})
}

// TestBGPPeerPeerPrefixMessages: the errors name the field and say what
// is wrong, as users read them.
func TestBGPPeerPeerPrefixMessages(t *testing.T) {
	for _, tc := range []struct {
		spec BGPPeerSpec
		want string
	}{
		{BGPPeerSpec{PeerPrefix: "10.0.0.0/16", PeerIP: "10.0.0.1", ASNumber: ptr(uint32(1))}, "spec.peerPrefix"},
		{BGPPeerSpec{PeerPrefix: "10.0.0.1/16"}, "host bits set: the network is 10.0.0.0/16"},
		{BGPPeerSpec{}, "one of peerIP, peerSelector and peerPrefix is required"},
	} {
		p := &BGPPeer{ObjectMeta: ObjectMeta{Name: "range"}, Spec: tc.spec}
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want it to contain %q", tc.spec, err, tc.want)
		}
	}
	p := &BGPPeer{Spec: BGPPeerSpec{PeerPrefix: "fd00:0::/64"}}
	p.Default()
	if p.Spec.PeerPrefix != "fd00::/64" {
		t.Errorf("Default: peerPrefix %q, want the canonical fd00::/64", p.Spec.PeerPrefix)
	}
}

func TestParsePeerIP(t *testing.T) {
	tests := []struct {
		in   string
		addr string
		port uint16
	}{
		{"10.0.0.1", "10.0.0.1", 0},
		{"10.0.0.1:179", "10.0.0.1", 179},
		{"fd00::1", "fd00::1", 0},
		{"[fd00::1]:1179", "fd00::1", 1179},
		{"fd00::1:179", "fd00::1:179", 0}, // an address, not a port: brackets are needed
	}
	for _, tt := range tests {
		a, p, err := ParsePeerIP(tt.in)
		if err != nil || a != netip.MustParseAddr(tt.addr) || p != tt.port {
			t.Errorf("ParsePeerIP(%q) = %v, %d, %v; want %s, %d", tt.in, a, p, err, tt.addr, tt.port)
		}
	}
}

func TestBGPPeerDefault(t *testing.T) {
	p := &BGPPeer{}
	p.Default()
	if p.Spec.SourceAddress != SourceAddressUseNodeIP || p.Kind != KindBGPPeer {
		t.Errorf("Default: %+v", p)
	}
}
