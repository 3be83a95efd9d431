package api

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// BGPPeer is a BGP session to set up: with a router at PeerIP, with
// every node that PeerSelector matches, or with any router that connects
// from inside PeerPrefix (dynamic neighbours). Which nodes have the
// session is Node (one node), NodeSelector (the nodes it matches) or, with
// neither, every node (a global peer).
type BGPPeer struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       BGPPeerSpec `json:"spec"`
}

// BGPPeerSpec is a BGPPeer's configuration.
type BGPPeerSpec struct {
	// Node is the one node that has this peer.
	Node string `json:"node,omitempty"`
	// NodeSelector selects the nodes that have this peer.
	NodeSelector string `json:"nodeSelector,omitempty"`
	// PeerIP is the peer's address, optionally with a port:
	// "10.0.0.1", "10.0.0.1:1179", "fd00::1" or "[fd00::1]:1179".
	PeerIP string `json:"peerIP,omitempty"`
	// PeerSelector selects nodes to peer with instead of PeerIP.
	PeerSelector string `json:"peerSelector,omitempty"`
	// PeerPrefix, instead of PeerIP or PeerSelector, is a network
	// ("10.0.0.0/16", "fd00::/64") from which any router may connect:
	// dynamic neighbours, which the node only waits for (on a route
	// reflector, iBGP ones are its clients).
	PeerPrefix string `json:"peerPrefix,omitempty"`
	// ASNumber is the peer's AS: required with PeerIP; with PeerSelector,
	// unset means each selected node's own AS; with PeerPrefix, unset
	// means the AS of the node that has the session (iBGP).
	ASNumber *uint32 `json:"asNumber,omitempty"`
	// Password authenticates the session with TCP MD5 (RFC 2385).
	Password *BGPPassword `json:"password,omitempty"`
	// KeepOriginalNextHop leaves the next hop of routes advertised to the
	// peer as it was, instead of setting it to this node.
	KeepOriginalNextHop bool `json:"keepOriginalNextHop,omitempty"`
	// NextHopMode is Calico's: Auto (default: next hop self towards eBGP
	// peers, unchanged towards iBGP peers), Self (always this node, also
	// on routes it reflects to iBGP peers) or Keep (always unchanged, also
	// towards eBGP peers: keepOriginalNextHop, which it replaces).
	NextHopMode string `json:"nextHopMode,omitempty"`
	// LocalASNumber is the AS this node uses on the peer's sessions
	// instead of its own (Calico's): the session is eBGP when it differs
	// from the peer's.
	LocalASNumber *uint32 `json:"localASNumber,omitempty"`
	// MaxPrefixes is the most prefixes accepted from the peer before the
	// session is closed; 0 is unlimited.
	MaxPrefixes uint32 `json:"maxPrefixes,omitempty"`
	// KeepaliveTime and HoldTime override BGPConfiguration's, with the same
	// syntax and rules.
	KeepaliveTime Duration `json:"keepaliveTime,omitempty"`
	HoldTime      Duration `json:"holdTime,omitempty"`
	// SourceAddress is UseNodeIP (default: bind to the node's address of
	// the peer's family) or None (let the kernel choose).
	SourceAddress string `json:"sourceAddress,omitempty"`
	// TTLSecurity enables GTSM (RFC 5082): the peer is at most this many
	// hops away (1..255). Not with EBGPMultihop.
	TTLSecurity *int `json:"ttlSecurity,omitempty"`
	// EBGPMultihop is the TTL of packets to an eBGP peer that is not
	// directly connected (1..255).
	EBGPMultihop *int `json:"ebgpMultihop,omitempty"`
	// BFD overrides BGPConfiguration's bfd for this peer's sessions,
	// field by field (api/bfd.go).
	BFD *BFD `json:"bfd,omitempty"`
	// Filters names the BGPFilters of the peer's sessions, applied in
	// order (see docs/policy.md). `bgpfabric apply` refuses a name with no
	// BGPFilter; one deleted later leaves the session the default policy
	// alone (for eBGP under RFC 8212, nothing in or out) until it is back,
	// and its status says so.
	Filters []string `json:"filters,omitempty"`
	// Families are the address families of the peer's sessions
	// (BGPPeerFamilies; default ipv4-unicast and ipv6-unicast). Families
	// other than those two are carried by route reflectors only:
	// `bgpfabric apply` refuses them on a BGPPeer that a Node without
	// spec.bgp.routeReflectorClusterID has sessions of.
	Families []string `json:"families,omitempty"`
}

