package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"time"

	gobgpapi "github.com/osrg/gobgp/v3/api"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// Route is one kernel route of a node, decoded.
type Route struct {
	Dst      netip.Prefix `json:"dst"`
	Gateways []netip.Addr `json:"gateways,omitempty"`
	Dev      string       `json:"dev,omitempty"`
	Protocol int          `json:"protocol"`
	Type     string       `json:"type,omitempty"` // "blackhole", "unreachable" or "" (unicast)
}

// Routes lists a node's IPv4 and IPv6 routes of the main table.
func (f *Fabric) Routes(node string) ([]Route, error) {
	n := f.Plan.Node(node)
	if n == nil {
		return nil, fmt.Errorf("no node %q", node)
	}
	nl, err := f.net.Netlink(n.Netns)
	if err != nil {
		return nil, err
	}
	defer nl.Close()
	links := map[int]string{}
	if ls, err := nl.LinkList(); err == nil {
		for _, l := range ls {
			links[l.Attrs().Index] = l.Attrs().Name
		}
	}
	var out []Route
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := nl.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("listing routes of %s: %w", node, err)
		}
		for _, r := range rs {
			if r.Dst == nil {
				continue
			}
			dst, ok := netip.AddrFromSlice(r.Dst.IP)
			if !ok {
				continue
			}
			bits, _ := r.Dst.Mask.Size()
			rt := Route{Dst: netip.PrefixFrom(dst.Unmap(), bits), Dev: links[r.LinkIndex], Protocol: int(r.Protocol)}
			switch r.Type {
			case unix.RTN_BLACKHOLE:
				rt.Type = "blackhole"
			case unix.RTN_UNREACHABLE:
				rt.Type = "unreachable"
			}
			if gw, ok := netip.AddrFromSlice(r.Gw); ok {
				rt.Gateways = append(rt.Gateways, gw.Unmap())
			}
			for _, nh := range r.MultiPath {
				if gw, ok := netip.AddrFromSlice(nh.Gw); ok {
					rt.Gateways = append(rt.Gateways, gw.Unmap())
				}
			}
			out = append(out, rt)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dst.String() < out[j].Dst.String() })
	return out, nil
}

// PeerState is one BGP session as a node's status reports it.
type PeerState struct {
	PeerIP string `json:"peer_ip"`
	AS     uint32 `json:"as"`
	Type   string `json:"type"`
	State  string `json:"state"`
	Since  string `json:"since,omitempty"`
	// Accepted and Advertised count the prefixes taken from the peer and
	// sent to it: live from a router, as of the last refresh (every status
	// interval) from a BGPStatus.
	Accepted   uint64 `json:"prefixes_accepted,omitempty"`
	Advertised uint64 `json:"prefixes_advertised,omitempty"`
}

