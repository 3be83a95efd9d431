package felix

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/cni"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/felix/acl"
	"github.com/bgpfabric/bgpfabric/felix/nft"
	"github.com/bgpfabric/bgpfabric/internal/heaptest"
	"github.com/bgpfabric/bgpfabric/ipam"
	"github.com/bgpfabric/bgpfabric/router"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// nodeMemHeapProfile, when set, is where BenchmarkNodeMemory writes a heap
// profile (every allocation sampled) of the converged agent, per fabric:
// the file name gets the fabric's name appended.
var nodeMemHeapProfile = flag.String("nodemem.heapprofile", "", "write a heap profile of the converged node agent to this file (suffixed with the fabric)")

// BenchmarkNodeMemory measures what the node process's datastore side
// holds at rest for a fabric: the desired state of a simulator topology
// (its Nodes, BGPConfiguration, BGPPeers and pools, one IPAM block and
// one WorkloadEndpoint per workload allocated the way the CNI plugin
// does, the namespace's profile, and a few policies) is written into an
// embedded etcd, then one node's felix (its syncer, the route and policy
// calculations and the ACL, on in-memory kernel fakes), the router's
// syncer (with a handler that keeps what router's does) and the log level
// follower's syncer are started and run until they have converged. The
// metric is the growth of the live heap (after garbage collection) from
// before they start to then: heap-B in all, heap-B/node per node of the
// fabric. The embedded etcd runs in the same process; what it holds is in
// the baseline, and what serving the agent costs it (its watchers and
// streams) does not depend on the fabric's size, so the difference of
// two fabrics is the agent's cost of each node:
//
//	go test -run '^$' -bench NodeMemory -benchtime 1x ./felix/
//
// It is a measurement, not a timed test; docs/scale.md has its results.
func BenchmarkNodeMemory(b *testing.B) {
	for _, f := range []string{"rr-2x98", "rr-2x298"} {
		b.Run(f, func(b *testing.B) { benchNodeMemory(b, f) })
	}
}

func benchNodeMemory(b *testing.B, fabric string) {
	env := startEtcd(b)
	fab := loadFabric(b, env.client, "../topologies/"+fabric+".yaml")
	b.Logf("%s: %d resources in the datastore, node %s", fabric, fab.resources, fab.local)
	// Every allocation from here on is recorded, for agentHeap (and the
	// profile).
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	b.Cleanup(func() { runtime.MemProfileRate = old })

	base, baseAgent := heaptest.Live(), agentHeap()
	k := newFakeKernel()
	cfg := k.config(nil, env.client)
	cfg.NodeName = fab.local
	cfg.NewACL = func(netns.NsHandle, *slog.Logger) (ACL, error) {
		return acl.New(acl.Config{NodeName: fab.local}, nft.NewFake()), nil
	}
	for _, iface := range fab.localIfaces {
		k.addLink(iface)
	}
	a, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	wg.Go(func() {
		if err := a.Run(ctx); err != nil {
			b.Errorf("felix: %v", err)
		}
	})
	rh := &keepingHandler{synced: make(chan struct{}), res: map[datastore.ResourceID]api.Resource{}}
	wg.Go(func() {
		if err := router.DatastoreResources(env.client).Run(ctx, rh); err != nil {
			b.Errorf("router syncer: %v", err)
		}
	})
	lh := &keepingHandler{synced: make(chan struct{}), res: map[datastore.ResourceID]api.Resource{}}
	ls, err := datastore.NewSyncer(env.client, datastore.SyncerConfig{Kinds: []string{api.KindBGPConfiguration}, Handler: lh})
	if err != nil {
		b.Fatal(err)
	}
	wg.Go(func() {
		if err := ls.Run(ctx); err != nil {
			b.Errorf("log level syncer: %v", err)
		}
	})
	env.waitStatusOf(b, fab.local, "converged", func(s api.FelixStatusReport) bool {
		return s.Ready && s.InSync && s.Endpoints == len(fab.localIfaces) && s.Routes == len(fab.localIfaces)+1
	})
	<-rh.synced
	<-lh.synced

	heap, agent := heaptest.Live()-base, agentHeap()-baseAgent
	b.ReportMetric(float64(heap), "heap-B")
	b.ReportMetric(float64(agent), "agent-B")
	b.ReportMetric(float64(agent)/float64(fab.nodes), "agent-B/node")
	b.Logf("%s: live heap %d B over the baseline, of which %d B outside etcd's server (%d B per node)", fabric, heap, agent, agent/int64(fab.nodes))
	if *nodeMemHeapProfile != "" {
		heaptest.WriteProfile(b, *nodeMemHeapProfile+"."+fabric)
	}
	runtime.KeepAlive(rh)
	runtime.KeepAlive(lh)
}

