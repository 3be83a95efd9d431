package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bgpfabric/bgpfabric/internal/routeview"
	"github.com/bgpfabric/bgpfabric/router"
)

func init() { addCommand(newRoutesCmd) }

func newRoutesCmd(g *globalOptions) *cobra.Command {
	var node, dir, output string
	cmd := &cobra.Command{
		Use:   "routes [--node NAME] [PREFIX|ADDR]",
		Short: "Show a node's BGP table and the routes its router installed",
		Long: `Routes asks a node's router, over its control socket (<control-dir>/
router.<node>.sock; every node of a machine or simulation shares the
directory), for the routes it advertises, its BGP table (every path, best
first) and the learned routes it installed in the kernel, with those it left
to another owner's route (conflict) or kept through a graceful restart (held).
Without --node it uses the only socket in the directory, or this host's name.
With a PREFIX, only that prefix; with an address, the longest prefix of the
BGP table that contains it (as "bgpfabric reflector show routes" selects).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sock, err := routerSocket(dir, node)
			if err != nil {
				return err
			}
			if output != "table" && output != "json" {
				return fmt.Errorf("--output %q: want table or json", output)
			}
			rep, err := router.FetchRoutes(cmd.Context(), sock)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				if err := selectRoutes(rep, args[0]); err != nil {
					return err
				}
			}
			if output == "json" {
				return printJSON(g.stdout, routesJSON(rep))
			}
			printRoutes(g.stdout, rep)
			return nil
		},
	}
	cmd.Flags().StringVar(&node, "node", envOr("BGPFABRIC_NODE_NAME", ""), "the node whose router to ask; env BGPFABRIC_NODE_NAME")
	cmd.Flags().StringVar(&dir, "control-dir", router.DefaultControlDir, "directory of the routers' control sockets")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json (the BGP table in the field names of reflector show routes -o json)")
	return cmd
}

// routerSocket picks the control socket: the node's, else the only one in
// dir, else the host's.
func routerSocket(dir, node string) (string, error) {
	if node != "" {
		return router.ControlSocketPath(dir, node), nil
	}
	socks, _ := filepath.Glob(filepath.Join(dir, "router.*.sock"))
	switch len(socks) {
	case 1:
		return socks[0], nil
	case 0:
		if h, err := os.Hostname(); err == nil {
			return router.ControlSocketPath(dir, h), nil
		}
		return "", fmt.Errorf("no router control socket in %s: is a node running?", dir)
	}
	var names []string
	for _, s := range socks {
		names = append(names, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(s), "router."), ".sock"))
	}
	return "", errors.New("several routers run here (" + strings.Join(names, ", ") + "): choose one with --node")
}

func printRoutes(w io.Writer, rep *router.RoutesReport) {
	fmt.Fprintf(w, "Node %s: router ID %s, AS %d\n", rep.Node, rep.RouterID, rep.AS)
	fmt.Fprintf(w, "\nAdvertised (%d)\n", len(rep.Exported))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PREFIX\tCOMMUNITIES")
	for _, e := range rep.Exported {
		fmt.Fprintf(tw, "%s\t%s\n", e.Prefix, dash(strings.Join(e.Communities, " ")))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nBGP table (%d destinations)\n", len(rep.BGP))
	tw = newPathTable(w)
	for _, d := range rep.BGP {
		rows := make([]pathRow, len(d.Paths))
		for i, p := range d.Paths {
			rows[i] = pathRow{Best: p.Best, Stale: p.Stale, Local: p.Local, NextHop: p.NextHop, Peer: p.Peer,
				PeerAS: p.PeerAS, ASPath: p.ASPath, LocalPref: p.LocalPref}
			for _, c := range p.Communities {
				rows[i].Communities = append(rows[i].Communities, c.String())
			}
		}
		writePathRows(tw, d.Prefix.String(), rows)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nInstalled in the kernel (%d)\n", len(rep.Kernel))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PREFIX\tVIA\tSTATE")
	for _, k := range rep.Kernel {
		state := k.State
		if k.State == "conflict" {
			state = fmt.Sprintf("conflict (held by protocol %d)", k.Owner)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Prefix, via(k), state)
	}
	tw.Flush()
}

// via lists a kernel route's gateways: all of a multipath (ECMP) route's,
// comma-separated; a router that reports no Gateways gives its Gateway.
func via(k router.KernelRouteStatus) string {
	if len(k.Gateways) == 0 {
		return k.Gateway.String()
	}
	gws := make([]string, len(k.Gateways))
	for i, g := range k.Gateways {
		gws[i] = g.String()
	}
	return strings.Join(gws, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// selectRoutes keeps one prefix of the report: sel exactly when it is a
// prefix, else the longest prefix of the BGP table that contains it.
func selectRoutes(rep *router.RoutesReport, sel string) error {
	var want netip.Prefix
	if strings.Contains(sel, "/") {
		p, err := netip.ParsePrefix(sel)
		if err != nil {
			return fmt.Errorf("PREFIX: %v", err)
		}
		want = p.Masked()
	} else {
		a, err := netip.ParseAddr(sel)
		if err != nil {
			return fmt.Errorf("ADDR: %v", err)
		}
		for _, d := range rep.BGP {
			if d.Prefix.Contains(a) && (!want.IsValid() || d.Prefix.Bits() > want.Bits()) {
				want = d.Prefix
			}
		}
		if !want.IsValid() {
			return errors.New("no route: the node's BGP table has no prefix containing " + a.String())
		}
	}
	rep.BGP = slices.DeleteFunc(rep.BGP, func(d router.Destination) bool { return d.Prefix != want })
	rep.Exported = slices.DeleteFunc(rep.Exported, func(e router.ExportedRoute) bool { return e.Prefix != want })
	rep.Kernel = slices.DeleteFunc(rep.Kernel, func(k router.KernelRouteStatus) bool { return k.Prefix != want })
	if len(rep.BGP)+len(rep.Exported)+len(rep.Kernel) == 0 {
		return fmt.Errorf("no route: the node has nothing for %v", want)
	}
	return nil
}

// nodeRoutes is `bgpfabric routes -o json`: the router's report with its
// BGP table in the reflector's JSON names (routeview.Destination).
type nodeRoutes struct {
	Node     string                     `json:"node"`
	AS       uint32                     `json:"asNumber"`
	RouterID netip.Addr                 `json:"routerID"`
	Exported []router.ExportedRoute     `json:"exported"`
	BGP      []nodeDestination          `json:"bgp"`
	Kernel   []router.KernelRouteStatus `json:"kernel"`
}

type nodeDestination struct {
	Prefix netip.Prefix `json:"prefix"`
	Paths  []nodePath   `json:"paths"`
}

// nodePath is a routeview.Path, and whether the node originates it.
type nodePath struct {
	routeview.Path
	Local bool `json:"local,omitempty"`
}

func routesJSON(rep *router.RoutesReport) nodeRoutes {
	out := nodeRoutes{Node: rep.Node, AS: rep.AS, RouterID: rep.RouterID, Exported: rep.Exported, Kernel: rep.Kernel,
		BGP: make([]nodeDestination, 0, len(rep.BGP))}
	for _, d := range rep.BGP {
		nd := nodeDestination{Prefix: d.Prefix, Paths: make([]nodePath, len(d.Paths))}
		for i, p := range d.Paths {
			rp := routeview.Path{Peer: p.Peer, PeerAS: p.PeerAS, NextHop: p.NextHop, ASPath: p.ASPath,
				LocalPref: p.LocalPref, MED: p.MED, Best: p.Best, Stale: p.Stale}
			if rp.ASPath == nil {
				rp.ASPath = []uint32{}
			}
			for _, c := range p.Communities {
				rp.Communities = append(rp.Communities, c.String())
			}
			nd.Paths[i] = nodePath{Path: rp, Local: p.Local}
		}
		out.BGP = append(out.BGP, nd)
	}
	return out
}

// pathRow is one path in the BGP tables of `bgpfabric routes` (a node's)
// and `bgpfabric reflector show routes`: both print them with
// writePathRows, so that their columns are the same.
type pathRow struct {
	Best, Stale, Local bool
	NextHop, Peer      netip.Addr
	PeerAS             uint32
	ASPath             []uint32
	LocalPref          uint32
	Communities        []string
}

// newPathTable starts a BGP table with its header.
func newPathTable(w io.Writer) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tPREFIX\tNEXT HOP\tFROM\tAS PATH\tLOCAL PREF\tCOMMUNITIES")
	return tw
}

// writePathRows writes one destination's paths, best first: "*>" marks
// the best, "stale" a path kept through a neighbour's graceful restart.
func writePathRows(tw io.Writer, prefix string, rows []pathRow) {
	for i, p := range rows {
		mark := " "
		if i > 0 {
			prefix = ""
		}
		if p.Best {
			mark = "*>"
		}
		from, nh := "local", "-"
		if !p.Local {
			from = fmt.Sprintf("%s (AS %d)", p.Peer, p.PeerAS)
		}
		if p.NextHop.IsValid() {
			nh = p.NextHop.String()
		}
		if p.Stale {
			mark += " stale"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", mark, prefix, nh, from, dash(asPathString(p.ASPath)), p.LocalPref, dash(strings.Join(p.Communities, " ")))
	}
}

func asPathString(as []uint32) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = fmt.Sprint(a)
	}
	return strings.Join(s, " ")
}

// printJSON writes v as indented JSON (routes -o json, reflector show -o json).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
