package ui

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// element is one element of a rendered document.
type element struct {
	name          string
	id, class     string
	parentID      string
	firstChildTag string
}

// svgElements parses writeSVG's output as XML (it must be well formed to
// be served as image/svg+xml).
func svgElements(t *testing.T, doc []byte) []element {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	var out []element
	var stack []int
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v\n%s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := element{name: tok.Name.Local}
			for _, a := range tok.Attr {
				switch a.Name.Local {
				case "id":
					e.id = a.Value
				case "class":
					e.class = a.Value
				}
			}
			if len(stack) > 0 {
				p := &out[stack[len(stack)-1]]
				e.parentID = p.id
				if p.firstChildTag == "" && e.name != "title" {
					p.firstChildTag = e.name
				}
			}
			out = append(out, e)
			stack = append(stack, len(out)-1)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	return out
}

func hasClass(e element, c string) bool {
	for _, x := range strings.Fields(e.class) {
		if x == c {
			return true
		}
	}
	return false
}

// checkGraph checks a drawing's elements against the plan: one node
// element per node (its id, its state's class, the shape of its agent),
// one session element per pair of nodes that peer, one element per link
// and segment port, unique ids.
func checkGraph(t *testing.T, els []element, p *topology.Plan, s Snapshot) {
	t.Helper()
	ids := map[string]element{}
	var nodes, sessions, links int
	for _, e := range els {
		if e.id != "" {
			if _, dup := ids[e.id]; dup {
				t.Errorf("duplicate id %q", e.id)
			}
			ids[e.id] = e
		}
		switch {
		case hasClass(e, "node"):
			nodes++
		case hasClass(e, "session"):
			sessions++
		case hasClass(e, "link"):
			links++
		}
	}
	pairs := sessionPairs(p)
	if nodes != len(p.Nodes) || sessions != len(pairs) || links != len(p.Links)+portCount(p) {
		t.Errorf("elements: %d nodes (plan %d), %d sessions (plan %d), %d links (plan %d)", nodes, len(p.Nodes), sessions, len(pairs), links, len(p.Links)+portCount(p))
	}
	for _, n := range s.Nodes {
		e, ok := ids[NodeID(n.Name)]
		if !ok {
			t.Errorf("no element %s", NodeID(n.Name))
			continue
		}
		want := map[string]string{"node": "circle", "reflector": "rect", "router": "polygon"}[n.Agent]
		if !hasClass(e, "state-"+n.State) || !hasClass(e, "role-"+n.Role) || e.firstChildTag != want {
			t.Errorf("%s: class %q, shape %s (want state %s, role %s, shape %s)", n.Name, e.class, e.firstChildTag, n.State, n.Role, want)
		}
	}
	for _, pr := range pairs {
		if e, ok := ids[edgeID("session", pr[0], pr[1])]; !ok || e.name != "path" {
			t.Errorf("no session element for %s-%s", pr[0], pr[1])
		}
	}
}

func portCount(p *topology.Plan) int {
	n := 0
	for _, s := range p.Segments {
		n += len(s.Members)
	}
	return n
}

func TestSVGOneElementPerNodeAndSession(t *testing.T) {
	for _, name := range []string{"mesh-3", "rr-2x4", "as-per-rack"} {
		t.Run(name, func(t *testing.T) {
			p := loadPlan(t, name)
			s := apply(Layout(p), p, healthy(p))
			var b bytes.Buffer
			writeSVG(&b, &s, svgOptions{})
			checkGraph(t, svgElements(t, b.Bytes()), p, s)
		})
	}
}

// TestSVGEscapes: names and details land in attributes and text escaped.
func TestSVGEscapes(t *testing.T) {
	s := Snapshot{Fabric: `a"<b>`, Nodes: []Node{{Name: "n", Label: `<script>x</script>`}}}
	var b bytes.Buffer
	writeSVG(&b, &s, svgOptions{})
	if strings.Contains(b.String(), "<script>") || strings.Contains(b.String(), `a"<b>`) {
		t.Fatalf("unescaped:\n%s", b.String())
	}
	svgElements(t, b.Bytes())
}

// htmlElements parses an HTML document.
func htmlElements(t *testing.T, doc []byte) []element {
	t.Helper()
	root, err := html.Parse(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	var out []element
	var walk func(n *html.Node, parent string)
	walk = func(n *html.Node, parent string) {
		id := parent
		if n.Type == html.ElementNode {
			e := element{name: n.Data, parentID: parent}
			for _, a := range n.Attr {
				switch a.Key {
				case "id":
					e.id = a.Val
				case "class":
					e.class = a.Val
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode && c.Data != "title" {
					e.firstChildTag = c.Data
					break
				}
			}
			if e.id != "" {
				id = e.id
			}
			out = append(out, e)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, id)
		}
	}
	walk(root, "")
	return out
}

func TestHTMLReport(t *testing.T) {
	stall := 3.25
	p := loadPlan(t, "rr-2x4")
	o := healthy(p)
	o.agentUp["reflector-1"] = false
	s := apply(Layout(p), p, o)
	s.Timeline = []TimelineEntry{{At: 1, Kind: "fault", Text: "fault reflector-1-down: kill-agent reflector-1"}}
	rep := &sim.Report{Fabric: p.Name, RunID: "abc123", Nodes: len(p.Nodes), Converged: true,
		Faults: []sim.FaultResult{{Name: "reflector-1-down", Action: "kill-agent", Status: sim.Passed, ReconvergeSeconds: 2,
			Target: "reflector-1", SessionsLost: 17, RoutesWithdrawn: 23, LongestStallSeconds: &stall}}}
	rep.AddChecks([]sim.CheckResult{{Name: "all-pairs-icmp", Kind: "connectivity", Status: sim.Passed, Probes: 56},
		{Name: "x", Kind: "routes", Status: sim.Failed, Failures: []string{"<b>missing</b>"}}})
	var b bytes.Buffer
	if err := WriteHTML(&b, rep, s); err != nil {
		t.Fatal(err)
	}
	doc := b.Bytes()
	els := htmlElements(t, doc)
	ids := map[string]bool{}
	rows := map[string]int{}
	for _, e := range els {
		if e.name == "script" {
			t.Error("the report has a script")
		}
		if e.name == "link" && e.class == "" && !strings.Contains(string(doc), `rel="icon" href="data:,"`) {
			t.Error("the report links to a file")
		}
		if e.name == "tr" {
			rows[e.parentID]++
		}
		ids[e.id] = true
	}
	checkGraph(t, els, p, s)
	if n := s.node("reflector-1"); n.State != StateDown {
		t.Fatalf("reflector-1 is %s", n.State)
	}
	for _, n := range p.Nodes {
		if !ids["detail-"+n.Name] {
			t.Errorf("no detail section for %s", n.Name)
		}
	}
	if rows["checks"] != 2 || rows["faults"] != 1 || rows["timeline"] != 1 {
		t.Errorf("table rows: %v", rows)
	}
	if strings.Contains(string(doc), "<b>missing</b>") {
		t.Error("a check's failure is not escaped")
	}
	for _, want := range []string{"reflector-1-down", "kill-agent", "all-pairs-icmp", "FAILED",
		"<td>reflector-1</td>", "<td>17</td>", "<td>23</td>", "<td>3.25s</td>"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}