// agentHeap is the live heap that was not allocated by the embedded etcd
// server (by stack: etcd's server, raft, bbolt, gRPC's server side) after
// two garbage collections: what the node agent holds, less the noise of
// the server's own caches. It needs runtime.MemProfileRate 1 from before
// the allocations it counts.
func agentHeap() int64 {
	runtime.GC()
	runtime.GC()
	var recs []runtime.MemProfileRecord
	for {
		n, ok := runtime.MemProfile(recs, true)
		if ok {
			recs = recs[:n]
			break
		}
		recs = make([]runtime.MemProfileRecord, n+n/4+64)
	}
	var total int64
	for i := range recs {
		if !serverStack(recs[i].Stack()) {
			total += recs[i].InUseBytes()
		}
	}
	return total
}

// serverStack reports whether an allocation was made by the datastore's
// server side.
func serverStack(pcs []uintptr) bool {
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		for _, p := range []string{"go.etcd.io/etcd/server/", "go.etcd.io/raft/", "go.etcd.io/bbolt", "google.golang.org/grpc.(*Server)", "google.golang.org/grpc/internal/transport.newHTTP2Server", "google.golang.org/grpc/internal/transport.(*http2Server)", "github.com/soheilhy/cmux"} {
			if strings.HasPrefix(f.Function, p) {
				return true
			}
		}
		if !more {
			return false
		}
	}
}

// keepingHandler keeps what a syncer delivers, as the router's handler
// does, and closes synced at the first snapshot.
type keepingHandler struct {
	synced chan struct{}
	mu     sync.Mutex
	res    map[datastore.ResourceID]api.Resource
}

func (h *keepingHandler) OnStatus(datastore.SyncStatus) {}

func (h *keepingHandler) OnSnapshot(s datastore.Snapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.res)
	for _, r := range s.Resources {
		h.res[datastore.IDOf(r)] = r
	}
	select {
	case <-h.synced:
	default:
		close(h.synced)
	}
}

func (h *keepingHandler) OnUpdates(evs []datastore.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range evs {
		if e.Type == datastore.Deleted {
			delete(h.res, e.ID)
		} else {
			h.res[e.ID] = e.Resource
		}
	}
}

// loadedFabric is what loadFabric wrote.
type loadedFabric struct {
	nodes, resources int
	local            string
	// localIfaces are the interfaces of the local node's workloads.
	localIfaces []string
}

