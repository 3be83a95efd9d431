package cni_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/vishvananda/netlink"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/cni"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/ipam"
)

const testTimeout = 60 * time.Second

// pluginDir holds the plugin, made once per test binary.
var (
	buildOnce sync.Once
	pluginDir string
	buildErr  error
)

// TestMain doubles as the plugin: libcni execs this test binary through
// a link named bgpfabric-cni, and then it runs the plugin as the bgpfabric
// binary does under that name.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "bgpfabric-cni" {
		os.Exit(cni.Main("bgpfabric CNI plugin (test binary)"))
	}
	code := m.Run()
	if pluginDir != "" {
		os.RemoveAll(pluginDir)
	}
	os.Exit(code)
}

// plugin returns a directory holding bgpfabric-cni, a link to this test
// binary, for libcni's plugin path.
func plugin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		var self string
		if self, buildErr = os.Executable(); buildErr != nil {
			return
		}
		if pluginDir, buildErr = os.MkdirTemp("", "bfcni"); buildErr != nil {
			return
		}
		buildErr = os.Symlink(self, filepath.Join(pluginDir, "bgpfabric-cni"))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return pluginDir
}

// etcd is an embedded etcd that a test may stop and start again on the
// same socket and data.
type etcd struct {
	t    testing.TB
	dir  string
	mu   sync.Mutex
	e    *datastore.Embedded
	sock string
}

func startEtcd(t testing.TB) *etcd {
	t.Helper()
	dir, err := os.MkdirTemp("", "bf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &etcd{t: t, dir: dir, sock: filepath.Join(dir, "etcd.sock")}
	if err := e.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.stop)
	return e
}

func (e *etcd) endpoint() string { return "unix://" + e.sock }

func (e *etcd) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv, err := datastore.StartEmbedded(ctx, datastore.EmbeddedConfig{
		DataDir: filepath.Join(e.dir, "data"), Listen: e.endpoint(), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return fmt.Errorf("starting etcd: %w", err)
	}
	e.mu.Lock()
	e.e = srv
	e.mu.Unlock()
	return nil
}

func (e *etcd) stop() {
	e.mu.Lock()
	srv := e.e
	e.e = nil
	e.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (e *etcd) client(t testing.TB) *datastore.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := datastore.New(ctx, datastore.Config{Endpoints: []string{e.endpoint()}, DialTimeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fabric is one node: its host namespace, etcd with the node and a pool,
// and the network configuration that points the plugin at them.
type fabric struct {
	t     testing.TB
	ctx   context.Context
	etcd  *etcd
	store *datastore.Client
	host  *nstest.NS
	node  string
	conf  map[string]any
	cache string
}

// nodeAddr is the host namespace's own address, what workloads ping.
var nodeAddr = netip.MustParseAddr("10.99.0.1")

func newFabric(t testing.TB) *fabric {
	t.Helper()
	if testing.Short() {
		t.Skip("namespaces and etcd: runs without -short")
	}
	f := &fabric{t: t, node: "node-1"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	t.Cleanup(cancel)
	f.ctx = ctx
	f.host = nstest.New(t)
	f.etcd = startEtcd(t)
	f.store = f.etcd.client(t)
	f.apply(&api.Node{ObjectMeta: api.ObjectMeta{Name: f.node}},
		&api.IPPool{ObjectMeta: api.ObjectMeta{Name: "pool4"}, Spec: api.IPPoolSpec{CIDR: "10.244.0.0/24", BlockSize: 28}},
		&api.IPPool{ObjectMeta: api.ObjectMeta{Name: "pool6"}, Spec: api.IPPoolSpec{CIDR: "fd00:244::/120", BlockSize: 124}})
	lo, err := f.host.Netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.host.Netlink.AddrAdd(lo, &netlink.Addr{IPNet: hostNet(nodeAddr)}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f.cache = filepath.Join(dir, "cache")
	f.conf = map[string]any{
		"cniVersion":   "1.1.0",
		"name":         "bgpfabric",
		"datastore":    map[string]any{"endpoints": []string{f.etcd.endpoint()}, "dialTimeout": "2s"},
		"nodeName":     f.node,
		"ipv4Pools":    []string{"pool4"},
		"mtu":          1400,
		"logFile":      filepath.Join(dir, "cni.log"),
		"logLevel":     "debug",
		"ipamLockFile": filepath.Join(dir, "ipam.lock"),
		"dataDir":      filepath.Join(dir, "state"),
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "cni.log")); err == nil {
				t.Logf("plugin log:\n%s", b)
			}
		}
	})
	return f
}

func (f *fabric) apply(rs ...api.Resource) {
	f.t.Helper()
	for _, r := range rs {
		if _, err := f.store.Apply(f.ctx, r); err != nil {
			f.t.Fatal(err)
		}
	}
}

// confList is the network configuration list as a runtime loads it; mod
// may change the plugin's configuration (and "cniVersion", which moves to
// the list).
func (f *fabric) confList(mod func(map[string]any)) *libcni.NetworkConfigList {
	f.t.Helper()
	plugin := map[string]any{"type": "bgpfabric-cni"}
	for k, v := range f.conf {
		if k != "cniVersion" && k != "name" {
			plugin[k] = v
		}
	}
	list := map[string]any{"cniVersion": f.conf["cniVersion"], "name": f.conf["name"]}
	if mod != nil {
		mod(plugin)
		if v, ok := plugin["cniVersion"]; ok {
			list["cniVersion"] = v
			delete(plugin, "cniVersion")
		}
	}
	list["plugins"] = []any{plugin}
	b, err := json.Marshal(list)
	if err != nil {
		f.t.Fatal(err)
	}
	cl, err := libcni.ConfListFromBytes(b)
	if err != nil {
		f.t.Fatalf("conflist: %v\n%s", err, b)
	}
	return cl
}

// cni is libcni as the runtime uses it, with the plugin directory and a
// private cache directory.
func (f *fabric) cni() *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir([]string{plugin(f.t)}, f.cache, nil)
}

