package nft

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

func TestNATRules(t *testing.T) {
	pools := []NATPool{
		{CIDR: netip.MustParsePrefix("10.245.0.0/16")},
		{CIDR: netip.MustParsePrefix("10.244.0.0/16"), Masquerade: true},
		{CIDR: netip.MustParsePrefix("fd00:10::/48"), Masquerade: true},
		{CIDR: netip.MustParsePrefix("fd00:20::/48")},
		{CIDR: netip.MustParsePrefix("10.244.0.0/16"), Masquerade: true}, // twice: once
	}
	want := []string{
		"ip daddr 10.244.0.0/16 return",
		"ip daddr 10.245.0.0/16 return",
		"ip saddr 10.244.0.0/16 masquerade fully-random",
		"ip6 daddr fd00:10::/48 return",
		"ip6 daddr fd00:20::/48 return",
		"ip6 saddr fd00:10::/48 masquerade fully-random",
	}
	var got []string
	for _, r := range natRules(pools) {
		got = append(got, r.text)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	// No natOutgoing pool in a family: nothing for it.
	if r := natRules(pools[:1]); len(r) != 0 {
		t.Errorf("rules without a natOutgoing pool: %v", r)
	}
}

// natNet is a node with one workload and two destinations, in namespaces
// the test creates:
//
//	workload 10.244.0.5, fd00:10::5 (pool A, the one under test)
//	   |  wl
//	 host  ------ ext ------ internet 192.0.2.2, 2001:db8::2 (no route back to the pools)
//	   |  wl2
//	other workload 10.245.0.7, fd00:20::7 (pool B, no natOutgoing; routes back via the host)
type natNet struct {
	host, wl, internet, other *nstest.NS
	hostExt4, hostExt6        netip.Addr
}

func newNATNet(t *testing.T) *natNet {
	n := &natNet{host: nstest.New(t), wl: nstest.New(t), internet: nstest.New(t), other: nstest.New(t)}
	for _, k := range []string{"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"} {
		if err := n.host.Do(func() error { return os.WriteFile("/proc/sys/"+k, []byte("1"), 0o644) }); err != nil {
			t.Fatalf("sysctl %s: %v", k, err)
		}
	}
	link := func(hostIf string, peer *nstest.NS, hostAddrs, peerAddrs []string, defaultRoute bool) {
		t.Helper()
		hi, pi := nstest.Veth(t, n.host, hostIf, peer, "eth0")
		for i := range hostAddrs {
			addAddr(t, n.host, hi, hostAddrs[i])
			addAddr(t, peer, pi, peerAddrs[i])
			if defaultRoute {
				gw := netip.MustParsePrefix(hostAddrs[i]).Addr()
				if err := peer.Netlink.RouteAdd(&netlink.Route{LinkIndex: pi, Gw: gw.AsSlice()}); err != nil {
					t.Fatalf("default route via %s in %s: %v", gw, peer.Name, err)
				}
			}
		}
	}
	link("wl", n.wl, []string{"10.244.0.1/24", "fd00:10::1/64"}, []string{"10.244.0.5/24", "fd00:10::5/64"}, true)
	link("wl2", n.other, []string{"10.245.0.1/24", "fd00:20::1/64"}, []string{"10.245.0.7/24", "fd00:20::7/64"}, true)
	link("ext", n.internet, []string{"192.0.2.1/24", "2001:db8::1/64"}, []string{"192.0.2.2/24", "2001:db8::2/64"}, false)
	n.hostExt4, n.hostExt6 = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	return n
}

func addAddr(t *testing.T, ns *nstest.NS, index int, cidr string) {
	t.Helper()
	p := netip.MustParsePrefix(cidr)
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD // usable at once
	}
	l, err := ns.Netlink.LinkByIndex(index)
	if err != nil {
		t.Fatalf("link %d in %s: %v", index, ns.Name, err)
	}
	if err := ns.Netlink.AddrAdd(l, a); err != nil {
		t.Fatalf("address %s in %s: %v", cidr, ns.Name, err)
	}
}

// sourceServer listens on port in ns (both families) and reports the
// source address of every connection it accepts.
func sourceServer(t *testing.T, ns *nstest.NS, port string) <-chan netip.Addr {
	t.Helper()
	seen := make(chan netip.Addr, 16)
	var ln net.Listener
	if err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", "[::]:"+port)
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", ns.Name, err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ap := netip.MustParseAddrPort(c.RemoteAddr().String())
			c.Close()
			select {
			case seen <- ap.Addr().Unmap():
			default:
			}
		}
	}()
	return seen
}

