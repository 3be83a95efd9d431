package policy

import (
	"fmt"
	"slices"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/api/selector"
)

// A label change on one endpoint evaluates only the selectors that could
// match it, however many endpoints there are.
func TestLabelChangeCostIsPerSelector(t *testing.T) {
	c := New(Config{Node: thisNode})
	const apps, eps = 200, 5000
	c.OnWorkloadEndpointUpdate(wep("prod", "local", thisNode, "wl-local", "10.1.0.1", map[string]string{"app": "local"}))
	for i := range apps {
		mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp(fmt.Sprintf("p%d", i), nil, "app == 'local'",
			[]api.Rule{allowFrom(fmt.Sprintf("app == 'a%d'", i))}, nil)))
	}
	for i := range eps {
		c.OnWorkloadEndpointUpdate(wep("prod", fmt.Sprintf("e%d", i), "node-2", fmt.Sprintf("wl-%d", i),
			fmt.Sprintf("10.0.%d.%d", i/250, 1+i%250), map[string]string{"app": fmt.Sprintf("a%d", i%apps)}))
	}
	c.TakeUpdate()
	before := c.setIndex.evals
	c.OnWorkloadEndpointUpdate(wep("prod", "e7", "node-2", "wl-7", "10.0.0.8", map[string]string{"app": "a8"}))
	u := c.TakeUpdate()
	if n := c.setIndex.evals - before; n > 2 {
		t.Errorf("label change evaluated %d selectors, want at most 2 (old and new app)", n)
	}
	if len(u.Members) != 2 {
		t.Errorf("members = %+v", u.Members)
	}
	// A new selector is evaluated only against the endpoints with its label.
	before = c.setIndex.evals
	mustNil(t, c.OnGlobalNetworkPolicyUpdate(gnp("new", nil, "app == 'local'", []api.Rule{allowFrom("app == 'a3' && tier != 'x'")}, nil)))
	if n := c.setIndex.evals - before; n > eps/apps+1 {
		t.Errorf("new selector evaluated against %d endpoints, want at most %d", n, eps/apps+1)
	}
}

func TestRequiredLabel(t *testing.T) {
	for _, tc := range []struct {
		sel, key string
		vals     []string
	}{
		{"app == 'a'", "app", []string{"a"}},
		{"app in {'a', 'b'}", "app", []string{"a", "b"}},
		{"bgpfabric.io/namespace == 'ns' && role == 'db'", "role", []string{"db"}},
		{"bgpfabric.io/namespace == 'ns' && has(role)", "bgpfabric.io/namespace", []string{"ns"}},
		{"app == 'a' || app == 'b'", "", nil},
		{"!has(x)", "", nil},
		{"all()", "", nil},
	} {
		k, v, _ := requiredLabel(selector.MustParse(tc.sel).Expr())
		if k != tc.key || fmt.Sprint(v) != fmt.Sprint(tc.vals) {
			t.Errorf("requiredLabel(%s) = %q %v, want %q %v", tc.sel, k, v, tc.key, tc.vals)
		}
	}
}

// The index keeps endpoints by label only under the keys that some
// indexed selector requires; a selector on a new key indexes the
// endpoints by it (and finds the ones that were there before), and the
// key's index goes with its last selector.
func TestIndexKeepsOnlyRequiredKeys(t *testing.T) {
	var matches []string
	x := newIndex(func(id string, k EndpointKey, matched bool) {
		matches = append(matches, fmt.Sprintf("%s %s %v", id, k, matched))
	})
	ep := func(i int) EndpointKey {
		return EndpointKey{Kind: WorkloadEndpoint, Namespace: "ns", Name: fmt.Sprint(i)}
	}
	for i := range 10 {
		x.SetEndpoint(ep(i), map[string]string{"app": fmt.Sprintf("a%d", i%2), "pod": fmt.Sprintf("p%d", i)})
	}
	if len(x.epsByLabel) != 0 {
		t.Fatalf("endpoints indexed with no selector: %v", x.epsByLabel)
	}
	x.SetItem("has-pod", selector.MustParse("has(pod)")) // not indexed
	if len(x.epsByLabel) != 0 {
		t.Fatalf("endpoints indexed for an unindexed selector: %v", x.epsByLabel)
	}
	matches = nil
	x.SetItem("a1", selector.MustParse("app == 'a1'"))
	if got := fmt.Sprint(keysOf3(x.epsByLabel)); got != "[app]" {
		t.Errorf("indexed keys = %s, want [app]", got)
	}
	if len(matches) != 5 {
		t.Errorf("app == 'a1' matched %v, want the 5 odd endpoints", matches)
	}
	// Endpoint changes keep the index of app and add no other key.
	x.SetEndpoint(ep(0), map[string]string{"app": "a1", "pod": "p0"})
	x.RemoveEndpoint(ep(1))
	if got := len(x.epsByLabel["app"]["a1"]); got != 5 {
		t.Errorf("endpoints under app=a1: %d, want 5", got)
	}
	if got := fmt.Sprint(keysOf3(x.epsByLabel)); got != "[app]" {
		t.Errorf("indexed keys = %s, want [app]", got)
	}
	// A second selector on the same key, then changed to another key.
	x.SetItem("a0", selector.MustParse("app == 'a0'"))
	x.SetItem("a0", selector.MustParse("pod == 'p4'"))
	if got := fmt.Sprint(keysOf3(x.epsByLabel)); got != "[app pod]" {
		t.Errorf("indexed keys = %s, want [app pod]", got)
	}
	if m := x.Members("a0"); len(m) != 1 {
		t.Errorf("pod == 'p4' members = %v", m)
	}
	x.RemoveItem("a1")
	x.RemoveItem("a0")
	if len(x.epsByLabel) != 0 || len(x.indexedKeys) != 0 {
		t.Errorf("index kept after its last selector: %v %v", x.epsByLabel, x.indexedKeys)
	}
}

func keysOf3(m map[string]map[string]map[EndpointKey]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