// inHost runs fn on a thread inside the host namespace: the plugin
// processes libcni starts there inherit that namespace, as plugins run in
// the runtime's namespace.
func (f *fabric) inHost(fn func() error) error { return f.host.Do(fn) }

// container creates a container namespace and its runtime configuration.
func (f *fabric) container(id string, args ...[2]string) (*nstest.NS, *libcni.RuntimeConf) {
	ns := nstest.New(f.t)
	return ns, &libcni.RuntimeConf{ContainerID: id, NetNS: "/var/run/netns/" + ns.Name, IfName: "eth0", Args: args}
}

// allocations returns every allocated address with its handle.
func (f *fabric) allocations() map[netip.Addr]string {
	f.t.Helper()
	ic, err := ipam.New(ipam.Config{Store: f.store})
	if err != nil {
		f.t.Fatal(err)
	}
	all, err := ic.Allocations(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[netip.Addr]string{}
	for _, a := range all {
		out[a.IP] = a.Handle
	}
	return out
}

func (f *fabric) endpoints() []*api.WorkloadEndpoint {
	f.t.Helper()
	rs, _, err := f.store.List(f.ctx, api.KindWorkloadEndpoint, "")
	if err != nil {
		f.t.Fatal(err)
	}
	var out []*api.WorkloadEndpoint
	for _, r := range rs {
		out = append(out, r.(*api.WorkloadEndpoint))
	}
	return out
}

// records lists the plugin's attachment record files.
func (f *fabric) records() []string {
	f.t.Helper()
	ents, err := os.ReadDir(f.conf["dataDir"].(string))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// links lists the interfaces of a namespace but lo.
func links(t testing.TB, ns *nstest.NS) []string {
	t.Helper()
	ls, err := ns.Netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		if l.Attrs().Name != "lo" {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}

// notInRoot fails the test if the test process's own namespace, which
// the plugin must never touch, has the interface.
func notInRoot(t *testing.T, name string) {
	t.Helper()
	if _, err := netlink.LinkByName(name); err == nil {
		t.Errorf("%s exists in the test's own namespace: the plugin ran in the wrong one", name)
	}
}

func hostNet(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
}

// vethInto gives the container an eth0 whose peer "clash-host" is in the
// host namespace.
func vethInto(t *testing.T, f *fabric, cont *nstest.NS) {
	t.Helper()
	nstest.Veth(t, f.host, "clash-host", cont, "eth0")
}
