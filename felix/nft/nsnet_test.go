package nft

// Helpers for the privileged tests: a small routed "node" made of
// namespaces that the test creates (internal/nstest), and real packets
// between them. Nothing here touches the namespace the test runs in.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/sim/probe"
	"github.com/vishvananda/netlink"
)

// node is a host namespace with workloads attached by veth pairs, routed
// as Calico does: the workload has a /32 (and /128) and a default route
// via 169.254.1.1 (fe80::1) on its veth; the host routes the /32 (/128)
// to the veth. Neighbours are static, so no ARP or neighbour discovery is
// needed.
type node struct {
	t    *testing.T
	host *nstest.NS
}

func newNode(t *testing.T) *node {
	n := &node{t: t, host: nstest.New(t)}
	n.sysctl(n.host, "net/ipv4/ip_forward", "1")
	return n
}

func (n *node) must(err error, what string, args ...any) {
	n.t.Helper()
	if err != nil {
		n.t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

// sysctl writes a sysctl inside ns (never in the test's own namespace).
func (n *node) sysctl(ns *nstest.NS, key, val string) {
	n.t.Helper()
	n.must(ns.Do(func() error { return os.WriteFile("/proc/sys/"+key, []byte(val), 0o644) }), "sysctl %s in %s", key, ns.Name)
}

// ifaNoDAD is IFA_F_NODAD: an IPv6 address usable at once, without
// duplicate address detection.
const ifaNoDAD = 0x02

func addr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: prefixNet(p)}
	if p.Addr().Is6() {
		a.Flags = ifaNoDAD
	}
	return a
}

// workload adds a workload namespace with addresses ips (IPv4 and IPv6)
// behind host interface iface.
func (n *node) workload(iface string, ips ...netip.Addr) *nstest.NS {
	n.t.Helper()
	wl := nstest.New(n.t)
	nstest.Veth(n.t, n.host, iface, wl, "eth0")
	hostLink, err := n.host.Netlink.LinkByName(iface)
	n.must(err, "link %s", iface)
	wlLink, err := wl.Netlink.LinkByName("eth0")
	n.must(err, "workload link")
	gateways := map[bool]netip.Addr{false: netip.MustParseAddr("169.254.1.1"), true: netip.MustParseAddr("fe80::1")}
	routed := map[bool]bool{}
	for _, ip := range ips {
		v6 := ip.Is6()
		n.must(wl.Netlink.AddrAdd(wlLink, addr(netip.PrefixFrom(ip, ip.BitLen()))), "workload address %s", ip)
		if !routed[v6] {
			routed[v6] = true
			gw := gateways[v6]
			n.must(wl.Netlink.NeighAdd(&netlink.Neigh{LinkIndex: wlLink.Attrs().Index, IP: gw.AsSlice(), Family: nlFamily(gw),
				HardwareAddr: hostLink.Attrs().HardwareAddr, State: netlink.NUD_PERMANENT}), "workload gateway neighbour")
			n.must(wl.Netlink.RouteAdd(&netlink.Route{LinkIndex: wlLink.Attrs().Index, Gw: gw.AsSlice(), Family: nlFamily(gw),
				Flags: int(netlink.FLAG_ONLINK)}), "workload default route")
		}
		n.must(n.host.Netlink.RouteAdd(&netlink.Route{LinkIndex: hostLink.Attrs().Index, Dst: prefixNet(netip.PrefixFrom(ip, ip.BitLen()))}), "host route")
		n.must(n.host.Netlink.NeighAdd(&netlink.Neigh{LinkIndex: hostLink.Attrs().Index, IP: ip.AsSlice(), Family: nlFamily(ip),
			HardwareAddr: wlLink.Attrs().HardwareAddr, State: netlink.NUD_PERMANENT}), "host neighbour")
	}
	return wl
}

func nlFamily(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// peer adds a namespace that shares subnets with the host, reached through
// host interface iface (a host endpoint). addrs are pairs of host and peer
// addresses with their prefix length. IPv6 neighbours are static.
func (n *node) peer(iface string, addrs ...netip.Prefix) *nstest.NS {
	n.t.Helper()
	p := nstest.New(n.t)
	nstest.Veth(n.t, n.host, iface, p, "eth0")
	hl, err := n.host.Netlink.LinkByName(iface)
	n.must(err, "link")
	pl, err := p.Netlink.LinkByName("eth0")
	n.must(err, "link")
	for i := 0; i+1 < len(addrs); i += 2 {
		hostIP, peerIP := addrs[i], addrs[i+1]
		n.must(n.host.Netlink.AddrAdd(hl, addr(hostIP)), "host address")
		n.must(p.Netlink.AddrAdd(pl, addr(peerIP)), "peer address")
		if hostIP.Addr().Is6() {
			n.must(n.host.Netlink.NeighAdd(&netlink.Neigh{LinkIndex: hl.Attrs().Index, IP: peerIP.Addr().AsSlice(), Family: netlink.FAMILY_V6,
				HardwareAddr: pl.Attrs().HardwareAddr, State: netlink.NUD_PERMANENT}), "host neighbour")
			n.must(p.Netlink.NeighAdd(&netlink.Neigh{LinkIndex: pl.Attrs().Index, IP: hostIP.Addr().AsSlice(), Family: netlink.FAMILY_V6,
				HardwareAddr: hl.Attrs().HardwareAddr, State: netlink.NUD_PERMANENT}), "peer neighbour")
		}
	}
	return p
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// listen starts a TCP server in ns on port that accepts and closes
// connections until the test ends.
func listen(t *testing.T, ns *nstest.NS, port int) {
	t.Helper()
	var ln net.Listener
	err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listen on %d in %s: %v", port, ns.Name, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// dial reports whether a TCP connection from ns to addr succeeds within
// timeout.
func dial(ns *nstest.NS, addr string, timeout time.Duration) error {
	return ns.Do(func() error {
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// ping waits for an ICMP echo reply from dst to ns (sim/probe's ping,
// which asks again every second) for at most timeout.
func ping(ns *nstest.NS, dst netip.Addr, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r := probe.Ping(ctx, ns.Handle, dst)
	switch {
	case r.OK:
		return nil
	case r.Err != nil:
		return r.Err
	}
	return fmt.Errorf("no echo reply from %s within %s", dst, timeout)
}
