package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/sim/netbuild"
	"github.com/bgpfabric/bgpfabric/sim/probe"
	"github.com/bgpfabric/bgpfabric/sim/runstate"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// cniPluginName is the name runtimes call the plugin by.
const cniPluginName = "bgpfabric-cni"

// workloadState is a workload's namespace and the addresses CNI gave it.
type workloadState struct {
	plan  *topology.WorkloadPlan
	ns    netns.NsHandle
	addrs []netip.Addr
}

func (w *workloadState) addr(family int) (netip.Addr, bool) {
	for _, a := range w.addrs {
		if (family == 6) == a.Is6() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// WorkloadsWired reports whether workloads have addresses (the CNI plugin
// ran for them).
func (f *Fabric) WorkloadsWired() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.workloads {
		if len(w.addrs) > 0 {
			return true
		}
	}
	return false
}

// startWorkloads wires every workload through the CNI plugin (libcni runs
// it from a thread in the node's namespace, which the plugin process
// inherits: the host side of the workload's veth is the node), then opens
// the workloads' TCP listeners.
func (f *Fabric) startWorkloads(ctx context.Context) error {
	for _, w := range f.Plan.Workloads {
		h, _ := f.net.Handle(w.Netns)
		f.workloads[w.Name] = &workloadState{plan: w, ns: h}
	}
	if len(f.Plan.Workloads) == 0 || f.opts.Workloads == "none" {
		return nil
	}
	binDir := filepath.Join(f.run.Dir, "cni-bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	if err := os.Symlink(f.opts.Binary, filepath.Join(binDir, cniPluginName)); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	// One CNIConfig per goroutine: libcni sets its executor lazily on
	// first use, a data race when goroutines share one.
	newCNI := func() *libcni.CNIConfig {
		return libcni.NewCNIConfigWithCacheDir([]string{binDir}, filepath.Join(f.run.Dir, "cni-cache"), nil)
	}

	byNode := map[string][]*topology.WorkloadPlan{}
	var nodes []string
	for _, w := range f.Plan.Workloads {
		if byNode[w.Node] == nil {
			nodes = append(nodes, w.Node)
		}
		byNode[w.Node] = append(byNode[w.Node], w)
	}
	sort.Strings(nodes)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	sem := make(chan struct{}, f.opts.CNIParallel)
	for _, node := range nodes {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			cni := newCNI()
			for _, w := range byNode[node] {
				if err := f.addWorkload(ctx, cni, w); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	f.progress("%d workloads wired through %s", len(f.Plan.Workloads), cniPluginName)
	return f.startListeners()
}

// startListeners opens the workloads' TCP listeners: in this process, or,
// for a run that outlives it (Keep), as processes of the run (`bgpfabric
// sim listen`) in the workloads' namespaces, which teardown stops.
func (f *Fabric) startListeners() error {
	for _, w := range f.Plan.Workloads {
		if len(w.Ports) == 0 {
			continue
		}
		ns := f.workloads[w.Name].ns
		if !f.opts.Keep {
			for _, port := range w.Ports {
				if err := probe.Listen(f.ctx, ns, port); err != nil {
					return fmt.Errorf("workload %s: %w", w.Name, err)
				}
			}
			continue
		}
		args := []string{f.opts.Binary, "sim", "listen"}
		for _, port := range w.Ports {
			args = append(args, "--port", strconv.Itoa(port))
		}
		name := "listener/" + w.Name
		p, err := startIn(f.run, name, ns, w.Netns, args, filepath.Join(f.run.Dir, "logs", "listener-"+w.Name+".log"), nil, 0)
		if p != nil {
			f.procs.set(name, p)
		}
		if err != nil {
			return fmt.Errorf("workload %s: %w", w.Name, err)
		}
	}
	return nil
}

// ServeListeners accepts and closes TCP connections on ports in this
// process's namespace until ctx ends (`bgpfabric sim listen`).
func ServeListeners(ctx context.Context, ports []int) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	self, err := netns.Get()
	if err != nil {
		return err
	}
	defer self.Close()
	for _, port := range ports {
		if err := probe.Listen(ctx, self, port); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

// cniConfig is the network configuration of one workload (its labels ride
// in args, as CNI_ARGS-style runtime arguments).
func (f *Fabric) cniConfig(w *topology.WorkloadPlan) ([]byte, error) {
	type label struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	var labels []label
	keys := make([]string, 0, len(w.Labels))
	for k := range w.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		labels = append(labels, label{k, w.Labels[k]})
	}
	plugin := map[string]any{
		"type":         cniPluginName,
		"datastore":    map[string]any{"endpoints": []string{f.ds.endpoint}},
		"nodeName":     w.Node,
		"ipamLockFile": filepath.Join(f.run.Dir, "ipam-"+w.Node+".lock"),
		"dataDir":      filepath.Join(f.run.Dir, "cni-"+w.Node),
		"logFile":      filepath.Join(f.run.Dir, "logs", "cni-"+w.Node+".log"),
		"args":         map[string]any{"cni": map[string]any{"labels": labels}},
	}
	if f.hasIPv6Pool() {
		// Dual stack: the plugin assigns IPv6 only when asked to.
		plugin["assignIPv6"] = true
	}
	if f.kube != nil {
		// The plugin reads the pod from the API server: its labels come
		// from there, not from args.
		plugin["kubernetes"] = map[string]any{"kubeconfig": f.kube.kubeconfig}
		delete(plugin, "args")
	}
	return json.Marshal(map[string]any{"cniVersion": "1.1.0", "name": "bgpfabric", "plugins": []any{plugin}})
}

func (f *Fabric) addWorkload(ctx context.Context, cni *libcni.CNIConfig, w *topology.WorkloadPlan) error {
	conf, err := f.cniConfig(w)
	if err != nil {
		return err
	}
	list, err := libcni.ConfListFromBytes(conf)
	if err != nil {
		return fmt.Errorf("workload %s: CNI configuration: %w", w.Name, err)
	}
	rt := &libcni.RuntimeConf{
		ContainerID: f.Plan.RunID + "-" + w.Name,
		NetNS:       filepath.Join(runstate.NetnsDir, w.Netns),
		IfName:      "eth0",
		Args:        [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", w.Namespace}, {"K8S_POD_NAME", w.Name}},
	}
	if f.kube != nil {
		if err := f.createPod(ctx, w); err != nil {
			return err
		}
	}
	node := f.Plan.Node(w.Node)
	h, _ := f.net.Handle(node.Netns)
	var res *types100.Result
	err = netbuild.Do(h, func() error {
		r, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			return err
		}
		res, err = types100.NewResultFromResult(r)
		return err
	})
	if err != nil {
		return fmt.Errorf("workload %s on %s: CNI ADD: %w", w.Name, w.Node, err)
	}
	var addrs []netip.Addr
	for _, ip := range res.IPs {
		if a, ok := netip.AddrFromSlice(ip.Address.IP); ok {
			addrs = append(addrs, a.Unmap())
		}
	}
	f.mu.Lock()
	f.workloads[w.Name].addrs = addrs
	f.mu.Unlock()
	if f.kube != nil {
		return f.setPodRunning(ctx, w, addrs)
	}
	return nil
}

// teardownWorkloads: the workloads go with their namespaces and the run's
// datastore; their listeners end with the fabric's context.
func (f *Fabric) teardownWorkloads() {}

// WorkloadAddrs returns a workload's addresses.
func (f *Fabric) WorkloadAddrs(name string) []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	if w := f.workloads[name]; w != nil {
		return append([]netip.Addr(nil), w.addrs...)
	}
	return nil
}

// workloadAddrs reads the global addresses of a workload's interfaces
// (for a run attached after the CNI plugin wired it).
func workloadAddrs(h netns.NsHandle) []netip.Addr {
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil
	}
	defer nl.Close()
	addrs, err := nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if ok && ip.Unmap().IsGlobalUnicast() {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// hasIPv6Pool reports whether the plan has an IPv6 IP pool.
func (f *Fabric) hasIPv6Pool() bool {
	for _, r := range f.Plan.Resources {
		if p, ok := r.(*api.IPPool); ok {
			if pfx, err := netip.ParsePrefix(p.Spec.CIDR); err == nil && pfx.Addr().Is6() {
				return true
			}
		}
	}
	return false
}
