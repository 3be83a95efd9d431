package acl_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix"
	"github.com/bgpfabric/bgpfabric/felix/acl"
	"github.com/bgpfabric/bgpfabric/felix/calc"
	"github.com/bgpfabric/bgpfabric/felix/nft"
)

var _ felix.ACL = (*acl.ACL)(nil)

func wep(name, iface, ip string) *api.WorkloadEndpoint {
	w := &api.WorkloadEndpoint{
		ObjectMeta: api.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": name}},
		Spec: api.WorkloadEndpointSpec{Node: "node-1", Orchestrator: "cni", Workload: name, Endpoint: "eth0",
			InterfaceName: iface, IPNetworks: []string{ip}, Profiles: []string{"default"}},
	}
	w.Default()
	return w
}

func allowAll() *api.Profile {
	p := &api.Profile{ObjectMeta: api.ObjectMeta{Name: "default"},
		Spec: api.ProfileSpec{Ingress: []api.Rule{{Action: "Allow"}}, Egress: []api.Rule{{Action: "Allow"}}}}
	p.Default()
	return p
}

func TestACL(t *testing.T) {
	ctx := context.Background()
	f := nft.NewFake()
	a := acl.New(acl.Config{NodeName: "node-1"}, f)
	a.OnSnapshot([]api.Resource{wep("a", "wla", "10.65.0.1/32"), allowAll()})
	if err := a.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.Render(), "wla") || a.Rules() != 2 {
		t.Fatalf("after the snapshot: rules %d, table:\n%s", a.Rules(), f.Render())
	}
	commits := f.Commits()
	if err := a.Apply(ctx); err != nil || f.Commits() != commits {
		t.Errorf("an Apply with nothing to do committed (err %v)", err)
	}

	// A failed commit is retried by the next Apply, even without news.
	f.FailNext(errors.New("boom"))
	if err := a.OnUpdate(wep("b", "wlb", "10.65.0.2/32")); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx); err == nil {
		t.Fatal("Apply hid the failure")
	}
	if err := a.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.Render(), "wlb") {
		t.Errorf("wlb missing after the retry:\n%s", f.Render())
	}

	// A resync snapshot without b removes it.
	a.OnSnapshot([]api.Resource{wep("a", "wla", "10.65.0.1/32"), allowAll()})
	if err := a.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(f.Render(), "wlb") {
		t.Errorf("wlb left after a snapshot without it:\n%s", f.Render())
	}
	a.OnRemove(calc.Key{Kind: api.KindProfile, Name: "default"})
	if err := a.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Rules() != 0 {
		t.Errorf("rules = %d after removing the profile", a.Rules())
	}
}
