package peering

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
)

// Session is one BGP neighbour that a node should have. It is a plain
// comparable value: two Sessions are the same configuration exactly when
// they are ==.
type Session struct {
	// PeerAddress and PeerPort are where the neighbour listens. The port
	// is always set: a node's listen port for node peers, the port of the
	// BGPPeer's peerIP, or 179.
	PeerAddress netip.Addr
	PeerPort    uint16
	// PeerAS and LocalAS are the two ends' AS numbers; EBGP is PeerAS !=
	// LocalAS.
	PeerAS  uint32
	LocalAS uint32
	EBGP    bool
	// LocalAddress is the node's own address of the peer's family, to bind
	// the session to; it is the zero Addr when the BGPPeer says
	// sourceAddress: None (the kernel chooses).
	LocalAddress netip.Addr
	// Type is why the session exists, as BGPStatus reports it.
	Type api.BGPPeerType
	// Source is the name of the BGPPeer that produced the session, or
	// SourceMesh.
	Source string
	// PeerNode is the Node at PeerAddress, if it is one of the fabric's.
	PeerNode string
	// PeerClusterID is the peer node's routeReflectorClusterID, if any.
	PeerClusterID netip.Addr
	// RouteReflectorClient says that this node is a route reflector and
	// the peer is its client (RFC 4456); ClusterID is then this node's
	// cluster ID.
	RouteReflectorClient bool
	ClusterID            netip.Addr
	// Passive sessions wait for the peer to connect. Between two nodes
	// exactly one side is passive (the one with the lower address), so
	// that they never race to open two connections (as Calico's mesh).
	Passive bool
	// HoldTime and KeepaliveTime are what we propose (0 and 0: no
	// keepalives).
	HoldTime      time.Duration
	KeepaliveTime time.Duration
	// GracefulRestart is the RFC 4724 configuration, from BGPConfiguration.
	GracefulRestart GracefulRestart
	// Password is where the TCP MD5 password is; the zero value means none.
	// Reading the secret is the router's job.
	Password SecretRef
	// KeepOriginalNextHop leaves next hops unchanged on routes we send; it
	// is only ever set on eBGP sessions (iBGP never rewrites next hops).
	KeepOriginalNextHop bool
	// NextHopSelf sets our address as the next hop of every route we
	// send, also of those reflected to iBGP peers (BGPPeer nextHopMode
	// Self); it is only ever set on iBGP sessions (eBGP does it anyway).
	NextHopSelf bool
	// MaxPrefixes closes the session when the peer sends more; 0 is no
	// limit.
	MaxPrefixes uint32
	// TTLSecurity is the GTSM hop count (RFC 5082), 0 when off.
	// EBGPMultihop is the TTL for an eBGP peer that is not directly
	// connected, 0 when unset.
	TTLSecurity  uint8
	EBGPMultihop uint8
	// BFD is the session's BFD (bfd.go); the zero value when off.
	BFD BFD
	// Families are the BGPPeer's spec.families in canonical order, comma
	// separated (api.CanonicalFamilies); "" is the default, IPv4 and IPv6
	// unicast. Set on route reflectors only: a node's router negotiates
	// the unicast family of the peer's address, and a BGPPeer that asks a
	// node for another family gets a warning (see Model.NonReflectorUsers).
	Families string
}

// SourceMesh is the Source of node-to-node mesh sessions.
const SourceMesh = "mesh"

// GracefulRestart is a session's graceful restart (RFC 4724) settings.
type GracefulRestart struct {
	Enabled bool
	// RestartTime is what we ask peers to wait for us; StaleRoutesTime is
	// how long we keep a restarting peer's routes.
	RestartTime     time.Duration
	StaleRoutesTime time.Duration
	// LongLivedStaleTime enables long-lived graceful restart (RFC 9494);
	// zero is off.
	LongLivedStaleTime time.Duration
}

// SecretRef names the secret key that holds a password.
type SecretRef struct {
	Name, Key string
}

// IsZero reports whether no secret is referenced.
func (r SecretRef) IsZero() bool { return r == SecretRef{} }

// AddrPort returns the peer's address and port.
func (s Session) AddrPort() netip.AddrPort { return netip.AddrPortFrom(s.PeerAddress, s.PeerPort) }

