package policy

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/google/go-cmp/cmp"
)

// event is one update of the calculator; obj names the object it is about,
// so that shuffles keep each object's own updates in order.
type event struct {
	obj   string
	apply func(c *Calculator)
}

// scenario generates versions of a random little cluster: endpoints on
// three nodes in three namespaces, policies of both kinds, profiles and
// namespace labels; each object gets one to three versions, the last of
// which may be a removal.
func scenario(r *rand.Rand) (history [][]event) {
	apps := []string{"web", "db", "cache", "api"}
	nodes := []string{thisNode, "node-2", "node-3"}
	nss := []string{"a", "b", "c"}
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	sels := []string{"app == 'web'", "app == 'db'", "app in {'cache', 'api'}", "has(tier)", "all()", "!has(app)", "team == 'blue'", "tier == 'x' && app != 'db'"}
	rule := func() api.Rule {
		ru := api.Rule{Action: []api.Action{api.Allow, api.Deny, api.Pass, api.Log}[r.IntN(4)]}
		switch r.IntN(5) {
		case 0:
			ru.Source.Selector = pick(sels)
		case 1:
			ru.Source.Selector, ru.Source.NamespaceSelector = pick(sels), "env == 'prod'"
		case 2:
			ru.Protocol = tcp()
			ru.Destination = api.EntityRule{Selector: pick(sels), Ports: []api.Port{"http", "80"}}
		case 3:
			ru.Source.NotSelector = pick(sels)
			ru.Destination.Nets = []string{"10.0.0.0/8"}
		}
		return ru
	}
	rules := func() []api.Rule {
		var out []api.Rule
		for range r.IntN(3) {
			out = append(out, rule())
		}
		return out
	}
	versions := func(obj string, n int, mk func(v int) func(*Calculator), remove func(*Calculator)) {
		var evs []event
		for v := range n {
			evs = append(evs, event{obj, mk(v)})
		}
		if remove != nil && r.IntN(4) == 0 {
			evs = append(evs, event{obj, remove})
		}
		history = append(history, evs)
	}
	for i := range 30 {
		ns, name := pick(nss), fmt.Sprintf("ep%d", i)
		versions("wep/"+ns+"/"+name, 1+r.IntN(3), func(int) func(*Calculator) {
			labels := map[string]string{"app": pick(apps)}
			if r.IntN(2) == 0 {
				labels["tier"] = "x"
			}
			w := wep(ns, name, pick(nodes), "wl-"+name, fmt.Sprintf("10.%d.0.%d", r.IntN(2), 1+r.IntN(20)), labels)
			if r.IntN(3) == 0 {
				w.Spec.Profiles = []string{"team"}
			}
			if r.IntN(3) == 0 {
				w.Spec.Ports = []api.EndpointPort{{Name: "http", Protocol: api.ProtocolTCP, Port: 8000 + r.IntN(3)}}
			}
			return func(c *Calculator) { c.OnWorkloadEndpointUpdate(w) }
		}, func(c *Calculator) { c.OnWorkloadEndpointRemove(ns, name) })
	}
	for i := range 4 {
		name := fmt.Sprintf("hep%d", i)
		versions("hep/"+name, 1+r.IntN(2), func(int) func(*Calculator) {
			h := hep(name, pick(nodes), fmt.Sprintf("eth%d", i), []string{fmt.Sprintf("192.168.0.%d", i)}, map[string]string{"app": pick(apps)})
			return func(c *Calculator) { c.OnHostEndpointUpdate(h) }
		}, func(c *Calculator) { c.OnHostEndpointRemove(name) })
	}
	for i := range 8 {
		name := fmt.Sprintf("g%d", i)
		versions("gnp/"+name, 1+r.IntN(3), func(int) func(*Calculator) {
			var order *float64
			if r.IntN(3) > 0 {
				order = ptr(float64(r.IntN(4)))
			}
			p := gnp(name, order, pick(sels), rules(), rules())
			return func(c *Calculator) { _ = c.OnGlobalNetworkPolicyUpdate(p) }
		}, func(c *Calculator) { c.OnPolicyRemove(PolicyKey{Name: name}) })
	}
	for i := range 6 {
		ns, name := pick(nss), fmt.Sprintf("n%d", i)
		versions("np/"+ns+"/"+name, 1+r.IntN(3), func(int) func(*Calculator) {
			p := np(ns, name, ptr(float64(r.IntN(4))), pick(sels), rules(), rules())
			return func(c *Calculator) { _ = c.OnNetworkPolicyUpdate(p) }
		}, func(c *Calculator) { c.OnPolicyRemove(PolicyKey{Namespace: ns, Name: name}) })
	}
	versions("profile/team", 1+r.IntN(3), func(int) func(*Calculator) {
		p := prof("team", map[string]string{"team": pick([]string{"blue", "red"})}, rules(), rules())
		return func(c *Calculator) { _ = c.OnProfileUpdate(p) }
	}, func(c *Calculator) { c.OnProfileRemove("team") })
	for _, ns := range nss {
		versions("ns/"+ns, 1+r.IntN(2), func(int) func(*Calculator) {
			labels := map[string]string{"env": pick([]string{"prod", "dev"})}
			return func(c *Calculator) { c.OnNamespaceUpdate(ns, labels) }
		}, func(c *Calculator) { c.OnNamespaceRemove(ns) })
	}
	return history
}

// interleave merges the objects' histories in a random order that keeps
// each object's order, duplicating some events in place and replaying some
// final events again at the end.
func interleave(r *rand.Rand, history [][]event) []event {
	pos := make([]int, len(history))
	var out []event
	for {
		var live []int
		for i, h := range history {
			if pos[i] < len(h) {
				live = append(live, i)
			}
		}
		if len(live) == 0 {
			break
		}
		i := live[r.IntN(len(live))]
		ev := history[i][pos[i]]
		pos[i]++
		out = append(out, ev)
		if r.IntN(5) == 0 {
			out = append(out, ev)
		}
	}
	for _, h := range history {
		if r.IntN(4) == 0 {
			out = append(out, h[len(h)-1])
		}
	}
	return out
}

// Replaying the same updates in other orders, with duplicates and with
// updates taken at random points, gives the same ruleset; and the updates
// always add up to the snapshot.
func TestReplayOrders(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 1))
			history := scenario(r)

			// Reference: only the final version of each object.
			ref := New(Config{Node: thisNode})
			for _, h := range history {
				h[len(h)-1].apply(ref)
			}
			want := ref.Snapshot()

			for order := range 4 {
				c := New(Config{Node: thisNode})
				acc := NewRuleset()
				for _, ev := range interleave(r, history) {
					ev.apply(c)
					if r.IntN(7) == 0 {
						checkConsistent(t, c, acc)
					}
				}
				checkConsistent(t, c, acc)
				if reflect.DeepEqual(want, acc) {
					continue
				}
				if diff := cmp.Diff(want, acc, cmpOpts); diff != "" {
					t.Fatalf("order %d: ruleset differs from the final-versions reference (-want +got):\n%s", order, diff)
				}
			}
			if len(want.Endpoints) == 0 || len(want.IPSets) == 0 {
				t.Logf("seed %d: thin scenario (%d endpoints, %d sets)", seed, len(want.Endpoints), len(want.IPSets))
			}
		})
	}
}
