package felix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// kernelConfig is an agent config that programs the namespace ns.
func kernelConfig(t *testing.T, env *etcdEnv, ns *nstest.NS) Config {
	return Config{
		NodeName: nodeName, Client: env.client, Netns: ns.Handle, Logger: testLogger(t),
		StatusInterval: 10 * time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: time.Second,
	}
}

// kernelRoutes returns the main table's routes of ns (both families, all
// protocols, without the kernel's own local and link-local ones) as sorted
// `ip route` lines.
func kernelRoutes(t *testing.T, ns *nstest.NS) []string {
	t.Helper()
	dp, err := routetable.NewNetlinkDataplane(ns.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	names := map[int]string{}
	links, err := ns.Netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	var out []string
	err = dp.ListRoutes(context.Background(), routetable.TableMain, 0, func(r routetable.KernelRoute) {
		if r.Protocol == unix.RTPROT_KERNEL {
			return // fe80::/64 and friends
		}
		out = append(out, r.Format(func(i int) string { return names[i] }))
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func readSysctl(t *testing.T, ns *nstest.NS, path string) string {
	t.Helper()
	var v string
	err := ns.Do(func() error {
		b, err := os.ReadFile("/proc/sys/" + path)
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestKernelRoutes runs the agent on a real namespace: routes and
// blackholes appear with protocol 80, a stale route of ours from a
// "previous run" goes, a foreign one stays, a route waits for its veth,
// deleting the endpoint deletes its route, and interface settings are
// written in the namespace.
func TestKernelRoutes(t *testing.T) {
	if testing.Short() {
		t.Skip("kernel test")
	}
	node, wl := nstest.New(t), nstest.New(t)
	nstest.Veth(t, node, "wla", wl, "eth0")
	for _, r := range []netlink.Route{
		{Dst: mustNet("10.99.0.0/26"), Type: unix.RTN_BLACKHOLE, Protocol: 80},                 // ours, stale
		{Dst: mustNet("10.98.0.0/24"), Type: unix.RTN_BLACKHOLE, Protocol: unix.RTPROT_STATIC}, // foreign
	} {
		if err := node.Netlink.RouteAdd(&r); err != nil {
			t.Fatalf("adding %v: %v", r, err)
		}
	}
	env := startEtcd(t)
	env.create(t,
		wep("a", nodeName, "wla", "10.65.0.1/32", "fd00:65::1/128"),
		wep("b", nodeName, "wlb", "10.65.0.2/32"),
		wep("c", "node-2", "wlc", "10.65.0.65/32"),
		block("10.65.0.0/26", nodeName),
		block("fd00:65::/122", nodeName),
		block("10.65.0.64/26", "node-2"),
	)
	runAgent(t, kernelConfig(t, env, node))
	env.waitStatus(t, "programmed", inSyncWith(4))
	want := []string{
		"10.65.0.1 dev wla proto 80 scope link",
		"blackhole 10.65.0.0/26 proto 80",
		"blackhole 10.98.0.0/24 proto 4",
		"blackhole fd00:65::/122 proto 80",
		"fd00:65::1 dev wla proto 80",
	}
	if diff := cmp.Diff(want, kernelRoutes(t, node)); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	for path, v := range map[string]string{
		"net/ipv4/ip_forward":            "1",
		"net/ipv6/conf/all/forwarding":   "1",
		"net/ipv4/conf/wla/proxy_arp":    "1",
		"net/ipv4/conf/wla/rp_filter":    "1",
		"net/ipv4/neigh/wla/proxy_delay": "0",
		"net/ipv6/conf/wla/proxy_ndp":    "1",
		"net/ipv6/conf/wla/accept_ra":    "0",
	} {
		if got := readSysctl(t, node, path); got != v {
			t.Errorf("%s = %s, want %s", path, got, v)
		}
	}

	// The veth of b appears: its route follows at once, and so do its
	// interface settings.
	nstest.Veth(t, node, "wlb", wl, "eth1")
	env.waitStatus(t, "route via wlb", inSyncWith(5))
	if got := kernelRoutes(t, node); !slices.Contains(got, "10.65.0.2 dev wlb proto 80 scope link") {
		t.Errorf("route via wlb missing: %v", got)
	}
	if got := readSysctl(t, node, "net/ipv4/conf/wlb/proxy_arp"); got != "1" {
		t.Errorf("wlb proxy_arp = %s", got)
	}

	// Deleting an endpoint deletes its routes.
	env.delete(t, api.KindWorkloadEndpoint, "default", "a")
	env.waitStatus(t, "a deleted", inSyncWith(3))
	want = []string{
		"10.65.0.2 dev wlb proto 80 scope link",
		"blackhole 10.65.0.0/26 proto 80",
		"blackhole 10.98.0.0/24 proto 4",
		"blackhole fd00:65::/122 proto 80",
	}
	if diff := cmp.Diff(want, kernelRoutes(t, node)); diff != "" {
		t.Errorf("routes after deleting a (-want +got):\n%s", diff)
	}
}

func mustNet(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

// workload sets up a workload namespace the way the CNI plugin does:
// its address on eth0, a permanent neighbour entry mapping the gateway
// 169.254.1.1 to the host side's MAC, and a default route via the gateway,
// onlink. It returns the address.
func workload(t *testing.T, node *nstest.NS, hostIf string, ns *nstest.NS, addr string) netip.Addr {
	t.Helper()
	host, err := node.Netlink.LinkByName(hostIf)
	if err != nil {
		t.Fatal(err)
	}
	eth0, err := ns.Netlink.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr(addr)
	gw := net.ParseIP("169.254.1.1")
	steps := []func() error{
		func() error {
			return ns.Netlink.AddrAdd(eth0, &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}})
		},
		func() error {
			return ns.Netlink.NeighAdd(&netlink.Neigh{LinkIndex: eth0.Attrs().Index, Family: unix.AF_INET,
				State: netlink.NUD_PERMANENT, IP: gw, HardwareAddr: host.Attrs().HardwareAddr})
		},
		func() error {
			return ns.Netlink.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw, Flags: int(netlink.FLAG_ONLINK)})
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("setting up workload %s in %s: %v", addr, ns.Name, err)
		}
	}
	return a
}

// TestKernelWorkloadsTalkThroughNode: two workloads reach each other
// through a node namespace that has no default route (and no address),
// with real packets over TCP, once the agent has programmed the node.
func TestKernelWorkloadsTalkThroughNode(t *testing.T) {
	if testing.Short() {
		t.Skip("kernel test")
	}
	node, w1, w2 := nstest.New(t), nstest.New(t), nstest.New(t)
	nstest.Veth(t, node, "wl1", w1, "eth0")
	nstest.Veth(t, node, "wl2", w2, "eth0")
	a1 := workload(t, node, "wl1", w1, "10.65.0.1")
	a2 := workload(t, node, "wl2", w2, "10.65.0.2")
	if got := kernelRoutes(t, node); len(got) != 0 {
		t.Fatalf("node namespace has routes before felix: %v", got)
	}

	// No path before felix programs the node.
	if err := w1.Do(func() error {
		d := net.Dialer{Timeout: 300 * time.Millisecond}
		c, err := d.Dial("tcp", netip.AddrPortFrom(a2, 7777).String())
		if err == nil {
			c.Close()
			return errors.New("connected before felix ran")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	env := startEtcd(t)
	env.create(t,
		wep("w1", nodeName, "wl1", a1.String()+"/32"),
		wep("w2", nodeName, "wl2", a2.String()+"/32"),
		block("10.65.0.0/26", nodeName),
	)
	runAgent(t, kernelConfig(t, env, node))
	env.waitStatus(t, "programmed", inSyncWith(3))

	if err := talk(w1, a1, w2, a2, 7777, 10*time.Second); err != nil {
		t.Fatalf("w1 to w2 through the node: %v", err)
	}
}

// talk has a connect over TCP from addr a in namespace from to addr b
// port in namespace to, exchange a ping and a pong, and checks that b sees
// the connection come from a (no NAT on the way).
func talk(from *nstest.NS, a netip.Addr, to *nstest.NS, b netip.Addr, port uint16, timeout time.Duration) error {
	var ln net.Listener
	if err := to.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(b, port).String())
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		if got := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); got != a {
			served <- fmt.Errorf("connection came from %s, want %s", got, a)
			return
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			served <- err
			return
		}
		_, err = c.Write([]byte("pong"))
		served <- err
	}()
	var conn net.Conn
	if err := from.Do(func() (err error) {
		d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: a.AsSlice()}}
		conn, err = d.Dial("tcp", netip.AddrPortFrom(b, port).String())
		return err
	}); err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "pong" {
		return fmt.Errorf("reading the answer: %q, %v", buf, err)
	}
	return <-served
}
