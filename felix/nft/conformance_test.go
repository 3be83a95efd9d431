package nft

// The policy conformance matrix: every match and action a rule can have,
// programmed through the real path (policy.Calculator → Table → Netlink)
// into a node namespace, and checked with real packets between namespaces,
// over IPv4 and IPv6. See doc.go, "Conformance".

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix/policy"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/sim/probe"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
)

// Where the matrix's packets come from and go to.
const (
	epA    = "a"    // workload wl-a, app=a: the usual client
	epB    = "b"    // workload wl-b, app=b: the usual server
	epC    = "c"    // workload wl-c, app=c, quarantine: the other client
	epHost = "host" // the node itself
	epPeer = "peer" // outside, behind the host endpoint eth0
)

// confAddrs are the addresses of the matrix's ends, per family. The host
// is reached at its eth0 address. Workloads a and b are in namespace prod,
// c in dev.
var confAddrs = map[string][2]netip.Addr{
	epA:    {netip.MustParseAddr("10.65.0.1"), netip.MustParseAddr("fd00:65::1")},
	epB:    {netip.MustParseAddr("10.65.0.2"), netip.MustParseAddr("fd00:65::2")},
	epC:    {netip.MustParseAddr("10.65.0.5"), netip.MustParseAddr("fd00:65::5")},
	epHost: {netip.MustParseAddr("192.168.77.1"), netip.MustParseAddr("fd00:77::1")},
	epPeer: {netip.MustParseAddr("192.168.77.2"), netip.MustParseAddr("fd00:77::2")},
}

func confAddr(ep string, family int) netip.Addr {
	if family == 4 {
		return confAddrs[ep][0]
	}
	return confAddrs[ep][1]
}

// Source port pools for the source port cases; every other probe gets a
// port of its own from portGeneral, so that no probe ever meets a
// conntrack entry of an earlier one (an allowed UDP flow stays
// established for 30 s).
const (
	portGeneral    = 20000
	portSrcAllowed = 41000 // 41000-41999
	portSrcDenied  = 42000 // 42000-42999
)

// Probe kinds.
const (
	pTCP  = "tcp"
	pUDP  = "udp"
	pICMP = "icmp" // echo request (ICMP type 8 or ICMPv6 type 128)
)

// confProbe is one packet exchange and its expected outcome.
type confProbe struct {
	from, to string
	kind     string
	port     int   // destination port (TCP, UDP)
	srcPool  int   // source port pool; 0: portGeneral
	code     uint8 // ICMP code of the echo request
	allowed  bool
	only     int // 4 or 6: this family only; 0: both
}

func (p confProbe) String() string {
	s := fmt.Sprintf("%s %s->%s", p.kind, p.from, p.to)
	if p.kind == pICMP {
		s += fmt.Sprintf(" echo code %d", p.code)
	} else {
		s += fmt.Sprintf(":%d", p.port)
	}
	if p.srcPool != 0 {
		s += fmt.Sprintf(" from port %d+", p.srcPool)
	}
	return s
}

func allow(p confProbe) confProbe { p.allowed = true; return p }

func tcpTo(from, to string, port int) confProbe {
	return confProbe{from: from, to: to, kind: pTCP, port: port}
}

func udpTo(from, to string, port int) confProbe {
	return confProbe{from: from, to: to, kind: pUDP, port: port}
}

func pingTo(from, to string, code uint8) confProbe {
	return confProbe{from: from, to: to, kind: pICMP, code: code}
}

func fromPool(p confProbe, pool int) confProbe { p.srcPool = pool; return p }

func family(p confProbe, f int) confProbe { p.only = f; return p }

// confPolicy is a policy of a case: on workload b's ingress, workload a's
// egress, or the host endpoint's ingress and egress.
type confPolicy struct {
	// namespace makes a NetworkPolicy; "" a GlobalNetworkPolicy.
	namespace string
	name      string
	order     float64
	selector  string
	types     []api.PolicyType
	ingress   []api.Rule
	egress    []api.Rule
}

func bIngress(name string, rules ...api.Rule) confPolicy {
	return confPolicy{name: name, order: 10, selector: "app == 'b'", types: []api.PolicyType{api.PolicyTypeIngress}, ingress: rules}
}

func aEgress(name string, rules ...api.Rule) confPolicy {
	return confPolicy{name: name, order: 10, selector: "app == 'a'", types: []api.PolicyType{api.PolicyTypeEgress}, egress: rules}
}

type confCase struct {
	name     string
	policies []confPolicy
	// hep is the interface of the host endpoint (role=host) that exists
	// in this case: "eth0", "*" (all interfaces) or "" (none).
	hep    string
	probes []confProbe
	// check runs after the probes, with the kernel connection.
	check func(t *testing.T, kc *nftables.Conn)
	// bProfiles are workload b's profiles in this case (default: open).
	bProfiles []string
	// setup runs after the case's policies are programmed, before the
	// probes.
	setup func(t *testing.T, c *confNode)
}

