package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// The control socket: the router serves, on a unix socket (Config.
// ControlSocket, by default DefaultControlDir/router.<node>.sock in
// `bgpfabric node`), GET /routes with a RoutesReport in JSON, and POST
// /sessions/reset?peer=ADDR (sessionreset.go). The BGP table
// is too large and changes too often for the datastore; a socket keeps it
// local and read on demand. `bgpfabric routes --node N` reads it (all
// nodes' sockets share one directory, reachable from every namespace
// through the filesystem); peer state is in the datastore (BGPStatus) for
// `bgpfabric status`.

// ControlSocketPath is the default control socket of a node in dir.
func ControlSocketPath(dir, node string) string {
	return filepath.Join(dir, "router."+node+".sock")
}

// RoutesReport is what GET /routes returns.
type RoutesReport struct {
	Node     string     `json:"node"`
	AS       uint32     `json:"asNumber"`
	RouterID netip.Addr `json:"routerID"`
	// Exported are the routes this node advertises.
	Exported []ExportedRoute `json:"exported"`
	// BGP is the speaker's table: every destination with its paths, best
	// first.
	BGP []Destination `json:"bgp"`
	// Kernel are the learned routes the router wants in the kernel, with
	// what became of them.
	Kernel []KernelRouteStatus `json:"kernel"`
}

// ExportedRoute is one advertised route.
type ExportedRoute struct {
	Prefix      netip.Prefix `json:"prefix"`
	Communities []string     `json:"communities,omitempty"`
}

// KernelRouteStatus is one learned route meant for the kernel.
type KernelRouteStatus struct {
	Prefix netip.Prefix `json:"prefix"`
	// Gateway is the (first) next hop; Gateways are all of them, several
	// for a multipath (ECMP) route.
	Gateway  netip.Addr   `json:"gateway"`
	Gateways []netip.Addr `json:"gateways,omitempty"`
	// State is "installed", "conflict" (another owner's route holds the
	// prefix: felix's own blocks and workloads win) or "held" (kept from
	// the earlier run during a graceful restart).
	State string `json:"state"`
	// Owner is the protocol of the route that holds a conflicting prefix.
	Owner uint8 `json:"owner,omitempty"`
}

type controlServer struct {
	l    *loop
	ln   net.Listener
	path string
}

func (l *loop) listenControl(path string) (*controlServer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return &controlServer{l: l, ln: ln, path: path}, nil
}

func (s *controlServer) serve(ctx context.Context) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /routes", func(w http.ResponseWriter, r *http.Request) {
		rep, err := s.l.report(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	})
	mux.HandleFunc("POST /sessions/reset", s.serveReset)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	_ = srv.Serve(s.ln)
	_ = os.Remove(s.path)
}

// report asks the loop for its view, then the speaker for its table.
func (l *loop) report(ctx context.Context) (*RoutesReport, error) {
	rep := &RoutesReport{Node: l.r.cfg.NodeName}
	done := make(chan struct{})
	var view map[netip.Prefix][]Path
	q := func() {
		defer close(done)
		rep.AS, rep.RouterID = l.local.AS, l.local.RouterID
		view = l.ribView() // ribloop.go
		for _, r := range l.announced {
			er := ExportedRoute{Prefix: r.Prefix}
			for _, c := range r.Communities {
				er.Communities = append(er.Communities, c.String())
			}
			rep.Exported = append(rep.Exported, er)
		}
		conflicts := map[netip.Prefix]routetable.ConflictError{}
		for _, c := range l.rt.Conflicts() {
			conflicts[c.Dst] = c
		}
		var f *Filter
		if l.r.cfg.Policy != nil {
			f = l.r.cfg.Policy.Import
		}
		own := func(a netip.Addr) bool { return ownAddress(l.local, a) }
		for p := range l.bestPrefixes {
			d, _ := l.bestOf(p)
			r, ok := importRoute(d, f, own)
			if !ok || l.originates(d.Prefix) {
				continue
			}
			gws := gateways(r)
			ks := KernelRouteStatus{Prefix: r.Dst, Gateway: gws[0], Gateways: gws, State: "installed"}
			if c, ok := conflicts[r.Dst]; ok {
				ks.State, ks.Owner = "conflict", c.Protocol
			} else if l.holdImport {
				ks.State = "held"
			}
			rep.Kernel = append(rep.Kernel, ks)
		}
	}
	select {
	case l.queryCh <- q:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	<-done
	slices.SortFunc(rep.Exported, func(a, b ExportedRoute) int { return comparePrefix(a.Prefix, b.Prefix) })
	slices.SortFunc(rep.Kernel, func(a, b KernelRouteStatus) int { return comparePrefix(a.Prefix, b.Prefix) })
	if rep.AS != 0 {
		rib, err := l.r.cfg.Speaker.RIB(ctx)
		if err != nil {
			return nil, err
		}
		rep.BGP = mergeView(rib, view)
	}
	return rep, nil
}

// FetchRoutes reads a router's RoutesReport from its control socket.
func FetchRoutes(ctx context.Context, socket string) (*RoutesReport, error) {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://router/routes", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		if _, serr := os.Stat(socket); errors.Is(serr, os.ErrNotExist) {
			return nil, fmt.Errorf("no router is running there: no control socket %s", socket)
		}
		return nil, fmt.Errorf("asking the router at %s: %w", socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("router at %s: %s", socket, resp.Status)
	}
	var rep RoutesReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return nil, fmt.Errorf("router at %s: %w", socket, err)
	}
	return &rep, nil
}

// mergeView replaces the received paths of the speaker's table by the
// ones the router accepted (view, when the router evaluates the import
// policy): the speaker then holds every path its peers sent, also those
// the policy rejects. The node's own paths stay, ahead of the received
// ones as the speaker ranks them.
func mergeView(rib []Destination, view map[netip.Prefix][]Path) []Destination {
	if view == nil {
		return rib
	}
	out := rib[:0]
	for _, d := range rib {
		var ps []Path
		for _, p := range d.Paths {
			if p.Local {
				ps = append(ps, p)
			}
		}
		if len(ps) > 0 {
			for i := range view[d.Prefix] {
				p := view[d.Prefix][i]
				p.Best = false
				ps = append(ps, p)
			}
		} else {
			ps = view[d.Prefix]
		}
		if len(ps) > 0 {
			d.Paths = ps
			out = append(out, d)
		}
	}
	return out
}
