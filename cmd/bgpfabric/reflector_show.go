//go:build !nodeonly

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bgpfabric/bgpfabric/reflector"
)

// `bgpfabric reflector show summary|neighbors|routes`: the reflector's
// state over its control socket, as `birdc show` and `vtysh show bgp` do.
// The socket serves GET /show/summary, /show/neighbors[?peer=ADDR] (JSON)
// and /show/routes[?prefix=P|addr=A][&family=F] (one JSON destination per
// line, streamed a chunk at a time: reflector.Reflector.Routes).

// defaultReflectorSocket is where `show` looks unless told.
const defaultReflectorSocket = "/run/bgpfabric/reflector.sock"

// registerShowHandlers adds the show endpoints to the control socket.
func registerShowHandlers(mux *http.ServeMux, eng engine, log *slog.Logger) {
	refl := func(w http.ResponseWriter) *reflector.Reflector {
		r := eng.Reflector()
		if r == nil {
			http.Error(w, "the reflector is not configured yet", http.StatusServiceUnavailable)
		}
		return r
	}
	mux.HandleFunc("GET /show/summary", func(w http.ResponseWriter, req *http.Request) {
		r := refl(w)
		if r == nil {
			return
		}
		s, err := r.Summary(req.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, s)
	})
	mux.HandleFunc("GET /show/neighbors", func(w http.ResponseWriter, req *http.Request) {
		r := refl(w)
		if r == nil {
			return
		}
		ns := r.NeighborDetails(true)
		if p := req.URL.Query().Get("peer"); p != "" {
			a, err := netip.ParseAddr(p)
			if err != nil {
				http.Error(w, fmt.Sprintf("peer: want an IP address: %v", err), http.StatusBadRequest)
				return
			}
			var one []reflector.NeighborInfo
			for _, n := range ns {
				if n.Address == a.Unmap().String() {
					one = append(one, n)
				}
			}
			if one == nil {
				http.Error(w, fmt.Sprintf("%v is no neighbour", a), http.StatusNotFound)
				return
			}
			ns = one
		}
		writeJSON(w, ns)
	})
	mux.HandleFunc("GET /show/routes", func(w http.ResponseWriter, req *http.Request) {
		r := refl(w)
		if r == nil {
			return
		}
		q, err := routeQuery(req.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		fl, _ := w.(http.Flusher)
		started := false
		err = r.Routes(req.Context(), q, func(ds []reflector.RouteDestination) error {
			started = true
			for i := range ds {
				if err := enc.Encode(&ds[i]); err != nil {
					return err
				}
			}
			if fl != nil {
				fl.Flush() // one chunk at a time: nothing accumulates here
			}
			return nil
		})
		if err != nil && !started { // the query was checked above: the reflector stopped
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		} else if err != nil && req.Context().Err() == nil {
			log.Warn("show routes: dump ended early", "err", err)
		}
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// routeQuery parses ?prefix=, ?addr= and ?family=.
func routeQuery(v url.Values) (reflector.RouteQuery, error) {
	q := reflector.RouteQuery{Family: v.Get("family")}
	if s := v.Get("prefix"); s != "" {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return q, fmt.Errorf("prefix: %v", err)
		}
		q.Prefix = p.Masked()
	}
	if s := v.Get("addr"); s != "" {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return q, fmt.Errorf("addr: %v", err)
		}
		q.Addr = a
	}
	if q.Family != "" {
		ok := false
		for _, f := range reflector.Families() {
			ok = ok || f == q.Family
		}
		if !ok {
			return q, fmt.Errorf("family %q: want one of %s", q.Family, strings.Join(reflector.Families(), ", "))
		}
	}
	return q, nil
}

// showOptions are the flags of `bgpfabric reflector show`.
type showOptions struct {
	socket string
	output string
}

func newReflectorShowCmd(g *globalOptions) *cobra.Command {
	o := &showOptions{}
	cmd := &cobra.Command{
		Use:   "show summary|neighbors|routes",
		Short: "Show a running reflector's neighbours and routes",
		Long: `Show asks a running reflector over its control socket (the reflector's
--control-socket; the same path here) for its summary (identity, RIB size per
family, neighbours), its neighbours in detail, or its routes (every path,
best first). -o json prints JSON (for routes: a JSON array, streamed).`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.socket, "control-socket", envOr("BGPFABRIC_REFLECTOR_SOCKET", defaultReflectorSocket), "the reflector's control socket; env BGPFABRIC_REFLECTOR_SOCKET")
	pf.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	cmd.AddCommand(&cobra.Command{
		Use:   "summary",
		Short: "Router ID, AS, RIB size per family and every neighbour's state",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var s reflector.Summary
			if err := o.get(c.Context(), "/show/summary", &s); err != nil {
				return err
			}
			if o.output == "json" {
				return printJSON(g.stdout, s)
			}
			printSummary(g.stdout, s, time.Now())
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "neighbors [ADDR]",
		Short: "Neighbours in detail: negotiated capabilities, timers, counters, last error",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			path := "/show/neighbors"
			if len(args) == 1 {
				if _, err := netip.ParseAddr(args[0]); err != nil {
					return fmt.Errorf("ADDR: %v", err)
				}
				path += "?peer=" + url.QueryEscape(args[0])
			}
			var ns []reflector.NeighborInfo
			if err := o.get(c.Context(), path, &ns); err != nil {
				return err
			}
			if o.output == "json" {
				return printJSON(g.stdout, ns)
			}
			printNeighbors(g.stdout, ns)
			return nil
		},
	})
	var family string
	var detail bool
	routes := &cobra.Command{
		Use:   "routes [PREFIX|ADDR]",
		Short: "Paths of a prefix (exact), of the longest prefix containing an address, or of every prefix",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			v := url.Values{}
			if family != "" {
				v.Set("family", family)
			}
			if len(args) == 1 {
				if strings.Contains(args[0], "/") {
					if _, err := netip.ParsePrefix(args[0]); err != nil {
						return fmt.Errorf("PREFIX: %v", err)
					}
					v.Set("prefix", args[0])
				} else {
					if _, err := netip.ParseAddr(args[0]); err != nil {
						return fmt.Errorf("ADDR: %v", err)
					}
					v.Set("addr", args[0])
				}
			}
			return o.routes(c.Context(), g.stdout, v, detail, len(args) == 1)
		},
	}
	routes.Flags().StringVar(&family, "family", "", "only this family: "+strings.Join(reflector.Families(), ", "))
	routes.Flags().BoolVar(&detail, "detail", false, "every attribute of every path")
	cmd.AddCommand(routes)
	return cmd
}

