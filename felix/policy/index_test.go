package policy

import (
	"fmt"
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
