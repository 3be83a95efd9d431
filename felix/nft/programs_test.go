package nft

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/google/go-cmp/cmp"
)

// sharingStep is one step of the program sharing scenario: a change to
// the calculator, and the op kinds its transaction must have.
type sharingStep struct {
	name string
	do   func(t *testing.T, f *fixture)
	ops  map[OpKind]int
	// jumps: interface → the interface it must share its programs with
	// ("" for none of the others), checked in both maps.
	shares map[string]string
	// deleted: the kinds of chains deleted, "ep-in", "ep-out" for
	// programs, or a policy chain's name.
	deleted []string
}

// sharingLoad is the scenario's start: web-1 and web-2 have the same
// labels, so the same programs; api-1 has others.
func sharingLoad(t *testing.T, f *fixture) {
	c := f.calc
	c.OnWorkloadEndpointUpdate(wep("prod", "web-1", thisNode, "wl-web-1", "10.0.0.1", map[string]string{"app": "web"}))
	c.OnWorkloadEndpointUpdate(wep("prod", "web-2", thisNode, "wl-web-2", "10.0.0.2", map[string]string{"app": "web"}))
	c.OnWorkloadEndpointUpdate(wep("prod", "api-1", thisNode, "wl-api-1", "10.0.0.3", map[string]string{"app": "api"}))
	for _, p := range []*api.GlobalNetworkPolicy{
		gnp("web", ptr(10.0), "app == 'web'",
			[]api.Rule{{Action: api.Allow, Protocol: tcp(), Destination: api.EntityRule{Ports: []api.Port{"80"}}}},
			[]api.Rule{{Action: api.Allow}}),
		gnp("api", ptr(20.0), "app == 'api'",
			[]api.Rule{{Action: api.Allow, Protocol: tcp(), Destination: api.EntityRule{Ports: []api.Port{"8080"}}}},
			[]api.Rule{{Action: api.Allow, Protocol: tcp()}}),
	} {
		if err := c.OnGlobalNetworkPolicyUpdate(p); err != nil {
			t.Fatal(err)
		}
	}
}

func relabel(iface, name, ip, app string) func(*testing.T, *fixture) {
	return func(_ *testing.T, f *fixture) {
		f.calc.OnWorkloadEndpointUpdate(wep("prod", name, thisNode, iface, ip, map[string]string{"app": app}))
	}
}

func remove(name string) func(*testing.T, *fixture) {
	return func(_ *testing.T, f *fixture) { f.calc.OnWorkloadEndpointRemove("prod", name) }
}

var sharingSteps = []sharingStep{
	{
		name:   "a third web endpoint only adds map elements",
		do:     relabel("wl-web-3", "web-3", "10.0.0.4", "web"),
		ops:    map[OpKind]int{OpAddElements: 2},
		shares: map[string]string{"wl-web-3": "wl-web-1", "wl-web-2": "wl-web-1", "wl-api-1": ""},
	},
	{
		// A new policy for web changes the ingress program of all three:
		// their elements move to one new chain, and the old one goes.
		name: "a policy change moves all users of a program",
		do: func(t *testing.T, f *fixture) {
			if err := f.calc.OnGlobalNetworkPolicyUpdate(gnp("web-extra", ptr(5.0), "app == 'web'",
				[]api.Rule{{Action: api.Deny, Protocol: tcp(), Destination: api.EntityRule{Ports: []api.Port{"22"}}}}, nil)); err != nil {
				t.Fatal(err)
			}
		},
		// pi- and po-gnp/web-extra and the new ep-in chain; the rules of
		// the three chains; the three elements of wl-to moved in one op
		// each way; the old ep-in chain flushed and deleted.
		ops: map[OpKind]int{OpAddChain: 3, OpAddRule: 1 + 4, OpDelElements: 1, OpAddElements: 1,
			OpFlushChain: 1, OpDelChain: 1},
		shares:  map[string]string{"wl-web-3": "wl-web-1", "wl-web-2": "wl-web-1", "wl-api-1": ""},
		deleted: []string{"ep-in"},
	},
	{
		// web-2 becomes an api: its elements move to api-1's chains, which
		// exist; web-1's chains stay for web-1 and web-3.
		name:   "one endpoint joins another program",
		do:     relabel("wl-web-2", "web-2", "10.0.0.2", "api"),
		ops:    map[OpKind]int{OpDelElements: 2, OpAddElements: 2},
		shares: map[string]string{"wl-web-2": "wl-api-1", "wl-web-3": "wl-web-1"},
	},
	{
		// web-3 becomes something no policy selects: new chains for it
		// alone (one drop rule each); the shared ones stay.
		name:   "one endpoint splits off to a new program",
		do:     relabel("wl-web-3", "web-3", "10.0.0.4", "other"),
		ops:    map[OpKind]int{OpAddChain: 2, OpAddRule: 2, OpDelElements: 2, OpAddElements: 2},
		shares: map[string]string{"wl-web-3": "", "wl-web-1": "", "wl-web-2": "wl-api-1"},
	},
	{
		// The last user of web's programs goes: its elements and chains go
		// in the same transaction.
		// So do web's policy chains, which no local endpoint uses any more.
		name:    "last endpoint of a program removed",
		do:      remove("web-1"),
		ops:     map[OpKind]int{OpDelElements: 2, OpFlushChain: 6, OpDelChain: 6},
		shares:  map[string]string{"wl-web-2": "wl-api-1", "wl-web-3": ""},
		deleted: []string{"ep-in", "ep-out", "pi-gnp/web", "pi-gnp/web-extra", "po-gnp/web", "po-gnp/web-extra"},
	},
	{
		// web-3 joins api's programs: its own chains, now unused, go.
		name:    "split endpoint rejoins",
		do:      relabel("wl-web-3", "web-3", "10.0.0.4", "api"),
		ops:     map[OpKind]int{OpDelElements: 2, OpAddElements: 2, OpFlushChain: 2, OpDelChain: 2},
		shares:  map[string]string{"wl-web-3": "wl-api-1", "wl-web-2": "wl-api-1"},
		deleted: []string{"ep-in", "ep-out"},
	},
	{
		name:   "an endpoint of a shared program removed",
		do:     remove("api-1"),
		ops:    map[OpKind]int{OpDelElements: 2},
		shares: map[string]string{"wl-web-3": "wl-web-2"},
	},
	{
		name: "all removed",
		do: func(t *testing.T, f *fixture) {
			remove("web-2")(t, f)
			remove("web-3")(t, f)
		},
		ops:     map[OpKind]int{OpDelElements: 2, OpFlushChain: 4, OpDelChain: 4},
		shares:  map[string]string{},
		deleted: []string{"ep-in", "ep-out", "pi-gnp/api", "po-gnp/api"},
	},
}

