package fabric

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
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
// warnings, and the session configured without them (there are none
// left: ttlSecurity, ebgpMultihop, keepOriginalNextHop and bfd are
// honoured).
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
			TTLSecurity:     s.TTLSecurity,
			EBGPMultihop:    s.EBGPMultihop,
			KeepNextHop:     s.KeepOriginalNextHop,
			BFD: reflector.BFDConfig{Enabled: s.BFD.Enabled, MinTx: s.BFD.MinTx, MinRx: s.BFD.MinRx,
				Multiplier: s.BFD.Multiplier, Multihop: s.BFD.Multihop, RequireUp: s.BFD.RequireUp},
		}
		if s.HoldTime == 0 {
			n.HoldTime = reflector.NoHoldTime
		}
		// Long-lived graceful restart (RFC 9494, reflector/llgr.go): zero is off.
		n.RestartTime, n.LongLivedStaleTime = s.GracefulRestart.RestartTime, s.GracefulRestart.LongLivedStaleTime
		fams, err := families(s.Families, s.Source)
		if err != nil {
			errs = append(errs, fmt.Errorf("session %s: %w", s.AddrPort(), err))
			continue
		}
		n.Families = fams
		pw, err := password(s.Password, secrets, "session "+s.AddrPort().String())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n.Password = pw
		ns = append(ns, n)
	}
	return ns, warnings, errors.Join(errs...)
}

// families converts a session's or range's families (BGPPeer
// spec.families, canonical and comma separated; "" for the default).
func families(s, source string) (reflector.FamilySet, error) {
	if s == "" {
		return 0, nil
	}
	fs, err := reflector.ParseFamilies(strings.Split(s, ","))
	if err != nil {
		return 0, fmt.Errorf("BGPPeer %s spec.families%w", source, err)
	}
	return fs, nil
}

// password reads a session's or range's password, if it has one.
func password(ref peering.SecretRef, secrets SecretReader, what string) (string, error) {
	if ref.IsZero() {
		return "", nil
	}
	if secrets == nil {
		return "", fmt.Errorf("%s: password secret %s/%s: no secret reader", what, ref.Name, ref.Key)
	}
	pw, err := secrets(ref)
	if err != nil {
		return "", fmt.Errorf("%s: password secret %s/%s: %w", what, ref.Name, ref.Key, err)
	}
	return pw, nil
}

// DynamicNeighbors converts a reflector's peer ranges (BGPPeers with
// peerPrefix) to dynamic neighbours. A range whose password cannot be
// read is left out, as a session's is: better no session than one
// without its authentication.
func DynamicNeighbors(ranges []peering.PeerRange, secrets SecretReader) ([]reflector.DynamicNeighbor, error) {
	var errs []error
	var out []reflector.DynamicNeighbor
	for _, r := range ranges {
		d := reflector.DynamicNeighbor{
			Prefix:          r.Prefix,
			ASN:             r.PeerAS,
			Client:          r.RouteReflectorClient,
			HoldTime:        r.HoldTime,
			KeepaliveTime:   r.KeepaliveTime,
			MaxPrefixes:     int(r.MaxPrefixes),
			GracefulRestart: r.GracefulRestart.Enabled,
			TTLSecurity:     r.TTLSecurity,
			EBGPMultihop:    r.EBGPMultihop,
			KeepNextHop:     r.KeepOriginalNextHop,
		}
		if r.HoldTime == 0 {
			d.HoldTime = reflector.NoHoldTime
		}
		d.RestartTime, d.LongLivedStaleTime = r.GracefulRestart.RestartTime, r.GracefulRestart.LongLivedStaleTime
		fams, err := families(r.Families, r.Source)
		if err != nil {
			errs = append(errs, fmt.Errorf("peerPrefix %s: %w", r.Prefix, err))
			continue
		}
		d.Families = fams
		pw, err := password(r.Password, secrets, "peerPrefix "+r.Prefix.String())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d.Password = pw
		out = append(out, d)
	}
	return out, errors.Join(errs...)
}

// Status renders the reflector's neighbours as the node's BGPStatus. A
// dynamic neighbour takes its type from the range it connected from.
func Status(node string, id Identity, sessions []peering.Session, ranges []peering.PeerRange, ns []reflector.NeighborStatus, now time.Time) *api.BGPStatus {
	types := map[string]api.BGPPeerType{}
	for _, s := range sessions {
		types[s.PeerAddress.String()] = s.Type
	}
	rangeType := func(addr string) (api.BGPPeerType, bool) {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return "", false
		}
		best := -1
		var typ api.BGPPeerType
		for _, r := range ranges {
			if r.Prefix.Contains(a) && r.Prefix.Bits() > best {
				best, typ = r.Prefix.Bits(), r.Type
			}
		}
		return typ, best >= 0
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
		if !ok && n.Dynamic {
			typ, ok = rangeType(n.Address)
		}
		if !ok {
			typ = api.PeerTypeReflectorClient // a dynamic neighbour of the Engine's
			if !n.Client {
				typ = api.PeerTypeNode
			}
		}
		ps := api.BGPPeerStatus{
			PeerIP:             n.Address,
			ASNumber:           n.ASN,
			Type:               typ,
			State:              api.BGPState(n.State.String()),
			PrefixesReceived:   uint64(max(n.PrefixesReceived, 0)),
			PrefixesAccepted:   uint64(max(n.PrefixesIn, 0)),
			PrefixesAdvertised: uint64(max(n.PrefixesOut, 0)),
			LastError:          n.LastError,
			BFD:                n.BFD,
			Policy:             n.Policy,
		}
		if !n.Since.IsZero() {
			ps.Since = n.Since.UTC().Format(time.RFC3339)
		}
		st.Status.Peers = append(st.Status.Peers, ps)
	}
	return st
}
