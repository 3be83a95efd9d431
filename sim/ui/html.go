package ui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"

	"github.com/bgpfabric/bgpfabric/sim"
)

//go:embed assets
var assets embed.FS

var funcs = template.FuncMap{"secs": func(x float64) string { return fmt.Sprintf("%.2fs", x) }}

var (
	reportTmpl = template.Must(template.New("report.html").Funcs(funcs).ParseFS(assets, "assets/report.html"))
	indexTmpl  = template.Must(template.New("index.html").Funcs(funcs).ParseFS(assets, "assets/index.html"))
)

func asset(name string) []byte {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		panic(err) // embedded at build time: a missing one is a programmer's error
	}
	return b
}

// svgHTML draws the graph for a template.
func svgHTML(s *Snapshot, o svgOptions) template.HTML {
	var b bytes.Buffer
	writeSVG(&b, s, o)
	return template.HTML(b.String()) // writeSVG escapes every value it writes
}

type sessionRow struct{ Peer, State, Detail string }

type nodeDetail struct {
	Node     Node
	Sessions []sessionRow
	Peers    []sim.PeerState
}

// WriteHTML writes the self-contained report of a run: the graph as
// inline SVG (as snap shows it, normally the view's last), the checks,
// the faults, the timeline, the timings and each node's sessions. It
// needs no script and no server.
func WriteHTML(w io.Writer, rep *sim.Report, snap Snapshot) error {
	var details []nodeDetail
	for _, n := range snap.Nodes {
		d := nodeDetail{Node: n, Peers: rep.Peers[n.Name]}
		for _, e := range snap.Edges {
			if e.Kind != "session" || (e.A != n.Name && e.B != n.Name) {
				continue
			}
			other := e.B
			if other == n.Name {
				other = e.A
			}
			d.Sessions = append(d.Sessions, sessionRow{Peer: other, State: e.State, Detail: e.Detail})
		}
		details = append(details, d)
	}
	return reportTmpl.Execute(w, map[string]any{
		"Rep": rep, "Snap": snap, "SVG": svgHTML(&snap, svgOptions{links: true}),
		"CSS": template.CSS(asset("style.css")), "Details": details,
	})
}

// WriteHTMLFile writes WriteHTML's report to file (atomically: a reader
// never sees half of it).
func WriteHTMLFile(file string, rep *sim.Report, snap Snapshot) error {
	var b bytes.Buffer
	if err := WriteHTML(&b, rep, snap); err != nil {
		return fmt.Errorf("rendering the HTML report: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".report-*.html")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