// TestProgramSharing walks endpoints through shared and private programs
// and checks after each step the transaction's ops, who shares chains
// with whom, the reference counts, and that the table equals a full
// rewrite of the same state.
func TestProgramSharing(t *testing.T) {
	f := newFixture(t)
	sharingLoad(t, f)
	f.mustApply()
	checkShares(t, f, map[string]string{"wl-web-2": "wl-web-1", "wl-api-1": ""})
	if got := len(programChains(f.fake.Render())); got != 4 {
		t.Errorf("%d program chains, want 4 (web and api, ingress and egress)", got)
	}
	for _, s := range sharingSteps {
		t.Run(s.name, func(t *testing.T) {
			s.do(t, f)
			f.mustApply()
			if diff := cmp.Diff(s.ops, opKinds(f.fake.LastOps())); diff != "" {
				t.Errorf("ops (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(s.deleted, deletedChains(f.fake.LastOps())); diff != "" {
				t.Errorf("deleted chains (-want +got):\n%s", diff)
			}
			checkShares(t, f, s.shares)
			checkRefs(t, f)
			if diff := cmp.Diff(fullRender(t, f), f.fake.Render()); diff != "" {
				t.Errorf("incremental differs from full (-full +incremental):\n%s", diff)
			}
		})
	}
	if got := programChains(f.fake.Render()); len(got) != 0 {
		t.Errorf("program chains left: %v", got)
	}
}

// deletedChains lists the chains ops delete, program chains by their
// prefix, sorted.
func deletedChains(ops []Op) []string {
	var out []string
	for _, op := range ops {
		if op.Kind != OpDelChain {
			continue
		}
		n := op.Chain.Name
		if i := strings.LastIndexByte(n, '-'); strings.HasPrefix(n, "ep-") {
			n = n[:i]
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// jumpsOf returns the chain an interface's element of map m jumps to.
func jumpsOf(f *fixture, m, iface string) string {
	return f.tbl.elements[m][string(ifname(iface))].Jump
}

// checkShares checks that each interface of shares jumps to the same
// chains as the interface it names, and to chains of its own if it names
// none, in both maps.
func checkShares(t *testing.T, f *fixture, shares map[string]string) {
	t.Helper()
	for _, m := range []string{mapWlTo, mapWlFrom} {
		users := map[string][]string{} // chain → interfaces
		for _, e := range f.tbl.elements[m] {
			iface := strings.TrimRight(string(e.Key), "\x00")
			users[e.Jump] = append(users[e.Jump], iface)
		}
		for iface, with := range shares {
			c := jumpsOf(f, m, iface)
			if c == "" {
				t.Errorf("map %s: no element for %s", m, iface)
				continue
			}
			if with != "" {
				if w := jumpsOf(f, m, with); w != c {
					t.Errorf("map %s: %s jumps to %s, %s to %s; want the same", m, iface, c, with, w)
				}
			} else if len(users[c]) != 1 {
				t.Errorf("map %s: %s shares %s with %v; want it alone", m, iface, c, users[c])
			}
		}
		all := map[string]bool{}
		for iface, with := range shares {
			all[iface] = true
			if with != "" {
				all[with] = true
			}
		}
		if n := len(f.tbl.elements[m]); n != len(all) {
			t.Errorf("map %s has %d elements, want %d", m, n, len(all))
		}
	}
}

// checkRefs checks the reference counts against the interfaces' programs
// and the program chains in the table.
func checkRefs(t *testing.T, f *fixture) {
	t.Helper()
	want := map[string]int{}
	for _, p := range f.tbl.progs {
		want[p.in]++
		want[p.out]++
	}
	if diff := cmp.Diff(want, f.tbl.progRefs); diff != "" {
		t.Errorf("reference counts (-from programs +kept):\n%s", diff)
	}
	var names []string
	for n := range want {
		names = append(names, n)
	}
	slices.Sort(names)
	if diff := cmp.Diff(names, programChains(f.fake.Render())); diff != "" {
		t.Errorf("program chains (-referenced +in the table):\n%s", diff)
	}
}

// programChains lists the program chains of a rendering.
func programChains(render string) []string {
	var out []string
	for _, line := range strings.Split(render, "\n") {
		if n, ok := strings.CutPrefix(strings.TrimSpace(line), "chain ep-"); ok {
			out = append(out, "ep-"+strings.TrimSuffix(n, " {"))
		}
	}
	return out
}

// fullRender renders a fresh table written in one go from the fixture's
// calculator.
func fullRender(t *testing.T, f *fixture) string {
	t.Helper()
	fake := NewFake()
	tbl := New(fake, Config{WorkloadInterfacePrefixes: []string{"wl"}})
	if err := tbl.Apply(context.Background(), fullUpdate(f.calc.Snapshot())); err != nil {
		t.Fatal(err)
	}
	return fake.Render()
}

// Many endpoints with few distinct programs make few chains: the benchmark
// cluster's 2,000 local endpoints have 200 programs per direction.
func TestProgramsScaleWithDistinctPrograms(t *testing.T) {
	for _, local := range []int{500, 2000} {
		t.Run(fmt.Sprint(local), func(t *testing.T) {
			f := newFixture(t)
			newBenchCluster(10000, 1000, local).load(t, f.calc)
			f.mustApply()
			if got := len(f.tbl.progRefs); got != 400 {
				t.Errorf("%d program chains, want 400", got)
			}
			if got := len(f.tbl.elements[mapWlTo]); got != local {
				t.Errorf("%d elements in %s, want %d", got, mapWlTo, local)
			}
		})
	}
}

// The host endpoint of all interfaces jumps to its programs from the base
// chains; an interface's host endpoint with the same program shares them,
// and the chains stay while either uses them.
func TestAllInterfacesSharesPrograms(t *testing.T) {
	f := newFixture(t)
	f.calc.OnHostEndpointUpdate(hep("all", thisNode, "*", nil, map[string]string{"role": "host"}))
	f.calc.OnHostEndpointUpdate(hep("eth0", thisNode, "eth0", nil, map[string]string{"role": "host"}))
	if err := f.calc.OnGlobalNetworkPolicyUpdate(gnp("hosts", nil, "role == 'host'",
		[]api.Rule{{Action: api.Allow, Protocol: tcp()}}, []api.Rule{{Action: api.Allow}})); err != nil {
		t.Fatal(err)
	}
	f.mustApply()
	in := f.tbl.elements[mapHepFrom][string(ifname("eth0"))].Jump
	if !strings.Contains(f.fake.Render(), "jump "+in+"\n") {
		t.Errorf("no base chain jumps to eth0's ingress program %s:\n%s", in, f.fake.Render())
	}
	if got := f.tbl.progRefs[in]; got != 2 {
		t.Errorf("%s has %d users, want 2", in, got)
	}
	f.calc.OnHostEndpointRemove("all")
	f.mustApply()
	if diff := cmp.Diff(map[OpKind]int{OpFlushChain: 2, OpAddRule: len(f.tbl.chains[chainInput]) + len(f.tbl.chains[chainOutput])},
		opKinds(f.fake.LastOps())); diff != "" {
		t.Errorf("removing the host endpoint of all interfaces: ops (-want +got):\n%s", diff)
	}
	checkRefs(t, f)
	f.calc.OnHostEndpointRemove("eth0")
	f.mustApply()
	checkRefs(t, f)
	if diff := cmp.Diff(fullRender(t, f), f.fake.Render()); diff != "" {
		t.Errorf("incremental differs from full (-full +incremental):\n%s", diff)
	}
}
