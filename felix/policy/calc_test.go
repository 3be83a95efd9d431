package policy

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/google/go-cmp/cmp"
)

// The basic picture: a local web endpoint, a remote db endpoint, a policy
// that lets db reach web on TCP 80.
func TestBasicRuleset(t *testing.T) {
	c := New(Config{Node: thisNode})
	c.OnWorkloadEndpointUpdate(wep("prod", "web", thisNode, "wl-web", "10.0.0.1", map[string]string{"app": "web"}))
	c.OnWorkloadEndpointUpdate(wep("prod", "db", "node-2", "wl-db", "10.0.1.1", map[string]string{"app": "db"}))
	mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("web", ptr(10.0), "app == 'web'",
		[]api.Rule{allowFrom("app == 'db'", "80", "8000:8080")}, nil)))

	dbSet := sid("app == 'db'")
	want := &Ruleset{
		Endpoints: map[EndpointKey]*Endpoint{
			{WorkloadEndpoint, "prod", "web"}: {
				Key: EndpointKey{WorkloadEndpoint, "prod", "web"}, Interface: "wl-web", Addrs: []netip.Addr{addr("10.0.0.1")},
				Ingress: Program{Policies: []PolicyKey{{Name: "web"}}},
			},
		},
		Policies: map[PolicyKey]*Rules{{Name: "web"}: {Ingress: []Rule{{
			Action: Allow, Protocol: 6,
			Src: Match{Set: dbSet},
			Dst: Match{Ports: []PortRange{{80, 80}, {8000, 8080}}},
		}}}},
		Profiles: map[string]*Rules{},
		IPSets: map[SetID]*IPSet{
			dbSet: {ID: dbSet, Selector: "app == 'db'", Members: members("10.0.1.1")},
		},
		FailsafeInbound:  DefaultFailsafeInbound(),
		FailsafeOutbound: DefaultFailsafeOutbound(),
	}
	if diff := cmp.Diff(want, c.Snapshot(), cmpOpts); diff != "" {
		t.Errorf("ruleset (-want +got):\n%s", diff)
	}
	acc := NewRuleset()
	checkConsistent(t, c, acc)
}

// A label change on a remote endpoint changes only IP set members: no
// endpoint, policy or set comes or goes.
func TestLabelChangeOnlyMembers(t *testing.T) {
	c := New(Config{Node: thisNode})
	acc := NewRuleset()
	c.OnWorkloadEndpointUpdate(wep("prod", "web", thisNode, "wl-web", "10.0.0.1", map[string]string{"app": "web"}))
	c.OnWorkloadEndpointUpdate(wep("prod", "db", "node-2", "wl-db", "10.0.1.1", map[string]string{"app": "db"}))
	c.OnWorkloadEndpointUpdate(wep("prod", "db2", "node-2", "wl-db2", "10.0.1.2", map[string]string{"app": "cache"}))
	mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("web", nil, "app == 'web'", []api.Rule{allowFrom("app == 'db'")}, nil)))
	checkConsistent(t, c, acc)

	c.OnWorkloadEndpointUpdate(wep("prod", "db", "node-2", "wl-db", "10.0.1.1", map[string]string{"app": "gone"}))
	c.OnWorkloadEndpointUpdate(wep("prod", "db2", "node-2", "wl-db2", "10.0.1.2", map[string]string{"app": "db"}))
	u := checkConsistent(t, c, acc)
	set := sid("app == 'db'")
	want := &Update{
		Endpoints: map[EndpointKey]*Endpoint{}, Policies: map[PolicyKey]*Rules{}, Profiles: map[string]*Rules{}, IPSets: map[SetID]*IPSet{},
		Members: []MemberDelta{
			{Set: set, Member: Member{Addr: addr("10.0.1.1")}, Add: false},
			{Set: set, Member: Member{Addr: addr("10.0.1.2")}, Add: true},
		},
	}
	if diff := cmp.Diff(want, u, cmpOpts); diff != "" {
		t.Errorf("update (-want +got):\n%s", diff)
	}

	// Changing back and forth within one batch is no change at all.
	c.OnWorkloadEndpointUpdate(wep("prod", "db2", "node-2", "wl-db2", "10.0.1.2", map[string]string{"app": "x"}))
	c.OnWorkloadEndpointUpdate(wep("prod", "db2", "node-2", "wl-db2", "10.0.1.2", map[string]string{"app": "db"}))
	if u := checkConsistent(t, c, acc); !u.Empty() {
		t.Errorf("flip-flop gave update %+v", u)
	}
}

