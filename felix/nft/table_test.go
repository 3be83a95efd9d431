package nft

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix/policy"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

const thisNode = "node-1"

func ptr[T any](v T) *T { return &v }

func wep(ns, name, nodeName, iface, ip string, labels map[string]string, profiles ...string) *api.WorkloadEndpoint {
	w := &api.WorkloadEndpoint{
		ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: api.WorkloadEndpointSpec{Node: nodeName, Orchestrator: "k8s", Workload: name, Endpoint: "eth0",
			InterfaceName: iface, IPNetworks: []string{ip + "/32"}, Profiles: profiles},
	}
	w.Default()
	return w
}

func gnp(name string, order *float64, sel string, ingress, egress []api.Rule) *api.GlobalNetworkPolicy {
	p := &api.GlobalNetworkPolicy{ObjectMeta: api.ObjectMeta{Name: name},
		Spec: api.GlobalNetworkPolicySpec{PolicySpec: api.PolicySpec{Order: order, Selector: sel, Ingress: ingress, Egress: egress}}}
	p.Default()
	return p
}

func hep(name, nodeName, iface string, ips []string, labels map[string]string) *api.HostEndpoint {
	h := &api.HostEndpoint{ObjectMeta: api.ObjectMeta{Name: name, Labels: labels},
		Spec: api.HostEndpointSpec{Node: nodeName, InterfaceName: iface, ExpectedIPs: ips}}
	h.Default()
	return h
}

func tcp() *api.Protocol { return ptr(api.ProtocolTCP) }

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

// fixture is a calculator, a table and a fake dataplane.
type fixture struct {
	t    *testing.T
	calc *policy.Calculator
	fake *Fake
	tbl  *Table
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, calc: policy.New(policy.Config{Node: thisNode}), fake: NewFake()}
	f.tbl = New(f.fake, Config{WorkloadInterfacePrefixes: []string{"wl"}})
	return f
}

func (f *fixture) apply() error {
	return f.tbl.Apply(context.Background(), f.calc.TakeUpdate())
}

func (f *fixture) mustApply() {
	f.t.Helper()
	if err := f.apply(); err != nil {
		f.t.Fatal(err)
	}
}

// sample loads a little node: two local workloads, a remote one, a host
// endpoint, policies with every kind of match, and a profile.
func (f *fixture) sample() {
	c := f.calc
	c.OnWorkloadEndpointUpdate(wep("prod", "web", thisNode, "wl-web", "10.0.0.1", map[string]string{"app": "web"}, "default"))
	srv := wep("prod", "api", thisNode, "wl-api", "10.0.0.2", map[string]string{"app": "api"})
	srv.Spec.Ports = []api.EndpointPort{{Name: "http", Protocol: api.ProtocolTCP, Port: 8080}}
	c.OnWorkloadEndpointUpdate(srv)
	c.OnWorkloadEndpointUpdate(wep("prod", "db", "node-2", "wl-db", "10.0.1.1", map[string]string{"app": "db"}))
	c.OnHostEndpointUpdate(hep("node-1-eth0", thisNode, "eth0", []string{"192.168.0.1"}, map[string]string{"role": "host"}))
	must := func(err error) {
		if err != nil {
			f.t.Fatal(err)
		}
	}
	must(c.OnGlobalNetworkPolicyUpdate(gnp("web", ptr(10.0), "app == 'web'", []api.Rule{
		{Action: api.Log, Protocol: tcp(), Destination: api.EntityRule{Ports: []api.Port{"22"}}},
		{Action: api.Allow, Protocol: tcp(), Source: api.EntityRule{Selector: "app == 'api'"}, Destination: api.EntityRule{Ports: []api.Port{"80", "8000:8080"}}},
		{Action: api.Deny, Source: api.EntityRule{Nets: []string{"10.9.0.0/16", "fd00::/64"}, NotNets: []string{"10.9.9.0/24"}}},
		{Action: api.Allow, Protocol: ptr(api.ProtocolICMP), ICMP: &api.ICMPFields{Type: ptr(8)}},
		{Action: api.Pass, Source: api.EntityRule{NotSelector: "app == 'db'"}},
	}, []api.Rule{{Action: api.Allow}})))
	must(c.OnGlobalNetworkPolicyUpdate(gnp("api", ptr(20.0), "app == 'api'", []api.Rule{
		{Action: api.Allow, Protocol: tcp(), Destination: api.EntityRule{Ports: []api.Port{"http"}}},
	}, []api.Rule{
		{Action: api.Allow, Protocol: tcp(), Destination: api.EntityRule{Selector: "app == 'web'", NotPorts: []api.Port{"1:1023"}}},
	})))
	must(c.OnGlobalNetworkPolicyUpdate(gnp("hosts", nil, "role == 'host'", []api.Rule{{Action: api.Deny}}, nil)))
	p := &api.Profile{ObjectMeta: api.ObjectMeta{Name: "default"}, Spec: api.ProfileSpec{
		Ingress: []api.Rule{{Action: api.Allow, Source: api.EntityRule{Selector: "app == 'db'"}}},
		Egress:  []api.Rule{{Action: api.Allow}},
	}}
	p.Default()
	must(c.OnProfileUpdate(p))
}