// BGPPassword says where a session's password comes from.
type BGPPassword struct {
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef,omitempty"`
}

// SecretKeySelector names one key of a secret.
type SecretKeySelector struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// Values of BGPPeerSpec.NextHopMode.
const (
	NextHopModeAuto = "Auto"
	NextHopModeSelf = "Self"
	NextHopModeKeep = "Keep"
)

// Values of BGPPeerSpec.SourceAddress.
const (
	SourceAddressUseNodeIP = "UseNodeIP"
	SourceAddressNone      = "None"
)

var secretKeyRE = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

func init() {
	register(KindInfo{Kind: KindBGPPeer, Plural: "bgppeers", Short: []string{"bgppeer"}, New: func() Resource { return &BGPPeer{} }})
}

// GetTypeMeta implements Resource.
func (p *BGPPeer) GetTypeMeta() *TypeMeta { return &p.TypeMeta }

// GetObjectMeta implements Resource.
func (p *BGPPeer) GetObjectMeta() *ObjectMeta { return &p.ObjectMeta }

// DeepCopyResource implements Resource.
func (p *BGPPeer) DeepCopyResource() Resource { return deepCopy(p) }

// Default implements Resource.
func (p *BGPPeer) Default() {
	setTypeMeta(&p.TypeMeta, KindBGPPeer)
	if p.Spec.SourceAddress == "" {
		p.Spec.SourceAddress = SourceAddressUseNodeIP
	}
	p.Spec.PeerPrefix = canonicalPrefix(p.Spec.PeerPrefix)
}