// connect dials dst from ns and returns the source address the server
// saw, or an error when no connection is made within timeout.
func connect(ns *nstest.NS, dst netip.Addr, port string, seen <-chan netip.Addr, timeout time.Duration) (netip.Addr, error) {
	err := ns.Do(func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(dst.String(), port), timeout)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		return netip.Addr{}, err
	}
	select {
	case a := <-seen:
		return a, nil
	case <-time.After(timeout):
		return netip.Addr{}, errors.New("connected, but the server saw no connection")
	}
}

// Real packets: a workload reaches a destination that has no route back to
// its pool only while its pool has natOutgoing, and then with the node's
// address as source; traffic to another pool is never masqueraded; turning
// it off removes the table. IPv4 and IPv6.
func TestNATOutgoingKernel(t *testing.T) {
	n := newNATNet(t)
	const port = "8080"
	seenInternet := sourceServer(t, n.internet, port)
	seenOther := sourceServer(t, n.other, port)
	nat := NewNAT(NATConfig{NetNS: int(n.host.Handle)})
	t.Cleanup(func() {
		if err := nat.Apply(context.Background(), nil); err != nil {
			t.Errorf("removing the nat table: %v", err)
		}
	})
	poolA4, poolA6 := netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:10::/48")
	poolB4, poolB6 := netip.MustParsePrefix("10.245.0.0/16"), netip.MustParsePrefix("fd00:20::/48")
	pools := func(masq bool) []NATPool {
		return []NATPool{{CIDR: poolA4, Masquerade: masq}, {CIDR: poolA6, Masquerade: masq}, {CIDR: poolB4}, {CIDR: poolB6}}
	}
	internet := []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::2")}
	others := []netip.Addr{netip.MustParseAddr("10.245.0.7"), netip.MustParseAddr("fd00:20::7")}
	wlAddrs := []netip.Addr{netip.MustParseAddr("10.244.0.5"), netip.MustParseAddr("fd00:10::5")}
	hostAddrs := []netip.Addr{n.hostExt4, n.hostExt6}
	ctx := context.Background()

	expectBlocked := func(stage string) {
		t.Helper()
		for _, dst := range internet {
			if src, err := connect(n.wl, dst, port, seenInternet, 2*time.Second); err == nil {
				t.Errorf("%s: workload reached %s (source %s) although nothing routes back to its pool", stage, dst, src)
			}
		}
	}
	expectOthersDirect := func(stage string) {
		t.Helper()
		for i, dst := range others {
			src, err := connect(n.wl, dst, port, seenOther, 20*time.Second)
			if err != nil {
				t.Errorf("%s: workload to %s (another pool): %v", stage, dst, err)
			} else if src != wlAddrs[i] {
				t.Errorf("%s: %s saw source %s, want the workload's own %s (no NAT between pools)", stage, dst, src, wlAddrs[i])
			}
		}
	}

	if err := nat.Apply(ctx, pools(false)); err != nil {
		t.Fatal(err)
	}
	if tableExists(t, n.host) {
		t.Error("natOutgoing false: the nat table exists")
	}
	expectBlocked("natOutgoing false")
	expectOthersDirect("natOutgoing false")

	if err := nat.Apply(ctx, pools(true)); err != nil {
		t.Fatal(err)
	}
	for i, dst := range internet {
		src, err := connect(n.wl, dst, port, seenInternet, 20*time.Second)
		if err != nil {
			t.Errorf("natOutgoing true: workload to %s: %v", dst, err)
		} else if src != hostAddrs[i] {
			t.Errorf("natOutgoing true: %s saw source %s, want the node's address %s", dst, src, hostAddrs[i])
		}
	}
	expectOthersDirect("natOutgoing true")

	if err := nat.Apply(ctx, pools(false)); err != nil {
		t.Fatal(err)
	}
	if tableExists(t, n.host) {
		t.Error("natOutgoing back to false: the nat table is still there")
	}
	expectBlocked("natOutgoing back to false")
}

func tableExists(t *testing.T, ns *nstest.NS) bool {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListTableOfFamily(DefaultNATTable, nftables.TableFamilyINet)
	if err != nil && !strings.Contains(err.Error(), "no such file") && !errors.Is(err, unix.ENOENT) {
		t.Fatalf("listing the nat table: %v", err)
	}
	return err == nil
}
