package netbuild_test

import (
	"context"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/sim/netbuild"
	"github.com/bgpfabric/bgpfabric/sim/probe"
)

// TestDrops cuts n-1 off from n-2 on their segment's bridge, one way and
// then both ways, and ext-a from ext-b on their link: pings across fail,
// others pass, and removing the tables heals everything.
func TestDrops(t *testing.T) {
	run, plan := newRun(t, 14)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nb, err := netbuild.Build(ctx, plan, run, netbuild.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	seg := plan.Segments[0].Netns
	n1, n2 := plan.Node("n-1"), plan.Node("n-2")
	h := func(node string) (h netnsHandle) { h, _ = nb.Handle(plan.Node(node).Netns); return h }
	// A ping that must fail gets 1.5 s; one that must pass gets 5 s, for
	// a loaded machine.
	reachIn := func(from, to string, d time.Duration) bool {
		pctx, pcancel := context.WithTimeout(ctx, d)
		defer pcancel()
		return probe.Ping(pctx, h(from), plan.Node(to).IPv4.Addr()).OK
	}
	reach := func(from, to string) bool { return reachIn(from, to, 1500*time.Millisecond) }
	reachSure := func(from, to string) bool { return reachIn(from, to, 5*time.Second) }
	// One way: n-1's frames to n-2 are dropped; a ping needs both ways,
	// so it fails from either side; n-1 still reaches n-3.
	touched, err := nb.AddDrops("p1", []netbuild.Drop{{Netns: seg, Bridge: true, InPort: n1.Interfaces[0].BridgePort, OutPort: n2.Interfaces[0].BridgePort}})
	if err != nil {
		t.Fatal(err)
	}
	if reach("n-1", "n-2") || reach("n-2", "n-1") {
		t.Error("n-1 and n-2 reach each other with n-1 -> n-2 dropped")
	}
	if !reachSure("n-1", "n-3") || !reachSure("n-2", "n-3") {
		t.Error("the partition of n-1 from n-2 cut n-3 off")
	}
	// A link: everything out of ext-a's link interface.
	aEnd := plan.Node("ext-a").Interfaces[1].Name
	touched2, err := nb.AddDrops("p2", []netbuild.Drop{{Netns: plan.Node("ext-a").Netns, OutIf: aEnd, InIf: aEnd}})
	if err != nil {
		t.Fatal(err)
	}
	if reach("ext-a", "ext-b") {
		t.Error("ext-a reaches ext-b over the cut link")
	}
	// By address, from n-3's namespace: it no longer reaches n-1.
	touched3, err := nb.AddDrops("p3", []netbuild.Drop{{Netns: plan.Node("n-3").Netns, To: []netipAddr{n1.IPv4.Addr()}, From: []netipAddr{n1.IPv4.Addr()}}})
	if err != nil {
		t.Fatal(err)
	}
	if reach("n-3", "n-1") || !reachSure("n-3", "n-2") {
		t.Error("address rules in n-3: want n-1 unreachable and n-2 reachable")
	}
	for _, p := range []struct {
		name string
		ns   []string
	}{{"p1", touched}, {"p2", touched2}, {"p3", touched3}} {
		if err := nb.RemoveTables(p.name, p.ns); err != nil {
			t.Fatal(err)
		}
		for _, ns := range p.ns {
			if tabs, err := nb.Tables(ns); err != nil || len(tabs) != 0 {
				t.Errorf("tables left in %s: %v %v", ns, tabs, err)
			}
		}
	}
	if err := nb.RemoveTables("p1", touched); err != nil {
		t.Errorf("removing again: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, pair := range [][2]string{{"n-1", "n-2"}, {"n-2", "n-1"}, {"ext-a", "ext-b"}, {"n-3", "n-1"}} {
		for !reach(pair[0], pair[1]) {
			if time.Now().After(deadline) {
				t.Fatalf("%s does not reach %s after healing", pair[0], pair[1])
			}
		}
	}
}