// Validate implements Resource.
func (p *BGPPeer) Validate() error {
	var fe fieldErrors
	validateMeta(&fe, KindBGPPeer, p)
	s := &p.Spec
	if s.Node != "" {
		validateName(&fe, "spec.node", s.Node)
	}
	if s.NodeSelector != "" {
		if s.Node != "" {
			fe.add("spec.nodeSelector", s.NodeSelector, "must not be set with spec.node")
		}
		validateSelector(&fe, "spec.nodeSelector", s.NodeSelector)
	}
	switch {
	case s.PeerIP == "" && s.PeerSelector == "" && s.PeerPrefix == "":
		fe.add("spec.peerIP", nil, "one of peerIP, peerSelector and peerPrefix is required")
	case s.PeerIP != "" && s.PeerSelector != "":
		fe.add("spec.peerSelector", s.PeerSelector, "must not be set with spec.peerIP")
	case s.PeerPrefix != "" && (s.PeerIP != "" || s.PeerSelector != ""):
		other := "spec.peerIP"
		if s.PeerSelector != "" {
			other = "spec.peerSelector"
		}
		fe.add("spec.peerPrefix", s.PeerPrefix, "must not be set with %s", other)
	case s.PeerPrefix != "":
		validateNetworkPrefix(&fe, "spec.peerPrefix", s.PeerPrefix)
	case s.PeerIP != "":
		if _, _, err := ParsePeerIP(s.PeerIP); err != nil {
			fe.add("spec.peerIP", s.PeerIP, "%v", err)
		}
		if s.ASNumber == nil {
			fe.add("spec.asNumber", nil, "is required with spec.peerIP")
		}
	default:
		validateSelector(&fe, "spec.peerSelector", s.PeerSelector)
	}
	validateASN(&fe, "spec.asNumber", s.ASNumber)
	validateASN(&fe, "spec.localASNumber", s.LocalASNumber)
	switch s.NextHopMode {
	case "", NextHopModeAuto, NextHopModeKeep:
	case NextHopModeSelf:
		if s.KeepOriginalNextHop {
			fe.add("spec.nextHopMode", s.NextHopMode, "must not be Self with spec.keepOriginalNextHop")
		}
	default:
		fe.add("spec.nextHopMode", s.NextHopMode, "must be Auto, Self or Keep")
	}
	if pw := s.Password; pw != nil {
		switch ref := pw.SecretKeyRef; {
		case ref == nil:
			fe.add("spec.password.secretKeyRef", nil, "is required")
		default:
			validateName(&fe, "spec.password.secretKeyRef.name", ref.Name)
			if ref.Key == "" || len(ref.Key) > 253 || !secretKeyRE.MatchString(ref.Key) {
				fe.add("spec.password.secretKeyRef.key", ref.Key, "must be 1 to 253 characters of [-._a-zA-Z0-9]")
			}
		}
	}
	validateBGPTimers(&fe, "spec.", s.KeepaliveTime, s.HoldTime)
	switch s.SourceAddress {
	case "", SourceAddressUseNodeIP, SourceAddressNone:
	default:
		fe.add("spec.sourceAddress", s.SourceAddress, "must be %s or %s", SourceAddressUseNodeIP, SourceAddressNone)
	}
	for _, f := range []struct {
		name string
		v    *int
	}{{"ttlSecurity", s.TTLSecurity}, {"ebgpMultihop", s.EBGPMultihop}} {
		if f.v != nil && (*f.v < 1 || *f.v > 255) {
			fe.add("spec."+f.name, *f.v, "must be from 1 to 255")
		}
	}
	for i, name := range s.Filters {
		validateName(&fe, fmt.Sprintf("spec.filters[%d]", i), name)
	}
	if s.TTLSecurity != nil && s.EBGPMultihop != nil {
		fe.add("spec.ebgpMultihop", *s.EBGPMultihop, "must not be set with spec.ttlSecurity")
	}
	validateFamilies(&fe, "spec.families", s.Families, s.Node == "" && s.NodeSelector == "")
	validateBFD(&fe, "spec.bfd", s.BFD)
	if s.PeerPrefix != "" && s.BFD != nil && s.BFD.Enabled != nil && *s.BFD.Enabled {
		fe.add("spec.bfd.enabled", true, "BFD is not available for dynamic neighbours (spec.peerPrefix)")
	}
	return fe.result(KindBGPPeer, p)
}

// ParsePeerIP splits a peerIP into the address and the port, which is 0 if
// not given: "10.0.0.1", "10.0.0.1:1179", "fd00::1", "[fd00::1]:1179".
func ParsePeerIP(s string) (netip.Addr, uint16, error) {
	bad := fmt.Errorf("must be an IP address, optionally with a port (\"10.0.0.1:1179\", \"[fd00::1]:1179\")")
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Addr{}, 0, bad
		}
		return a, 0, nil
	}
	if !strings.HasPrefix(s, "[") && strings.Count(s, ":") > 1 {
		return netip.Addr{}, 0, bad
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.Addr{}, 0, bad
	}
	host, port := s[:i], s[i+1:]
	if h, ok := strings.CutPrefix(host, "["); ok {
		h, ok = strings.CutSuffix(h, "]")
		if !ok || !strings.Contains(h, ":") {
			return netip.Addr{}, 0, bad
		}
		host = h
	}
	a, err := netip.ParseAddr(host)
	n, perr := strconv.ParseUint(port, 10, 16)
	if err != nil || a.Zone() != "" || perr != nil || n == 0 {
		return netip.Addr{}, 0, bad
	}
	return a, uint16(n), nil
}
