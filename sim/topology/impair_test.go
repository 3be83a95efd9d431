package topology

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestImpairAndFaultErrors(t *testing.T) {
	const good = "name: f\nnodes:\n  - name: n\n    count: 2\n"
	const ext = "name: f\nnodes:\n  - name: n\n  - name: a\n    role: external\n    asNumber: 65100\n  - name: b\n    role: external\n    asNumber: 65200\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"negative delay", good + "    impair: {delay: -5ms}\n", `t.yaml:5:21: nodes[0].impair.delay: must not be negative (got "-5ms")`},
		{"loss above 100", good + "    impair:\n      loss: 150%\n", `t.yaml:6:13: nodes[0].impair.loss: must be from 0% to 100% (got "150%")`},
		{"loss not a number", good + "    impair: {loss: some}\n", `t.yaml:5:20: nodes[0].impair.loss: must be a percentage such as 2% (got "some")`},
		{"jitter without delay", good + "    impair: {jitter: 5ms}\n", `t.yaml:5:22: nodes[0].impair.jitter: needs a delay`},
		{"bad distribution", good + "    impair: {delay: 5ms, jitter: 1ms, distribution: pareto}\n", `nodes[0].impair.distribution: must be uniform or normal (got "pareto")`},
		{"reorder without delay", good + "    impair: {reorder: 5%}\n", `nodes[0].impair.reorder: needs a delay`},
		{"bad rate", good + "    impair: {rate: fast}\n", `t.yaml:5:20: nodes[0].impair.rate: must be a rate such as 10mbit`},
		{"huge delay", "name: f\nsegments:\n  - name: lan\n    impair: {delay: 2h}\nnodes:\n  - name: n\n", `t.yaml:4:21: segments[0].impair.delay: must be at most 1m0s`},
		{"link impairment", ext + "links:\n  - between: [a, b]\n    impair: {corrupt: 101}\n", `t.yaml:12:23: links[0].impair.corrupt: must be from 0% to 100%`},
		{"impair a node without port", ext + "    impair: {delay: 1ms}\n" + "links:\n  - between: [a, b]\n", `nodes[2].impair: node b has no segment port to impair`},
		{"impair fault unknown node", good + "faults:\n  - action: impair\n    node: zz\n    segment: lan\n    impair: {loss: 2%}\n", `t.yaml:7:11: faults[0].node: no node "zz"`},
		{"impair fault unknown peer", good + "faults:\n  - action: impair\n    node: n-1\n    peer: zz\n    impair: {loss: 2%}\n", `t.yaml:6:5: faults[0]: node n-1 has no link to segment "" or peer "zz"`},
		{"impair fault without impair", good + "faults:\n  - action: impair\n    node: n-1\n    segment: lan\n", `faults[0].impair: is required for impair`},
		{"impair fault out of range", good + "faults:\n  - action: impair\n    node: n-1\n    segment: lan\n    impair: {duplicate: -1}\n", `t.yaml:9:25: faults[0].impair.duplicate: must be from 0% to 100%`},
		{"partition unknown set", good + "faults:\n  - action: partition\n    nodes: [n-1]\n    from: [n-2, nope]\n", `t.yaml:8:17: faults[0].from[1]: no node or group "nope"`},
		{"partition overlapping", good + "faults:\n  - action: partition\n    nodes: [n]\n    from: [n-2]\n", `faults[0].from: node n-2 is on both sides of the partition`},
		{"partition without from", good + "faults:\n  - action: partition\n    nodes: [n-1]\n", `faults[0].from: is required for partition`},
		{"partition bad direction", good + "faults:\n  - action: partition\n    nodes: [n-1]\n    from: [n-2]\n    direction: up\n", `t.yaml:9:16: faults[0].direction: must be both or one-way (got "up")`},
		{"partition datastore and from", good + "faults:\n  - action: partition\n    nodes: [n-1]\n    from: [n-2]\n    datastore: true\n", `faults[0].from: a partition cuts nodes off from other nodes (from) or from the datastore, not both`},
		{"partition datastore one way", good + "faults:\n  - action: partition\n    nodes: [n-1]\n    datastore: true\n    direction: one-way\n", `faults[0].direction: a datastore partition cuts both directions`},
		{"datastore on another fault", good + "faults:\n  - action: kill-agent\n    node: n-1\n    datastore: true\n", `t.yaml:8:16: faults[0].datastore: is not used by kill-agent`},
		{"pause without duration", good + "faults:\n  - action: pause-agent\n    node: n-1\n", `faults[0].duration: is required for pause-agent`},
		{"flap without count", good + "faults:\n  - action: flap\n    node: n-1\n    segment: lan\n    interval: 1s\n", `faults[0].count: must be from 1 to 1000 (got 0)`},
		{"flap without interval", good + "faults:\n  - action: flap\n    node: n-1\n    segment: lan\n    count: 3\n", `faults[0].interval: is required for flap`},
		{"field the action ignores", good + "faults:\n  - action: kill-agent\n    node: n-1\n    count: 3\n", `t.yaml:8:12: faults[0].count: is not used by kill-agent`},
		{"unknown action", good + "faults:\n  - action: meteor\n", `faults[0].action: must be one of kill-agent, restart-agent, link-down, link-up, stop-datastore, impair, partition, pause-agent, flap, session-reset (got "meteor")`},
		{"session reset without peer", good + "faults:\n  - action: session-reset\n    node: n-1\n", `faults[0].peer: is required for session-reset`},
		{"session reset between routers", ext + "links:\n  - between: [a, b]\nfaults:\n  - action: session-reset\n    node: a\n    peer: b\n", `t.yaml:13:5: faults[0]: session-reset needs one end of the session to be a bgpfabric node or reflector, or a gobgpd router`},
		{"session reset unknown peer", good + "faults:\n  - action: session-reset\n    node: n-1\n    peer: zz\n", `t.yaml:8:11: faults[0].peer: no node "zz"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error\n%s\ndoes not contain\n%s", err, tc.want)
			}
		})
	}
}

func TestImpairPlan(t *testing.T) {
	topo, err := Parse("t.yaml", []byte(`name: f
segments:
  - name: lan
    impair: {delay: 10ms}
  - name: slow
nodes:
  - name: n
    count: 2
  - name: m
    segment: lan
    impair: {delay: 100ms, jitter: 10ms, distribution: normal, delayCorrelation: 25%, loss: "2", lossCorrelation: 50%, duplicate: 1%, reorder: 5%, corrupt: 0.1%, rate: 10mbit}
  - name: a
    role: external
    asNumber: 65100
    segment: slow
  - name: b
    role: external
    asNumber: 65200
links:
  - between: [a, b]
    impair: {loss: 100%}
faults:
  - action: partition
    nodes: [n]
    from: [m]
    direction: one-way
    duration: 5s
  - action: flap
    node: a
    segment: slow
    count: 3
    interval: 500ms
  - action: session-reset
    node: n-1
    peer: n-2
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Expand(topo, ExpandOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, n := range p.Nodes {
		for _, ifc := range n.Interfaces {
			got[n.Name+"/"+ifc.Name] = ifc.Impair.String()
		}
	}
	want := map[string]string{
		"n-1/eth0": "delay 10ms", "n-2/eth0": "delay 10ms",
		"m/eth0": "delay 100ms 10ms normal loss 2% duplicate 1% reorder 5% corrupt 0.1% rate 10000000bit",
		"a/eth0": "none", "a/eth1": "loss 100%", "b/eth0": "loss 100%",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("impairments (-want +got):\n%s", d)
	}
	m := p.Node("m").Interfaces[0].Impair
	if m.DelayCorrelation != 25 || m.LossCorrelation != 50 || m.Rate != 1250000 {
		t.Errorf("m's impairment: %+v", m)
	}
	part := p.Faults[0]
	if d := cmp.Diff([]string{"n-1", "n-2"}, part.Nodes); d != "" {
		t.Errorf("partition nodes: %s", d)
	}
	if d := cmp.Diff([]string{"m"}, part.From); d != "" || !part.OneWay || part.Duration != 5*time.Second {
		t.Errorf("partition: %+v", part)
	}
	flap := p.Faults[1]
	if flap.Interface != "eth0" || flap.Count != 3 || flap.Interval != 500*time.Millisecond {
		t.Errorf("flap: %+v", flap)
	}
	// Between two bgpfabric nodes: reset through a node's router.
	if reset := p.Faults[2]; reset.Action != FaultSessionReset || reset.Node != "n-1" || reset.Peer != "n-2" {
		t.Errorf("session-reset: %+v", reset)
	}
}
