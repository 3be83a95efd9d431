package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/kuberest"
	"github.com/bgpfabric/bgpfabric/internal/kubetest"
	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/probe"
	"github.com/bgpfabric/bgpfabric/sim/runstate"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// bgpfabric-kube-controllers (the kube tag) is built once beside the
// binary the fabrics run, where the sim looks for it (with
// $BGPFABRIC_BIN, make build has put it there).
var (
	kubeControllersOnce sync.Once
	kubeControllersErr  error
)

// requireKube skips (or fails under CI=true) without a kube-apiserver,
// and builds bgpfabric-kube-controllers beside the fabric's binary unless
// it is there. It returns the sim options for a fabric with kubernetes.
func requireKube(t *testing.T) sim.Options {
	t.Helper()
	requireFabric(t)
	apiserver := kubetest.Binary(t)
	kubeControllersOnce.Do(func() {
		out := filepath.Join(filepath.Dir(binary), sim.KubeControllersBinary)
		if _, err := os.Stat(out); err == nil {
			return
		}
		if os.Getenv("BGPFABRIC_BIN") != "" {
			kubeControllersErr = fmt.Errorf("no %s beside $BGPFABRIC_BIN (make build puts it there)", out)
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-tags", "kube", "-o", out, "../cmd/bgpfabric")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			kubeControllersErr = fmt.Errorf("building %s: %v\n%s", sim.KubeControllersBinary, err, b)
		}
	})
	if kubeControllersErr != nil {
		t.Fatal(kubeControllersErr)
	}
	return sim.Options{Binary: binary, Grace: 3 * time.Second, KubeAPIServer: apiserver}
}

// kubeTopology is two nodes with pods in namespace shop: web (TCP 8080)
// on node-1, client and other on node-2; controllers kube-controllers.
func kubeTopology(controllers int, resources string) *topology.Topology {
	doc := fmt.Sprintf(`name: k8s-e2e
bgp: {model: mesh, keepaliveTime: 1s, holdTime: 3s}
kubernetes:
  enabled: true
  controllers: %d
%s
nodes:
  - name: a
    workloads: [{name: web, namespace: shop, labels: {app: web}, ports: [8080]}]
  - name: b
    workloads:
      - {name: client, namespace: shop, labels: {app: client}}
      - {name: other, namespace: shop, labels: {app: other}}
checks:
  convergence: 60s
`, controllers, resources)
	topo, err := topology.Parse("k8s-e2e.yaml", []byte(doc))
	if err != nil {
		panic(err)
	}
	return topo
}

const (
	defaultDeny = `{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"default-deny","namespace":"shop"},` +
		`"spec":{"podSelector":{},"policyTypes":["Ingress"]}}`
	allowClient = `{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"web-from-client","namespace":"shop"},` +
		`"spec":{"podSelector":{"matchLabels":{"app":"web"}},"ingress":[{"from":[{"podSelector":{"matchLabels":{"app":"client"}}}],"ports":[{"protocol":"TCP","port":8080}]}]}}`
)

// kubeFlow probes TCP from a workload to web:8080.
type kubeFlow struct {
	f   *sim.Fabric
	web netip.Addr
}

func newKubeFlow(t *testing.T, f *sim.Fabric) kubeFlow {
	addrs := f.WorkloadAddrs("a-web")
	if len(addrs) == 0 {
		t.Fatal("a-web has no address")
	}
	return kubeFlow{f: f, web: addrs[0]}
}