// String renders the session on one line for logs and tests, e.g.
// "10.0.0.2:179 mesh iBGP as 64512 from 10.0.0.1 node n2 passive".
// Timers and graceful restart are left out; the other settings appear
// only when set.
func (s Session) String() string {
	var b strings.Builder
	kind := "iBGP"
	if s.EBGP {
		kind = "eBGP"
	}
	fmt.Fprintf(&b, "%s %s %s", s.AddrPort(), s.Type, kind)
	if s.EBGP {
		fmt.Fprintf(&b, " as %d->%d", s.LocalAS, s.PeerAS)
	} else {
		fmt.Fprintf(&b, " as %d", s.PeerAS)
	}
	if s.LocalAddress.IsValid() {
		fmt.Fprintf(&b, " from %s", s.LocalAddress)
	}
	if s.Source != SourceMesh {
		fmt.Fprintf(&b, " bgppeer %s", s.Source)
	}
	if s.PeerNode != "" {
		fmt.Fprintf(&b, " node %s", s.PeerNode)
	}
	if s.RouteReflectorClient {
		fmt.Fprintf(&b, " rr-client cluster %s", s.ClusterID)
	}
	if s.Passive {
		b.WriteString(" passive")
	}
	writeOptions(&b, s.Password, s.KeepOriginalNextHop, s.MaxPrefixes, s.TTLSecurity, s.EBGPMultihop)
	if s.NextHopSelf {
		b.WriteString(" next-hop-self")
	}
	if s.BFD.Enabled {
		b.WriteString(" " + s.BFD.String())
	}
	if s.Families != "" {
		b.WriteString(" families " + s.Families)
	}
	return b.String()
}

// writeOptions renders the per-peer options that sessions and ranges
// share, each only when set.
func writeOptions(b *strings.Builder, pw SecretRef, keepNextHop bool, maxPrefixes uint32, ttlSecurity, multihop uint8) {
	if !pw.IsZero() {
		fmt.Fprintf(b, " password %s/%s", pw.Name, pw.Key)
	}
	if keepNextHop {
		b.WriteString(" next-hop-keep")
	}
	if maxPrefixes != 0 {
		fmt.Fprintf(b, " max-prefixes %d", maxPrefixes)
	}
	if ttlSecurity != 0 {
		fmt.Fprintf(b, " ttl-security %d", ttlSecurity)
	}
	if multihop != 0 {
		fmt.Fprintf(b, " multihop %d", multihop)
	}
}

// Local is the node's own speaker settings, which every one of its
// sessions shares.
type Local struct {
	Node     string
	AS       uint32
	RouterID netip.Addr
	// IPv4 and IPv6 are the node's peering addresses with their subnets;
	// the zero Prefix when the node has none of that family.
	IPv4, IPv6 netip.Prefix
	// ListenPort is from BGPConfiguration "node.<name>", else "default",
	// else 179.
	ListenPort uint16
	// ClusterID is set on a route reflector.
	ClusterID netip.Addr
}

// IsReflector reports whether the node is a route reflector.
func (l Local) IsReflector() bool { return l.ClusterID.IsValid() }

// Result is what Compute returns for one node.
type Result struct {
	Local Local
	// Sessions are sorted by peer address (IPv4 first); no two have the
	// same address.
	Sessions []Session
	// PeerRanges are the node's dynamic-neighbour ranges (BGPPeers with
	// peerPrefix that select it), sorted by prefix; no two have the same
	// prefix.
	PeerRanges []PeerRange
	// Warnings are problems that did not stop the computation: something
	// the user asked for that cannot be set up, or was shadowed.
	Warnings []Warning
}

// Warning is a problem with one resource that was skipped over.
type Warning struct {
	Kind string // api.KindNode, api.KindBGPPeer, api.KindBGPConfiguration
	Name string
	Msg  string
}

// String renders the warning as "BGPPeer tor: ...".
func (w Warning) String() string { return w.Kind + " " + w.Name + ": " + w.Msg }

func compareWarnings(a, b Warning) int {
	if c := strings.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return strings.Compare(a.Msg, b.Msg)
}
