package gobgp

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	bfapi "github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/router/speaker"
)

// GoBGP's library API hands out paths as protobuf messages whose NLRI and
// attributes are Anys. apiutil.GetNativeNlri and GetNativePathAttributes
// turn them back into pkg/packet/bgp values (every attribute, through a
// registry lookup and a string round trip per address), which cost more
// than the rest of the import path together. This file reads the few
// fields the router uses straight from the typed messages instead.

// The messages we read, by full name.
var (
	nameIPAddressPrefix  = messageName(&api.IPAddressPrefix{})
	nameNextHop          = messageName(&api.NextHopAttribute{})
	nameMpReach          = messageName(&api.MpReachNLRIAttribute{})
	nameAsPath           = messageName(&api.AsPathAttribute{})
	nameCommunities      = messageName(&api.CommunitiesAttribute{})
	nameLargeCommunities = messageName(&api.LargeCommunitiesAttribute{})
	nameLocalPref        = messageName(&api.LocalPrefAttribute{})
	nameMED              = messageName(&api.MultiExitDiscAttribute{})
	nameOrigin           = messageName(&api.OriginAttribute{})
)

func messageName(m protoreflect.ProtoMessage) protoreflect.FullName {
	return m.ProtoReflect().Descriptor().FullName()
}

// groupPaths turns GoBGP paths into destinations, in order of first
// appearance; withdrawn paths leave their destination without paths.
// GoBGP reports best paths one destination per event, so the common case
// is one destination, found without an index.
func groupPaths(paths []*api.Path, lg *slog.Logger) []speaker.Destination {
	var out []speaker.Destination
	var index map[netip.Prefix]int
	for _, ap := range paths {
		pfx, p, err := convertPath(ap)
		if err != nil {
			lg.Warn("skipping a path GoBGP reported", "error", err)
			continue
		}
		i := len(out) - 1
		if i < 0 || out[i].Prefix != pfx {
			var ok bool
			if i, ok = index[pfx]; !ok {
				if index == nil && len(out) > 0 {
					index = make(map[netip.Prefix]int, len(paths))
					for j, d := range out {
						index[d.Prefix] = j
					}
				}
				i = len(out)
				if index != nil {
					index[pfx] = i
				}
				out = append(out, speaker.Destination{Prefix: pfx})
			}
		}
		if !ap.IsWithdraw {
			out[i].Paths = append(out[i].Paths, p)
		}
	}
	return out
}

// convertPath decodes a GoBGP path.
func convertPath(ap *api.Path) (netip.Prefix, speaker.Path, error) {
	pfx, err := decodePrefix(ap.Nlri)
	if err != nil {
		return netip.Prefix{}, speaker.Path{}, err
	}
	p := speaker.Path{Best: ap.Best, Stale: ap.Stale, PeerAS: ap.SourceAsn}
	if ap.Age != nil {
		p.Age = ap.Age.AsTime()
	}
	if a, err := netip.ParseAddr(ap.NeighborIp); err == nil && !a.IsUnspecified() {
		p.Peer = a
	} else {
		p.Local = true
	}
	for _, a := range ap.Pattrs {
		if err := decodeAttr(a, pfx, &p); err != nil {
			return netip.Prefix{}, speaker.Path{}, fmt.Errorf("decoding attributes of %s: %w", pfx, err)
		}
	}
	if p.Local && p.NextHop.IsUnspecified() {
		p.NextHop = netip.Addr{}
	}
	return pfx, p, nil
}

// decodePrefix reads an IP unicast NLRI.
func decodePrefix(a *anypb.Any) (netip.Prefix, error) {
	if a == nil {
		return netip.Prefix{}, fmt.Errorf("decoding NLRI: none")
	}
	if a.MessageName() != nameIPAddressPrefix {
		return netip.Prefix{}, fmt.Errorf("NLRI %s is not an IP prefix", a.MessageName())
	}
	var m api.IPAddressPrefix
	if err := a.UnmarshalTo(&m); err != nil {
		return netip.Prefix{}, fmt.Errorf("decoding NLRI: %w", err)
	}
	addr, err := netip.ParseAddr(m.Prefix)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("NLRI %s/%d is not an IP prefix: %w", m.Prefix, m.PrefixLen, err)
	}
	pfx := netip.PrefixFrom(addr, int(m.PrefixLen))
	if !pfx.IsValid() {
		return netip.Prefix{}, fmt.Errorf("NLRI %s/%d is not an IP prefix", m.Prefix, m.PrefixLen)
	}
	return pfx, nil
}

