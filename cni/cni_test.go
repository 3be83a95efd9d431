package cni_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/cni"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

func TestVersion(t *testing.T) {
	c := libcni.NewCNIConfigWithCacheDir([]string{plugin(t)}, t.TempDir(), nil)
	info, err := c.GetVersionInfo(context.Background(), "bgpfabric-cni")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}
	if got := info.SupportedVersions(); !slices.Equal(got, want) {
		t.Errorf("supported versions %v, want %v", got, want)
	}
}

// TestBadConfig needs no namespace: the plugin rejects the configuration
// before it touches anything.
func TestBadConfig(t *testing.T) {
	c := libcni.NewCNIConfigWithCacheDir([]string{plugin(t)}, t.TempDir(), nil)
	list, err := libcni.ConfListFromBytes([]byte(`{"cniVersion":"1.1.0","name":"bad","plugins":[
		{"type":"bgpfabric-cni","datastore":{"endpoints":["unix:///nonexistent.sock"],"dialTimeout":"1s"},"mtu":9999999}]}`))
	if err != nil {
		t.Fatal(err)
	}
	rt := &libcni.RuntimeConf{ContainerID: "c1", NetNS: "/proc/self/ns/net", IfName: "eth0"}
	_, err = c.AddNetworkList(context.Background(), list, rt)
	var te *types.Error
	if !errors.As(err, &te) || te.Code != types.ErrInvalidNetworkConfig || !strings.Contains(te.Msg, "mtu") {
		t.Fatalf("ADD with a bad mtu: %v, want code 7 naming mtu", err)
	}
}

