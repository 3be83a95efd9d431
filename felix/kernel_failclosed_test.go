package felix

import (
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
)

// TestKernelUnsupportedPolicyFailsClosed: a GlobalNetworkPolicy with
// applyOnForward, written to etcd around the api validation (as an older
// version or another tool could), was meant to deny w1's traffic into w2.
// Dropping it would leave the allow-all profile in charge and let it
// through; the node enforces it as deny-all for w2 instead, with real
// connections, until a version it can enforce replaces it.
func TestKernelUnsupportedPolicyFailsClosed(t *testing.T) {
	f := startPolicyPair(t)
	env, w1, a1, w2, a2 := f.env, f.w1, f.a1, f.w2, f.a2
	if err := talk(w1, a1, w2, a2, 7777, 5*time.Second); err != nil {
		t.Fatalf("under the allow-all profile: %v", err)
	}

	p := &api.GlobalNetworkPolicy{ObjectMeta: api.ObjectMeta{Name: "no-w1"}}
	p.Spec.Selector = "app == 'web'"
	p.Spec.Ingress = []api.Rule{{Action: "Deny", Source: api.EntityRule{Nets: []string{a1.String() + "/32"}}}, {Action: "Allow"}}
	p.Spec.ApplyOnForward = true
	p.Default()
	if err := p.Validate(); err == nil {
		t.Fatal("the api accepts applyOnForward: this test needs it refused")
	}
	data, err := api.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	key, err := api.KeyOf(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.Etcd().Put(testContext(t), key, string(data)); err != nil {
		t.Fatal(err)
	}
	// Dropped, the rule count would stay 2: the profile's.
	env.waitStatus(t, "the policy in force", func(s api.FelixStatusReport) bool { return s.InSync && s.Rules == 3 })
	if err := talk(w1, a1, w2, a2, 7777, 500*time.Millisecond); err == nil {
		t.Error("w1 reached w2 although a policy (that the node cannot enforce as written) denies it")
	}

	// An enforceable version takes over: it allows everything but w1.
	p.Spec.ApplyOnForward = false
	p.Spec.Ingress[1] = api.Rule{Action: "Allow", Protocol: tcp(), Destination: api.EntityRule{Ports: ports(7778)}}
	p.Spec.Ingress[0] = api.Rule{Action: "Allow", Protocol: tcp(), Destination: api.EntityRule{Ports: ports(7777)}}
	env.apply(t, p)
	env.waitStatus(t, "the enforceable version in force", func(s api.FelixStatusReport) bool { return s.InSync && s.Rules == 4 })
	if err := talk(w1, a1, w2, a2, 7777, 5*time.Second); err != nil {
		t.Errorf("after the fix, allowed port 7777: %v", err)
	}
}