// decodeAttr reads one path attribute into p; attributes the router does
// not use are skipped without decoding.
func decodeAttr(a *anypb.Any, pfx netip.Prefix, p *speaker.Path) error {
	switch a.MessageName() {
	case nameNextHop:
		var m api.NextHopAttribute
		if err := a.UnmarshalTo(&m); err != nil {
			return err
		}
		nh, err := netip.ParseAddr(m.NextHop)
		if err != nil {
			return fmt.Errorf("next hop %q: %w", m.NextHop, err)
		}
		p.NextHop = nh.Unmap()
	case nameMpReach:
		var m api.MpReachNLRIAttribute
		if err := a.UnmarshalTo(&m); err != nil {
			return err
		}
		if len(m.NextHops) == 0 {
			return nil
		}
		nh, err := netip.ParseAddr(m.NextHops[0]) // the global one
		if err != nil {
			return fmt.Errorf("next hop %q: %w", m.NextHops[0], err)
		}
		if pfx.Addr().Is4() {
			nh = nh.Unmap()
		}
		p.NextHop = nh
	case nameAsPath:
		var m api.AsPathAttribute
		if err := a.UnmarshalTo(&m); err != nil {
			return err
		}
		for _, seg := range m.Segments {
			p.ASPath = append(p.ASPath, seg.Numbers...)
		}
	case nameCommunities:
		var m api.CommunitiesAttribute
		if err := a.UnmarshalTo(&m); err != nil {
			return err
		}
		for _, c := range m.Communities {
			p.Communities = append(p.Communities, bfapi.Community{Global: c >> 16, Local1: c & 0xffff})
		}
	case nameLargeCommunities:
		var m api.LargeCommunitiesAttribute
		if err := a.UnmarshalTo(&m); err != nil {
			return err
		}
		for _, c := range m.Communities {
			p.Communities = append(p.Communities, bfapi.Community{Large: true, Global: c.GlobalAdmin, Local1: c.LocalData1, Local2: c.LocalData2})
		}
	case nameLocalPref:
		var m api.LocalPrefAttribute
		if err := a.UnmarshalTo(&m); err != nil {
			return err
		}
		p.LocalPref = m.LocalPref
	case nameMED:
		var m api.MultiExitDiscAttribute
		if err := a.UnmarshalTo(&m); err != nil {
			return err
		}
		p.MED = m.Med
	case nameOrigin:
		var m api.OriginAttribute
		if err := a.UnmarshalTo(&m); err != nil {
			return err
		}
		p.Origin = uint8(m.Origin)
	}
	return nil
}

// defaultLocalPref is what GoBGP's best-path selection takes for a path
// without LOCAL_PREF (table.DEFAULT_LOCAL_PREF).
const defaultLocalPref = 100

// receivedPaths turns the paths of a GoBGP post-policy event into
// received-path changes; the node's own paths are left out.
func receivedPaths(paths []*api.Path, lg *slog.Logger) []speaker.Received {
	out := make([]speaker.Received, 0, len(paths))
	for _, ap := range paths {
		if ap.Nlri == nil && ap.NeighborIp != "" { // GoBGP's End-of-RIB path: no NLRI
			if a, err := netip.ParseAddr(ap.NeighborIp); err == nil {
				out = append(out, speaker.Received{EndOfRIB: a})
			}
			continue
		}
		pfx, p, err := convertPath(ap)
		if err != nil {
			lg.Warn("skipping a path GoBGP reported", "error", err)
			continue
		}
		if p.Local {
			continue
		}
		if ap.IsWithdraw {
			out = append(out, speaker.Received{Prefix: pfx, Peer: p.Peer, Withdrawn: true})
			continue
		}
		if !slices.ContainsFunc(ap.Pattrs, func(a *anypb.Any) bool { return a.MessageName() == nameLocalPref }) {
			p.LocalPref = defaultLocalPref
		}
		p.Best = false
		out = append(out, speaker.Received{Prefix: pfx, Peer: p.Peer, Path: p})
	}
	return out
}
