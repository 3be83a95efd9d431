package cni_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/cni"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/ipam"
)

// Tests that the plugin never harms a live container: a call undoes only
// what it did itself, and touches only what it can prove is its own.

// addIP runs ADD and returns the container's IPv4 address.
func addIP(t *testing.T, f *fabric, c *libcni.CNIConfig, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) netip.Addr {
	t.Helper()
	var res types.Result
	if err := f.inHost(func() (err error) { res, err = c.AddNetworkList(f.ctx, list, rt); return err }); err != nil {
		t.Fatalf("ADD %s: %v", rt.ContainerID, err)
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.IPs) != 1 {
		t.Fatalf("ADD %s: result %s, want one address", rt.ContainerID, res)
	}
	ip, _ := netip.AddrFromSlice(r.IPs[0].Address.IP)
	return ip.Unmap()
}

// TestRepeatedAddKeepsTheAttachment: a second ADD for a container that is
// attached must not take the first ADD's addresses away. On a healthy
// attachment it answers the same result; on one that does not match the
// records it fails without touching anything.
func TestRepeatedAddKeepsTheAttachment(t *testing.T) {
	f := newFabric(t)
	cont, rt := f.container("again1", [2]string{"K8S_POD_NAMESPACE", "shop"}, [2]string{"K8S_POD_NAME", "web-1"})
	list := f.confList(nil)
	c := f.cni()
	ip1 := addIP(t, f, c, list, rt)
	handle := cni.HandleFor("bgpfabric", "again1", "eth0")

	// Healthy: the same answer, nothing allocated or removed.
	if ip := addIP(t, f, c, list, rt); ip != ip1 {
		t.Errorf("repeated ADD answered %s, want the attachment's %s", ip, ip1)
	}
	if a := f.allocations(); len(a) != 1 || a[ip1] != handle {
		t.Errorf("allocations after a repeated ADD: %v, want only %s for %s", a, ip1, handle)
	}
	ping(t, cont, nodeAddr)

	// Not healthy (the endpoint record is gone): an error, and the
	// attachment stays as it is.
	ep := f.endpoints()
	if len(ep) != 1 {
		t.Fatalf("%d endpoints, want 1", len(ep))
	}
	if err := f.store.Delete(f.ctx, api.KindWorkloadEndpoint, ep[0].Namespace, ep[0].Name, ""); err != nil {
		t.Fatal(err)
	}
	err := f.inHost(func() error { _, err := c.AddNetworkList(f.ctx, list, rt); return err })
	if err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("ADD over an attachment without its endpoint: %v, want an error saying the interface exists already", err)
	}
	if a := f.allocations(); len(a) != 1 || a[ip1] != handle {
		t.Errorf("allocations after a failed repeated ADD: %v, want only %s for %s", a, ip1, handle)
	}
	ping(t, cont, nodeAddr)

	// The next workload gets another address.
	_, rt2 := f.container("other2")
	if ip2 := addIP(t, f, c, list, rt2); ip2 == ip1 {
		t.Errorf("a second container got %s, the address of the first", ip2)
	}

	// Not healthy either: the endpoint is back, but the address was
	// released (by hand): no answer that hands it out again.
	f.apply(ep[0])
	ic, err := ipam.New(ipam.Config{Store: f.store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ic.ReleaseIPs(f.ctx, []netip.Addr{ip1}); err != nil {
		t.Fatal(err)
	}
	err = f.inHost(func() error { _, err := c.AddNetworkList(f.ctx, list, rt); return err })
	if err == nil || !strings.Contains(err.Error(), "IPAM holds [] for handle "+handle) {
		t.Fatalf("ADD over an attachment whose address was released: %v, want an error naming the allocation", err)
	}
}

// TestDelOfOldSandboxKeepsNewVeth: a pod's new sandbox takes over the host
// interface name; the old sandbox's DEL, during a datastore outage and
// after it, must leave the new sandbox's veth alone.
func TestDelOfOldSandboxKeepsNewVeth(t *testing.T) {
	f := newFabric(t)
	pod := [][2]string{{"K8S_POD_NAMESPACE", "shop"}, {"K8S_POD_NAME", "web-1"}}
	_, oldRT := f.container("oldsandbox", pod...)
	newNS, newRT := f.container("newsandbox", pod...)
	list := f.confList(nil)
	c := f.cni()
	addIP(t, f, c, list, oldRT)
	addIP(t, f, c, list, newRT)
	hostIf := cni.HostIfName("shop", "web-1", "eth0")
	before, err := f.host.Netlink.LinkByName(hostIf)
	if err != nil {
		t.Fatal(err)
	}

	f.etcd.stop()
	err = f.inHost(func() error { return c.DelNetworkList(f.ctx, list, oldRT) })
	var te *types.Error
	if !errors.As(err, &te) || te.Code != types.ErrTryAgainLater {
		t.Errorf("DEL with etcd down: %v, want code 11", err)
	}
	after, err := f.host.Netlink.LinkByName(hostIf)
	if err != nil || after.Attrs().Index != before.Attrs().Index {
		t.Fatalf("the new sandbox's host interface %s is gone after the old sandbox's DEL during an outage (%v)", hostIf, err)
	}
	ping(t, newNS, nodeAddr)

	if err := f.etcd.start(); err != nil {
		t.Fatal(err)
	}
	if err := f.inHost(func() error { return c.DelNetworkList(f.ctx, list, oldRT) }); err != nil {
		t.Fatalf("DEL of the old sandbox: %v", err)
	}
	if l, err := f.host.Netlink.LinkByName(hostIf); err != nil || l.Attrs().Index != before.Attrs().Index {
		t.Fatalf("the new sandbox's host interface is gone after the old sandbox's DEL (%v)", err)
	}
	ping(t, newNS, nodeAddr)
	if weps := f.endpoints(); len(weps) != 1 || weps[0].Spec.ContainerID != "newsandbox" {
		t.Errorf("endpoints: %v, want the new sandbox's", weps)
	}
	if err := f.inHost(func() error { return c.DelNetworkList(f.ctx, list, newRT) }); err != nil {
		t.Fatalf("DEL of the new sandbox: %v", err)
	}
	if got := links(t, f.host); len(got) != 0 {
		t.Errorf("host links after both DELs: %v", got)
	}
	if a := f.allocations(); len(a) != 0 {
		t.Errorf("allocations after both DELs: %v", a)
	}
}

// TestHostNamespaceRefused: CNI_NETNS naming the plugin's own namespace is
// refused by ADD (no default route, no interface, no address) and DEL
// never deletes an interface of the host namespace through it.
func TestHostNamespaceRefused(t *testing.T) {
	f := newFabric(t)
	list := f.confList(nil)
	c := f.cni()
	rt := &libcni.RuntimeConf{ContainerID: "hostns1", NetNS: "/var/run/netns/" + f.host.Name, IfName: "eth0"}
	routesBefore := routeLines(t, f.host)
	err := f.inHost(func() error { _, err := c.AddNetworkList(f.ctx, list, rt); return err })
	if err == nil || !strings.Contains(err.Error(), "host's own network namespace") {
		t.Fatalf("ADD into the host namespace: %v, want a refusal naming the host's namespace", err)
	}
	if got := links(t, f.host); len(got) != 0 {
		t.Errorf("host links: %v", got)
	}
	if got := routeLines(t, f.host); !slices.Equal(got, routesBefore) {
		t.Errorf("host routes changed:\n%v\nwant\n%v", got, routesBefore)
	}
	if a := f.allocations(); len(a) != 0 {
		t.Errorf("allocations: %v", a)
	}

	// A veth named eth0 in the host namespace survives a DEL that names
	// the host namespace.
	peer := nstest.New(t)
	nstest.Veth(t, f.host, "eth0", peer, "p0")
	_ = f.inHost(func() error { return c.DelNetworkList(f.ctx, list, rt) })
	if _, err := f.host.Netlink.LinkByName("eth0"); err != nil {
		t.Errorf("the host namespace's eth0 is gone after a DEL naming the host namespace: %v", err)
	}
}

// TestForeignHostRouteKept: an operator's static route to a workload
// address stays as it is; the ADD fails naming it and leaves nothing.
func TestForeignHostRouteKept(t *testing.T) {
	f := newFabric(t)
	lo, err := f.host.Netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	// Every address of pool4, so that whichever the allocation picks has
	// an operator's route.
	pool := netip.MustParsePrefix("10.244.0.0/24")
	for a := pool.Addr(); pool.Contains(a); a = a.Next() {
		r := &netlink.Route{LinkIndex: lo.Attrs().Index, Dst: hostNet(a), Scope: netlink.SCOPE_LINK, Protocol: unix.RTPROT_STATIC}
		if err := f.host.Netlink.RouteAdd(r); err != nil {
			t.Fatalf("adding %s: %v", a, err)
		}
	}
	before := routeLines(t, f.host)
	_, rt := f.container("route1")
	list := f.confList(nil)
	c := f.cni()
	err = f.inHost(func() error { _, err := c.AddNetworkList(f.ctx, list, rt); return err })
	if err == nil || !strings.Contains(err.Error(), "static") {
		t.Fatalf("ADD over an operator's route: %v, want an error naming the route's protocol", err)
	}
	if got := routeLines(t, f.host); !slices.Equal(got, before) {
		t.Errorf("host routes changed by a failed ADD:\n%v\nwant\n%v", got, before)
	}
	if got := links(t, f.host); len(got) != 0 {
		t.Errorf("host links: %v", got)
	}
	if a := f.allocations(); len(a) != 0 {
		t.Errorf("allocations: %v", a)
	}
	if n := len(f.endpoints()); n != 0 {
		t.Errorf("%d endpoints", n)
	}
}

// routeLines renders the main table's IPv4 routes of ns, sorted.
func routeLines(t *testing.T, ns *nstest.NS) []string {
	t.Helper()
	rs, err := ns.Netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		dst := "default"
		if r.Dst != nil {
			dst = r.Dst.String()
		}
		gw := ""
		if r.Gw != nil {
			gw = " via " + net.IP(r.Gw).String()
		}
		out = append(out, dst+gw+" dev "+strconv.Itoa(r.LinkIndex)+" proto "+r.Protocol.String())
	}
	slices.Sort(out)
	return out
}

