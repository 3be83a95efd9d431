package fabric

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/peering"
	"github.com/bgpfabric/bgpfabric/reflector"
)

// Identity is what a reflector cannot change without a restart.
type Identity struct {
	RouterID  netip.Addr
	AS        uint32
	ClusterID netip.Addr
	// ListenAddrs are the node's addresses on its listen port.
	ListenAddrs []string
}

// Equal reports whether two identities are the same.
func (a Identity) Equal(b Identity) bool {
	if a.RouterID != b.RouterID || a.AS != b.AS || a.ClusterID != b.ClusterID || len(a.ListenAddrs) != len(b.ListenAddrs) {
		return false
	}
	for i := range a.ListenAddrs {
		if a.ListenAddrs[i] != b.ListenAddrs[i] {
			return false
		}
	}
	return true
}

// IdentityOf returns the reflector identity of a node's peering result.
func IdentityOf(l peering.Local) Identity {
	id := Identity{RouterID: l.RouterID, AS: l.AS, ClusterID: l.ClusterID}
	for _, p := range []netip.Prefix{l.IPv4, l.IPv6} {
		if p.IsValid() {
			id.ListenAddrs = append(id.ListenAddrs, netip.AddrPortFrom(p.Addr(), l.ListenPort).String())
		}
	}
	return id
}

// SecretReader returns the password a SecretRef names.
type SecretReader func(peering.SecretRef) (string, error)

// Neighbors converts a reflector's sessions to neighbour configurations.
// A session whose password cannot be read is left out (the error says
// which); settings the engine does not implement are reported as
// warnings, and the session is configured without them.
func Neighbors(sessions []peering.Session, secrets SecretReader) (ns []reflector.NeighborConfig, warnings []string, err error) {
	var errs []error
	for _, s := range sessions {
		n := reflector.NeighborConfig{
			Address:         s.PeerAddress,
			Port:            s.PeerPort,
			LocalAddress:    s.LocalAddress,
			ASN:             s.PeerAS,
			Client:          s.RouteReflectorClient,
			Passive:         s.Passive,
			HoldTime:        s.HoldTime,
			KeepaliveTime:   s.KeepaliveTime,
			MaxPrefixes:     int(s.MaxPrefixes),
			GracefulRestart: s.GracefulRestart.Enabled,
		}
		if s.HoldTime == 0 {
			n.HoldTime = reflector.NoHoldTime
		}
		if !s.Password.IsZero() {
			if secrets == nil {
				errs = append(errs, fmt.Errorf("session %s: password secret %s/%s: no secret reader", s.AddrPort(), s.Password.Name, s.Password.Key))
				continue
			}
			pw, err := secrets(s.Password)
			if err != nil {
				errs = append(errs, fmt.Errorf("session %s: password secret %s/%s: %w", s.AddrPort(), s.Password.Name, s.Password.Key, err))
				continue
			}
			n.Password = pw
		}
		if s.TTLSecurity != 0 || s.EBGPMultihop != 0 {
			warnings = append(warnings, fmt.Sprintf("session %s: ttlSecurity and ebgpMultihop are not supported by the reflector; ignored", s.AddrPort()))
		}
		if s.KeepOriginalNextHop {
			warnings = append(warnings, fmt.Sprintf("session %s: keepOriginalNextHop is not supported by the reflector (eBGP is next-hop-self); ignored", s.AddrPort()))
		}
		ns = append(ns, n)
	}
	return ns, warnings, errors.Join(errs...)
}

// Status renders the reflector's neighbours as the node's BGPStatus.
func Status(node string, id Identity, sessions []peering.Session, ns []reflector.NeighborStatus, now time.Time) *api.BGPStatus {
	types := map[string]api.BGPPeerType{}
	for _, s := range sessions {
		types[s.PeerAddress.String()] = s.Type
	}
	st := &api.BGPStatus{
		TypeMeta:   api.TypeMeta{Kind: api.KindBGPStatus},
		ObjectMeta: api.ObjectMeta{Name: node},
		Status: api.BGPStatusReport{
			RouterID:   id.RouterID.String(),
			ASNumber:   id.AS,
			LastUpdate: now.UTC().Format(time.RFC3339),
		},
	}
	for _, n := range ns {
		typ, ok := types[n.Address]
		if !ok {
			typ = api.PeerTypeReflectorClient // a dynamic neighbour
			if !n.Client {
				typ = api.PeerTypeNode
			}
		}
		ps := api.BGPPeerStatus{
			PeerIP:             n.Address,
			ASNumber:           n.ASN,
			Type:               typ,
			State:              api.BGPState(n.State.String()),
			PrefixesReceived:   uint64(max(n.PrefixesIn, 0)),
			PrefixesAccepted:   uint64(max(n.PrefixesIn, 0)),
			PrefixesAdvertised: uint64(max(n.PrefixesOut, 0)),
			LastError:          n.LastError,
		}
		if !n.Since.IsZero() {
			ps.Since = n.Since.UTC().Format(time.RFC3339)
		}
		st.Status.Peers = append(st.Status.Peers, ps)
	}
	return st
}