var (
	protoTCP    = ptr(api.ProtocolTCP)
	protoUDP    = ptr(api.ProtocolUDP)
	protoICMP   = ptr(api.ProtocolICMP)
	protoICMPv6 = ptr(api.ProtocolICMPv6)
)

func ports(ps ...api.Port) []api.Port { return ps }

// confCases is the matrix. Every case has probes that its policies allow
// and probes they deny; each probe runs over IPv4 and IPv6 unless it says
// otherwise.
func confCases() []confCase {
	echo := func(typ4, typ6 int, code *int) []api.Rule {
		return []api.Rule{
			{Action: api.Allow, Protocol: protoICMP, ICMP: &api.ICMPFields{Type: ptr(typ4), Code: code}},
			{Action: api.Allow, Protocol: protoICMPv6, ICMP: &api.ICMPFields{Type: ptr(typ6), Code: code}},
		}
	}
	notEcho := func(code int) []api.Rule {
		return []api.Rule{
			{Action: api.Allow, Protocol: protoICMP, NotICMP: &api.ICMPFields{Type: ptr(8), Code: ptr(code)}},
			{Action: api.Allow, Protocol: protoICMPv6, NotICMP: &api.ICMPFields{Type: ptr(128), Code: ptr(code)}},
		}
	}
	notType := func(typ4, typ6 int) []api.Rule {
		return []api.Rule{
			{Action: api.Allow, Protocol: protoICMP, NotICMP: &api.ICMPFields{Type: ptr(typ4)}},
			{Action: api.Allow, Protocol: protoICMPv6, NotICMP: &api.ICMPFields{Type: ptr(typ6)}},
		}
	}
	hepPolicy := func(name string, ingress, egress []api.Rule) confPolicy {
		p := confPolicy{name: name, order: 10, selector: "role == 'host'", ingress: ingress, egress: egress}
		if ingress != nil {
			p.types = append(p.types, api.PolicyTypeIngress)
		}
		if egress != nil {
			p.types = append(p.types, api.PolicyTypeEgress)
		}
		return p
	}
	return []confCase{
		// Protocols.
		{name: "protocol tcp", policies: []confPolicy{bIngress("p", api.Rule{Action: api.Allow, Protocol: protoTCP})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), udpTo(epA, epB, 8080), pingTo(epA, epB, 0)}},
		{name: "protocol udp", policies: []confPolicy{bIngress("p", api.Rule{Action: api.Allow, Protocol: protoUDP})},
			probes: []confProbe{allow(udpTo(epA, epB, 8080)), tcpTo(epA, epB, 8080)}},
		{name: "protocol icmp and icmpv6", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Protocol: protoICMP}, api.Rule{Action: api.Allow, Protocol: protoICMPv6})},
			probes: []confProbe{allow(pingTo(epA, epB, 0)), tcpTo(epA, epB, 8080)}},
		{name: "protocol icmp is not icmpv6", policies: []confPolicy{bIngress("p", api.Rule{Action: api.Allow, Protocol: protoICMP})},
			probes: []confProbe{family(allow(pingTo(epA, epB, 0)), 4), family(pingTo(epA, epB, 0), 6)}},
		{name: "notProtocol", policies: []confPolicy{bIngress("p", api.Rule{Action: api.Allow, NotProtocol: protoUDP})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), allow(pingTo(epA, epB, 0)), udpTo(epA, epB, 8080)}},
		{name: "ipVersion", policies: []confPolicy{bIngress("p", api.Rule{Action: api.Allow, IPVersion: ptr(6)})},
			probes: []confProbe{family(tcpTo(epA, epB, 8080), 4), family(allow(tcpTo(epA, epB, 8080)), 6)}},

		// ICMP type and code.
		{name: "icmp type", policies: []confPolicy{bIngress("p", echo(8, 128, nil)...)},
			probes: []confProbe{allow(pingTo(epA, epB, 0)), allow(pingTo(epA, epB, 1)), tcpTo(epA, epB, 8080)}},
		{name: "icmp other type", policies: []confPolicy{bIngress("p", echo(13, 130, nil)...)},
			probes: []confProbe{pingTo(epA, epB, 0)}},
		{name: "icmp type and code", policies: []confPolicy{bIngress("p", echo(8, 128, ptr(0))...)},
			probes: []confProbe{allow(pingTo(epA, epB, 0)), pingTo(epA, epB, 1)}},
		{name: "notICMP type and code", policies: []confPolicy{bIngress("p", notEcho(1)...)},
			probes: []confProbe{allow(pingTo(epA, epB, 0)), pingTo(epA, epB, 1)}},
		{name: "notICMP type", policies: []confPolicy{bIngress("p", notType(8, 128)...)},
			probes: []confProbe{pingTo(epA, epB, 0), pingTo(epA, epB, 1)}},
		{name: "notICMP other type", policies: []confPolicy{bIngress("p", notType(13, 130)...)},
			probes: []confProbe{allow(pingTo(epA, epB, 0)), tcpTo(epA, epB, 8080)}},

		// Nets.
		{name: "source nets cidr", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Source: api.EntityRule{Nets: []string{"10.65.0.0/30", "fd00:65::/126"}}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epC, epB, 8080)}},
		{name: "source notNets cidr", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Source: api.EntityRule{NotNets: []string{"10.65.0.4/30", "fd00:65::4/126"}}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epC, epB, 8080)}},
		{name: "nets of one family restrict the rule to it", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Source: api.EntityRule{Nets: []string{"10.65.0.0/30"}}})},
			probes: []confProbe{family(allow(tcpTo(epA, epB, 8080)), 4), family(tcpTo(epA, epB, 8080), 6)}},
		{name: "notNets of one family restrict the rule to it", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Source: api.EntityRule{NotNets: []string{"fd00:65::4/126"}}})},
			probes: []confProbe{family(tcpTo(epA, epB, 8080), 4), family(allow(tcpTo(epA, epB, 8080)), 6), family(tcpTo(epC, epB, 8080), 6)}},
		{name: "destination nets (egress)", policies: []confPolicy{aEgress("p",
			api.Rule{Action: api.Allow, Destination: api.EntityRule{Nets: []string{"10.65.0.2/32", "fd00:65::2/128"}}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epA, epC, 8080)}},
		{name: "destination notNets (egress)", policies: []confPolicy{aEgress("p",
			api.Rule{Action: api.Allow, Destination: api.EntityRule{NotNets: []string{"10.65.0.5/32", "fd00:65::5/128"}}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epA, epC, 8080)}},

		// Ports.
		{name: "destination port", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{Ports: ports("8080")}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epA, epB, 8081)}},
		{name: "destination port range", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{Ports: ports("8081:8082")}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8081)), allow(tcpTo(epA, epB, 8082)), tcpTo(epA, epB, 8080)}},
		{name: "destination port list", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{Ports: ports("8080", "8082")}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), allow(tcpTo(epA, epB, 8082)), tcpTo(epA, epB, 8081)}},
		{name: "destination port list with a named port", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{Ports: ports("8080", "web")}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), allow(tcpTo(epA, epB, 8081)), tcpTo(epA, epB, 8082)}},
		{name: "notPorts list with a named port", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{NotPorts: ports("8080", "web")}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8082)), tcpTo(epA, epB, 8080), tcpTo(epA, epB, 8081)}},
		{name: "nets and ports together", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Protocol: protoTCP,
				Source:      api.EntityRule{Nets: []string{"10.65.0.1/32", "10.65.0.5/32", "fd00:65::1/128", "fd00:65::5/128"}},
				Destination: api.EntityRule{Ports: ports("8080", "8082")}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), allow(tcpTo(epC, epB, 8082)), tcpTo(epA, epB, 8081), tcpTo(epC, epB, 8081)}},
		{name: "destination notPorts", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{NotPorts: ports("8081")}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epA, epB, 8081)}},
		{name: "udp destination port", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Protocol: protoUDP, Destination: api.EntityRule{Ports: ports("8081")}})},
			probes: []confProbe{allow(udpTo(epA, epB, 8081)), udpTo(epA, epB, 8080)}},
		{name: "named ports", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{Ports: ports("web")}},
			api.Rule{Action: api.Allow, Protocol: protoUDP, Destination: api.EntityRule{Ports: ports("stats")}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8081)), tcpTo(epA, epB, 8080), allow(udpTo(epA, epB, 8082)), udpTo(epA, epB, 8081)}},
		{name: "named notPorts", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{NotPorts: ports("web")}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epA, epB, 8081)}},
		{name: "source ports", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Protocol: protoTCP, Source: api.EntityRule{Ports: ports("41000:41999")}},
			api.Rule{Action: api.Allow, Protocol: protoUDP, Source: api.EntityRule{Ports: ports("41000:41999")}})},
			probes: []confProbe{allow(fromPool(tcpTo(epA, epB, 8080), portSrcAllowed)), fromPool(tcpTo(epA, epB, 8080), portSrcDenied),
				allow(fromPool(udpTo(epA, epB, 8080), portSrcAllowed)), fromPool(udpTo(epA, epB, 8080), portSrcDenied)}},
		{name: "source notPorts", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Protocol: protoUDP, Source: api.EntityRule{NotPorts: ports("42000:42999")}})},
			probes: []confProbe{allow(fromPool(udpTo(epA, epB, 8080), portSrcAllowed)), fromPool(udpTo(epA, epB, 8080), portSrcDenied)}},

		// Selectors.
		{name: "source selector", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Source: api.EntityRule{Selector: "app == 'a'"}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epC, epB, 8080)}},
		{name: "source notSelector", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Source: api.EntityRule{NotSelector: "app == 'c'"}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epC, epB, 8080)}},
		{name: "source selector !has", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Source: api.EntityRule{Selector: "!has(quarantine)"}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epC, epB, 8080)}},
		{name: "destination selector (egress)", policies: []confPolicy{aEgress("p",
			api.Rule{Action: api.Allow, Destination: api.EntityRule{Selector: "app == 'b'"}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epA, epC, 8080)}},
		{name: "destination notSelector (egress)", policies: []confPolicy{aEgress("p",
			api.Rule{Action: api.Allow, Destination: api.EntityRule{NotSelector: "has(quarantine)"}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epA, epC, 8080)}},

		// Namespaces.
		{name: "namespaced policy scopes its selectors", policies: []confPolicy{{namespace: "prod", name: "p", order: 10,
			selector: "app == 'b'", types: []api.PolicyType{api.PolicyTypeIngress},
			ingress: []api.Rule{{Action: api.Allow, Source: api.EntityRule{Selector: "has(app)"}}}}},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epC, epB, 8080)}},
		{name: "namespaceSelector", policies: []confPolicy{{namespace: "prod", name: "p", order: 10,
			selector: "app == 'b'", types: []api.PolicyType{api.PolicyTypeIngress},
			// Namespaces have only their name label (felix/acl: no
			// Namespace kind in the datastore yet).
			ingress: []api.Rule{{Action: api.Allow, Source: api.EntityRule{NamespaceSelector: policy.LabelName + " == 'dev'"}}}}},
			probes: []confProbe{allow(tcpTo(epC, epB, 8080)), tcpTo(epA, epB, 8080)}},

		// Actions.
		{name: "deny before allow", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Deny, Source: api.EntityRule{Nets: []string{"10.65.0.5/32", "fd00:65::5/128"}}},
			api.Rule{Action: api.Allow})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epC, epB, 8080)}},
		{name: "pass skips to the profile", policies: []confPolicy{
			bIngress("p1", api.Rule{Action: api.Pass, Source: api.EntityRule{Selector: "app == 'a'"}}),
			{name: "p2", order: 20, selector: "app == 'b'", types: []api.PolicyType{api.PolicyTypeIngress},
				ingress: []api.Rule{{Action: api.Deny}}}},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epC, epB, 8080)}},
		{name: "log goes on to the next rule", policies: []confPolicy{bIngress("logged",
			api.Rule{Action: api.Log, Protocol: protoTCP},
			api.Rule{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{Ports: ports("8080")}})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epA, epB, 8081)},
			check:  checkLogRule("logged", true)},
		{name: "egress pass", policies: []confPolicy{
			aEgress("p1", api.Rule{Action: api.Pass, Destination: api.EntityRule{Selector: "app == 'b'"}}),
			{name: "p2", order: 20, selector: "app == 'a'", types: []api.PolicyType{api.PolicyTypeEgress},
				egress: []api.Rule{{Action: api.Deny}}}},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epA, epC, 8080)}},
		{name: "egress log", policies: []confPolicy{aEgress("logged",
			api.Rule{Action: api.Log},
			api.Rule{Action: api.Allow, Protocol: protoUDP})},
			probes: []confProbe{allow(udpTo(epA, epB, 8080)), tcpTo(epA, epB, 8080)},
			check:  checkLogRule("logged", false)},
		{name: "egress deny", policies: []confPolicy{aEgress("p",
			api.Rule{Action: api.Deny, Protocol: protoUDP}, api.Rule{Action: api.Allow})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), udpTo(epA, epB, 8080)}},

		// Profiles.
		{name: "profile rules", bProfiles: []string{"closed"},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epA, epB, 8081)}},
		{name: "pass in a profile goes to the next profile", bProfiles: []string{"passer", "closed"},
			probes: []confProbe{allow(tcpTo(epA, epB, 8081)), allow(tcpTo(epC, epB, 8080)), tcpTo(epC, epB, 8081)}},
		{name: "profiles after a policy's pass", bProfiles: []string{"closed"}, policies: []confPolicy{
			bIngress("p", api.Rule{Action: api.Pass, Source: api.EntityRule{Selector: "app == 'a'"}}, api.Rule{Action: api.Allow})},
			probes: []confProbe{allow(tcpTo(epA, epB, 8080)), tcpTo(epA, epB, 8081), allow(tcpTo(epC, epB, 8081))}},

		// Between the host and workloads.
		{name: "workload ingress from the host", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{Ports: ports("8080")}})},
			probes: []confProbe{allow(tcpTo(epHost, epB, 8080)), tcpTo(epHost, epB, 8081)}},
		{name: "source selector of a host endpoint", hep: "eth0", policies: []confPolicy{bIngress("p",
			api.Rule{Action: api.Allow, Source: api.EntityRule{Selector: "role == 'host'"}})},
			probes: []confProbe{allow(tcpTo(epHost, epB, 8080)), tcpTo(epA, epB, 8080)}},
		{name: "workload egress to the host", policies: []confPolicy{aEgress("p",
			api.Rule{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{Ports: ports("8080")}})},
			probes: []confProbe{allow(tcpTo(epA, epHost, 8080)), tcpTo(epA, epHost, 8081)}},

		// Host endpoints and failsafes.
		{name: "host endpoint ingress", hep: "eth0", policies: []confPolicy{hepPolicy("h",
			[]api.Rule{{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{Ports: ports("8080")}}}, nil)},
			probes: []confProbe{allow(tcpTo(epPeer, epHost, 8080)), tcpTo(epPeer, epHost, 8081)}},
		{name: "host endpoint egress", hep: "eth0", policies: []confPolicy{hepPolicy("h",
			nil, []api.Rule{{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{Ports: ports("8080")}}})},
			probes: []confProbe{allow(tcpTo(epHost, epPeer, 8080)), tcpTo(epHost, epPeer, 8081)}},
		{name: "host endpoint of all interfaces", hep: "*", policies: []confPolicy{hepPolicy("h",
			[]api.Rule{{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{Ports: ports("8080")}}},
			[]api.Rule{{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{Ports: ports("8080")}}})},
			probes: []confProbe{allow(tcpTo(epPeer, epHost, 8080)), tcpTo(epPeer, epHost, 8081),
				allow(tcpTo(epHost, epPeer, 8080)), tcpTo(epHost, epPeer, 8081),
				// Forwarded traffic is not the host's (no applyOnForward).
				allow(tcpTo(epA, epB, 8081))}},
		{name: "failsafe ports under deny-all", hep: "eth0", policies: []confPolicy{hepPolicy("h",
			[]api.Rule{{Action: api.Deny}}, []api.Rule{{Action: api.Deny}})},
			probes: []confProbe{allow(tcpTo(epPeer, epHost, 179)), tcpTo(epPeer, epHost, 8080),
				allow(tcpTo(epHost, epPeer, 179)), tcpTo(epHost, epPeer, 8080)}},

		// IPv6 neighbour discovery gets through policies that do not
		// mention it: the host resolves workload b and the peer, and they
		// resolve the host, by NDP, under policies that allow TCP 8080
		// only. (Last: it replaces static neighbours by learned ones.)
		{name: "ipv6 neighbour discovery under policy", hep: "eth0", policies: []confPolicy{
			{name: "p", order: 10, selector: "app == 'b'", types: []api.PolicyType{api.PolicyTypeIngress, api.PolicyTypeEgress},
				ingress: []api.Rule{{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{Ports: ports("8080")}}},
				egress:  []api.Rule{{Action: api.Deny}}},
			hepPolicy("h", []api.Rule{{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{Ports: ports("8080")}}},
				[]api.Rule{{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{Ports: ports("8080")}}})},
			setup: func(t *testing.T, c *confNode) {
				c.forgetNeighbours(t, epHost, "wl-b", confAddr(epB, 6))
				c.forgetNeighbours(t, epHost, "eth0", confAddr(epPeer, 6))
				c.forgetNeighbours(t, epPeer, "eth0", confAddr(epHost, 6))
			},
			probes: []confProbe{family(allow(tcpTo(epA, epB, 8080)), 6), family(tcpTo(epA, epB, 8081), 6),
				family(allow(tcpTo(epPeer, epHost, 8080)), 6), family(tcpTo(epPeer, epHost, 8081), 6),
				family(allow(tcpTo(epHost, epPeer, 8080)), 6), family(tcpTo(epHost, epPeer, 8081), 6)}},
	}
}

