package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// BFD in the sim (issue 17, docs/bfd.md): a reflector pair and four
// nodes, BFD 100 ms × 3 on every session, and a hold time long enough
// (30 s, keepalives every 10 s) that the hold timer cannot have fired
// before 20 s after a fault: whatever withdraws routes earlier is BFD.
const (
	bfdKeepalive = 10 * time.Second
	bfdHold      = 30 * time.Second
)

// bfdTopology is the fabric: with reflectors, a redundant pair; in a
// mesh, the nodes only.
func bfdTopology(model string) string {
	reflectors := `
  - name: reflector
    role: reflector
    count: 2`
	if model == "mesh" {
		reflectors = ""
	}
	return fmt.Sprintf(`name: bfd-%s
description: four nodes, BFD 100ms x 3
bgp:
  model: %s
  keepaliveTime: %s
  holdTime: %s
  bfd: {enabled: true, minTx: 100ms, minRx: 100ms, multiplier: 3}
nodes:%s
  - name: node
    count: 4
    workloads: [{name: wl, count: 1}]
checks:
  convergence: 60s
  connectivity:
    - name: all-pairs-icmp
  routes:
    - {node: node-1, blocks: true}
`, model, model, bfdKeepalive, bfdHold, reflectors)
}

func bootBFD(t *testing.T, model string) *sim.Fabric {
	t.Helper()
	requireFabric(t)
	topo, err := topology.Parse("bfd.yaml", []byte(bfdTopology(model)))
	if err != nil {
		t.Fatal(err)
	}
	f := bootTopo(t, topo)
	converge(t, f)
	waitBFD(t, f, "every session's BFD Up", func(node, peer, state string) bool { return state == "Up" })
	return f
}

// waitBFD waits until ok holds for the BFD state of every session of
// every node and reflector, as their BGPStatus reports it (written every
// status interval: there is no event to wait for, so it is read again).
func waitBFD(t *testing.T, f *sim.Fabric, what string, ok func(node, peer, state string) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last []string
	for {
		last = last[:0]
		for _, n := range f.Plan.Nodes {
			r, err := f.Client().Get(ctx, api.KindBGPStatus, "", n.Name)
			if err != nil {
				last = append(last, fmt.Sprintf("%s: %v", n.Name, err))
				continue
			}
			for _, p := range r.(*api.BGPStatus).Status.Peers {
				if !ok(n.Name, p.PeerIP, p.BFD) {
					last = append(last, fmt.Sprintf("%s->%s: BFD %q", n.Name, p.PeerIP, p.BFD))
				}
			}
		}
		if len(last) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within a minute: %v", what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// blackhole makes a node's namespace drop every packet in and out but on
// its loopback (nftables, policy drop on input, forward and output): its
// links stay up, its agent runs, and nothing reaches it or leaves it, a
// silent failure only a timer can detect. It returns the undo, also
// registered as a cleanup.
func blackhole(t *testing.T, h netns.NsHandle) func() {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		t.Fatal(err)
	}
	tab := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "bf-e2e-blackhole"})
	drop := nftables.ChainPolicyDrop
	for _, hook := range []struct {
		name  string
		hook  *nftables.ChainHook
		iface expr.MetaKey // the loopback's traffic is let through
	}{{"input", nftables.ChainHookInput, expr.MetaKeyIIFNAME}, {"forward", nftables.ChainHookForward, 0}, {"output", nftables.ChainHookOutput, expr.MetaKeyOIFNAME}} {
		ch := c.AddChain(&nftables.Chain{Name: hook.name, Table: tab, Type: nftables.ChainTypeFilter,
			Hooknum: hook.hook, Priority: nftables.ChainPriorityFilter, Policy: &drop})
		if hook.iface != 0 {
			lo := make([]byte, 16)
			copy(lo, "lo")
			c.AddRule(&nftables.Rule{Table: tab, Chain: ch, Exprs: []expr.Any{
				&expr.Meta{Key: hook.iface, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: lo},
				&expr.Verdict{Kind: expr.VerdictAccept},
			}})
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatalf("adding the drop table: %v", err)
	}
	done := false
	undo := func() {
		if done {
			return
		}
		done = true
		c.DelTable(tab)
		if err := c.Flush(); err != nil {
			t.Errorf("removing the drop table: %v", err)
		}
	}
	t.Cleanup(undo)
	return undo
}