// Moving an endpoint to another node removes its program, and with it the
// policies and sets only it used; moving it back restores them.
func TestEndpointMovesBetweenNodes(t *testing.T) {
	c := New(Config{Node: thisNode})
	acc := NewRuleset()
	mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("web", nil, "app == 'web'", []api.Rule{allowFrom("app == 'db'")}, nil)))
	c.OnWorkloadEndpointUpdate(wep("prod", "web", thisNode, "wl-web", "10.0.0.1", map[string]string{"app": "web"}))
	c.OnWorkloadEndpointUpdate(wep("prod", "db", thisNode, "wl-db", "10.0.0.2", map[string]string{"app": "db"}))
	checkConsistent(t, c, acc)
	if len(acc.Endpoints) != 2 || len(acc.Policies) != 1 || len(acc.IPSets) != 1 {
		t.Fatalf("before move: %d endpoints, %d policies, %d sets", len(acc.Endpoints), len(acc.Policies), len(acc.IPSets))
	}

	c.OnWorkloadEndpointUpdate(wep("prod", "web", "node-2", "wl-web", "10.0.0.1", map[string]string{"app": "web"}))
	u := checkConsistent(t, c, acc)
	webKey := EndpointKey{WorkloadEndpoint, "prod", "web"}
	if ep, ok := u.Endpoints[webKey]; !ok || ep != nil {
		t.Errorf("update endpoints = %v, want web removed", u.Endpoints)
	}
	if len(acc.Policies) != 0 || len(acc.IPSets) != 0 {
		t.Errorf("after move away: policies %v sets %v, want none", acc.Policies, acc.IPSets)
	}

	c.OnWorkloadEndpointUpdate(wep("prod", "web", thisNode, "wl-web", "10.0.0.1", map[string]string{"app": "web"}))
	checkConsistent(t, c, acc)
	if len(acc.Policies) != 1 || len(acc.IPSets) != 1 {
		t.Errorf("after move back: policies %v sets %v", acc.Policies, acc.IPSets)
	}
	if got := acc.IPSets[sid("app == 'db'")].Members; !cmp.Equal(got, members("10.0.0.2"), cmpOpts) {
		t.Errorf("members = %v", got)
	}
}

// Reordering policies changes the endpoints' programs, not the policies'
// rules.
func TestPolicyReorder(t *testing.T) {
	c := New(Config{Node: thisNode})
	acc := NewRuleset()
	c.OnWorkloadEndpointUpdate(wep("prod", "web", thisNode, "wl-web", "10.0.0.1", map[string]string{"app": "web"}))
	deny := []api.Rule{{Action: api.Deny}}
	allow := []api.Rule{{Action: api.Allow}}
	mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("a", ptr(10.0), "all()", deny, nil)))
	mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("b", ptr(20.0), "all()", allow, nil)))
	mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("c", nil, "all()", allow, nil)))
	mustNil(t, c.OnNetworkPolicyUpdate(np("prod", "a", ptr(20.0), "all()", allow, nil)))
	checkConsistent(t, c, acc)
	key := EndpointKey{WorkloadEndpoint, "prod", "web"}
	want := []PolicyKey{{Name: "a"}, {Name: "b"}, {"prod", "a"}, {Name: "c"}}
	if diff := cmp.Diff(want, acc.Endpoints[key].Ingress.Policies); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}

	mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("a", ptr(30.0), "all()", deny, nil)))
	u := checkConsistent(t, c, acc)
	want = []PolicyKey{{Name: "b"}, {"prod", "a"}, {Name: "a"}, {Name: "c"}}
	if diff := cmp.Diff(want, acc.Endpoints[key].Ingress.Policies); diff != "" {
		t.Errorf("order after reorder (-want +got):\n%s", diff)
	}
	if len(u.Policies) != 0 || len(u.Endpoints) != 1 {
		t.Errorf("reorder update: policies %v endpoints %v; want only the endpoint", u.Policies, u.Endpoints)
	}
}

