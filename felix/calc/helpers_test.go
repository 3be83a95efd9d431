package calc

import (
	"fmt"
	"net/netip"

	"github.com/bgpfabric/bgpfabric/api"
)

const thisNode = "node-1"

func wep(ns, name, node, iface string, nets ...string) *api.WorkloadEndpoint {
	w := &api.WorkloadEndpoint{
		ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name},
		Spec: api.WorkloadEndpointSpec{
			Node: node, Orchestrator: "cni", Workload: name, Endpoint: "eth0",
			InterfaceName: iface, IPNetworks: nets,
		},
	}
	w.Default()
	return w
}

func wep6gw(ns, name, node, iface, gw string, nets ...string) *api.WorkloadEndpoint {
	w := wep(ns, name, node, iface, nets...)
	w.Spec.IPv6Gateway = gw
	return w
}

func hep(name, node string) *api.HostEndpoint {
	h := &api.HostEndpoint{ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.HostEndpointSpec{Node: node, InterfaceName: "eth0"}}
	h.Default()
	return h
}

func block(cidr, node string) *api.IPAMBlock {
	b, err := api.NewIPAMBlock(netip.MustParsePrefix(cidr), api.HostAffinity(node))
	if err != nil {
		panic(err)
	}
	if node == "" {
		b.Spec.Affinity = ""
	}
	return b
}

func releasing(b *api.IPAMBlock) *api.IPAMBlock {
	b.Spec.Deleted = true
	return b
}

func pool(name, cidr string) *api.IPPool {
	p := &api.IPPool{ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.IPPoolSpec{CIDR: cidr}}
	p.Default()
	return p
}

func gnp(name string) *api.GlobalNetworkPolicy {
	p := &api.GlobalNetworkPolicy{ObjectMeta: api.ObjectMeta{Name: name}}
	p.Default()
	return p
}

// wr and bh build expected routes.
func wr(dst, iface string) Route {
	return Route{Dst: netip.MustParsePrefix(dst), Kind: RouteWorkload, Iface: iface}
}

func bh(dst string) Route { return Route{Dst: netip.MustParsePrefix(dst), Kind: RouteBlackhole} }

func v4if(name string) Interface { return Interface{Name: name, IPv4: true} }

// render turns a delta into sorted lines, for diffs.
func renderDelta(d Delta) []string {
	var out []string
	for dst, r := range d.Routes {
		if r == nil {
			out = append(out, "-route "+dst.String())
		} else {
			out = append(out, "+route "+r.String())
		}
	}
	for name, i := range d.Interfaces {
		if i == nil {
			out = append(out, "-iface "+name)
		} else {
			out = append(out, fmt.Sprintf("+iface %s v4=%t v6=%t ndp=%v", name, i.IPv4, i.IPv6, i.ProxyNDP))
		}
	}
	sortStrings(out)
	return out
}