// TestBFDSilentFailure: node-4's namespace starts dropping every packet
// (its links stay up: no carrier loss, no TCP reset, only silence). The
// reflectors' BFD sessions to it expire after 300 ms, they close its BGP
// sessions with Cease (BFD Down), and node-1..3 withdraw node-4's blocks;
// the test measures the time from the fault to the last withdrawal on
// every other node and requires it before the hold timer could have fired
// (20 s: hold time less one keepalive interval), so it fails if BFD did
// nothing. When the drop ends, node-4 comes back and every check passes.
func TestBFDSilentFailure(t *testing.T) {
	f := bootBFD(t, "reflectors")
	const victim = "node-4"
	others := []string{"node-1", "node-2", "node-3"}
	blocks := blocksByNode(t, f)
	if len(blocks[victim]) == 0 {
		t.Fatalf("%s has no blocks", victim)
	}
	w := watchRoutes(t, f, others, blocks[victim])
	h, err := f.NodeNetns(victim)
	if err != nil {
		t.Fatal(err)
	}

	fault := time.Now()
	undo := blackhole(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), bfdHold)
	defer cancel()
	var last time.Duration
	for _, n := range others {
		at, ok := w.waitDeleted(ctx, n, blocks[victim])
		if !ok {
			t.Fatalf("%s still routes to %s's blocks %s %s after the fault", n, victim, blocks[victim], bfdHold)
		}
		d := at.Sub(fault)
		t.Logf("%s withdrew %s's blocks %s after the fault", n, victim, d.Round(time.Millisecond))
		last = max(last, d)
	}
	t.Logf("BFD 100ms x 3: %s silent; last withdrawal on the other nodes %s after the fault (hold time %s)",
		victim, last.Round(time.Millisecond), bfdHold)
	if limit := bfdHold - bfdKeepalive; last >= limit {
		t.Errorf("last withdrawal %s after the fault: not before the hold timer could fire (%s), so not BFD's", last, limit)
	}
	waitBFD(t, f, "the reflectors' BFD to "+victim+" Down", func(node, peer, state string) bool {
		if node != "reflector-1" && node != "reflector-2" || peer != nodeAddr(f, victim, false).String() {
			return true
		}
		return state == "Down"
	})

	undo()
	converge(t, f)
	requireChecks(t, f)
	requireExactRoutes(t, f, viaOwner(f))
}

// TestBFDGracefulRestartAgentKill: node-2's agent is killed (SIGKILL, with
// its speaker child: TCP closes at once, its peers start graceful restart
// for it) and started again once its peers' BFD sessions to it have
// expired (Down, diagnostic 1, its C bit clear). RFC 5882 §4.3.2: BFD
// that shares fate with the control plane must not abort a graceful
// restart in progress, so no other node may withdraw node-2's routes, and
// after the restart everything is in place. With reflectors the
// reflectors' BFD is tested (reflector/bfd.go), in a mesh the nodes'
// (router/bfd.go).
func TestBFDGracefulRestartAgentKill(t *testing.T) {
	for _, model := range []string{"reflectors", "mesh"} {
		t.Run(model, func(t *testing.T) { bfdAgentKill(t, model) })
	}
}

func bfdAgentKill(t *testing.T, model string) {
	f := bootBFD(t, model)
	const victim = "node-2"
	blocks := blocksByNode(t, f)
	var all []netip.Prefix
	var computes []string
	for n, bs := range blocks {
		all = append(all, bs...)
		computes = append(computes, n)
	}
	slices.Sort(computes)
	w := watchRoutes(t, f, computes, all)

	killed := time.Now()
	if err := f.KillAgent(victim, true); err != nil {
		t.Fatal(err)
	}
	// BFD must have gone Down on the peers (and they must have acted on
	// it) before the agent comes back: otherwise this tests nothing of
	// BFD.
	victimAddr := nodeAddr(f, victim, false).String()
	waitBFD(t, f, "the peers' BFD to "+victim+" Down", func(node, peer, state string) bool {
		return node == victim || peer != victimAddr || state == "Down"
	})
	t.Logf("%s's agent killed; its peers' BFD to it Down %s later (as their status shows)", victim, time.Since(killed).Round(time.Millisecond))
	if err := f.StartAgent(victim); err != nil {
		t.Fatal(err)
	}
	d := converge(t, f)
	waitBFD(t, f, "every session's BFD Up again", func(node, peer, state string) bool { return state == "Up" })
	t.Logf("%s restarted: reconverged %s after the start, %s after the kill", victim, d.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	// Past the end of the restart (End-of-RIB and the stale-route sweep).
	wait(context.Background(), 2*time.Second)
	if del := w.deletions(); len(del) > 0 {
		t.Errorf("routes deleted across a graceful restart with BFD on: %+v", del)
	}
	requireChecks(t, f)
	requireExactRoutes(t, f, viaOwner(f))
}