// Types pick the directions; Pass is passed through; profiles come after
// policies and only if they exist.
func TestProgramsTypesAndProfiles(t *testing.T) {
	c := New(Config{Node: thisNode})
	acc := NewRuleset()
	c.OnWorkloadEndpointUpdate(wep("prod", "web", thisNode, "wl-web", "10.0.0.1", nil, "p1", "missing", "p2"))
	mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("eg", ptr(1.0), "all()", nil, []api.Rule{{Action: api.Pass}})))
	mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("in", ptr(2.0), "all()", []api.Rule{{Action: api.Log}, {Action: api.Pass}}, nil)))
	mustNil(t, c.OnProfileUpdate(prof("p1", nil, []api.Rule{{Action: api.Allow}}, []api.Rule{{Action: api.Allow}})))
	mustNil(t, c.OnProfileUpdate(prof("p2", nil, nil, nil)))
	mustNil(t, c.OnProfileUpdate(prof("unused", nil, []api.Rule{{Action: api.Allow}}, nil)))
	checkConsistent(t, c, acc)
	key := EndpointKey{WorkloadEndpoint, "prod", "web"}
	want := &Endpoint{Key: key, Interface: "wl-web", Addrs: []netip.Addr{addr("10.0.0.1")},
		Ingress: Program{Policies: []PolicyKey{{Name: "in"}}, Profiles: []string{"p1", "p2"}},
		Egress:  Program{Policies: []PolicyKey{{Name: "eg"}}, Profiles: []string{"p1", "p2"}},
	}
	if diff := cmp.Diff(want, acc.Endpoints[key], cmpOpts); diff != "" {
		t.Errorf("endpoint (-want +got):\n%s", diff)
	}
	if _, ok := acc.Profiles["unused"]; ok {
		t.Error("profile that no local endpoint uses is in the ruleset")
	}
	if got := acc.Policies[PolicyKey{Name: "in"}].Ingress; !cmp.Equal(got, []Rule{{Action: Log}, {Action: Pass}}, cmpOpts) {
		t.Errorf("rules of in = %+v", got)
	}

	// The missing profile arrives: the programs list it in place.
	mustNil(t, c.OnProfileUpdate(prof("missing", nil, nil, nil)))
	checkConsistent(t, c, acc)
	if got := acc.Endpoints[key].Ingress.Profiles; !cmp.Equal(got, []string{"p1", "missing", "p2"}) {
		t.Errorf("profiles = %v", got)
	}
}