// reaches reports whether a TCP connect from workload to web:8080
// succeeds within two seconds (a dropped SYN times out: blocked; the
// margin is for the loaded machine).
func (k kubeFlow) reaches(t *testing.T, workload string) bool {
	t.Helper()
	ok, err := k.probe(workload, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// probe is reaches for any goroutine: it returns what t.Fatal would
// report.
func (k kubeFlow) probe(workload string, timeout time.Duration) (bool, error) {
	ns, err := k.f.WorkloadNetns(workload)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r := probe.TCP(ctx, ns, k.web, 8080)
	if r.Refused {
		return false, fmt.Errorf("%s -> web:8080 refused: the policy drops, it never rejects, and web listens", workload)
	}
	return r.OK, nil
}

// until probes until workload's reach is want (felix programs the
// kernel without an event the test can see), at most d.
func (k kubeFlow) until(t *testing.T, workload string, want bool, d time.Duration) {
	t.Helper()
	what := map[bool]string{true: "allowed", false: "blocked"}[want]
	waitUntil(t, d, fmt.Sprintf("%s -> web:8080 %s", workload, what), func() string {
		if k.reaches(t, workload) != want {
			return "not yet"
		}
		return ""
	})
}

func kubeDo(t *testing.T, f *sim.Fabric, method, path string, body any) {
	t.Helper()
	if s, ok := body.(string); ok {
		body = rawJSON(s)
	}
	if err := f.Kube().Do(context.Background(), method, path, body, nil); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

// relabel sets a pod's label key=value through the API server and
// returns how long its endpoint took to carry it, watching the datastore.
func relabel(t *testing.T, f *sim.Fabric, pod, node, key, value string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wep := api.WorkloadEndpointName(node, "k8s", pod, "eth0")
	_, rev, err := f.Client().List(ctx, api.KindWorkloadEndpoint, "shop")
	if err != nil {
		t.Fatal(err)
	}
	events := f.Client().Watch(ctx, api.KindWorkloadEndpoint, "shop", rev+1)
	start := time.Now()
	kubeDo(t, f, http.MethodPatch, kuberest.PodPath("shop", pod), fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, key, value))
	for ev := range events {
		if ev.Err != nil {
			t.Fatalf("watching endpoints: %v", ev.Err)
		}
		if ev.Resource != nil && ev.Resource.GetObjectMeta().Name == wep && ev.Resource.GetObjectMeta().Labels[key] == value {
			return time.Since(start)
		}
	}
	t.Fatalf("endpoint %s did not get %s=%s: %v", wep, key, value, ctx.Err())
	return 0
}

// TestKubernetesNetworkPolicy: NetworkPolicies created through the API
// server control real traffic between CNI workloads: open without a
// policy, blocked by a default deny, allowed again from the pods an allow
// policy selects by label, and a pod's label change moves it across.
func TestKubernetesNetworkPolicy(t *testing.T) {
	o := requireKube(t)
	f := sim.BootT(t, kubeTopology(1, ""), o)
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, f)
		}
	})
	converge(t, f)
	k := newKubeFlow(t, f)

	// The endpoints carry their pods' labels from the CNI plugin's ADD.
	r, err := f.Client().Get(context.Background(), api.KindWorkloadEndpoint, "shop", api.WorkloadEndpointName("b", "k8s", "b-client", "eth0"))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.GetObjectMeta().Labels["app"]; got != "client" {
		t.Fatalf("client's endpoint labels %v: want app=client from its pod", r.GetObjectMeta().Labels)
	}
	// Without a policy, client and other reach web.
	k.until(t, "b-client", true, time.Minute)
	k.until(t, "b-other", true, time.Minute)

	kubeDo(t, f, http.MethodPost, "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies", defaultDeny)
	k.until(t, "b-client", false, time.Minute)
	if k.reaches(t, "b-other") {
		t.Error("default deny: other still reaches web")
	}

	kubeDo(t, f, http.MethodPost, "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies", allowClient)
	k.until(t, "b-client", true, time.Minute)
	if k.reaches(t, "b-other") {
		t.Error("allow from app=client: other (app=other) reaches web")
	}

	// other becomes a client: its endpoint's labels follow its pod's.
	d := relabel(t, f, "b-other", "b", "app", "client")
	t.Logf("pod label change reached its WorkloadEndpoint in %s", d.Round(time.Millisecond))
	k.until(t, "b-other", true, time.Minute)
	// And back.
	d = relabel(t, f, "b-other", "b", "app", "other")
	t.Logf("pod label change back reached its WorkloadEndpoint in %s", d.Round(time.Millisecond))
	k.until(t, "b-other", false, time.Minute)

	// Teardown leaves nothing: the control plane's processes and its data
	// (in the run's directory) go.
	var procs []runstate.Proc
	for _, p := range f.RunState().Procs {
		if strings.HasPrefix(p.Name, "kube-") {
			procs = append(procs, p)
		}
	}
	if len(procs) != 2 {
		t.Errorf("control plane processes %+v: want kube-apiserver and kube-controllers-1", procs)
	}
	dir := f.Dir()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if p.Alive() {
			t.Errorf("%s (pid %d) is alive after the teardown", p.Name, p.PID)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run directory %s after the teardown: %v", dir, err)
	}
}