// TestAddPingCheckDel is the life of one workload as a runtime drives it.
func TestAddPingCheckDel(t *testing.T) {
	f := newFabric(t)
	cont, rt := f.container("c0ffee01", [2]string{"K8S_POD_NAMESPACE", "shop"}, [2]string{"K8S_POD_NAME", "web-1"})
	list := f.confList(func(p map[string]any) {
		p["args"] = map[string]any{"cni": map[string]any{"labels": []any{map[string]any{"key": "app", "value": "web"}}}}
	})
	c := f.cni()

	var res types.Result
	err := f.inHost(func() (err error) { res, err = c.AddNetworkList(f.ctx, list, rt); return err })
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	hostIf := cni.HostIfName("shop", "web-1", "eth0")
	if len(r.Interfaces) != 2 || r.Interfaces[0].Name != hostIf || r.Interfaces[1].Name != "eth0" || r.Interfaces[1].Sandbox != rt.NetNS {
		t.Fatalf("result interfaces: %v", r.Interfaces)
	}
	if len(r.IPs) != 1 || *r.IPs[0].Interface != 1 || r.IPs[0].Gateway.String() != "169.254.1.1" || len(r.Routes) != 1 {
		t.Fatalf("result: %s", res)
	}
	ip, _ := netip.AddrFromSlice(r.IPs[0].Address.IP)
	ip = ip.Unmap()
	if ones, _ := r.IPs[0].Address.Mask.Size(); ones != 32 || !netip.MustParsePrefix("10.244.0.0/24").Contains(ip) {
		t.Fatalf("address %s is not a /32 of pool4", r.IPs[0].Address.String())
	}
	notInRoot(t, hostIf)
	if got := links(t, f.host); !slices.Equal(got, []string{hostIf}) {
		t.Errorf("host namespace links %v, want [%s]", got, hostIf)
	}

	// The workload reaches the node through its default route.
	ping(t, cont, nodeAddr)

	// The endpoint record.
	weps := f.endpoints()
	if len(weps) != 1 {
		t.Fatalf("%d endpoints, want 1", len(weps))
	}
	w := weps[0]
	if w.Namespace != "shop" || w.Name != api.WorkloadEndpointName("node-1", "k8s", "web-1", "eth0") || w.Spec.ContainerID != "c0ffee01" ||
		w.Spec.InterfaceName != hostIf || w.Spec.MAC != r.Interfaces[1].Mac || w.Labels["app"] != "web" ||
		!slices.Equal(w.Spec.IPNetworks, []string{ip.String() + "/32"}) || !slices.Equal(w.Spec.Profiles, []string{"ns.shop"}) {
		t.Errorf("endpoint: %+v", w)
	}
	if _, err := f.store.Get(f.ctx, api.KindProfile, "", "ns.shop"); err != nil {
		t.Errorf("namespace profile: %v", err)
	}
	if h := f.allocations()[ip]; h != cni.HandleFor("bgpfabric", "c0ffee01", "eth0") {
		t.Errorf("%s is held by %q", ip, h)
	}

	// CHECK passes, then finds a tampered route.
	if err := f.inHost(func() error { return c.CheckNetworkList(f.ctx, list, rt) }); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	eth0, err := cont.Netlink.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	routes, err := cont.Netlink.RouteList(eth0, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range routes {
		if rr.Gw != nil {
			if err := cont.Netlink.RouteDel(&rr); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = f.inHost(func() error { return c.CheckNetworkList(f.ctx, list, rt) })
	if err == nil || !strings.Contains(err.Error(), "default route via 169.254.1.1 dev eth0 is missing") {
		t.Errorf("CHECK after deleting the default route: %v", err)
	}

	// DEL, twice.
	for i := range 2 {
		if err := f.inHost(func() error { return c.DelNetworkList(f.ctx, list, rt) }); err != nil {
			t.Fatalf("DEL #%d: %v", i+1, err)
		}
	}
	if got := links(t, f.host); len(got) != 0 {
		t.Errorf("host links after DEL: %v", got)
	}
	if got := links(t, cont); len(got) != 0 {
		t.Errorf("container links after DEL: %v", got)
	}
	if n := len(f.endpoints()); n != 0 {
		t.Errorf("%d endpoints after DEL", n)
	}
	if a := f.allocations(); len(a) != 0 {
		t.Errorf("allocations after DEL: %v", a)
	}
	if r := f.records(); len(r) != 0 {
		t.Errorf("attachment records after DEL: %v", r)
	}
}

// TestDualStackOldVersion attaches with IPv4 and IPv6 through spec 0.4.0.
func TestDualStackOldVersion(t *testing.T) {
	f := newFabric(t)
	cont, rt := f.container("dual1")
	list := f.confList(func(p map[string]any) {
		p["cniVersion"] = "0.4.0"
		p["ipv6Pools"] = []string{"pool6"}
	})
	c := f.cni()
	var res types.Result
	if err := f.inHost(func() (err error) { res, err = c.AddNetworkList(f.ctx, list, rt); return err }); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if res.Version() != "0.4.0" {
		t.Errorf("result version %s, want 0.4.0", res.Version())
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.IPs) != 2 || len(r.Routes) != 2 {
		t.Fatalf("result %s: want an IPv4 and an IPv6 address and default route", res)
	}
	ip6, _ := netip.AddrFromSlice(r.IPs[1].Address.IP)
	if !netip.MustParsePrefix("fd00:244::/120").Contains(ip6) {
		t.Errorf("IPv6 %s not from pool6", ip6)
	}
	ping(t, cont, nodeAddr)
	if err := f.inHost(func() error { return c.CheckNetworkList(f.ctx, list, rt) }); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := f.inHost(func() error { return c.DelNetworkList(f.ctx, list, rt) }); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if a := f.allocations(); len(a) != 0 {
		t.Errorf("allocations after DEL: %v", a)
	}
}

// TestAddDatastoreDown: with etcd gone, ADD fails with "try again later"
// and leaves nothing.
func TestAddDatastoreDown(t *testing.T) {
	f := newFabric(t)
	cont, rt := f.container("down1")
	list := f.confList(nil)
	c := f.cni()
	f.etcd.stop()
	err := f.inHost(func() error { _, err := c.AddNetworkList(f.ctx, list, rt); return err })
	var te *types.Error
	if !errors.As(err, &te) || te.Code != types.ErrTryAgainLater {
		t.Fatalf("ADD with etcd down: %v, want code 11", err)
	}
	if got := links(t, f.host); len(got) != 0 {
		t.Errorf("host links: %v", got)
	}
	if got := links(t, cont); len(got) != 0 {
		t.Errorf("container links: %v", got)
	}
	if err := f.etcd.start(); err != nil {
		t.Fatal(err)
	}
	if a := f.allocations(); len(a) != 0 {
		t.Errorf("allocations: %v", a)
	}
	if n := len(f.endpoints()); n != 0 {
		t.Errorf("%d endpoints", n)
	}
}

func TestStatus(t *testing.T) {
	f := newFabric(t)
	list := f.confList(nil)
	c := f.cni()
	status := func() error { return f.inHost(func() error { return c.GetStatusNetworkList(f.ctx, list) }) }
	if err := status(); err != nil {
		t.Fatalf("STATUS without a felix report: %v", err)
	}
	fs := &api.FelixStatus{ObjectMeta: api.ObjectMeta{Name: "node-1"}, Status: api.FelixStatusReport{
		LastUpdate: "2025-01-02T15:04:05Z", Dataplane: api.DataplaneStatus{State: api.DataplaneFailed, Error: "nft: boom"}}}
	f.apply(fs)
	var te *types.Error
	if err := status(); !errors.As(err, &te) || te.Code != types.ErrPluginNotAvailable || !strings.Contains(te.Msg, "not ready") {
		t.Errorf("STATUS with felix not ready: %v, want code 50", err)
	}
	fs.Status.Ready, fs.Status.Dataplane = true, api.DataplaneStatus{State: api.DataplaneInSync}
	f.apply(fs)
	if err := status(); err != nil {
		t.Errorf("STATUS with felix ready: %v", err)
	}
	f.etcd.stop()
	if err := status(); !errors.As(err, &te) || te.Code != types.ErrPluginNotAvailable {
		t.Errorf("STATUS with etcd down: %v, want code 50", err)
	}
}

func TestGC(t *testing.T) {
	f := newFabric(t)
	list := f.confList(nil)
	c := f.cni()
	_, keep := f.container("keep1")
	_, drop := f.container("drop1")
	// The runtime lists only keep1 as valid. libcni would first DEL the
	// attachments in its own cache that are not listed; empty the cache so
	// that the plugin's GC alone must find drop1.
	for _, rt := range []*libcni.RuntimeConf{keep, drop} {
		if err := f.inHost(func() error { _, err := c.AddNetworkList(f.ctx, list, rt); return err }); err != nil {
			t.Fatalf("ADD %s: %v", rt.ContainerID, err)
		}
	}
	if err := os.RemoveAll(f.cache); err != nil {
		t.Fatal(err)
	}
	valid := &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: keep.ContainerID, IfName: "eth0"}}}
	if err := f.inHost(func() error { return c.GCNetworkList(f.ctx, list, valid) }); err != nil {
		t.Fatalf("GC: %v", err)
	}
	handles := map[string]bool{}
	for _, h := range f.allocations() {
		handles[h] = true
	}
	if !handles[cni.HandleFor("bgpfabric", "keep1", "eth0")] || handles[cni.HandleFor("bgpfabric", "drop1", "eth0")] || len(handles) != 1 {
		t.Errorf("handles after GC: %v", handles)
	}
	if weps := f.endpoints(); len(weps) != 1 || weps[0].Spec.ContainerID != "keep1" {
		t.Errorf("endpoints after GC: %v", weps)
	}
	if got := links(t, f.host); !slices.Equal(got, []string{cni.HostIfName("default", "keep1", "eth0")}) {
		t.Errorf("host links after GC: %v, want only keep1's", got)
	}
	if r := f.records(); len(r) != 1 {
		t.Errorf("attachment records after GC: %v, want keep1's only", r)
	}
}

// ping pings dst once from inside ns.
func ping(t *testing.T, ns *nstest.NS, dst netip.Addr) {
	t.Helper()
	var out []byte
	err := ns.Do(func() (err error) {
		out, err = exec.Command("ping", "-c", "1", "-W", "3", dst.String()).CombinedOutput()
		return err
	})
	if err != nil || !bytes.Contains(out, []byte("1 received")) {
		t.Fatalf("ping %s from %s: %v\n%s", dst, ns.Name, err, out)
	}
}