// Profile labels count for selectors (the endpoint's own labels win), and
// changing them moves endpoints between sets.
func TestProfileLabels(t *testing.T) {
	c := New(Config{Node: thisNode})
	acc := NewRuleset()
	mustNil(t, c.OnProfileUpdate(prof("team", map[string]string{"team": "blue", "app": "fromprofile"}, nil, nil)))
	c.OnWorkloadEndpointUpdate(wep("prod", "web", thisNode, "wl-web", "10.0.0.1", map[string]string{"app": "web"}))
	c.OnWorkloadEndpointUpdate(wep("prod", "x", "node-2", "wl-x", "10.0.1.1", map[string]string{"app": "x"}, "team"))
	mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("web", nil, "app == 'web'",
		[]api.Rule{allowFrom("team == 'blue'"), allowFrom("app == 'fromprofile'")}, nil)))
	checkConsistent(t, c, acc)
	if got := acc.IPSets[sid("team == 'blue'")].Members; !cmp.Equal(got, members("10.0.1.1"), cmpOpts) {
		t.Errorf("team set = %v", got)
	}
	if got := acc.IPSets[sid("app == 'fromprofile'")].Members; len(got) != 0 {
		t.Errorf("own label must win over profile label; set = %v", got)
	}
	mustNil(t, c.OnProfileUpdate(prof("team", map[string]string{"team": "red"}, nil, nil)))
	checkConsistent(t, c, acc)
	if got := acc.IPSets[sid("team == 'blue'")].Members; len(got) != 0 {
		t.Errorf("team set after relabel = %v", got)
	}
}

// A NetworkPolicy applies in its namespace, and its rule selectors match in
// its namespace unless they have a namespaceSelector.
func TestNamespaceScoping(t *testing.T) {
	c := New(Config{Node: thisNode})
	acc := NewRuleset()
	c.OnWorkloadEndpointUpdate(wep("a", "web", thisNode, "wl-aweb", "10.0.0.1", map[string]string{"app": "web"}))
	c.OnWorkloadEndpointUpdate(wep("b", "web", thisNode, "wl-bweb", "10.0.0.2", map[string]string{"app": "web"}))
	c.OnWorkloadEndpointUpdate(wep("a", "cli", "node-2", "wl-acli", "10.0.1.1", map[string]string{"role": "client"}))
	c.OnWorkloadEndpointUpdate(wep("b", "cli", "node-2", "wl-bcli", "10.0.1.2", map[string]string{"role": "client"}))
	mustNil(t, c.OnNetworkPolicyUpdate(np("a", "web", nil, "app == 'web'", []api.Rule{
		allowFrom("role == 'client'"),
		{Action: api.Allow, Source: api.EntityRule{Selector: "role == 'client'", NamespaceSelector: "env == 'prod'"}},
		{Action: api.Allow, Source: api.EntityRule{Nets: []string{"192.168.0.0/16"}}},
	}, nil)))
	checkConsistent(t, c, acc)

	if p := acc.Endpoints[EndpointKey{WorkloadEndpoint, "b", "web"}].Ingress.Policies; len(p) != 0 {
		t.Errorf("policy of namespace a applies in b: %v", p)
	}
	if p := acc.Endpoints[EndpointKey{WorkloadEndpoint, "a", "web"}].Ingress.Policies; len(p) != 1 {
		t.Errorf("policy of namespace a does not apply in a: %v", p)
	}
	sameNS := sid("bgpfabric.io/namespace == 'a' && role == 'client'")
	prodNS := sid("bgpfabric.io/ns.env == 'prod' && has(bgpfabric.io/namespace) && role == 'client'")
	rules := acc.Policies[PolicyKey{"a", "web"}].Ingress
	if rules[0].Src.Set != sameNS || rules[1].Src.Set != prodNS || rules[2].Src.Set != "" {
		t.Fatalf("rule sets = %q %q %q; sets: %v", rules[0].Src.Set, rules[1].Src.Set, rules[2].Src.Set, acc.IPSets)
	}
	if got := acc.IPSets[sameNS].Members; !cmp.Equal(got, members("10.0.1.1"), cmpOpts) {
		t.Errorf("same-namespace set = %v", got)
	}
	if got := acc.IPSets[prodNS].Members; len(got) != 0 {
		t.Errorf("prod set before labelling = %v", got)
	}
	c.OnNamespaceUpdate("b", map[string]string{"env": "prod"})
	u := checkConsistent(t, c, acc)
	if got := acc.IPSets[prodNS].Members; !cmp.Equal(got, members("10.0.1.2"), cmpOpts) {
		t.Errorf("prod set after labelling b = %v", got)
	}
	if len(u.Endpoints)+len(u.Policies)+len(u.IPSets) != 0 {
		t.Errorf("namespace label change changed more than members: %+v", u)
	}
}

