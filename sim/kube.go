package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/kubeapiserver"
	"github.com/bgpfabric/bgpfabric/internal/kuberest"
	"github.com/bgpfabric/bgpfabric/internal/netnsutil"
	"github.com/bgpfabric/bgpfabric/kubecontrollers/k8slabels"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// Names of the Kubernetes control plane's processes in the run state.
const (
	kubeAPIServerProc   = "kube-apiserver"
	kubeControllersProc = "kube-controllers-" // + replica number
	// KubeControllersBinary is the kube-controllers binary (bgpfabric
	// built with the kube tag), found beside Options.Binary.
	KubeControllersBinary = "bgpfabric-kube-controllers"
	// kubeLease is the Lease kube-controllers' leader holds.
	kubeLeaseNamespace, kubeLeaseName = "kube-system", "bgpfabric-kube-controllers"
	// kubeAdmin is the sim's user of the API server (system:masters).
	kubeAdmin = "bgpfabric-sim"
)

// kubeState is a run's Kubernetes control plane: kube-apiserver (a
// process of the run, on 127.0.0.1 of the sim's namespace), its etcd (in
// this process, on a loopback port), kube-controllers replicas, and a
// forwarder in every node's namespace that relays 127.0.0.1:<port> there
// to the API server, so that the CNI plugin, which runs in the node's
// namespace, reaches it at the address of its certificate.
type kubeState struct {
	dir        string
	url        string
	port       int
	args       []string
	ca         []byte
	token      string
	kubeconfig string
	etcd       *datastore.Embedded
	client     *kuberest.Client
	self       netns.NsHandle

	mu         sync.Mutex
	apiserver  *proc
	forwarders []*netnsutil.Forwarder
	// controllers are the kube-controllers replicas, supervised: one
	// that exits is started again (as its Deployment would) until the
	// fabric closes.
	controllers []*kubeController
	wg          sync.WaitGroup
}

// kubeController is one supervised kube-controllers replica.
type kubeController struct {
	name   string
	binary string
	mu     sync.Mutex
	p      *proc
	// id is the running process's Lease identity.
	id string
	// starts counts the process's starts.
	starts int
}

// Kube is a client of the run's API server (as its admin); nil without
// kubernetes in the topology.
func (f *Fabric) Kube() *kuberest.Client {
	if f.kube == nil {
		return nil
	}
	return f.kube.client
}

// Kubeconfig is the path of the admin kubeconfig of the run's API server.
func (f *Fabric) Kubeconfig() string {
	if f.kube == nil {
		return ""
	}
	return f.kube.kubeconfig
}

// findKubeBinaries returns the kube-apiserver and kube-controllers
// binaries, or an error saying what to do.
func (f *Fabric) findKubeBinaries() (apiserver, controllers string, err error) {
	apiserver = f.opts.KubeAPIServer
	if apiserver == "" {
		var tried []string
		if apiserver, tried = kubeapiserver.Find(f.opts.Binary); apiserver == "" {
			return "", "", fmt.Errorf("kubernetes: no kube-apiserver binary (tried %s): `make kube-apiserver` builds one, or give its path (--kube-apiserver, sim.Options.KubeAPIServer, $%s)",
				strings.Join(tried, ", "), kubeapiserver.EnvBinary)
		}
	} else if st, err := os.Stat(apiserver); err != nil || st.Mode()&0o111 == 0 {
		return "", "", fmt.Errorf("kubernetes: kube-apiserver %s is not an executable file", apiserver)
	}
	controllers = f.opts.KubeControllers
	if controllers == "" {
		controllers = filepath.Join(filepath.Dir(f.opts.Binary), KubeControllersBinary)
	}
	if st, err := os.Stat(controllers); err != nil || st.Mode()&0o111 == 0 {
		return "", "", fmt.Errorf("kubernetes: no %s at %s: `make build` builds it beside bgpfabric (the kube tag), or give its path (--kube-controllers, sim.Options.KubeControllers)", KubeControllersBinary, controllers)
	}
	return apiserver, controllers, nil
}

