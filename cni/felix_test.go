package cni_test

import (
	"context"
	"log/slog"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix"
	"github.com/bgpfabric/bgpfabric/felix/acl"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// TestWorkloadsTalkWithFelix is the whole host data path: the plugin
// attaches two containers, felix (with its ACLs) programs the host
// namespace from the endpoints the plugin wrote, and the containers ping
// each other through the host. A deny policy then cuts them apart.
func TestWorkloadsTalkWithFelix(t *testing.T) {
	f := newFabric(t)
	ctx, cancel := context.WithCancel(f.ctx)
	a, err := felix.New(felix.Config{
		NodeName: f.node,
		Client:   f.store,
		Netns:    f.host.Handle,
		NewACL: func(ns netns.NsHandle, log *slog.Logger) (felix.ACL, error) {
			return acl.NewNetlink(acl.Config{NodeName: f.node, Logger: log}, ns), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("felix: %v", err)
		}
	})

	list := f.confList(nil)
	c := f.cni()
	add := func(id, pod string) (*nstest.NS, netip.Addr) {
		cont, rt := f.container(id, [2]string{"K8S_POD_NAMESPACE", "shop"}, [2]string{"K8S_POD_NAME", pod})
		var res types.Result
		if err := f.inHost(func() (err error) { res, err = c.AddNetworkList(f.ctx, list, rt); return err }); err != nil {
			t.Fatalf("ADD %s: %v", pod, err)
		}
		r, err := current.NewResultFromResult(res)
		if err != nil {
			t.Fatal(err)
		}
		ip, _ := netip.AddrFromSlice(r.IPs[0].Address.IP)
		t.Cleanup(func() { f.inHost(func() error { return c.DelNetworkList(context.Background(), list, rt) }) })
		return cont, ip.Unmap()
	}
	web, webIP := add("c0ffee01", "web-1")
	db, dbIP := add("c0ffee02", "db-1")

	// Felix programs the routes to both workloads (and its block's
	// blackhole); the plugin's namespace profile allows all traffic.
	waitFor(t, "both workloads reachable", func() bool { return pingOK(web, dbIP) && pingOK(db, webIP) })
	// Felix adopted the host routes the plugin wrote: it is in sync, with
	// no route of someone else's in its way.
	waitFor(t, "felix in sync with both routes and the block", func() bool {
		r, err := f.store.Get(f.ctx, api.KindFelixStatus, "", f.node)
		if err != nil {
			return false
		}
		s := r.(*api.FelixStatus).Status
		if s.Dataplane.Error != "" {
			t.Logf("felix: %s", s.Dataplane.Error)
		}
		return s.InSync && s.Dataplane.Error == "" && s.Routes == 3
	})

	// A policy that allows nothing into db: db no longer answers web.
	f.apply(&api.NetworkPolicy{
		ObjectMeta: api.ObjectMeta{Namespace: "shop", Name: "db-closed"},
		Spec: api.NetworkPolicySpec{PolicySpec: api.PolicySpec{
			Selector: "has(db)",
			Types:    []api.PolicyType{api.PolicyTypeIngress},
		}},
	})
	// The selector matches nothing yet: db-1 has no "db" label. Label it
	// through its endpoint record, as an orchestrator would.
	w := f.endpoints()
	for _, ep := range w {
		if ep.Spec.Workload == "db-1" {
			ep.Labels = map[string]string{"db": "true"}
			f.apply(ep)
		}
	}
	waitFor(t, "db closed by policy", func() bool { return !pingOK(web, dbIP) })
	if !pingOK(db, webIP) {
		t.Errorf("web stopped answering db, but only db's ingress is closed")
	}
}

// waitFor polls cond until it holds or a minute passes: the kernel state
// it reads (reachability) has no event to wait on from here.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pingOK reports whether one ping from inside ns to dst is answered.
func pingOK(ns *nstest.NS, dst netip.Addr) bool {
	err := ns.Do(func() error { return exec.Command("ping", "-c", "1", "-W", "1", dst.String()).Run() })
	return err == nil
}
