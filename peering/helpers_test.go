package peering

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bgpfabric/bgpfabric/api"
)

// cmpNet lets cmp compare netip values.
var cmpNet = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

// nodeWarnings are r's warnings less those about the resources themselves.
func nodeWarnings(m *Model, r Result) []Warning {
	global := m.Warnings()
	var out []Warning
	for _, w := range r.Warnings {
		if !slices.Contains(global, w) {
			out = append(out, w)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

var (
	mustAddr   = netip.MustParseAddr
	mustPrefix = netip.MustParsePrefix
)

type nodeOpt func(*api.Node)

// mkNode makes a BGP node; v4 and v6 are host addresses with prefix, or "".
func mkNode(name, v4, v6 string, opts ...nodeOpt) *api.Node {
	n := &api.Node{
		ObjectMeta: api.ObjectMeta{Name: name},
		Spec:       api.NodeSpec{BGP: &api.NodeBGPSpec{IPv4Address: v4, IPv6Address: v6}},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func withAS(as uint32) nodeOpt { return func(n *api.Node) { n.Spec.BGP.ASNumber = &as } }

func withCluster(id string) nodeOpt {
	return func(n *api.Node) { n.Spec.BGP.RouteReflectorClusterID = id }
}

func withRouterID(id string) nodeOpt { return func(n *api.Node) { n.Spec.BGP.RouterID = id } }

// withLabels sets labels from key, value pairs.
func withLabels(kv ...string) nodeOpt {
	return func(n *api.Node) {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func globalConfigOf(f func(*api.BGPConfigurationSpec)) *api.BGPConfiguration {
	c := &api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: api.DefaultBGPConfigurationName}}
	f(&c.Spec)
	return c
}

func meshOff() *api.BGPConfiguration {
	return globalConfigOf(func(s *api.BGPConfigurationSpec) { s.NodeToNodeMeshEnabled = ptr(false) })
}

func mkPeer(name string, f func(*api.BGPPeerSpec)) *api.BGPPeer {
	p := &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: name}}
	f(&p.Spec)
	return p
}

// strs renders sessions one per line.
func strs(ss []Session) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.String())
	}
	return out
}

func warnStrs(ws []Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.String())
	}
	return out
}

// checkSymmetric checks that every session between two nodes is
// configured at both ends, consistently: the same two addresses, each
// end's AS and port as the other sees them, exactly one active side, and a
// route-reflector client on one end exactly when the other end sees a
// reflector. This is what lets each node compute its own sessions alone.
func checkSymmetric(t *testing.T, fab map[string]Result) {
	t.Helper()
	type key struct {
		node string
		addr netip.Addr
	}
	sessions := map[key]Session{}
	for name, r := range fab {
		for _, s := range r.Sessions {
			sessions[key{name, s.PeerAddress}] = s
		}
	}
	for name, r := range fab {
		for _, s := range r.Sessions {
			if s.PeerNode == "" {
				continue
			}
			peer, ok := fab[s.PeerNode]
			if !ok {
				t.Errorf("%s: %v: peer node has no result", name, s)
				continue
			}
			local := r.Local.IPv4.Addr()
			if s.PeerAddress.Is6() {
				local = r.Local.IPv6.Addr()
			}
			back, ok := sessions[key{s.PeerNode, local}]
			if !ok {
				t.Errorf("%s has %v but %s has no session back to %s", name, s, s.PeerNode, local)
				continue
			}
			var errs []string
			if back.PeerNode != name {
				errs = append(errs, fmt.Sprintf("back.PeerNode %q", back.PeerNode))
			}
			// Each end's peer AS is the other's local AS (its node's, or
			// a BGPPeer's localASNumber).
			if s.PeerAS != back.LocalAS || back.PeerAS != s.LocalAS || s.EBGP != back.EBGP {
				errs = append(errs, fmt.Sprintf("AS %d/%d vs %d/%d", s.PeerAS, s.LocalAS, back.PeerAS, back.LocalAS))
			}
			if s.PeerPort != peer.Local.ListenPort || back.PeerPort != r.Local.ListenPort {
				errs = append(errs, fmt.Sprintf("ports %d, %d", s.PeerPort, back.PeerPort))
			}
			if s.Passive == back.Passive {
				errs = append(errs, fmt.Sprintf("both passive=%v", s.Passive))
			}
			// A client's reflector treats it as a client; between reflectors
			// of two clusters each is the other's client.
			if (back.Type == api.PeerTypeReflector && !s.RouteReflectorClient) ||
				(s.RouteReflectorClient && back.Type != api.PeerTypeReflector && !back.RouteReflectorClient) {
				errs = append(errs, fmt.Sprintf("rr client %v but other end type %s", s.RouteReflectorClient, back.Type))
			}
			if s.HoldTime != back.HoldTime || s.Password != back.Password {
				errs = append(errs, "hold time or password differ")
			}
			if len(errs) > 0 {
				t.Errorf("%s %v\n  vs %s %v: %v", name, s, s.PeerNode, back, errs)
			}
		}
	}
}