// forgetNeighbours deletes the static neighbour entry for addr on
// interface iface of namespace ep, so that the next packet needs
// neighbour discovery.
func (c *confNode) forgetNeighbours(t *testing.T, ep, iface string, addr netip.Addr) {
	t.Helper()
	h := c.ns[ep].Netlink
	l, err := h.LinkByName(iface)
	c.must(err, "link %s in %s", iface, ep)
	c.must(h.NeighDel(&netlink.Neigh{LinkIndex: l.Attrs().Index, IP: addr.AsSlice(), Family: netlink.FAMILY_V6}),
		"deleting the neighbour %s on %s in %s", addr, iface, ep)
}

// checkLogRule checks that the policy's chain in the kernel has
// a log rule with the policy's prefix, followed by more rules (the
// packet goes on).
func checkLogRule(name string, ingress bool) func(*testing.T, *nftables.Conn) {
	return func(t *testing.T, kc *nftables.Conn) {
		t.Helper()
		tbl := &nftables.Table{Family: nftables.TableFamilyINet, Name: "bgpfabric"}
		chain := policyChain(policy.PolicyKey{Name: name}, ingress)
		rules, err := kc.GetRules(tbl, &nftables.Chain{Name: chain, Table: tbl})
		if err != nil {
			t.Fatalf("rules of %s: %v", chain, err)
		}
		want := "bgpfabric gnp/" + name + " "
		for i, r := range rules {
			for _, e := range r.Exprs {
				if l, ok := e.(*expr.Log); ok && string(l.Data) == want {
					if _, ok := r.Exprs[len(r.Exprs)-1].(*expr.Verdict); ok {
						t.Errorf("the log rule of %s ends in a verdict: %s", chain, ruleText(r.Exprs))
					}
					if i == len(rules)-1 {
						t.Errorf("the log rule is the last of %s", chain)
					}
					return
				}
			}
		}
		t.Errorf("no rule of %s logs with prefix %q", chain, want)
	}
}

