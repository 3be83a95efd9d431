package ui

import (
	"fmt"
	"html"
	"io"
	"strings"
)

// nodeLook sets a node's CSS classes and status line from its state.
func nodeLook(n *Node) {
	n.Class = fmt.Sprintf("node role-%s agent-%s state-%s", n.Role, n.Agent, n.State)
	n.Label = n.State
	if n.Sessions > 0 {
		n.Label = fmt.Sprintf("%s · %d/%d sessions", n.State, n.SessionsUp, n.Sessions)
	}
	n.Label2 = ""
	if n.Expected > 0 || n.Routes > 0 {
		n.Label2 = fmt.Sprintf("%d routes · %d/%d blocks", n.Routes, n.Installed, n.Expected)
	}
}

// edgeLook sets an edge's CSS classes from its kind and state.
func edgeLook(e *Edge) {
	e.Class = fmt.Sprintf("edge %s state-%s", e.Kind, e.State)
	e.Title = edgeTitle(*e)
}

// svgOptions change how the graph is drawn.
type svgOptions struct {
	// links wraps each node in a link to its detail section (the static
	// report, which has no script).
	links bool
}

// writeSVG draws a snapshot's graph: one element per node (id
// NodeID(name), classes nodeLook), per edge (id Edge.ID, classes
// edgeLook) and per segment.
func writeSVG(w io.Writer, s *Snapshot, o svgOptions) {
	esc := html.EscapeString
	width, height := max(s.Width, 200), max(s.Height, 120)
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" id="graph" class="graph" data-graph="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="fabric %s">`+"\n",
		esc(s.Graph), width, height, width, height, esc(s.Fabric))
	pos := map[string][2]int{}
	for _, n := range s.Nodes {
		pos[n.Name] = [2]int{n.X, n.Y}
	}
	for _, g := range s.Segments {
		pos["segment:"+g.Name] = [2]int{g.X, g.Y}
	}
	fmt.Fprintln(w, `<g class="links">`)
	for _, e := range s.Edges {
		if e.Kind != "link" {
			continue
		}
		a, b := pos[e.A], pos[e.B]
		if strings.HasPrefix(e.B, "segment:") {
			b = [2]int{a[0], b[1]} // straight down to the bar
		}
		// Links between nodes of one tier bow downwards (sessions bow
		// upwards), so that they do not run through the nodes between.
		cx, cy := (a[0]+b[0])/2, (a[1]+b[1])/2
		if a[1] == b[1] {
			cy += abs(a[0]-b[0]) / 5
		}
		fmt.Fprintf(w, `<path id="%s" class="%s" d="M %d %d Q %d %d %d %d"><title>%s</title></path>`+"\n",
			esc(e.ID), esc(e.Class), a[0], a[1], cx, cy, b[0], b[1], esc(e.Title))
	}
	fmt.Fprintln(w, `</g>`)
	fmt.Fprintln(w, `<g class="segments">`)
	for _, g := range s.Segments {
		fmt.Fprintf(w, `<g id="%s" class="segment"><rect x="%d" y="%d" width="%d" height="8" rx="4"/><text x="%d" y="%d">%s</text></g>`+"\n",
			esc(SegmentID(g.Name)), g.X, g.Y-4, g.W, g.X, g.Y+22, esc("segment "+g.Name))
	}
	fmt.Fprintln(w, `</g>`)
	fmt.Fprintln(w, `<g class="sessions">`)
	for _, e := range s.Edges {
		if e.Kind != "session" {
			continue
		}
		a, b := pos[e.A], pos[e.B]
		// Sessions between nodes of one tier bow upwards, by their
		// length, so that they do not run through the nodes between.
		cx, cy := (a[0]+b[0])/2, (a[1]+b[1])/2
		if a[1] == b[1] {
			cy -= abs(a[0]-b[0]) / 4
		}
		fmt.Fprintf(w, `<path id="%s" class="%s" d="M %d %d Q %d %d %d %d"><title>%s</title></path>`+"\n",
			esc(e.ID), esc(e.Class), a[0], a[1], cx, cy, b[0], b[1], esc(e.Title))
	}
	fmt.Fprintln(w, `</g>`)
	fmt.Fprintln(w, `<g class="nodes">`)
	for _, n := range s.Nodes {
		if o.links {
			fmt.Fprintf(w, `<a href="#detail-%s">`, esc(n.Name))
		}
		fmt.Fprintf(w, `<g id="%s" class="%s" data-node="%s" tabindex="0">`, esc(NodeID(n.Name)), esc(n.Class), esc(n.Name))
		fmt.Fprintf(w, `<title>%s (%s)</title>`, esc(n.Name), esc(n.Role))
		switch n.Agent {
		case "reflector":
			fmt.Fprintf(w, `<rect class="shape" x="%d" y="%d" width="%d" height="%d" rx="6"/>`, n.X-nodeR, n.Y-nodeR, 2*nodeR, 2*nodeR)
		case "router":
			fmt.Fprintf(w, `<polygon class="shape" points="%d,%d %d,%d %d,%d %d,%d"/>`, n.X, n.Y-nodeR-4, n.X+nodeR+4, n.Y, n.X, n.Y+nodeR+4, n.X-nodeR-4, n.Y)
		default:
			fmt.Fprintf(w, `<circle class="shape" cx="%d" cy="%d" r="%d"/>`, n.X, n.Y, nodeR)
		}
		fmt.Fprintf(w, `<text class="name" x="%d" y="%d">%s</text>`, n.X, n.Y+nodeR+16, esc(n.Name))
		fmt.Fprintf(w, `<text class="label" x="%d" y="%d">%s</text>`, n.X, n.Y+nodeR+30, esc(n.Label))
		fmt.Fprintf(w, `<text class="label2" x="%d" y="%d">%s</text>`, n.X, n.Y+nodeR+43, esc(n.Label2))
		fmt.Fprint(w, `</g>`)
		if o.links {
			fmt.Fprint(w, `</a>`)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, `</g>`)
	fmt.Fprintln(w, `</svg>`)
}

func edgeTitle(e Edge) string {
	b := strings.TrimPrefix(e.B, "segment:")
	t := fmt.Sprintf("%s %s – %s: %s", e.Kind, e.A, b, e.State)
	if e.Detail != "" {
		t += " (" + e.Detail + ")"
	}
	return t
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
