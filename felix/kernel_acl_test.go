package felix

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix/acl"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// TestKernelPolicy runs the agent with the real ACL component (felix/acl:
// the policy calculation and nftables) on a node namespace with two
// workloads: their allow-all profile lets them talk; a policy that allows
// only TCP 7777 into w2 keeps 7777 open and closes 7778, with real
// connections.
func TestKernelPolicy(t *testing.T) {
	f := startPolicyPair(t)
	env, w1, a1, w2, a2 := f.env, f.w1, f.a1, f.w2, f.a2
	for _, port := range []uint16{7777, 7778} {
		if err := talk(w1, a1, w2, a2, port, 5*time.Second); err != nil {
			t.Fatalf("port %d under the allow-all profile: %v", port, err)
		}
	}

	web := &api.GlobalNetworkPolicy{ObjectMeta: api.ObjectMeta{Name: "web"}}
	web.Spec.Selector = "app == 'web'"
	web.Spec.Types = []api.PolicyType{api.PolicyTypeIngress}
	web.Spec.Ingress = []api.Rule{{Action: "Allow", Protocol: tcp(), Destination: api.EntityRule{Ports: ports(7777)}}}
	env.create(t, web)
	env.waitStatus(t, "policy programmed", func(s api.FelixStatusReport) bool { return s.InSync && s.Rules == 3 })
	if err := talk(w1, a1, w2, a2, 7777, 5*time.Second); err != nil {
		t.Errorf("allowed port 7777: %v", err)
	}
	if err := talk(w1, a1, w2, a2, 7778, 500*time.Millisecond); err == nil {
		t.Errorf("denied port 7778: connected")
	}
}

func tcp() *api.Protocol {
	p := api.Protocol("TCP")
	return &p
}

func ports(ns ...uint16) []api.Port {
	var out []api.Port
	for _, n := range ns {
		out = append(out, api.PortNumber(n))
	}
	return out
}

// policyPair is a node agent with real nftables and two workloads, w1
// (10.65.0.1) and w2 (10.65.0.2, labelled app=web), under an allow-all
// profile, programmed and in sync.
type policyPair struct {
	env    *etcdEnv
	w1, w2 *nstest.NS
	a1, a2 netip.Addr
}

func startPolicyPair(t *testing.T) policyPair {
	t.Helper()
	node, w1, w2 := nstest.New(t), nstest.New(t), nstest.New(t)
	nstest.Veth(t, node, "wl1", w1, "eth0")
	nstest.Veth(t, node, "wl2", w2, "eth0")
	a1 := workload(t, node, "wl1", w1, "10.65.0.1")
	a2 := workload(t, node, "wl2", w2, "10.65.0.2")
	env := startEtcd(t)
	allow := &api.Profile{ObjectMeta: api.ObjectMeta{Name: "default"},
		Spec: api.ProfileSpec{Ingress: []api.Rule{{Action: "Allow"}}, Egress: []api.Rule{{Action: "Allow"}}}}
	e2 := wep("w2", nodeName, "wl2", a2.String()+"/32")
	e2.Labels = map[string]string{"app": "web"}
	env.create(t, allow, wep("w1", nodeName, "wl1", a1.String()+"/32"), e2, block("10.65.0.0/26", nodeName))
	cfg := kernelConfig(t, env, node)
	cfg.NewACL = func(ns netns.NsHandle, log *slog.Logger) (ACL, error) {
		return acl.NewNetlink(acl.Config{NodeName: nodeName, Logger: log}, ns), nil
	}
	runAgent(t, cfg)
	env.waitStatus(t, "programmed", func(s api.FelixStatusReport) bool { return inSyncWith(3)(s) && s.Rules == 2 })
	return policyPair{env: env, w1: w1, w2: w2, a1: a1, a2: a2}
}