// confNode is the matrix's network: the node namespace with felix's
// table, three workloads and an outside peer behind a host endpoint.
type confNode struct {
	*node
	ns   map[string]*nstest.NS
	calc *policy.Calculator
	tbl  *Table
	kc   *nftables.Conn
	// active are the policies of the case being run.
	active []policy.PolicyKey
	// weps are the workload endpoints as last given to calc.
	weps map[string]*api.WorkloadEndpoint

	mu    sync.Mutex
	pools map[int]int // next port of each pool
}

func (c *confNode) nextPort(pool int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pool == 0 {
		pool = portGeneral
	}
	p := pool + c.pools[pool]
	c.pools[pool]++
	return p
}

// TestConformance runs the policy conformance matrix (confCases).
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("namespaces and real packets: not in -short")
	}
	c := newConfNode(t)
	cases := confCases()

	// Every probe of the matrix goes through with open profiles and no
	// policy: what a case denies, its policy denies.
	t.Run("baseline", func(t *testing.T) {
		c.program(t, confCase{})
		var all []confProbe
		for _, cc := range cases {
			for _, p := range cc.probes {
				all = append(all, allow(p))
			}
		}
		c.run(t, all)
	})
	for _, cc := range cases {
		t.Run(cc.name, func(t *testing.T) {
			c.program(t, cc)
			if cc.setup != nil {
				cc.setup(t, c)
			}
			c.run(t, cc.probes)
			if cc.check != nil {
				cc.check(t, c.kc)
			}
			// What the kernel ran reads back as what the fake (and so a
			// golden file) shows for the same ruleset.
			fake := NewFake()
			if err := New(fake, Config{WorkloadInterfacePrefixes: []string{"wl"}}).Apply(context.Background(), fullUpdate(c.calc.Snapshot())); err != nil {
				t.Fatal(err)
			}
			checkKernelEqualsFake(t, c.kc, fake)
		})
	}
}