// Named ports resolve to (address, protocol, port) of the endpoints that
// declare them.
func TestNamedPorts(t *testing.T) {
	c := New(Config{Node: thisNode})
	acc := NewRuleset()
	c.OnWorkloadEndpointUpdate(wep("prod", "cli", thisNode, "wl-cli", "10.0.0.1", nil))
	srv := wep("prod", "srv", "node-2", "wl-srv", "10.0.1.1", map[string]string{"app": "srv"})
	srv.Spec.Ports = []api.EndpointPort{{Name: "http", Protocol: api.ProtocolTCP, Port: 8080}, {Name: "http", Protocol: api.ProtocolUDP, Port: 9}}
	c.OnWorkloadEndpointUpdate(srv)
	mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("cli", nil, "all()", nil, []api.Rule{{
		Action: api.Allow, Protocol: tcp(),
		Destination: api.EntityRule{Selector: "app == 'srv'", Ports: []api.Port{"http", "443"}},
	}})))
	checkConsistent(t, c, acc)
	rule := acc.Policies[PolicyKey{Name: "cli"}].Egress[0]
	if len(rule.Dst.NamedPortSets) != 1 || !cmp.Equal(rule.Dst.Ports, []PortRange{{443, 443}}) {
		t.Fatalf("rule = %+v", rule)
	}
	set := acc.IPSets[rule.Dst.NamedPortSets[0]]
	want := []Member{{Addr: addr("10.0.1.1"), ProtoPort: ProtoPort{6, 8080}}}
	if !cmp.Equal(set.Members, want, cmpOpts) || set.NamedPort == nil || *set.NamedPort != (NamedPort{6, "http"}) {
		t.Errorf("named port set = %+v", set)
	}
	// The port number changes: one member out, one in.
	srv = wep("prod", "srv", "node-2", "wl-srv", "10.0.1.1", map[string]string{"app": "srv"})
	srv.Spec.Ports = []api.EndpointPort{{Name: "http", Protocol: api.ProtocolTCP, Port: 8081}}
	c.OnWorkloadEndpointUpdate(srv)
	u := checkConsistent(t, c, acc)
	if len(u.Members) != 2 {
		t.Errorf("members delta = %+v", u.Members)
	}
}

func TestHostEndpointsAndFailsafes(t *testing.T) {
	c := New(Config{Node: thisNode, FailsafeInbound: []Failsafe{{Protocol: ProtoTCP, Port: 22}}, FailsafeOutbound: []Failsafe{}})
	acc := NewRuleset()
	c.OnHostEndpointUpdate(hep("eth0", thisNode, "eth0", []string{"192.168.1.1"}, map[string]string{"role": "host"}))
	c.OnHostEndpointUpdate(hep("byip", thisNode, "", []string{"192.168.1.2"}, map[string]string{"role": "host"}))
	c.OnHostEndpointUpdate(hep("other", "node-2", "eth0", []string{"192.168.2.1"}, map[string]string{"role": "host"}))
	mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("hosts", nil, "role == 'host'", []api.Rule{allowFrom("role == 'host'")}, nil)))
	checkConsistent(t, c, acc)
	if len(acc.Endpoints) != 1 || acc.Endpoints[EndpointKey{Kind: HostEndpoint, Name: "eth0"}] == nil {
		t.Errorf("endpoints = %v, want only hep eth0", acc.Endpoints)
	}
	if got := acc.IPSets[sid("role == 'host'")].Members; !cmp.Equal(got, members("192.168.1.1", "192.168.1.2", "192.168.2.1"), cmpOpts) {
		t.Errorf("host set = %v", got)
	}
	if !cmp.Equal(acc.FailsafeInbound, []Failsafe{{Protocol: ProtoTCP, Port: 22}}, cmpOpts) || len(acc.FailsafeOutbound) != 0 {
		t.Errorf("failsafes = %v / %v", acc.FailsafeInbound, acc.FailsafeOutbound)
	}
}