// PeerStates reads a node's sessions: a bgpfabric node's or reflector's
// from its BGPStatus record (none while its agent is down); a router's
// from Debian (tor, external, or a reflector it runs) from the router
// itself, one per neighbour of the plan (an error while it is down).
func (f *Fabric) PeerStates(ctx context.Context, node string) ([]PeerState, error) {
	if n := f.Plan.Node(node); n != nil && n.Agent == topology.AgentRouter {
		return f.routerPeerStates(ctx, n)
	}
	r, err := f.client.Get(ctx, api.KindBGPStatus, "", node)
	if errors.Is(err, datastore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st := r.(*api.BGPStatus)
	var out []PeerState
	for _, p := range st.Status.Peers {
		out = append(out, PeerState{PeerIP: p.PeerIP, AS: p.ASNumber, Type: string(p.Type), State: string(p.State), Since: p.Since,
			Accepted: p.PrefixesAccepted, Advertised: p.PrefixesAdvertised})
	}
	return out, nil
}

// NodeNetns returns the handle of a node's namespace (owned by the
// fabric: do not close it).
func (f *Fabric) NodeNetns(node string) (netns.NsHandle, error) {
	n := f.Plan.Node(node)
	if n == nil {
		return 0, fmt.Errorf("no node %q", node)
	}
	h, ok := f.net.Handle(n.Netns)
	if !ok {
		return 0, fmt.Errorf("no namespace for node %s", node)
	}
	return h, nil
}

// WorkloadNetns returns the handle of a workload's namespace (owned by
// the fabric: do not close it).
func (f *Fabric) WorkloadNetns(name string) (netns.NsHandle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.workloads[name]
	if w == nil {
		return 0, fmt.Errorf("no workload %q", name)
	}
	return w.ns, nil
}

// SetLink sets a node's interface up or down (a link fault, without the
// wait for reconvergence that Fault adds).
func (f *Fabric) SetLink(node, iface string, up bool) error {
	n := f.Plan.Node(node)
	if n == nil {
		return fmt.Errorf("no node %q", node)
	}
	return f.net.SetLink(n.Netns, iface, up)
}

// AgentPID returns the PID of a node's agent process (the router's
// launcher for external routers), or 0 when it does not run.
func (f *Fabric) AgentPID(node string) int {
	if p := f.procs.get(agentProcName(node)); p != nil && p.running() {
		return p.rec.PID
	}
	if rec, ok := f.run.Proc(agentProcName(node)); ok && rec.Alive() {
		return rec.PID
	}
	return 0
}

// routerPeerStates reads the sessions of a router from Debian through its
// control socket under the run's directory: BIRD's CLI socket, bgpd's vty
// socket (the protocol vtysh speaks), gobgpd's gRPC API. These routers are
// test peers that only the sim runs; bgpfabric's agents report through
// BGPStatus. States are the routers' own words, which for the six states of
// RFC 4271 are those of BGPStatus (BIRD adds "Passive" for Active). None
// of them pushes changes, so a caller waiting for a state asks again.
func (f *Fabric) routerPeerStates(ctx context.Context, n *topology.NodePlan) ([]PeerState, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	dir := filepath.Join(f.run.Dir, "routers", n.Name)
	var states map[netip.Addr]routerSession
	var err error
	switch n.Router {
	case topology.RouterBIRD:
		states, err = birdSessions(ctx, filepath.Join(dir, birdSocket))
	case topology.RouterFRR:
		states, err = frrSessions(ctx, filepath.Join(dir, frrBGPSocket))
	case topology.RouterGoBGPd:
		states, err = gobgpdSessions(ctx, filepath.Join(dir, gobgpdSocket))
	default:
		err = fmt.Errorf("unknown router %q", n.Router)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s's sessions from %s: %w", n.Name, n.Router, err)
	}
	out := make([]PeerState, 0, len(n.Neighbors))
	for _, nb := range n.Neighbors {
		st := states[nb.Address]
		if st.state == "" {
			st.state = "Unknown"
		}
		out = append(out, PeerState{PeerIP: nb.Address.String(), AS: nb.ASNumber, Type: string(nb.Type), State: st.state,
			Accepted: st.accepted, Advertised: st.advertised})
	}
	return out, nil
}

// routerSession is one session as a router reports it.
type routerSession struct {
	state                string
	accepted, advertised uint64
}

// dialUnix connects to a control socket, with ctx's deadline on the
// connection.
func dialUnix(ctx context.Context, sock string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	return c, nil
}

// birdSessions asks BIRD "show protocols all" on its control socket.
func birdSessions(ctx context.Context, sock string) (map[netip.Addr]routerSession, error) {
	c, err := dialUnix(ctx, sock)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil { // 0001 BIRD ... ready.
		return nil, err
	}
	if _, err := io.WriteString(c, "show protocols all\n"); err != nil {
		return nil, err
	}
	return parseBIRDProtocols(r)
}

// parseBIRDProtocols reads BIRD's reply to "show protocols all". Each line
// is "NNNN-text" (more follows), " text" (continuation) or "NNNN text"
// (the last; 0000 is success, 8xxx and 9xxx errors). A protocol's block
// starts with its summary line, unindented; a BGP protocol's has "BGP
// state:", "Neighbor address:" and, for its channel, "Routes: I imported,
// E exported, P preferred".
func parseBIRDProtocols(r *bufio.Reader) (map[netip.Addr]routerSession, error) {
	out := map[netip.Addr]routerSession{}
	var addr netip.Addr
	var cur routerSession
	flush := func() {
		if addr.IsValid() {
			out[addr] = cur
		}
		addr, cur = netip.Addr{}, routerSession{}
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("BIRD's reply: %w", err)
		}
		line = strings.TrimRight(line, "\n")
		text := line
		switch {
		case len(line) >= 5 && line[0] >= '0' && line[0] <= '9':
			if line[4] == ' ' { // the last line
				if code := line[:4]; code != "0000" {
					return nil, fmt.Errorf("BIRD: %s", line)
				}
				flush()
				return out, nil
			}
			text = line[5:]
		case strings.HasPrefix(line, " "):
			text = line[1:]
		}
		if text == "" {
			continue
		}
		if text[0] != ' ' {
			flush() // the next protocol's summary line
			continue
		}
		k, v, ok := strings.Cut(strings.TrimSpace(text), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "BGP state":
			cur.state = v
		case "Neighbor address":
			addr, _ = netip.ParseAddr(v)
		case "Routes":
			var imported, exported uint64
			if _, err := fmt.Sscanf(v, "%d imported, %d exported", &imported, &exported); err == nil {
				cur.accepted, cur.advertised = imported, exported
			}
		}
	}
}