// loadFabric writes the desired state of a topology's fabric into the
// datastore: the plan's resources, and for each workload an address from
// IPAM (which claims its node's block) and a WorkloadEndpoint as the CNI
// plugin writes them, the namespaces' profiles, and three policies.
func loadFabric(b *testing.B, c *datastore.Client, file string) loadedFabric {
	b.Helper()
	// Hundreds of IPAM claims on a loaded machine: more than testTimeout.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t, err := topology.Load(file)
	if err != nil {
		b.Fatal(err)
	}
	p, err := topology.Expand(t, topology.ExpandOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.ApplyAll(ctx, p.Resources); err != nil {
		b.Fatal(err)
	}
	ic, err := ipam.New(ipam.Config{Store: c})
	if err != nil {
		b.Fatal(err)
	}
	out := loadedFabric{resources: len(p.Resources)}
	for _, n := range p.Nodes {
		if n.Role != topology.RoleReflector {
			out.nodes++
		}
	}
	namespaces := map[string]bool{}
	weps := make([]*api.WorkloadEndpoint, len(p.Workloads))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				w := p.Workloads[i]
				containerID := fmt.Sprintf("%064x", i+1)
				handle := cni.HandleFor("bgpfabric", containerID, "eth0")
				as, err := ic.AutoAssign(ctx, ipam.AssignArgs{
					Node: w.Node, Handle: handle, Num4: 1,
					Attrs: map[string]string{"namespace": w.Namespace, "pod": w.Name},
				})
				if err == nil && len(as.IPv4) != 1 {
					err = fmt.Errorf("got %d addresses", len(as.IPv4))
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("workload %s: %w", w.Name, err))
					mu.Unlock()
					continue
				}
				ip := as.IPv4[0]
				weps[i] = &api.WorkloadEndpoint{
					ObjectMeta: api.ObjectMeta{
						Name:      api.WorkloadEndpointName(w.Node, cni.OrchestratorK8s, w.Name, "eth0"),
						Namespace: w.Namespace, Labels: w.Labels,
					},
					Spec: api.WorkloadEndpointSpec{
						Node: w.Node, Orchestrator: cni.OrchestratorK8s, Workload: w.Name, ContainerID: containerID,
						Endpoint: "eth0", InterfaceName: cni.HostIfName(w.Namespace, w.Name, "eth0"),
						MAC:        fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", byte(i>>24), byte(i>>16), byte(i>>8), byte(i)),
						Profiles:   []string{cni.ProfilePrefix + w.Namespace},
						IPNetworks: []string{netip.PrefixFrom(ip, 32).String()}, IPv4Gateway: cni.GatewayV4.String(),
					},
				}
			}
		})
	}
	for i := range p.Workloads {
		work <- i
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	var rs []api.Resource
	for i, w := range weps {
		rs = append(rs, w)
		if ns := p.Workloads[i].Namespace; !namespaces[ns] {
			namespaces[ns] = true
			rs = append(rs, &api.Profile{ObjectMeta: api.ObjectMeta{Name: cni.ProfilePrefix + ns}, Spec: api.ProfileSpec{
				Ingress: []api.Rule{{Action: api.Allow}}, Egress: []api.Rule{{Action: api.Allow}},
			}})
		}
	}
	rs = append(rs, benchPolicies()...)
	if _, err := c.ApplyAll(ctx, rs); err != nil {
		b.Fatal(err)
	}
	out.resources += len(rs) + len(p.Workloads) // and a block per node
	out.local = p.Workloads[0].Node
	for _, w := range weps {
		if w.Spec.Node == out.local {
			out.localIfaces = append(out.localIfaces, w.Spec.InterfaceName)
		}
	}
	return out
}

// benchPolicies are a few policies of the kinds a fabric has: one that
// selects every workload by a label and allows from every workload (an
// IP set of the whole fabric), one namespaced, one for a label no
// workload has.
func benchPolicies() []api.Resource {
	order := 10.0
	tcp := api.Protocol("TCP")
	return []api.Resource{
		&api.GlobalNetworkPolicy{ObjectMeta: api.ObjectMeta{Name: "fabric-ingress"}, Spec: api.GlobalNetworkPolicySpec{PolicySpec: api.PolicySpec{
			Order: &order, Selector: "has(" + topology.LabelWorkload + ")", Types: []api.PolicyType{api.PolicyTypeIngress},
			Ingress: []api.Rule{{Action: api.Allow, Source: api.EntityRule{Selector: "has(" + topology.LabelNode + ")"}}},
		}}},
		&api.NetworkPolicy{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "web"}, Spec: api.NetworkPolicySpec{PolicySpec: api.PolicySpec{
			Selector: "app == 'web'", Types: []api.PolicyType{api.PolicyTypeIngress},
			Ingress: []api.Rule{{Action: api.Allow, Protocol: &tcp, Destination: api.EntityRule{Ports: []api.Port{"80"}}}},
		}}},
		&api.GlobalNetworkPolicy{ObjectMeta: api.ObjectMeta{Name: "deny-quarantined"}, Spec: api.GlobalNetworkPolicySpec{PolicySpec: api.PolicySpec{
			Order: &order, Selector: "quarantine == 'true'", Types: []api.PolicyType{api.PolicyTypeIngress, api.PolicyTypeEgress},
			Ingress: []api.Rule{{Action: api.Deny}}, Egress: []api.Rule{{Action: api.Deny}},
		}}},
	}
}