// request opens a GET on the control socket.
func (o *showOptions) request(ctx context.Context, path string) (*http.Response, error) {
	if o.output != "table" && o.output != "json" {
		return nil, fmt.Errorf("--output %q: want table or json", o.output)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", o.socket)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://reflector"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reflector control socket %s: %w (is the reflector running with --control-socket?)", o.socket, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("reflector: %s", strings.TrimSpace(string(b)))
	}
	return resp, nil
}

func (o *showOptions) get(ctx context.Context, path string, v any) error {
	resp, err := o.request(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// routes streams the routes: each destination is printed as it arrives,
// the table's columns aligned a chunk of destinations at a time.
func (o *showOptions) routes(ctx context.Context, w io.Writer, v url.Values, detail, one bool) error {
	path := "/show/routes"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	resp, err := o.request(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	var tw *tabwriter.Writer
	n := 0
	for {
		var d reflector.RouteDestination
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("reading routes: %w", err)
		}
		switch {
		case o.output == "json":
			sep := ",\n  "
			if n == 0 {
				sep = "[\n  "
			}
			b, _ := json.Marshal(d)
			fmt.Fprintf(bw, "%s%s", sep, b)
		case detail:
			printRouteDetail(bw, d)
		default:
			if tw == nil || n%reflector.RouteChunk == 0 {
				if tw != nil {
					tw.Flush()
				}
				tw = newPathTable(bw)
			}
			writePathRows(tw, d.Prefix.String(), pathRows(d.Paths))
		}
		n++
	}
	if tw != nil {
		tw.Flush()
	}
	switch {
	case o.output == "json" && n == 0:
		fmt.Fprintln(bw, "[]")
	case o.output == "json":
		fmt.Fprintln(bw, "\n]")
	case n == 0 && one:
		return errors.New("no route: the reflector has no path for it")
	}
	return nil
}

// pathRows converts the reflector's paths to the table rows that the
// node's `bgpfabric routes` prints too.
func pathRows(ps []reflector.RoutePath) []pathRow {
	rows := make([]pathRow, len(ps))
	for i, p := range ps {
		rows[i] = pathRow{Best: p.Best, Stale: p.Stale, NextHop: p.NextHop, Peer: p.Peer, PeerAS: p.PeerAS,
			ASPath: p.ASPath, LocalPref: p.LocalPref, Communities: p.Communities}
	}
	return rows
}

func printRouteDetail(w io.Writer, d reflector.RouteDestination) {
	fmt.Fprintf(w, "%s (%s), %d path(s)\n", d.Prefix, d.Family, len(d.Paths))
	for _, p := range d.Paths {
		mark := "  "
		if p.Best {
			mark = "*>"
		}
		if p.Stale {
			mark += " stale"
		}
		fmt.Fprintf(w, "  %s from %s (AS %d), next hop %s\n", mark, p.Peer, p.PeerAS, p.NextHop)
		fmt.Fprintf(w, "     origin %s, AS path %s, local pref %d, MED %d\n", p.Origin, dash(asPathString(p.ASPath)), p.LocalPref, p.MED)
		fmt.Fprintf(w, "     communities %s\n", dash(strings.Join(p.Communities, " ")))
		if len(p.ExtendedCommunities) > 0 {
			fmt.Fprintf(w, "     extended communities %s\n", strings.Join(p.ExtendedCommunities, " "))
		}
		if p.OriginatorID.IsValid() || len(p.ClusterList) > 0 {
			var cl []string
			for _, c := range p.ClusterList {
				cl = append(cl, c.String())
			}
			orig := "-"
			if p.OriginatorID.IsValid() {
				orig = p.OriginatorID.String()
			}
			fmt.Fprintf(w, "     originator %s, cluster list %s\n", orig, dash(strings.Join(cl, " ")))
		}
	}
}

func printSummary(w io.Writer, s reflector.Summary, now time.Time) {
	fmt.Fprintf(w, "Reflector %s, AS %d, cluster ID %s\n\n", s.RouterID, s.AS, s.ClusterID)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FAMILY\tPREFIXES\tPATHS")
	for _, f := range s.Families {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", f.Family, f.Prefixes, f.Paths)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nNeighbours (%d)\n", len(s.Neighbors))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NEIGHBOR\tAS\tSTATE\tUP/DOWN\tRECEIVED\tACCEPTED\tSENT\tDESCRIPTION")
	for _, n := range s.Neighbors {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%d\t%s\n", n.Address, n.PeerAS, n.State, upDown(n, now),
			n.PrefixesReceived, n.PrefixesAccepted, n.PrefixesSent, dash(neighborNote(n)))
	}
	tw.Flush()
}

// upDown is how long the neighbour has been in its state (up or down).
func upDown(n reflector.NeighborInfo, now time.Time) string {
	if n.Since.IsZero() {
		return "-"
	}
	return now.Sub(n.Since).Truncate(time.Second).String()
}

func neighborNote(n reflector.NeighborInfo) string {
	var parts []string
	if n.Description != "" {
		parts = append(parts, n.Description)
	}
	if n.Dynamic {
		parts = append(parts, "(dynamic)")
	}
	if n.Client {
		parts = append(parts, "(client)")
	}
	return strings.Join(parts, " ")
}

func printNeighbors(w io.Writer, ns []reflector.NeighborInfo) {
	now := time.Now()
	for i, n := range ns {
		if i > 0 {
			fmt.Fprintln(w)
		}
		kind := "non-client"
		if n.Client {
			kind = "route-reflector client"
		}
		if n.Dynamic {
			kind += ", dynamic"
		}
		fmt.Fprintf(w, "Neighbor %s, AS %d, %s\n", n.Address, n.PeerAS, kind)
		if n.Description != "" {
			fmt.Fprintf(w, "  Description: %s\n", n.Description)
		}
		fmt.Fprintf(w, "  State %s for %s\n", n.State, upDown(n, now))
		if s := n.NeighborSession; s != nil {
			if s.RemoteRouterID.IsValid() {
				fmt.Fprintf(w, "  Remote router ID %s, local %s, remote %s\n", s.RemoteRouterID, s.LocalAddr, s.RemoteAddr)
				fmt.Fprintf(w, "  Hold time %ds (configured %ds), keepalive %ds\n", s.HoldSeconds, s.ConfiguredHoldSeconds, s.KeepaliveSeconds)
				fmt.Fprintf(w, "  Families: %s; add-path send: %s\n", dash(strings.Join(s.Families, " ")), dash(strings.Join(s.AddPathSend, " ")))
				var caps []string
				if s.GracefulRestart {
					caps = append(caps, fmt.Sprintf("graceful restart (restart time %ds)", s.RestartSeconds))
				}
				if s.RouteRefresh {
					caps = append(caps, "route refresh")
				}
				fmt.Fprintf(w, "  Capabilities: %s\n", dash(strings.Join(caps, ", ")))
			} else {
				fmt.Fprintf(w, "  Configured hold time %ds\n", s.ConfiguredHoldSeconds)
			}
		}
		fmt.Fprintf(w, "  Prefixes: received %d, accepted %d, sent %d\n", n.PrefixesReceived, n.PrefixesAccepted, n.PrefixesSent)
		fmt.Fprintf(w, "  Updates: received %d, sent %d; output queue %d bytes (peak %d)\n", n.UpdatesReceived, n.UpdatesSent, n.OutQueueBytes, n.OutQueuePeak)
		if n.BFD != "" {
			fmt.Fprintf(w, "  BFD: %s\n", n.BFD)
		}
		if n.Policy != "" {
			fmt.Fprintf(w, "  Policy: %s\n", n.Policy)
		}
		fmt.Fprintf(w, "  Last error: %s\n", dash(n.LastError))
	}
}