func newConfNode(t *testing.T) *confNode {
	n := newNode(t)
	n.sysctl(n.host, "net/ipv6/conf/all/forwarding", "1")
	c := &confNode{node: n, ns: map[string]*nstest.NS{epHost: n.host}, pools: map[int]int{},
		weps: map[string]*api.WorkloadEndpoint{}}
	wls := []struct {
		ep, namespace, iface string
		labels               map[string]string
		ports                []api.EndpointPort
	}{
		{epA, "prod", "wl-a", map[string]string{"app": "a"}, nil},
		{epB, "prod", "wl-b", map[string]string{"app": "b"}, []api.EndpointPort{
			{Name: "web", Protocol: api.ProtocolTCP, Port: 8081}, {Name: "stats", Protocol: api.ProtocolUDP, Port: 8082}}},
		{epC, "dev", "wl-c", map[string]string{"app": "c", "quarantine": "true"}, nil},
	}
	for _, w := range wls {
		c.ns[w.ep] = n.workload(w.iface, confAddrs[w.ep][0], confAddrs[w.ep][1])
	}
	c.ns[epPeer] = n.peer("eth0",
		netip.PrefixFrom(confAddr(epHost, 4), 24), netip.PrefixFrom(confAddr(epPeer, 4), 24),
		netip.PrefixFrom(confAddr(epHost, 6), 64), netip.PrefixFrom(confAddr(epPeer, 6), 64))

	ctx := t.Context()
	for ep, ports := range map[string][]int{epA: {8080}, epB: {8080, 8081, 8082}, epC: {8080},
		epHost: {179, 8080, 8081}, epPeer: {179, 8080, 8081}} {
		for _, p := range ports {
			n.must(probe.Listen(ctx, c.ns[ep].Handle, p), "TCP listener in %s", ep)
		}
	}
	for ep, ports := range map[string][]int{epB: {8080, 8081, 8082}} {
		for _, p := range ports {
			udpEcho(t, c.ns[ep], p)
		}
	}

	c.calc = policy.New(policy.Config{Node: "node-1"})
	c.tbl = New(NewNetlink(NetlinkConfig{NetNS: int(n.host.Handle)}), Config{WorkloadInterfacePrefixes: []string{"wl"}})
	c.kc = nftConn(t, n.host)
	// Profiles: every workload has "open"; cases may give b others.
	for name, ingress := range map[string][]api.Rule{
		"open":   {{Action: api.Allow}},
		"closed": {{Action: api.Allow, Protocol: protoTCP, Destination: api.EntityRule{Ports: ports("8080")}}},
		"passer": {{Action: api.Pass, Source: api.EntityRule{Selector: "app == 'c'"}}, {Action: api.Allow}},
	} {
		pr := &api.Profile{ObjectMeta: api.ObjectMeta{Name: name},
			Spec: api.ProfileSpec{Ingress: ingress, Egress: []api.Rule{{Action: api.Allow}}}}
		pr.Default()
		n.must(pr.Validate(), "profile %s", name)
		n.must(c.calc.OnProfileUpdate(pr), "profile %s", name)
	}
	for _, w := range wls {
		a := confAddrs[w.ep]
		we := &api.WorkloadEndpoint{
			ObjectMeta: api.ObjectMeta{Namespace: w.namespace, Name: w.ep, Labels: w.labels},
			Spec: api.WorkloadEndpointSpec{Node: "node-1", Orchestrator: "k8s", Workload: w.ep, Endpoint: "eth0",
				InterfaceName: w.iface, IPNetworks: []string{a[0].String() + "/32", a[1].String() + "/128"},
				Profiles: []string{"open"}, Ports: w.ports},
		}
		we.Default()
		n.must(we.Validate(), "workload endpoint %s", w.ep)
		c.calc.OnWorkloadEndpointUpdate(we)
		c.weps[w.ep] = we
	}
	return c
}

