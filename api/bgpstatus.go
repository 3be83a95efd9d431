package api

import "fmt"

// BGPStatus is what the BGP speaker of one node reports (named after the
// node): its identity and the state of each of its sessions.
type BGPStatus struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Status     BGPStatusReport `json:"status"`
}

// BGPStatusReport is the speaker's state.
type BGPStatusReport struct {
	RouterID string `json:"routerID"`
	ASNumber uint32 `json:"asNumber"`
	// LastUpdate is when the report was written (RFC 3339).
	LastUpdate string          `json:"lastUpdate"`
	Peers      []BGPPeerStatus `json:"peers,omitempty"`
}

// BGPPeerStatus is the state of one session.
type BGPPeerStatus struct {
	PeerIP   string      `json:"peerIP"`
	ASNumber uint32      `json:"asNumber"`
	Type     BGPPeerType `json:"type"`
	State    BGPState    `json:"state"`
	// Since is when the session entered State (RFC 3339).
	Since              string `json:"since,omitempty"`
	PrefixesReceived   uint64 `json:"prefixesReceived"`
	PrefixesAccepted   uint64 `json:"prefixesAccepted"`
	PrefixesAdvertised uint64 `json:"prefixesAdvertised"`
	// LastError is why the session last went down.
	LastError string `json:"lastError,omitempty"`
	// Policy is set when the session's route policy is not what its
	// BGPPeer asks: e.g. a filter it names does not exist, so that the
	// session has only the default (docs/policy.md).
	Policy string `json:"policy,omitempty"`
	// QuarantinedUntil is set (RFC 3339) while the peer is held down
	// because its sessions kept crashing the node's BGP speaker
	// (docs/robustness.md).
	QuarantinedUntil string `json:"quarantinedUntil,omitempty"`
	// BFD is the state of the session's BFD session (AdminDown, Down,
	// Init, Up; "Error: ..." when it could not be set up), empty without
	// BFD.
	BFD string `json:"bfd,omitempty"`
}

// BGPPeerType is why a session exists. Whether it is eBGP shows in its
// asNumber against the node's.
type BGPPeerType string

// Peer types.
const (
	PeerTypeMesh            BGPPeerType = "mesh"            // the node-to-node mesh
	PeerTypeGlobal          BGPPeerType = "global"          // a BGPPeer for all nodes
	PeerTypeNode            BGPPeerType = "node"            // a BGPPeer for this node or its selector
	PeerTypeReflector       BGPPeerType = "reflector"       // a route reflector this node is a client of
	PeerTypeReflectorClient BGPPeerType = "reflectorClient" // a client of this node, a reflector
)

// BGPState is a BGP finite state machine state (RFC 4271).
type BGPState string

// BGP states.
const (
	BGPIdle        BGPState = "Idle"
	BGPConnect     BGPState = "Connect"
	BGPActive      BGPState = "Active"
	BGPOpenSent    BGPState = "OpenSent"
	BGPOpenConfirm BGPState = "OpenConfirm"
	BGPEstablished BGPState = "Established"
)

func init() {
	register(KindInfo{Kind: KindBGPStatus, Plural: "bgpstatuses", Status: true, New: func() Resource { return &BGPStatus{} }})
}

// GetTypeMeta implements Resource.
func (b *BGPStatus) GetTypeMeta() *TypeMeta { return &b.TypeMeta }

// GetObjectMeta implements Resource.
func (b *BGPStatus) GetObjectMeta() *ObjectMeta { return &b.ObjectMeta }

// DeepCopyResource implements Resource.
func (b *BGPStatus) DeepCopyResource() Resource { return deepCopy(b) }

// Default implements Resource.
func (b *BGPStatus) Default() { setTypeMeta(&b.TypeMeta, KindBGPStatus) }

// Validate implements Resource.
func (b *BGPStatus) Validate() error {
	var fe fieldErrors
	validateMeta(&fe, KindBGPStatus, b)
	s := &b.Status
	if s.RouterID == "" {
		fe.add("status.routerID", nil, "is required")
	}
	validateDottedQuad(&fe, "status.routerID", s.RouterID)
	if s.ASNumber == 0 {
		fe.add("status.asNumber", s.ASNumber, "must be an AS number from 1 to 4294967295")
	}
	validateTimestamp(&fe, "status.lastUpdate", s.LastUpdate, true)
	for i, p := range s.Peers {
		pp := fmt.Sprintf("status.peers[%d]", i)
		if _, _, err := ParsePeerIP(p.PeerIP); err != nil {
			fe.add(pp+".peerIP", p.PeerIP, "%v", err)
		}
		switch p.Type {
		case PeerTypeMesh, PeerTypeGlobal, PeerTypeNode, PeerTypeReflector, PeerTypeReflectorClient:
		default:
			fe.add(pp+".type", string(p.Type), "must be mesh, global, node, reflector or reflectorClient")
		}
		switch p.State {
		case BGPIdle, BGPConnect, BGPActive, BGPOpenSent, BGPOpenConfirm, BGPEstablished:
		default:
			fe.add(pp+".state", string(p.State), "must be Idle, Connect, Active, OpenSent, OpenConfirm or Established")
		}
		validateTimestamp(&fe, pp+".since", p.Since, false)
	}
	return fe.result(KindBGPStatus, b)
}
