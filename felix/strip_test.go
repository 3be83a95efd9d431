package felix

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix/calc"
	"github.com/bgpfabric/bgpfabric/felix/policy"
)

// stripInputs are resources of a small fabric with everything felix
// reads in them: this node's endpoints and block, other nodes' endpoints
// with labels, named ports and profiles, their blocks with allocations,
// a block being released, a profile with labels and policies whose
// selectors, named ports and namespace selectors match remote endpoints.
func stripInputs(t *testing.T) []api.Resource {
	t.Helper()
	var rs []api.Resource
	for n := 1; n <= 3; n++ {
		node := fmt.Sprintf("node-%d", n)
		b := block(fmt.Sprintf("10.%d.0.0/26", n), node)
		attr := 0
		b.Spec.Allocations[1] = &attr
		b.Spec.Unallocated = slices.DeleteFunc(b.Spec.Unallocated, func(o int) bool { return o == 1 })
		b.Spec.Attributes = []api.AllocationAttribute{{HandleID: "h", Secondary: map[string]string{"node": node, "pod": "p"}}}
		rs = append(rs, b)
		if n == 1 {
			// This node's block being released: no blackhole.
			rel := block("10.1.0.64/26", node)
			rel.Spec.Deleted = true
			rs = append(rs, rel)
		}
		for i := range 3 {
			w := wep(fmt.Sprintf("%s-w%d", node, i), node, fmt.Sprintf("bf%d%d", n, i), fmt.Sprintf("10.%d.0.%d/32", n, i+1))
			w.Namespace = []string{"default", "prod"}[i%2]
			w.Labels = map[string]string{"app": fmt.Sprintf("a%d", i), "node": node}
			w.Spec.ContainerID = fmt.Sprintf("%064x", n*10+i)
			w.Spec.MAC = "02:00:00:00:00:01"
			w.Spec.IPv4Gateway = "169.254.1.1"
			w.Spec.Profiles = []string{"default", "web"}
			w.Spec.Ports = []api.EndpointPort{{Name: "http", Protocol: "TCP", Port: 8080 + i}}
			w.UID, w.ResourceVersion, w.Annotations = "uid", "7", map[string]string{"a": "b"}
			rs = append(rs, w)
		}
	}
	tcp := api.Protocol("TCP")
	rs = append(rs,
		&api.Profile{ObjectMeta: api.ObjectMeta{Name: "default"}, Spec: api.ProfileSpec{
			Ingress: []api.Rule{{Action: api.Allow}}, Egress: []api.Rule{{Action: api.Allow}},
		}},
		&api.Profile{ObjectMeta: api.ObjectMeta{Name: "web"}, Spec: api.ProfileSpec{LabelsToApply: map[string]string{"tier": "web"}}},
		&api.GlobalNetworkPolicy{ObjectMeta: api.ObjectMeta{Name: "from-a1"}, Spec: api.GlobalNetworkPolicySpec{PolicySpec: api.PolicySpec{
			Selector: "has(app)",
			Ingress: []api.Rule{
				{Action: api.Allow, Source: api.EntityRule{Selector: "app == 'a1' && tier == 'web'"}},
				{Action: api.Allow, Protocol: &tcp, Destination: api.EntityRule{Selector: "node != 'node-1'", Ports: []api.Port{"http"}}},
				{Action: api.Deny, Source: api.EntityRule{NamespaceSelector: "bgpfabric.io/name == 'prod'"}},
			},
		}}},
		&api.NetworkPolicy{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "np"}, Spec: api.NetworkPolicySpec{PolicySpec: api.PolicySpec{
			Selector: "app == 'a0'",
			Egress:   []api.Rule{{Action: api.Allow, Destination: api.EntityRule{Selector: "app == 'a2'"}}},
		}}},
	)
	for _, r := range rs {
		r.Default()
		if err := r.Validate(); err != nil {
			t.Fatalf("%s: %v", calc.KeyOf(r), err)
		}
	}
	return rs
}

