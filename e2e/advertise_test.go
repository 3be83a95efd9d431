package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// advTopology is one rack behind an FRR top-of-rack router that reflects
// for its two nodes (iBGP, Calico's AS per rack).
const advTopology = `
name: adv-rack
description: two nodes behind an FRR top-of-rack router, for service addresses and drains
bgp:
  model: as-per-rack
  asNumber: 65000
  keepaliveTime: 3s
  holdTime: 9s
segments:
  - name: rack1
nodes:
  - name: tor
    role: tor
    router: frr
    segment: rack1
  - name: n
    count: 2
    segment: rack1
checks:
  convergence: 60s
`

// advService is the load-balancer address both nodes serve.
var advService = netip.MustParseAddr("192.0.2.10")

// bootAdv boots advTopology, sets the BGPConfiguration's
// serviceLoadBalancerIPs (and drainTime), and puts advService on the
// loopback of both nodes.
func bootAdv(t *testing.T, drainTime string) *sim.Fabric {
	t.Helper()
	topo, err := topology.Parse("adv-rack.yaml", []byte(advTopology))
	if err != nil {
		t.Fatal(err)
	}
	f := bootTopo(t, topo)
	converge(t, f)
	ctx := context.Background()
	r, err := f.Client().Get(ctx, api.KindBGPConfiguration, "", api.DefaultBGPConfigurationName)
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.(*api.BGPConfiguration)
	cfg.Spec.ServiceLoadBalancerIPs = []api.ServiceIPBlock{{CIDR: "192.0.2.0/24"}}
	cfg.Spec.DrainTime = api.Duration(drainTime)
	if _, err := f.Client().Update(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n-1", "n-2"} {
		advAddr(t, f, n, true)
	}
	return f
}

// advAddr adds (or deletes) advService on a node's loopback.
func advAddr(t *testing.T, f *sim.Fabric, node string, add bool) {
	t.Helper()
	h := nodeNetlink(t, f, node)
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	a := &netlink.Addr{IPNet: netlink.NewIPNet(advService.AsSlice())}
	if add {
		err = h.AddrAdd(lo, a)
	} else {
		err = h.AddrDel(lo, a)
	}
	if err != nil {
		t.Fatalf("%s: address %s on lo (add %v): %v", node, advService, add, err)
	}
}

// advGateways is the ToR's kernel route to advService: its gateways,
// sorted.
func advGateways(t *testing.T, f *sim.Fabric) []netip.Addr {
	t.Helper()
	rs, err := f.Routes("tor")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Dst == netip.PrefixFrom(advService, 32) {
			gws := slices.Clone(r.Gateways)
			slices.SortFunc(gws, netip.Addr.Compare)
			return gws
		}
	}
	return nil
}

// vtyshTor runs one vtysh command on the ToR's bgpd.
func vtyshTor(f *sim.Fabric, cmd string) []byte {
	b, _ := exec.Command("vtysh", "--vty_socket", filepath.Join(f.Dir(), "routers", "tor"), "-c", cmd).Output()
	return b
}

// torPaths is what the ToR's bgpd says of advService: the peer of each
// path, with whether it is multipath and its communities.
type torPath struct {
	Peer      string
	Multipath bool
	Community string
}

func torPaths(f *sim.Fabric) []torPath {
	var r struct {
		Paths []struct {
			Multipath bool `json:"multipath"`
			Community *struct {
				String string `json:"string"`
			} `json:"community"`
			Peer struct {
				PeerID string `json:"peerId"`
			} `json:"peer"`
		} `json:"paths"`
	}
	_ = json.Unmarshal(vtyshTor(f, "show bgp ipv4 unicast "+advService.String()+"/32 json"), &r)
	var out []torPath
	for _, p := range r.Paths {
		tp := torPath{Peer: p.Peer.PeerID, Multipath: p.Multipath}
		if p.Community != nil {
			tp.Community = p.Community.String
		}
		out = append(out, tp)
	}
	slices.SortFunc(out, func(a, b torPath) int { return netip.MustParseAddr(a.Peer).Compare(netip.MustParseAddr(b.Peer)) })
	return out
}

// torEstablished reports whether the ToR's session with peer is up.
func torEstablished(f *sim.Fabric, peer netip.Addr) bool {
	var s struct {
		IPv4Unicast struct {
			Peers map[string]struct {
				State string `json:"state"`
			} `json:"peers"`
		} `json:"ipv4Unicast"`
	}
	_ = json.Unmarshal(vtyshTor(f, "show bgp summary json"), &s)
	return s.IPv4Unicast.Peers[peer.String()].State == "Established"
}

// advWait polls cond (the kernel and FRR's CLI have no event to wait on)
// until it holds or timeout passes.
func advWait(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in %v; last: %s", what, timeout, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServiceAddressECMP (issue 14, scenario 4): a serviceLoadBalancerIPs
// address configured on two nodes arrives at the FRR ToR from both, as
// two multipath paths (vtysh) and an ECMP kernel route with both nodes as
// next hops; an address deleted on one node leaves only the other path.
func TestServiceAddressECMP(t *testing.T) {
	f := bootAdv(t, "")
	n1, n2 := nodeAddr(f, "n-1", false), nodeAddr(f, "n-2", false)
	both := []netip.Addr{n1, n2}
	advWait(t, time.Minute, "both nodes' paths multipath at the ToR and an ECMP kernel route", func() (bool, string) {
		ps, gws := torPaths(f), advGateways(t, f)
		ok := len(ps) == 2 && ps[0].Peer == n1.String() && ps[1].Peer == n2.String() && ps[0].Multipath && ps[1].Multipath &&
			slices.Equal(gws, both)
		return ok, fmt.Sprintf("paths %+v, kernel gateways %v", ps, gws)
	})
	advAddr(t, f, "n-1", false)
	advWait(t, time.Minute, "only n-2's path once n-1 no longer has the address", func() (bool, string) {
		ps, gws := torPaths(f), advGateways(t, f)
		return len(ps) == 1 && ps[0].Peer == n2.String() && slices.Equal(gws, []netip.Addr{n2}), fmt.Sprintf("paths %+v, kernel gateways %v", ps, gws)
	})
}
