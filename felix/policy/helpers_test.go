package policy

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const thisNode = "node-1"

func ptr[T any](v T) *T { return &v }

var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmpopts.EquateEmpty(),
}

func wep(ns, name, node, iface, ip string, labels map[string]string, profiles ...string) *api.WorkloadEndpoint {
	w := &api.WorkloadEndpoint{
		ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: api.WorkloadEndpointSpec{
			Node: node, Orchestrator: "k8s", Workload: name, Endpoint: "eth0",
			InterfaceName: iface, Profiles: profiles,
		},
	}
	if ip != "" {
		w.Spec.IPNetworks = []string{ip + "/32"}
	}
	w.Default()
	return w
}

func hep(name, node, iface string, ips []string, labels map[string]string, profiles ...string) *api.HostEndpoint {
	h := &api.HostEndpoint{
		ObjectMeta: api.ObjectMeta{Name: name, Labels: labels},
		Spec:       api.HostEndpointSpec{Node: node, InterfaceName: iface, ExpectedIPs: ips, Profiles: profiles},
	}
	h.Default()
	return h
}

func gnp(name string, order *float64, sel string, ingress, egress []api.Rule) *api.GlobalNetworkPolicy {
	p := &api.GlobalNetworkPolicy{
		ObjectMeta: api.ObjectMeta{Name: name},
		Spec: api.GlobalNetworkPolicySpec{PolicySpec: api.PolicySpec{
			Order: order, Selector: sel, Ingress: ingress, Egress: egress,
		}},
	}
	p.Default()
	return p
}

func np(ns, name string, order *float64, sel string, ingress, egress []api.Rule) *api.NetworkPolicy {
	p := &api.NetworkPolicy{
		ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name},
		Spec: api.NetworkPolicySpec{PolicySpec: api.PolicySpec{
			Order: order, Selector: sel, Ingress: ingress, Egress: egress,
		}},
	}
	p.Default()
	return p
}

func prof(name string, labels map[string]string, ingress, egress []api.Rule) *api.Profile {
	p := &api.Profile{ObjectMeta: api.ObjectMeta{Name: name},
		Spec: api.ProfileSpec{Ingress: ingress, Egress: egress, LabelsToApply: labels}}
	p.Default()
	return p
}

func tcp() *api.Protocol { return ptr(api.ProtocolTCP) }

func allowFrom(sel string, ports ...api.Port) api.Rule {
	r := api.Rule{Action: api.Allow, Source: api.EntityRule{Selector: sel}}
	if len(ports) > 0 {
		r.Protocol = tcp()
		r.Destination.Ports = ports
	}
	return r
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func members(ips ...string) []Member {
	var out []Member
	for _, ip := range ips {
		out = append(out, Member{Addr: addr(ip)})
	}
	return out
}

func sid(canonical string) SetID { return setID(canonical) }

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// checkConsistent applies an update to the accumulated ruleset and checks
// it equals the calculator's snapshot.
func checkConsistent(t *testing.T, c *Calculator, acc *Ruleset) *Update {
	t.Helper()
	u := c.TakeUpdate()
	acc.Apply(u)
	snap := c.Snapshot()
	if reflect.DeepEqual(snap, acc) { // fast path: cmp is slow
		return u
	}
	if diff := cmp.Diff(snap, acc, cmpOpts); diff != "" {
		t.Fatalf("accumulated updates differ from snapshot (-snapshot +accumulated):\n%s", diff)
	}
	return u
}
