// Package routeview holds the JSON shape of a BGP table's routes that the
// reflector's `show routes` and the node's `bgpfabric routes` share. It
// imports nothing of bgpfabric's, so that the node binary links it without
// the reflector.
package routeview

import "net/netip"

// Destination is one prefix with its paths, best first. Its JSON
// names are those of the node's `bgpfabric routes -o json`.
type Destination struct {
	// Prefix is a unicast destination; NLRI any other family's, as
	// GoBGP renders it (e.g. "[type:macadv][rd:65000:1][etag:0][mac:...]").
	Prefix netip.Prefix `json:"prefix,omitzero"`
	NLRI   string       `json:"nlri,omitempty"`
	Family string       `json:"family"`
	Paths  []Path       `json:"paths"`
}

// Path is one path of a destination.
type Path struct {
	// Peer is the neighbour the path came from, PeerAS its AS.
	Peer      netip.Addr `json:"peer"`
	PeerAS    uint32     `json:"peerAS"`
	NextHop   netip.Addr `json:"nextHop"`
	Origin    string     `json:"origin,omitempty"`
	ASPath    []uint32   `json:"asPath"`
	LocalPref uint32     `json:"localPref"`
	MED       uint32     `json:"med"`
	// Communities are the standard ("a:b") and large ("a:b:c") ones;
	// ExtendedCommunities GoBGP's rendering of RFC 4360's.
	Communities         []string     `json:"communities,omitempty"`
	ExtendedCommunities []string     `json:"extendedCommunities,omitempty"`
	OriginatorID        netip.Addr   `json:"originatorID,omitzero"`
	ClusterList         []netip.Addr `json:"clusterList,omitempty"`
	Best                bool         `json:"best"`
	// Stale marks a path kept for a restarting neighbour (RFC 4724).
	Stale bool `json:"stale"`
}