// A policy that cannot be enforced as written is never dropped (that
// would let through what it was written to deny): it is enforced as
// deny-all for the endpoints it selects, ahead of every other policy, until
// a version that can be enforced replaces it.
func TestUnsupportedGlobalPolicyFailsClosed(t *testing.T) {
	deny := []Rule{{Action: Deny}}
	for _, tc := range []struct {
		name string
		set  func(*api.GlobalNetworkPolicySpec)
	}{
		{"doNotTrack", func(s *api.GlobalNetworkPolicySpec) { s.DoNotTrack = true }},
		{"preDNAT", func(s *api.GlobalNetworkPolicySpec) { s.PreDNAT, s.ApplyOnForward = true, true }},
		{"applyOnForward", func(s *api.GlobalNetworkPolicySpec) { s.ApplyOnForward = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(Config{Node: thisNode})
			acc := NewRuleset()
			web := EndpointKey{Kind: WorkloadEndpoint, Namespace: "prod", Name: "web"}
			db := EndpointKey{Kind: WorkloadEndpoint, Namespace: "prod", Name: "db"}
			c.OnWorkloadEndpointUpdate(wep("prod", "web", thisNode, "wl-web", "10.0.0.1", map[string]string{"app": "web"}))
			c.OnWorkloadEndpointUpdate(wep("prod", "db", thisNode, "wl-db", "10.0.0.2", map[string]string{"app": "db"}))
			mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("allow", ptr(1.0), "all()", []api.Rule{{Action: api.Allow}}, []api.Rule{{Action: api.Allow}})))
			mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("p", ptr(100.0), "app == 'web'", []api.Rule{{Action: api.Allow}}, nil)))
			checkConsistent(t, c, acc)

			p := gnp("p", ptr(100.0), "app == 'web'", []api.Rule{{Action: api.Allow}}, nil)
			tc.set(&p.Spec)
			err := c.OnGlobalNetworkPolicyUpdate(p)
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "spec."+tc.name) {
				t.Fatalf("err = %v, want ErrUnsupported naming spec.%s", err, tc.name)
			}
			checkConsistent(t, c, acc)
			gp := PolicyKey{Name: "p"}
			if diff := cmp.Diff(&Rules{Ingress: deny}, acc.Policies[gp], cmpOpts); diff != "" {
				t.Errorf("rules of the unsupported policy (-want +got):\n%s", diff)
			}
			// First, ahead of the allow-all policy of order 1; ingress only,
			// as its types; only on the endpoint it selects.
			if got, want := acc.Endpoints[web].Ingress.Policies, []PolicyKey{gp, {Name: "allow"}}; !cmp.Equal(got, want) {
				t.Errorf("web ingress policies = %v, want %v", got, want)
			}
			if got, want := acc.Endpoints[web].Egress.Policies, []PolicyKey{{Name: "allow"}}; !cmp.Equal(got, want) {
				t.Errorf("web egress policies = %v, want %v", got, want)
			}
			if got, want := acc.Endpoints[db].Ingress.Policies, []PolicyKey{{Name: "allow"}}; !cmp.Equal(got, want) {
				t.Errorf("db ingress policies = %v, want %v", got, want)
			}
			if got := c.FailedClosed(); !cmp.Equal(got, []PolicyKey{gp}) {
				t.Errorf("FailedClosed = %v", got)
			}

			// A version that can be enforced takes over again.
			mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("p", ptr(100.0), "app == 'web'", []api.Rule{{Action: api.Allow}}, nil)))
			checkConsistent(t, c, acc)
			if got := acc.Policies[gp].Ingress; len(got) != 1 || got[0].Action != Allow {
				t.Errorf("rules after the fix = %v, want one allow", got)
			}
			if got, want := acc.Endpoints[web].Ingress.Policies, []PolicyKey{{Name: "allow"}, gp}; !cmp.Equal(got, want) {
				t.Errorf("web ingress policies after the fix = %v, want %v", got, want)
			}
			if got := c.FailedClosed(); len(got) != 0 {
				t.Errorf("FailedClosed after the fix = %v", got)
			}
		})
	}
}