// frrSessions asks bgpd "show bgp neighbors json" on its vty socket.
func frrSessions(ctx context.Context, sock string) (map[netip.Addr]routerSession, error) {
	c, err := dialUnix(ctx, sock)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	out, err := vtyCommand(c, "show bgp neighbors json")
	if err != nil {
		return nil, err
	}
	return parseFRRNeighbors(out)
}

// vtyCommand runs one command over an FRR daemon's vty socket, in the
// protocol vtysh speaks: the command ending in a NUL byte, answered by its
// output, three NUL bytes and a status byte (0 is success).
func vtyCommand(c io.ReadWriter, cmd string) ([]byte, error) {
	if _, err := io.WriteString(c, cmd+"\x00"); err != nil {
		return nil, err
	}
	var buf []byte
	chunk := make([]byte, 64<<10)
	for {
		k, err := c.Read(chunk)
		buf = append(buf, chunk[:k]...)
		if l := len(buf); l >= 4 && buf[l-4] == 0 && buf[l-3] == 0 && buf[l-2] == 0 {
			if status := buf[l-1]; status != 0 {
				return nil, fmt.Errorf("%q: status %d: %s", cmd, status, strings.TrimSpace(string(buf[:l-4])))
			}
			return buf[:l-4], nil
		}
		if err != nil {
			return nil, fmt.Errorf("%q: %w", cmd, err)
		}
	}
}

// parseFRRNeighbors reads the JSON of "show bgp neighbors json".
func parseFRRNeighbors(data []byte) (map[netip.Addr]routerSession, error) {
	var peers map[string]struct {
		BGPState string `json:"bgpState"`
		AFs      map[string]struct {
			Accepted uint64 `json:"acceptedPrefixCounter"`
			Sent     uint64 `json:"sentPrefixCounter"`
		} `json:"addressFamilyInfo"`
	}
	if err := json.Unmarshal(data, &peers); err != nil {
		return nil, fmt.Errorf("bgpd's neighbours: %w", err)
	}
	out := map[netip.Addr]routerSession{}
	for k, p := range peers {
		a, err := netip.ParseAddr(k)
		if err != nil {
			continue
		}
		st := routerSession{state: p.BGPState}
		for _, af := range p.AFs {
			st.accepted += af.Accepted
			st.advertised += af.Sent
		}
		out[a] = st
	}
	return out, nil
}

// gobgpdSessions lists gobgpd's peers through its gRPC API.
func gobgpdSessions(ctx context.Context, sock string) (map[netip.Addr]routerSession, error) {
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stream, err := gobgpapi.NewGobgpApiClient(conn).ListPeer(ctx, &gobgpapi.ListPeerRequest{EnableAdvertised: true})
	if err != nil {
		return nil, err
	}
	names := map[gobgpapi.PeerState_SessionState]api.BGPState{
		gobgpapi.PeerState_IDLE: api.BGPIdle, gobgpapi.PeerState_CONNECT: api.BGPConnect, gobgpapi.PeerState_ACTIVE: api.BGPActive,
		gobgpapi.PeerState_OPENSENT: api.BGPOpenSent, gobgpapi.PeerState_OPENCONFIRM: api.BGPOpenConfirm, gobgpapi.PeerState_ESTABLISHED: api.BGPEstablished,
	}
	out := map[netip.Addr]routerSession{}
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		ps := r.GetPeer().GetState()
		a, err := netip.ParseAddr(ps.GetNeighborAddress())
		if err != nil {
			continue
		}
		name, ok := names[ps.GetSessionState()]
		if !ok {
			name = api.BGPState(ps.GetSessionState().String())
		}
		st := routerSession{state: string(name)}
		for _, af := range r.GetPeer().GetAfiSafis() {
			st.accepted += af.GetState().GetAccepted()
			st.advertised += af.GetState().GetAdvertised()
		}
		out[a] = st
	}
}
