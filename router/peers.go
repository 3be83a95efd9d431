package router

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/peering"
)

// peerConfig turns a session that peering computed into the speaker's
// configuration; password is the resolved secret.
func peerConfig(s peering.Session, local peering.Local, password string) PeerConfig {
	return PeerConfig{
		Address:              s.PeerAddress,
		Port:                 s.PeerPort,
		PeerAS:               s.PeerAS,
		LocalAS:              s.LocalAS,
		LocalAddress:         s.LocalAddress,
		Passive:              s.Passive,
		HoldTime:             s.HoldTime,
		KeepaliveTime:        s.KeepaliveTime,
		Password:             password,
		RouteReflectorClient: s.RouteReflectorClient,
		ClusterID:            s.ClusterID,
		MaxPrefixes:          s.MaxPrefixes,
		TTLSecurity:          s.TTLSecurity,
		EBGPMultihop:         s.EBGPMultihop,
		KeepOriginalNextHop:  s.KeepOriginalNextHop,
		NextHopSelf:          s.NextHopSelf,
		GracefulRestart: GracefulRestart{
			Enabled:         s.GracefulRestart.Enabled,
			RestartTime:     s.GracefulRestart.RestartTime,
			StaleRoutesTime: s.GracefulRestart.StaleRoutesTime,
			// RFC 9494: zero is off.
			LongLivedStaleTime: s.GracefulRestart.LongLivedStaleTime,
		},
		// Both families when the node has both: a node's sessions carry
		// the family of the peer's address, and the other one too when
		// the node has it (IPv6 routes over an IPv4 session need an IPv6
		// next hop, which we do not set: so only the session's own).
		IPv4: s.PeerAddress.Is4(),
		IPv6: s.PeerAddress.Is6(),
	}
}

// unicastOnly refuses a session or range whose BGPPeer asks for a family
// beyond IPv4 and IPv6 unicast (peering sets Families on nodes with a
// routeReflectorClusterID only): the node's router carries unicast, the
// other families are the reflector engine's (`bgpfabric reflector`). The
// session is not configured and its status says why, rather than running
// without the families asked for.
func unicastOnly(source, families string) error {
	if families == "" {
		return nil
	}
	fs := strings.Split(families, ",")
	if api.OnlyUnicast(fs) {
		return nil
	}
	return fmt.Errorf("BGPPeer %s spec.families %s: the node's router carries ipv4-unicast and ipv6-unicast only (the other families: bgpfabric reflector)", source, families)
}

// rangeConfig turns a range that peering computed into the speaker's
// configuration; password is the resolved secret.
func rangeConfig(r peering.PeerRange, password string) PeerRangeConfig {
	return PeerRangeConfig{
		Prefix:               r.Prefix,
		PeerAS:               r.PeerAS,
		LocalAS:              r.LocalAS,
		HoldTime:             r.HoldTime,
		KeepaliveTime:        r.KeepaliveTime,
		Password:             password,
		RouteReflectorClient: r.RouteReflectorClient,
		ClusterID:            r.ClusterID,
		MaxPrefixes:          r.MaxPrefixes,
		TTLSecurity:          r.TTLSecurity,
		EBGPMultihop:         r.EBGPMultihop,
		KeepOriginalNextHop:  r.KeepOriginalNextHop,
		NextHopSelf:          r.NextHopSelf,
		GracefulRestart: GracefulRestart{
			Enabled:         r.GracefulRestart.Enabled,
			RestartTime:     r.GracefulRestart.RestartTime,
			StaleRoutesTime: r.GracefulRestart.StaleRoutesTime,
			// RFC 9494: zero is off.
			LongLivedStaleTime: r.GracefulRestart.LongLivedStaleTime,
		},
	}
}

// global is the speaker's global configuration for a node.
func global(l peering.Local) Global {
	g := Global{AS: l.AS, RouterID: l.RouterID, ListenPort: int32(l.ListenPort)}
	if l.IsReflector() {
		g.ExportPolicy = ExportNoExternal
	}
	return g
}

// ownAddresses reports whether a is one of the node's peering addresses.
func ownAddress(l peering.Local, a netip.Addr) bool {
	return a == l.IPv4.Addr() || a == l.IPv6.Addr()
}