// What felix keeps of a resource computes the same routes, interfaces
// and ACL ruleset as the whole resource, and leaves out what felix does
// not read: the allocations of blocks, and other nodes' endpoints' MAC,
// container, interface and gateways.
func TestStripKeepsWhatFelixReads(t *testing.T) {
	rs := stripInputs(t)
	strip := stripFor(nodeName)
	stripped := make([]api.Resource, len(rs))
	for i, r := range rs {
		before := r.DeepCopyResource()
		stripped[i] = strip(r)
		if diff := cmp.Diff(before, r); diff != "" {
			t.Fatalf("strip modified its argument %s:\n%s", calc.KeyOf(r), diff)
		}
		if calc.KeyOf(stripped[i]) != calc.KeyOf(r) {
			t.Fatalf("strip changed the identity of %s to %s", calc.KeyOf(r), calc.KeyOf(stripped[i]))
		}
	}

	routes := func(rs []api.Resource) ([]calc.Route, []calc.Interface) {
		c := calc.New(calc.Config{NodeName: nodeName})
		c.OnSnapshot(rs)
		return c.Routes(), c.Interfaces()
	}
	wantR, wantI := routes(rs)
	gotR, gotI := routes(stripped)
	if len(wantR) != 4 { // three workloads and the block
		t.Fatalf("routes of the whole resources: %v", wantR)
	}
	opts := cmp.Options{cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmpopts.EquateEmpty()}
	if diff := cmp.Diff(wantR, gotR, opts); diff != "" {
		t.Errorf("routes (-whole +stripped):\n%s", diff)
	}
	if diff := cmp.Diff(wantI, gotI, opts); diff != "" {
		t.Errorf("interfaces (-whole +stripped):\n%s", diff)
	}

	rules := func(rs []api.Resource) *policy.Ruleset {
		c := policy.New(policy.Config{Node: nodeName})
		for _, r := range rs {
			var err error
			switch r := r.(type) {
			case *api.WorkloadEndpoint:
				c.OnWorkloadEndpointUpdate(r)
			case *api.Profile:
				err = c.OnProfileUpdate(r)
			case *api.GlobalNetworkPolicy:
				err = c.OnGlobalNetworkPolicyUpdate(r)
			case *api.NetworkPolicy:
				err = c.OnNetworkPolicyUpdate(r)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return c.Snapshot()
	}
	want, got := rules(rs), rules(stripped)
	if len(want.Endpoints) != 3 || len(want.IPSets) < 4 {
		t.Fatalf("ruleset of the whole resources has %d endpoints and %d IP sets: %+v", len(want.Endpoints), len(want.IPSets), want)
	}
	for id, s := range want.IPSets {
		if len(s.Members) == 0 {
			t.Errorf("IP set %s (%s) is empty: the inputs do not exercise it", id, s.Selector)
		}
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("ruleset (-whole +stripped):\n%s", diff)
	}

	for _, r := range stripped {
		switch r := r.(type) {
		case *api.IPAMBlock:
			if r.Spec.Allocations != nil || r.Spec.Unallocated != nil || r.Spec.Attributes != nil {
				t.Errorf("block %s keeps its allocations", r.Name)
			}
		case *api.WorkloadEndpoint:
			s := r.Spec
			if s.Node == nodeName {
				if s.ContainerID == "" || s.InterfaceName == "" {
					t.Errorf("local endpoint %s lost fields: %+v", r.Name, s)
				}
				continue
			}
			if s.ContainerID != "" || s.MAC != "" || s.InterfaceName != "" || s.IPv4Gateway != "" || s.Workload != "" || r.UID != "" || r.Annotations != nil {
				t.Errorf("remote endpoint %s keeps what felix does not read: %+v %+v", r.Name, r.ObjectMeta, s)
			}
		}
	}
}
