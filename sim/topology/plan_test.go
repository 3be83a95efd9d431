package topology

import (
	"fmt"
	"sync"
	"testing"
)

// TestNodeConcurrent calls Plan.Node from many goroutines at once on a plan
// whose index is not built yet, as the sim's workload goroutines do. Under
// the race detector (make test runs this package with -race) an unguarded
// lazy index is reported; without it, it can die with "concurrent map
// writes".
func TestNodeConcurrent(t *testing.T) {
	const nodes, goroutines = 300, 32
	p := &Plan{}
	for i := range nodes {
		p.Nodes = append(p.Nodes, &NodePlan{Name: fmt.Sprintf("n%d", i)})
	}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range nodes {
				name := fmt.Sprintf("n%d", (i+g)%nodes)
				if n := p.Node(name); n == nil || n.Name != name {
					errs <- fmt.Errorf("Node(%q) = %v", name, n)
					return
				}
			}
			if n := p.Node("absent"); n != nil {
				errs <- fmt.Errorf("Node(absent) = %v, want nil", n)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// A node added later is found: the index follows Nodes.
	p.Nodes = append(p.Nodes, &NodePlan{Name: "late"})
	if n := p.Node("late"); n == nil {
		t.Error("Node(late) = nil after appending it to Nodes")
	}
}
