package calc

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
)

// history is a set of final resources and a sequence of steps that ends in
// exactly that set, whatever the order: intermediate versions of a
// resource come before its final version, duplicates of the final version
// after it, and resources that are removed are added first.
type history struct {
	final []api.Resource
	steps []step
}

// randomHistory builds a history over a few nodes, endpoints and blocks,
// with deliberate conflicts (shared addresses and interfaces).
func randomHistory(rng *rand.Rand) history {
	nodes := []string{thisNode, "node-2"}
	var h history
	// perKey collects each key's steps in order; they are interleaved
	// with the other keys' at random at the end.
	perKey := map[Key][]step{}
	var keys []Key
	add := func(k Key, s step) {
		if _, ok := perKey[k]; !ok {
			keys = append(keys, k)
		}
		perKey[k] = append(perKey[k], s)
	}
	randWEP := func(name string) *api.WorkloadEndpoint {
		ip := fmt.Sprintf("10.65.0.%d/32", rng.IntN(6))
		nets := []string{ip}
		if rng.IntN(3) == 0 {
			nets = append(nets, fmt.Sprintf("fd00:65::%d/128", rng.IntN(4)))
		}
		w := wep("ns", name, nodes[rng.IntN(2)], fmt.Sprintf("wl%d", rng.IntN(4)), nets...)
		if rng.IntN(4) == 0 {
			w.Spec.IPv6Gateway = fmt.Sprintf("fe80::%d", 1+rng.IntN(2))
		}
		return w
	}
	randBlock := func(i int) *api.IPAMBlock {
		b := block(fmt.Sprintf("10.65.%d.0/26", i), nodes[rng.IntN(2)])
		if rng.IntN(5) == 0 {
			b.Spec.Deleted = true
		}
		return b
	}
	for i := range 8 {
		name := fmt.Sprintf("w%d", i)
		k := Key{Kind: api.KindWorkloadEndpoint, Namespace: "ns", Name: name}
		for range rng.IntN(3) {
			add(k, upd(randWEP(name)))
		}
		if rng.IntN(4) == 0 {
			add(k, upd(randWEP(name)))
			add(k, rmWEP("ns", name))
			continue
		}
		w := randWEP(name)
		add(k, upd(w))
		h.final = append(h.final, w)
	}
	for i := range 4 {
		b := randBlock(i)
		k := KeyOf(b)
		for range rng.IntN(3) {
			add(k, upd(randBlock(i)))
		}
		if rng.IntN(4) == 0 {
			add(k, rmBlock(b))
			continue
		}
		add(k, upd(b))
		h.final = append(h.final, b)
	}
	// Duplicates of final versions.
	for _, r := range h.final {
		if rng.IntN(2) == 0 {
			add(KeyOf(r), upd(r.DeepCopyResource()))
		}
	}
	// Interleave the keys' sequences at random, keeping each in order.
	next := map[Key]int{}
	for len(keys) > 0 {
		i := rng.IntN(len(keys))
		k := keys[i]
		h.steps = append(h.steps, perKey[k][next[k]])
		next[k]++
		if next[k] == len(perKey[k]) {
			keys = append(keys[:i], keys[i+1:]...)
		}
	}
	return h
}

// deltaState accumulates deltas as a dataplane would.
type deltaState struct {
	routes map[netip.Prefix]Route
	ifaces map[string]Interface
}

func (s *deltaState) apply(d Delta) {
	for dst, r := range d.Routes {
		if r == nil {
			delete(s.routes, dst)
		} else {
			s.routes[dst] = *r
		}
	}
	for n, i := range d.Interfaces {
		if i == nil {
			delete(s.ifaces, n)
		} else {
			s.ifaces[n] = *i
		}
	}
}

func (s *deltaState) check(t *testing.T, c *Calc, what string) {
	t.Helper()
	got := map[netip.Prefix]Route{}
	for _, r := range c.Routes() {
		got[r.Dst] = r
	}
	if diff := cmp.Diff(got, s.routes, cmpOpts...); diff != "" {
		t.Errorf("%s: accumulated deltas differ from Routes (-Routes +deltas):\n%s", what, diff)
	}
	gotIf := map[string]Interface{}
	for _, i := range c.Interfaces() {
		gotIf[i.Name] = i
	}
	if diff := cmp.Diff(gotIf, s.ifaces, cmpOpts...); diff != "" {
		t.Errorf("%s: accumulated deltas differ from Interfaces (-Interfaces +deltas):\n%s", what, diff)
	}
}

// TestReplay feeds random histories in random orders, with duplicates and
// with deltas taken at random points, and checks that every order ends in
// the state of the final resources given at once, and that the deltas add
// up to it.
func TestReplay(t *testing.T) {
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 1))
	for round := range 300 {
		h := randomHistory(rng)
		want := New(Config{NodeName: thisNode})
		want.OnSnapshot(h.final)

		c := New(Config{NodeName: thisNode})
		acc := &deltaState{routes: map[netip.Prefix]Route{}, ifaces: map[string]Interface{}}
		for _, s := range h.steps {
			s.apply(c)
			if rng.IntN(3) == 0 {
				acc.apply(c.TakeDelta())
			}
		}
		acc.apply(c.TakeDelta())
		what := fmt.Sprintf("seed %d round %d", seed, round)
		if diff := cmp.Diff(want.Routes(), c.Routes(), cmpOpts...); diff != "" {
			t.Fatalf("%s: routes differ from the final set's (-want +got):\n%s", what, diff)
		}
		if diff := cmp.Diff(want.Interfaces(), c.Interfaces(), cmpOpts...); diff != "" {
			t.Fatalf("%s: interfaces differ (-want +got):\n%s", what, diff)
		}
		if diff := cmp.Diff(want.Counts(), c.Counts()); diff != "" {
			t.Fatalf("%s: counts differ (-want +got):\n%s", what, diff)
		}
		acc.check(t, c, what)

		// A resync snapshot of another history's final set, from this
		// state, ends in that set's state too.
		h2 := randomHistory(rng)
		want2 := New(Config{NodeName: thisNode})
		want2.OnSnapshot(h2.final)
		c.OnSnapshot(h2.final)
		acc.apply(c.TakeDelta())
		if diff := cmp.Diff(want2.Routes(), c.Routes(), cmpOpts...); diff != "" {
			t.Fatalf("%s: after resync snapshot (-want +got):\n%s", what, diff)
		}
		acc.check(t, c, what+" after resync")
	}
}