// startKube boots the Kubernetes control plane: the API server and its
// etcd, Namespaces, a Node per compute node, the topology's manifests,
// the node forwarders and kube-controllers. Workloads are created as Pods
// by addWorkload.
func (f *Fabric) startKube(ctx context.Context) error {
	kp := f.Plan.Kubernetes
	if f.opts.Keep {
		return errors.New("kubernetes: `sim up` cannot run a topology with kubernetes yet (its API server's etcd and the node forwarders live in the sim's process): use `sim run` or the Go API")
	}
	apiBin, kcBin, err := f.findKubeBinaries()
	if err != nil {
		return err
	}
	k := &kubeState{dir: filepath.Join(f.run.Dir, "k8s"), token: kubeapiserver.NewToken()}
	f.kube = k
	if err := os.MkdirAll(k.dir, 0o700); err != nil {
		return err
	}
	if k.self, err = netns.Get(); err != nil {
		return fmt.Errorf("kubernetes: the sim's namespace: %w", err)
	}
	files, err := kubeapiserver.WriteFiles(k.dir, []kubeapiserver.Token{{Token: k.token, User: kubeAdmin, Groups: "system:masters"}})
	if err != nil {
		return fmt.Errorf("kubernetes: certificates: %w", err)
	}
	k.ca = files.CAPEM
	k.etcd, err = datastore.StartEmbedded(ctx, datastore.EmbeddedConfig{
		DataDir: filepath.Join(k.dir, "etcd"), Listen: "http://127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), CompactionRetention: -1,
	})
	if err != nil {
		return fmt.Errorf("kubernetes: the API server's etcd: %w", err)
	}
	if k.port, err = freeLoopbackPort(); err != nil {
		return err
	}
	k.url = "https://127.0.0.1:" + strconv.Itoa(k.port)
	k.args = append([]string{apiBin}, kubeapiserver.Args(files, k.etcd.ClientEndpoint(), k.port, filepath.Join(k.dir, "certs"))...)
	if err := f.StartKubeAPIServer(ctx); err != nil {
		return err
	}
	k.kubeconfig = filepath.Join(k.dir, "admin.kubeconfig")
	if err := os.WriteFile(k.kubeconfig, kubeapiserver.Kubeconfig(k.url, files.CA, kubeAdmin, k.token), 0o600); err != nil {
		return err
	}
	if k.client, err = kuberest.New(kuberest.Config{Server: k.url, CA: k.ca, Token: k.token}); err != nil {
		return err
	}
	f.progress("kube-apiserver up at %s", k.url)

	// Namespaces from manifests first (with their labels), then the
	// others, the Nodes, the remaining manifests.
	for _, r := range kp.Resources {
		if r.Kind == "Namespace" {
			if err := f.kubeCreate(ctx, r.Path(), r.JSON, r.String()); err != nil {
				return err
			}
		}
	}
	for _, ns := range append([]string{kubeLeaseNamespace}, kp.Namespaces...) {
		body := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}
		if err := f.kubeCreate(ctx, "/api/v1/namespaces", body, "Namespace "+ns); err != nil && !kuberest.IsAlreadyExists(err) {
			return err
		}
	}
	for _, n := range f.Plan.Nodes {
		if n.Agent != topology.AgentNode {
			continue
		}
		body := map[string]any{"apiVersion": "v1", "kind": "Node", "metadata": map[string]any{"name": n.Name, "labels": n.Labels}}
		if err := f.kubeCreate(ctx, "/api/v1/nodes", body, "Node "+n.Name); err != nil {
			return err
		}
	}
	for _, r := range kp.Resources {
		if r.Kind != "Namespace" {
			if err := f.kubeCreate(ctx, r.Path(), r.JSON, r.String()); err != nil {
				return err
			}
		}
	}
	for _, n := range f.Plan.Nodes {
		if n.Agent != topology.AgentNode {
			continue
		}
		h, _ := f.net.Handle(n.Netns)
		fw, err := netnsutil.Forward(h, "127.0.0.1:"+strconv.Itoa(k.port), "127.0.0.1:"+strconv.Itoa(k.port))
		if err != nil {
			return fmt.Errorf("kubernetes: node %s: %w", n.Name, err)
		}
		k.mu.Lock()
		k.forwarders = append(k.forwarders, fw)
		k.mu.Unlock()
	}
	for i := range kp.Controllers {
		c := &kubeController{name: kubeControllersProc + strconv.Itoa(i+1), binary: kcBin}
		if err := f.startKubeController(c); err != nil {
			return err
		}
		k.controllers = append(k.controllers, c)
		k.wg.Add(1)
		go f.superviseKubeController(c)
	}
	f.progress("kubernetes: %d namespaces, %d manifests, %d kube-controllers", len(kp.Namespaces), len(kp.Resources), kp.Controllers)
	return nil
}

// kubeCreate POSTs an object; what names it in errors.
func (f *Fabric) kubeCreate(ctx context.Context, path string, body any, what string) error {
	if b, ok := body.([]byte); ok {
		body = jsonRaw(b)
	}
	if err := f.kube.client.Do(ctx, http.MethodPost, path, body, nil); err != nil {
		return fmt.Errorf("kubernetes: creating %s: %w", what, err)
	}
	return nil
}

// jsonRaw is a body that is JSON already.
type jsonRaw []byte

func (j jsonRaw) MarshalJSON() ([]byte, error) { return j, nil }