// Policies that do not compile (written around the api validation) fail
// closed too: a bad rule denies for the policy's endpoints; a bad selector
// keeps the last good version, or without one denies every local endpoint
// of the policy's scope.
func TestUncompilablePolicyFailsClosed(t *testing.T) {
	c := New(Config{Node: thisNode})
	acc := NewRuleset()
	web := EndpointKey{Kind: WorkloadEndpoint, Namespace: "prod", Name: "web"}
	other := EndpointKey{Kind: WorkloadEndpoint, Namespace: "dev", Name: "web"}
	c.OnWorkloadEndpointUpdate(wep("prod", "web", thisNode, "wl-web", "10.0.0.1", map[string]string{"app": "web"}))
	c.OnWorkloadEndpointUpdate(wep("dev", "web", thisNode, "wl-dev", "10.0.0.3", map[string]string{"app": "web"}))
	badRule := []api.Rule{{Action: api.Allow, Source: api.EntityRule{Selector: "app =="}}}
	if err := c.OnNetworkPolicyUpdate(np("prod", "bad-rule", nil, "app == 'web'", badRule, nil)); err == nil {
		t.Fatal("bad rule selector: no error")
	}
	checkConsistent(t, c, acc)
	key := PolicyKey{Namespace: "prod", Name: "bad-rule"}
	if got := acc.Policies[key]; got == nil || len(got.Ingress) != 1 || got.Ingress[0].Action != Deny {
		t.Errorf("bad rule: rules = %+v, want deny-all", got)
	}
	if got := acc.Endpoints[web].Ingress.Policies; !cmp.Equal(got, []PolicyKey{key}) {
		t.Errorf("bad rule: web ingress policies = %v", got)
	}

	// Bad selector over a good version: the good version stays.
	mustNil(t, c.OnNetworkPolicyUpdate(np("prod", "sel", nil, "app == 'web'", []api.Rule{{Action: api.Allow}}, nil)))
	if err := c.OnNetworkPolicyUpdate(np("prod", "sel", nil, "app ==", []api.Rule{{Action: api.Allow}}, nil)); err == nil {
		t.Fatal("bad selector: no error")
	}
	checkConsistent(t, c, acc)
	if got := acc.Policies[PolicyKey{Namespace: "prod", Name: "sel"}]; got == nil || got.Ingress[0].Action != Allow {
		t.Errorf("bad selector over a good version: rules = %+v, want the good version's allow", got)
	}

	// Bad selector, no good version: deny for its whole namespace only.
	if err := c.OnNetworkPolicyUpdate(np("prod", "new", nil, "app ==", []api.Rule{{Action: api.Allow}}, nil)); err == nil {
		t.Fatal("bad new selector: no error")
	}
	checkConsistent(t, c, acc)
	nk := PolicyKey{Namespace: "prod", Name: "new"}
	if got := acc.Policies[nk]; got == nil || got.Ingress[0].Action != Deny {
		t.Errorf("bad new selector: rules = %+v, want deny-all", got)
	}
	if got := acc.Endpoints[web].Ingress.Policies; !slices.Contains(got, nk) {
		t.Errorf("bad new selector: web ingress policies = %v, want %v in them", got, nk)
	}
	if got := acc.Endpoints[other].Ingress.Policies; slices.Contains(got, nk) {
		t.Errorf("bad new selector: policy of namespace prod applies in dev: %v", got)
	}
	if got, want := c.FailedClosed(), []PolicyKey{key, nk}; !cmp.Equal(got, want) {
		t.Errorf("FailedClosed = %v, want %v", got, want)
	}
}