// TestKubernetesControllerFailover: enforcement has no gap while the API
// server restarts and while kube-controllers' leader is killed and the
// other replica takes over: a flow the policies block stays blocked and
// one they allow stays allowed, probed continuously throughout.
func TestKubernetesControllerFailover(t *testing.T) {
	o := requireKube(t)
	f := sim.BootT(t, kubeTopology(2, "  resources:\n    - "+defaultDeny+"\n    - "+allowClient), o)
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, f)
		}
	})
	converge(t, f) // includes kube-controllers having written both policies
	k := newKubeFlow(t, f)
	k.until(t, "b-client", true, time.Minute)
	k.until(t, "b-other", false, time.Minute)

	// Probe both flows continuously until the events are over.
	type tally struct{ allowedOK, allowedLost, blockedOK, blockedLeaked int }
	var (
		mu  sync.Mutex
		tl  tally
		wg  sync.WaitGroup
		bad []string
	)
	ctx, stop := context.WithCancel(context.Background())
	for _, w := range []struct {
		name  string
		allow bool
	}{{"b-client", true}, {"b-other", false}} {
		wg.Go(func() {
			for ctx.Err() == nil {
				// The allowed flow gets 5 s, so that a slow connect on
				// the loaded machine is not taken for a gap (a dropped
				// SYN never connects); 1 s is enough to see a leak.
				timeout := time.Second
				if w.allow {
					timeout = 5 * time.Second
				}
				ok, err := k.probe(w.name, timeout)
				mu.Lock()
				switch {
				case err != nil:
					bad = append(bad, err.Error())
				case w.allow && ok:
					tl.allowedOK++
				case w.allow:
					tl.allowedLost++
					bad = append(bad, time.Now().Format("15:04:05.000")+" "+w.name+" blocked")
				case ok:
					tl.blockedLeaked++
					bad = append(bad, time.Now().Format("15:04:05.000")+" "+w.name+" got through")
				default:
					tl.blockedOK++
				}
				mu.Unlock()
				if w.allow {
					wait(ctx, 100*time.Millisecond)
				}
			}
		})
	}

	// 1. The API server down for a while (the outage's length is the
	// scenario, not a wait for state), then back.
	if err := f.StopKubeAPIServer(); err != nil {
		t.Fatal(err)
	}
	t.Log("kube-apiserver stopped")
	wait(context.Background(), 5*time.Second)
	if err := f.StartKubeAPIServer(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Log("kube-apiserver back")

	// 2. The leader killed: the other replica takes the Lease over.
	// (The Lease may still name a replica that lost it during the outage
	// and was restarted under a new identity: wait for a live holder.)
	var leader string
	waitUntil(t, time.Minute, "a kube-controllers leader", func() string {
		l, err := f.KubeControllerLeader(context.Background())
		if err != nil || !slices.Contains(f.KubeControllerIDs(), l) {
			return fmt.Sprintf("holder %q, running %v (%v)", l, f.KubeControllerIDs(), err)
		}
		leader = l
		return ""
	})
	if err := f.KillKubeController(leader); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the leader %s", leader)
	waitUntil(t, time.Minute, "another replica holds the Lease", func() string {
		l, err := f.KubeControllerLeader(context.Background())
		if err != nil || l == leader || !slices.Contains(f.KubeControllerIDs(), l) {
			return fmt.Sprintf("holder %q, running %v (%v)", l, f.KubeControllerIDs(), err)
		}
		t.Logf("new leader %s", l)
		return ""
	})
	// The new leader works: a label change reaches the endpoint (one
	// that no policy reads).
	d := relabel(t, f, "b-client", "b", "tier", "after-failover")
	t.Logf("after the failover, a pod label change reached its endpoint in %s", d.Round(time.Millisecond))

	stop()
	wg.Wait()
	t.Logf("probes during the events: allowed flow %d passed, %d lost; blocked flow %d dropped, %d leaked", tl.allowedOK, tl.allowedLost, tl.blockedOK, tl.blockedLeaked)
	if len(bad) > 0 {
		t.Errorf("enforcement had a gap: %v", bad)
	}
	if tl.allowedOK == 0 || tl.blockedOK == 0 {
		t.Errorf("probes did not run: %+v", tl)
	}
}

// TestK8sDemo boots the shipped topologies/k8s-demo.yaml: its
// NetworkPolicies, applied through the API server, allow and block
// exactly the flows its checks name.
func TestK8sDemo(t *testing.T) {
	o := requireKube(t)
	topo, err := topology.Load(filepath.Join("..", "topologies", "k8s-demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f := sim.BootT(t, topo, o)
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, f)
		}
	})
	converge(t, f)
	res := requireChecks(t, f)
	blocked := 0
	for _, c := range res {
		if c.Kind == "blocked" {
			blocked++
		}
	}
	if blocked != 3 {
		t.Errorf("%d blocked checks ran, want the file's 3", blocked)
	}
}
