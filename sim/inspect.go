package sim

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
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
