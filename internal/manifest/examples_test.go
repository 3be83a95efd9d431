package manifest

import (
	"os"
	"path/filepath"
	"testing"
)

// The example fabric in examples/ is what the README's main command applies:
// every document of it must parse and validate.
func TestExamplesAreValid(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	kinds := map[string]int{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := Parse(f, data)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for _, d := range docs {
			kinds[d.Resource.GetTypeMeta().Kind]++
		}
	}
	for _, k := range []string{"BGPConfiguration", "BGPPeer", "Node", "IPPool", "Profile", "NetworkPolicy", "GlobalNetworkPolicy"} {
		if kinds[k] == 0 {
			t.Errorf("examples have no %s", k)
		}
	}
}