// freeLoopbackPort returns a TCP port that is free on 127.0.0.1 now.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("kubernetes: picking a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartKubeAPIServer starts the run's kube-apiserver (again, after
// StopKubeAPIServer: same port, same data) and waits until it is ready.
func (f *Fabric) StartKubeAPIServer(ctx context.Context) error {
	k := f.kube
	if k == nil {
		return errors.New("no kubernetes in this run")
	}
	p, err := startIn(f.run, kubeAPIServerProc, k.self, "", k.args, filepath.Join(f.run.Dir, "logs", "kube-apiserver.log"), nil, 0)
	if p != nil {
		f.procs.set(kubeAPIServerProc, p)
		k.mu.Lock()
		k.apiserver = p
		k.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("kubernetes: %w", err)
	}
	if err := kubeapiserver.WaitReady(ctx, k.url, k.ca, k.token, p.exited); err != nil {
		return fmt.Errorf("kubernetes: kube-apiserver %s (log: logs/kube-apiserver.log): %w", k.url, err)
	}
	return nil
}

// StopKubeAPIServer kills the run's kube-apiserver (its etcd keeps the
// data) and waits until it has exited.
func (f *Fabric) StopKubeAPIServer() error {
	k := f.kube
	if k == nil {
		return errors.New("no kubernetes in this run")
	}
	k.mu.Lock()
	p := k.apiserver
	k.apiserver = nil
	k.mu.Unlock()
	if p == nil {
		return nil
	}
	err := p.rec.Kill()
	<-p.exited
	return errors.Join(err, f.run.RemoveProc(p.rec.Name))
}

// startKubeController starts a replica. Its Lease identity is its name,
// and after a restart its name and the number of earlier starts (as a
// Deployment's new pod has a new name): a replica that died holding the
// Lease does not take it straight back when it restarts, and another
// replica takes over once the Lease expires.
func (f *Fabric) startKubeController(c *kubeController) error {
	c.mu.Lock()
	id := c.name
	if c.starts > 0 {
		id = fmt.Sprintf("%s.%d", c.name, c.starts)
	}
	c.mu.Unlock()
	args := []string{c.binary, "--kubeconfig", f.kube.kubeconfig, "--datastore", f.ds.endpoint, "--identity", id,
		"--lease-namespace", kubeLeaseNamespace, "--lease-name", kubeLeaseName}
	p, err := startIn(f.run, c.name, f.kube.self, "", args, filepath.Join(f.run.Dir, "logs", c.name+".log"), nil, 0)
	if p != nil {
		c.mu.Lock()
		c.p, c.id, c.starts = p, id, c.starts+1
		c.mu.Unlock()
		f.procs.set(c.name, p)
	}
	if err != nil {
		return fmt.Errorf("kubernetes: %w", err)
	}
	return nil
}

// superviseKubeController starts a replica again when it exits (a
// replica that loses its Lease exits by design), a second later, until
// the fabric closes.
func (f *Fabric) superviseKubeController(c *kubeController) {
	defer f.kube.wg.Done()
	for {
		c.mu.Lock()
		p := c.p
		c.mu.Unlock()
		select {
		case <-f.ctx.Done():
			return
		case <-p.exited:
		}
		f.log.Info("kube-controllers replica exited; starting it again", "replica", c.name)
		t := time.NewTimer(time.Second)
		select {
		case <-f.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if f.ctx.Err() != nil {
			return
		}
		if err := f.startKubeController(c); err != nil {
			f.log.Error("starting kube-controllers again", "replica", c.name, "err", err)
			return
		}
	}
}

// KubeControllerLeader returns the replica that holds kube-controllers'
// Lease, as the API server says.
func (f *Fabric) KubeControllerLeader(ctx context.Context) (string, error) {
	if f.kube == nil {
		return "", errors.New("no kubernetes in this run")
	}
	var lease struct {
		Spec struct {
			HolderIdentity string `json:"holderIdentity"`
		} `json:"spec"`
	}
	err := f.kube.client.Do(ctx, http.MethodGet, "/apis/coordination.k8s.io/v1/namespaces/"+kubeLeaseNamespace+"/leases/"+kubeLeaseName, nil, &lease)
	if err != nil {
		return "", err
	}
	return lease.Spec.HolderIdentity, nil
}

// KubeControllerIDs returns the Lease identities of the kube-controllers
// replicas whose process runs now.
func (f *Fabric) KubeControllerIDs() []string {
	if f.kube == nil {
		return nil
	}
	var out []string
	for _, c := range f.kube.controllers {
		c.mu.Lock()
		if c.p != nil && c.p.running() {
			out = append(out, c.id)
		}
		c.mu.Unlock()
	}
	return out
}

// KillKubeController sends SIGKILL to the kube-controllers replica whose
// Lease identity is id (as KubeControllerLeader returns it; its
// supervisor starts it again under a new identity) and waits until it
// has exited.
func (f *Fabric) KillKubeController(id string) error {
	if f.kube == nil {
		return errors.New("no kubernetes in this run")
	}
	for _, c := range f.kube.controllers {
		c.mu.Lock()
		p, cid := c.p, c.id
		c.mu.Unlock()
		if cid != id {
			continue
		}
		err := p.rec.Kill()
		<-p.exited
		return err
	}
	return fmt.Errorf("no kube-controllers replica runs as %q", id)
}

// createPod creates a workload's Pod on its node, as a kubelet's API
// server would hold it: the workload's own labels (not the sim's
// bgpfabric.io/ ones) and one container with its ports.
func (f *Fabric) createPod(ctx context.Context, w *topology.WorkloadPlan) error {
	labels := map[string]string{}
	for k, v := range w.Labels {
		if !k8slabels.Reserved(k) {
			labels[k] = v
		}
	}
	var ports []map[string]any
	for _, p := range w.Ports {
		ports = append(ports, map[string]any{"containerPort": p, "protocol": "TCP"})
	}
	body := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": w.Name, "namespace": w.Namespace, "labels": labels},
		"spec": map[string]any{
			"nodeName":   w.Node,
			"containers": []map[string]any{{"name": "workload", "image": "bgpfabric.invalid/sim-workload", "ports": ports}},
		},
	}
	return f.kubeCreate(ctx, "/api/v1/namespaces/"+w.Namespace+"/pods", body, "Pod "+w.Namespace+"/"+w.Name)
}