// program replaces the policies (and the host endpoint) of the previous
// case with those of cc, in one Apply.
func (c *confNode) program(t *testing.T, cc confCase) {
	t.Helper()
	for _, k := range c.active {
		c.calc.OnPolicyRemove(k)
	}
	c.active = nil
	bProfiles := cc.bProfiles
	if bProfiles == nil {
		bProfiles = []string{"open"}
	}
	if b := c.weps[epB]; !slices.Equal(b.Spec.Profiles, bProfiles) {
		b = b.DeepCopyResource().(*api.WorkloadEndpoint)
		b.Spec.Profiles = bProfiles
		c.calc.OnWorkloadEndpointUpdate(b)
		c.weps[epB] = b
	}
	if cc.hep != "" {
		h := &api.HostEndpoint{ObjectMeta: api.ObjectMeta{Name: "node-1-host", Labels: map[string]string{"role": "host"}},
			Spec: api.HostEndpointSpec{Node: "node-1", InterfaceName: cc.hep,
				ExpectedIPs: []string{confAddr(epHost, 4).String(), confAddr(epHost, 6).String()}}}
		h.Default()
		c.must(h.Validate(), "host endpoint")
		c.calc.OnHostEndpointUpdate(h)
	} else {
		c.calc.OnHostEndpointRemove("node-1-host")
	}
	for _, p := range cc.policies {
		spec := api.PolicySpec{Order: ptr(p.order), Selector: p.selector, Types: p.types, Ingress: p.ingress, Egress: p.egress}
		var err error
		if p.namespace != "" {
			np := &api.NetworkPolicy{ObjectMeta: api.ObjectMeta{Namespace: p.namespace, Name: p.name},
				Spec: api.NetworkPolicySpec{PolicySpec: spec}}
			np.Default()
			if err = np.Validate(); err == nil {
				err = c.calc.OnNetworkPolicyUpdate(np)
			}
		} else {
			g := &api.GlobalNetworkPolicy{ObjectMeta: api.ObjectMeta{Name: p.name},
				Spec: api.GlobalNetworkPolicySpec{PolicySpec: spec}}
			g.Default()
			if err = g.Validate(); err == nil {
				err = c.calc.OnGlobalNetworkPolicyUpdate(g)
			}
		}
		if err != nil {
			t.Fatalf("policy %s: %v", p.name, err)
		}
		c.active = append(c.active, policy.PolicyKey{Namespace: p.namespace, Name: p.name})
	}
	if err := c.tbl.Apply(context.Background(), c.calc.TakeUpdate()); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// Timeouts: an allowed probe gets time to spare on a loaded machine; a
// denied one gets no answer at all (the table drops), so its timeout is
// the time we wait to be sure of that.
const (
	confAllowTimeout = 5 * time.Second
	confDenyTimeout  = 300 * time.Millisecond
)

// run sends the probes, over both families, all at once, and reports
// each that did not get the outcome it expects.
func (c *confNode) run(t *testing.T, probes []confProbe) {
	t.Helper()
	type result struct {
		p      confProbe
		family int
		err    error // nil: answered
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []result
	)
	for _, p := range probes {
		for _, f := range []int{4, 6} {
			if p.only != 0 && p.only != f {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := c.send(p, f)
				mu.Lock()
				results = append(results, result{p, f, err})
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	for _, r := range results {
		switch {
		case r.p.allowed && r.err != nil:
			t.Errorf("ipv%d %s: want allowed, got %v", r.family, r.p, r.err)
		case !r.p.allowed && r.err == nil:
			t.Errorf("ipv%d %s: want denied, but it was answered", r.family, r.p)
		case !r.p.allowed && !errors.Is(r.err, errNoAnswer):
			// The table drops; an answer of any kind (a reset, an ICMP
			// error) means something else stopped the packet.
			t.Errorf("ipv%d %s: want a silent drop, got %v", r.family, r.p, r.err)
		}
	}
}

var errNoAnswer = errors.New("no answer")

// send runs one probe over one family: nil if it was answered.
func (c *confNode) send(p confProbe, f int) error {
	timeout := confDenyTimeout
	if p.allowed {
		timeout = confAllowTimeout
	}
	src, dst := c.ns[p.from], confAddr(p.to, f)
	switch p.kind {
	case pTCP:
		return tcpProbe(src, c.nextPort(p.srcPool), dst, p.port, timeout)
	case pUDP:
		return udpProbe(src, c.nextPort(p.srcPool), dst, p.port, timeout)
	case pICMP:
		return echoProbe(src, uint16(c.nextPort(0)), p.code, dst, timeout)
	}
	return fmt.Errorf("unknown probe kind %q", p.kind)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// tcpProbe connects from ns, from port sport, to dst:port.
func tcpProbe(ns *nstest.NS, sport int, dst netip.Addr, port int, timeout time.Duration) error {
	return ns.Do(func() error {
		d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{Port: sport}}
		conn, err := d.Dial("tcp", netip.AddrPortFrom(dst, uint16(port)).String())
		if isTimeout(err) {
			return errNoAnswer
		}
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// udpProbe sends datagrams from ns, from port sport, to dst:port every
// 100 ms until the echo server answers or timeout passes.
func udpProbe(ns *nstest.NS, sport int, dst netip.Addr, port int, timeout time.Duration) error {
	var conn *net.UDPConn
	err := ns.Do(func() error {
		var err error
		conn, err = net.DialUDP("udp", &net.UDPAddr{Port: sport}, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, uint16(port))))
		return err
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	msg := []byte(fmt.Sprintf("conformance %d", sport))
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for time.Now().Before(deadline) {
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		if err := conn.SetReadDeadline(minT(time.Now().Add(100*time.Millisecond), deadline)); err != nil {
			return err
		}
		n, err := conn.Read(buf)
		switch {
		case err == nil && bytes.Equal(buf[:n], msg):
			return nil
		case err != nil && !isTimeout(err):
			return err // e.g. refused: an ICMP port unreachable came back
		}
	}
	return errNoAnswer
}

func minT(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// udpEcho runs a UDP echo server on port (both families) in ns until the
// test ends.
func udpEcho(t *testing.T, ns *nstest.NS, port int) {
	t.Helper()
	var conn *net.UDPConn
	err := ns.Do(func() error {
		var err error
		conn, err = net.ListenUDP("udp", &net.UDPAddr{Port: port})
		return err
	})
	if err != nil {
		t.Fatalf("UDP echo on %d in %s: %v", port, ns.Name, err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = conn.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
}

// echoProbe sends ICMP (or ICMPv6) echo requests with the given code and
// identifier from ns to dst every 100 ms until one is answered or timeout
// passes. (Linux answers echo requests whatever their code, and copies
// the code into the reply.)
func echoProbe(ns *nstest.NS, id uint16, code uint8, dst netip.Addr, timeout time.Duration) error {
	network, reqType, replyType := "ip4:icmp", byte(8), byte(0)
	if dst.Is6() {
		network, reqType, replyType = "ip6:ipv6-icmp", 128, 129
	}
	var conn net.PacketConn
	err := ns.Do(func() error {
		var err error
		conn, err = net.ListenPacket(network, "")
		return err
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for seq := uint16(1); time.Now().Before(deadline); seq++ {
		msg := make([]byte, 8, 24)
		msg[0], msg[1] = reqType, code
		binary.BigEndian.PutUint16(msg[4:], id)
		binary.BigEndian.PutUint16(msg[6:], seq)
		msg = append(msg, "conformance....."...)
		if reqType == 8 { // the kernel computes ICMPv6 checksums
			binary.BigEndian.PutUint16(msg[2:], icmpChecksum(msg))
		}
		if _, err := conn.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return err
		}
		if err := conn.SetReadDeadline(minT(time.Now().Add(100*time.Millisecond), deadline)); err != nil {
			return err
		}
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				if !isTimeout(err) {
					return err
				}
				break
			}
			src, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
			if src.Unmap() == dst && n >= 8 && buf[0] == replyType && buf[1] == code && binary.BigEndian.Uint16(buf[4:]) == id {
				return nil
			}
		}
	}
	return errNoAnswer
}

func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
