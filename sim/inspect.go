package sim

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
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
}

// PeerStates reads a node's sessions from its BGPStatus record; a node
// without one (its agent is down, or it is an external router) has none.
func (f *Fabric) PeerStates(ctx context.Context, node string) ([]PeerState, error) {
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
		out = append(out, PeerState{PeerIP: p.PeerIP, AS: p.ASNumber, Type: string(p.Type), State: string(p.State), Since: p.Since})
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