// TestDelWithoutRecord: an attachment without a record (made by a version
// before records) has its host interface deleted on the datastore's word
// only: not during an outage, and once the datastore answers.
func TestDelWithoutRecord(t *testing.T) {
	f := newFabric(t)
	_, rt := f.container("norecord1")
	list := f.confList(nil)
	c := f.cni()
	addIP(t, f, c, list, rt)
	if got := f.records(); len(got) != 1 {
		t.Fatalf("records after ADD: %v, want one", got)
	}
	if err := os.RemoveAll(f.conf["dataDir"].(string)); err != nil {
		t.Fatal(err)
	}
	hostIf := cni.HostIfName("default", "norecord1", "eth0")
	// The runtime may send DEL without CNI_NETNS: only the host side
	// tells.
	noNetns := *rt
	noNetns.NetNS = ""
	f.etcd.stop()
	err := f.inHost(func() error { return c.DelNetworkList(f.ctx, list, &noNetns) })
	var te *types.Error
	if !errors.As(err, &te) || te.Code != types.ErrTryAgainLater {
		t.Errorf("DEL with etcd down: %v, want code 11", err)
	}
	if _, err := f.host.Netlink.LinkByName(hostIf); err != nil {
		t.Fatalf("host interface %s deleted without a record or the datastore's word: %v", hostIf, err)
	}
	if err := f.etcd.start(); err != nil {
		t.Fatal(err)
	}
	if err := f.inHost(func() error { return c.DelNetworkList(f.ctx, list, &noNetns) }); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if got := links(t, f.host); len(got) != 0 {
		t.Errorf("host links after DEL: %v", got)
	}
	if a := f.allocations(); len(a) != 0 {
		t.Errorf("allocations after DEL: %v", a)
	}
}