// Two endpoints sharing an address: the address stays in the set until
// both are gone.
func TestSharedAddressRefcount(t *testing.T) {
	c := New(Config{Node: thisNode})
	acc := NewRuleset()
	c.OnWorkloadEndpointUpdate(wep("prod", "web", thisNode, "wl-web", "10.0.0.1", map[string]string{"app": "web"}))
	mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("web", nil, "app == 'web'", []api.Rule{allowFrom("app == 'db'")}, nil)))
	c.OnWorkloadEndpointUpdate(wep("prod", "db1", "node-2", "wl-1", "10.0.1.1", map[string]string{"app": "db"}))
	c.OnWorkloadEndpointUpdate(wep("prod", "db2", "node-3", "wl-2", "10.0.1.1", map[string]string{"app": "db"}))
	checkConsistent(t, c, acc)
	c.OnWorkloadEndpointRemove("prod", "db1")
	if u := checkConsistent(t, c, acc); len(u.Members) != 0 {
		t.Errorf("members = %v, want none", u.Members)
	}
	c.OnWorkloadEndpointRemove("prod", "db2")
	if u := checkConsistent(t, c, acc); len(u.Members) != 1 || u.Members[0].Add {
		t.Errorf("members = %v, want one removal", u.Members)
	}
}

// A profile whose rules do not compile fails closed: a deny in each
// direction where it stands in the endpoint's profiles, so that traffic
// does not go on to the next profile's allow; its labels still apply.
func TestUncompilableProfileFailsClosed(t *testing.T) {
	c := New(Config{Node: thisNode})
	acc := NewRuleset()
	web := EndpointKey{Kind: WorkloadEndpoint, Namespace: "prod", Name: "web"}
	c.OnWorkloadEndpointUpdate(wep("prod", "web", thisNode, "wl-web", "10.0.0.1", nil, "strict", "allow"))
	allowAll := &api.Profile{ObjectMeta: api.ObjectMeta{Name: "allow"}, Spec: api.ProfileSpec{
		Ingress: []api.Rule{{Action: api.Allow}}, Egress: []api.Rule{{Action: api.Allow}}}}
	mustNil(t, c.OnProfileUpdate(allowAll))
	strict := &api.Profile{ObjectMeta: api.ObjectMeta{Name: "strict"}, Spec: api.ProfileSpec{
		Ingress:       []api.Rule{{Action: api.Deny, Source: api.EntityRule{Selector: "app =="}}},
		LabelsToApply: map[string]string{"tier": "strict"},
	}}
	if err := c.OnProfileUpdate(strict); err == nil || !strings.Contains(err.Error(), "fail closed") {
		t.Fatalf("err = %v, want a fail-closed error", err)
	}
	checkConsistent(t, c, acc)
	deny := &Rules{Ingress: []Rule{{Action: Deny}}, Egress: []Rule{{Action: Deny}}}
	if diff := cmp.Diff(deny, acc.Profiles["strict"], cmpOpts); diff != "" {
		t.Errorf("rules of the profile that does not compile (-want +got):\n%s", diff)
	}
	if got, want := acc.Endpoints[web].Ingress.Profiles, []string{"strict", "allow"}; !cmp.Equal(got, want) {
		t.Errorf("web ingress profiles = %v, want %v", got, want)
	}
	// Its labels still select the endpoint.
	mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("by-tier", nil, "tier == 'strict'", []api.Rule{{Action: api.Pass}}, nil)))
	checkConsistent(t, c, acc)
	if got := acc.Endpoints[web].Ingress.Policies; !cmp.Equal(got, []PolicyKey{{Name: "by-tier"}}) {
		t.Errorf("policies selecting the profile's label = %v", got)
	}
}