// setPodRunning writes the status a kubelet would once the pod's sandbox
// is up: Running, Ready, its addresses.
func (f *Fabric) setPodRunning(ctx context.Context, w *topology.WorkloadPlan, addrs []netip.Addr) error {
	var ips []map[string]string
	for _, a := range addrs {
		ips = append(ips, map[string]string{"ip": a.String()})
	}
	now := time.Now().UTC().Format(time.RFC3339)
	status := map[string]any{
		"phase": "Running", "podIPs": ips, "startTime": now,
		"conditions": []map[string]any{
			{"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
			{"type": "Initialized", "status": "True", "lastTransitionTime": now},
			{"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
			{"type": "Ready", "status": "True", "lastTransitionTime": now},
		},
	}
	if len(addrs) > 0 {
		status["podIP"] = addrs[0].String()
	}
	err := f.kube.client.Do(ctx, http.MethodPatch, kuberest.PodPath(w.Namespace, w.Name)+"/status", map[string]any{"status": status}, nil)
	if err != nil {
		return fmt.Errorf("kubernetes: status of Pod %s/%s: %w", w.Namespace, w.Name, err)
	}
	return nil
}

// WaitKubePolicies waits until kube-controllers has written every
// NetworkPolicy of the topology's manifests into the datastore (as
// knp.default.<name>), watching the datastore.
func (f *Fabric) WaitKubePolicies(ctx context.Context) error {
	if f.Plan.Kubernetes == nil {
		return nil
	}
	want := map[string]bool{}
	for _, r := range f.Plan.Kubernetes.Resources {
		if r.Kind == "NetworkPolicy" {
			want[r.Namespace+"/knp.default."+r.Name] = true
		}
	}
	if len(want) == 0 {
		return nil
	}
	for {
		rs, rev, err := f.client.List(ctx, api.KindNetworkPolicy, "")
		if err != nil {
			return err
		}
		missing := 0
		have := map[string]bool{}
		for _, r := range rs {
			m := r.GetObjectMeta()
			have[m.Namespace+"/"+m.Name] = true
		}
		var names []string
		for k := range want {
			if !have[k] {
				missing++
				names = append(names, k)
			}
		}
		if missing == 0 {
			return nil
		}
		// Wait for the next write of a policy, then list again.
		wctx, cancel := context.WithCancel(ctx)
		_, ok := <-f.client.Watch(wctx, api.KindNetworkPolicy, "", rev+1)
		cancel()
		if !ok || ctx.Err() != nil {
			return fmt.Errorf("kubernetes: waiting for kube-controllers to write %v: %w", names, errors.Join(ctx.Err(), errors.New("watch ended")))
		}
	}
}

// closeKube stops kube-controllers' supervisors, the forwarders and the
// API server's etcd (the processes go with the run's processes).
func (k *kubeState) close() error {
	k.wg.Wait()
	k.mu.Lock()
	fws := k.forwarders
	k.forwarders = nil
	k.mu.Unlock()
	var errs []error
	for _, fw := range fws {
		errs = append(errs, fw.Close())
	}
	if k.client != nil {
		k.client.Close()
	}
	if k.etcd != nil {
		errs = append(errs, k.etcd.Close())
	}
	if k.self.IsOpen() {
		k.self.Close()
	}
	return errors.Join(errs...)
}