func TestRenderGolden(t *testing.T) {
	f := newFixture(t)
	f.sample()
	f.mustApply()
	golden(t, "sample.golden", f.fake.Render())
	if ops := f.fake.LastOps(); ops[0].Kind != OpReplaceTable {
		t.Errorf("first apply starts with %s, want a table replace", ops[0].Kind)
	}
}

// opKinds lists the kinds of ops, to assert what a transaction did.
func opKinds(ops []Op) map[OpKind]int {
	out := map[OpKind]int{}
	for _, op := range ops {
		out[op.Kind]++
	}
	return out
}

// A label change edits set elements only: no chain or rule is touched.
func TestLabelChangeEditsOnlyElements(t *testing.T) {
	f := newFixture(t)
	f.sample()
	f.mustApply()
	before := f.fake.Render()

	// db becomes an api: it leaves the db set and joins the api set.
	f.calc.OnWorkloadEndpointUpdate(wep("prod", "db", "node-2", "wl-db", "10.0.1.1", map[string]string{"app": "api"}))
	f.mustApply()
	kinds := opKinds(f.fake.LastOps())
	want := map[OpKind]int{OpAddElements: 1, OpDelElements: 1}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("ops (-want +got):\n%s", diff)
	}
	after := f.fake.Render()
	if chainsOf(before) != chainsOf(after) {
		t.Errorf("chains changed:\n%s", cmp.Diff(chainsOf(before), chainsOf(after)))
	}
	if before == after {
		t.Error("nothing changed")
	}
	golden(t, "label-change.golden", after)
}

// chainsOf cuts the chains out of a rendering.
func chainsOf(s string) string {
	i := strings.Index(s, "\n\tchain ")
	if i < 0 {
		return ""
	}
	return s[i:]
}

// A policy change rewrites only its own chain.
func TestPolicyChangeRewritesItsChain(t *testing.T) {
	f := newFixture(t)
	f.sample()
	f.mustApply()
	if err := f.calc.OnGlobalNetworkPolicyUpdate(gnp("hosts", nil, "role == 'host'", []api.Rule{{Action: api.Allow, Protocol: tcp()}}, nil)); err != nil {
		t.Fatal(err)
	}
	f.mustApply()
	var flushed []string
	for _, op := range f.fake.LastOps() {
		switch op.Kind {
		case OpFlushChain:
			flushed = append(flushed, op.Chain.Name)
		case OpAddRule:
			if op.Chain.Name != "pi-gnp/hosts" {
				t.Errorf("rule added to %s", op.Chain.Name)
			}
		default:
			t.Errorf("unexpected op %s", op.Kind)
		}
	}
	if diff := cmp.Diff([]string{"pi-gnp/hosts"}, flushed); diff != "" {
		t.Errorf("flushed (-want +got):\n%s", diff)
	}
}

// Incremental applies end where a full rewrite of the same state starts.
func TestIncrementalEqualsFull(t *testing.T) {
	f := newFixture(t)
	f.mustApply() // empty table
	f.sample()
	f.mustApply()
	// Churn: remove a workload, move one, drop a policy, add a profile user.
	f.calc.OnWorkloadEndpointRemove("prod", "api")
	f.calc.OnWorkloadEndpointUpdate(wep("prod", "db", thisNode, "wl-db", "10.0.1.1", map[string]string{"app": "db"}, "default"))
	f.calc.OnPolicyRemove(policy.PolicyKey{Name: "hosts"})
	f.calc.OnHostEndpointUpdate(hep("all", thisNode, "*", nil, nil))
	f.mustApply()
	incremental := f.fake.Render()

	g := newFixture(t)
	g.sample()
	g.calc.OnWorkloadEndpointRemove("prod", "api")
	g.calc.OnWorkloadEndpointUpdate(wep("prod", "db", thisNode, "wl-db", "10.0.1.1", map[string]string{"app": "db"}, "default"))
	g.calc.OnPolicyRemove(policy.PolicyKey{Name: "hosts"})
	g.calc.OnHostEndpointUpdate(hep("all", thisNode, "*", nil, nil))
	g.mustApply()
	if diff := cmp.Diff(g.fake.Render(), incremental); diff != "" {
		t.Errorf("incremental differs from full (-full +incremental):\n%s", diff)
	}
}

// A failed transaction changes nothing, and the next Apply rewrites the
// whole table.
func TestFailureLeadsToFullRewrite(t *testing.T) {
	f := newFixture(t)
	f.sample()
	f.mustApply()
	before := f.fake.Render()
	f.fake.FailNext(errors.New("injected"))
	f.calc.OnWorkloadEndpointRemove("prod", "web")
	if err := f.apply(); err == nil {
		t.Fatal("apply succeeded despite the injected failure")
	}
	if f.fake.Render() != before {
		t.Error("failed transaction changed the table")
	}
	f.mustApply() // nothing new from the calculator, but a full rewrite is due
	if ops := f.fake.LastOps(); len(ops) == 0 || ops[0].Kind != OpReplaceTable {
		t.Fatalf("apply after failure did not replace the table")
	}
	if strings.Contains(f.fake.Render(), "wl-web") {
		t.Error("removed endpoint still programmed")
	}
}
