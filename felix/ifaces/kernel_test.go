package ifaces

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// readSysctl reads /proc/sys/path inside ns.
func readSysctl(t *testing.T, ns *nstest.NS, path string) string {
	t.Helper()
	var v string
	err := ns.Do(func() error {
		b, err := os.ReadFile("/proc/sys/" + path)
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		t.Fatalf("reading %s in %s: %v", path, ns.Name, err)
	}
	return v
}

// TestNetlinkKernel writes the settings of a workload interface in a
// fresh namespace and reads them back there; the test's own namespace is
// not touched.
func TestNetlinkKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("kernel test")
	}
	node, wl := nstest.New(t), nstest.New(t)
	idx, _ := nstest.Veth(t, node, "wla", wl, "eth0")
	outsideForward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}

	k, err := NewNetlinkKernel(node.Handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	m := NewManager(Config{}, k)
	m.OnLinkUpdate("lo", 1, false)
	m.OnLinkUpdate("wla", idx, false)
	gw := netip.MustParseAddr("fe80::1")
	m.Set("wla", &Settings{IPv4: true, IPv6: true, ProxyNDP: []netip.Addr{gw}})
	ctx := context.Background()
	if err := m.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"net/ipv4/ip_forward":             "1",
		"net/ipv6/conf/all/forwarding":    "1",
		"net/ipv4/conf/wla/forwarding":    "1",
		"net/ipv4/conf/wla/proxy_arp":     "1",
		"net/ipv4/conf/wla/rp_filter":     "1",
		"net/ipv4/neigh/wla/proxy_delay":  "0",
		"net/ipv6/conf/wla/forwarding":    "1",
		"net/ipv6/conf/wla/proxy_ndp":     "1",
		"net/ipv6/conf/wla/accept_ra":     "0",
		"net/ipv6/neigh/wla/proxy_delay":  "0",
		"net/ipv4/conf/lo/proxy_arp":      "0", // not a workload interface
		"net/ipv4/conf/default/proxy_arp": "0",
	} {
		if got := readSysctl(t, node, path); got != want {
			t.Errorf("%s = %s in the node namespace, want %s", path, got, want)
		}
	}
	proxies, err := node.Netlink.NeighProxyList(idx, unix.AF_INET6)
	if err != nil {
		t.Fatal(err)
	}
	if len(proxies) != 1 || !proxies[0].IP.Equal(gw.AsSlice()) || proxies[0].Flags&netlink.NTF_PROXY == 0 {
		t.Errorf("proxy entries on wla = %v, want %s", proxies, gw)
	}

	// Not a workload interface any more: the entry goes.
	m.Set("wla", nil)
	if err := m.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if proxies, _ := node.Netlink.NeighProxyList(idx, unix.AF_INET6); len(proxies) != 0 {
		t.Errorf("proxy entries left: %v", proxies)
	}
	after, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(outsideForward) {
		t.Errorf("ip_forward of the test's own namespace changed from %q to %q", outsideForward, after)
	}
}
