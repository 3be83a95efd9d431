// Package speaker is the interface between the node's router and its BGP
// speaker, and the types that cross it: the router decides, a Speaker
// speaks. It is its own package, importing nothing of bgpfabric but the
// resource types and route policy, so that the speaker's own binary
// (cmd/bgpfabric-speaker: router/gobgp behind router/speakerproc) links
// neither the datastore nor the router (docs/architecture.md). Package
// router names every type here under the same name.
package speaker

import (
	"context"
	"net/netip"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/routepolicy"
)

// Speaker is the BGP engine under the router, after Cilium's bgpv1
// types.Router: the router decides, the Speaker speaks. The production
// implementation is router/gobgp (GoBGP v3 as a library); router.FakeSpeaker
// keeps its state in maps for unit tests. Only router/gobgp imports GoBGP.
//
// Methods may be called from any goroutine. Watch callbacks are called from
// the Speaker's own goroutines, one at a time per watch, and must not call
// back into the Speaker.
type Speaker interface {
	// Start starts the speaker with the node's global settings. It fails
	// if the speaker runs already.
	Start(ctx context.Context, g Global) error
	// Stop ends every session (peers are sent a Cease) and stops the
	// speaker; it may be started again.
	Stop(ctx context.Context) error

	// AddPeer configures a neighbour; UpdatePeer changes one, restarting
	// its session when reset is true (the change is negotiated in OPEN or
	// belongs to the TCP connection) and otherwise applying it live
	// (prefix limit, next-hop handling: a soft reset out);
	// DeletePeer ends and forgets one.
	AddPeer(ctx context.Context, p PeerConfig) error
	UpdatePeer(ctx context.Context, p PeerConfig, reset bool) error
	DeletePeer(ctx context.Context, addr netip.Addr) error
	// AddPeerRange makes the speaker accept sessions from any router
	// that connects from inside the range's prefix (dynamic neighbours:
	// BIRD's `neighbor range`, FRR's `bgp listen range`); it never
	// connects to them. A configured peer (AddPeer) inside the range
	// stays that peer. UpdatePeerRange replaces a range's settings, which
	// ends the sessions it accepted (their routers connect again);
	// DeletePeerRange stops accepting and ends them. Neither touches any
	// other session. A range that is not configured is added by
	// UpdatePeerRange and nothing to DeletePeerRange.
	AddPeerRange(ctx context.Context, r PeerRangeConfig) error
	UpdatePeerRange(ctx context.Context, r PeerRangeConfig) error
	DeletePeerRange(ctx context.Context, prefix netip.Prefix) error
	// SoftReset asks the peer to send its routes again (route refresh,
	// RFC 2918) when in is true, or sends ours again when it is false.
	SoftReset(ctx context.Context, addr netip.Addr, in bool) error
	// ResetPeer ends a configured peer's session with a NOTIFICATION
	// Cease, Administrative Reset (subcode 4, RFC 4486); the session comes
	// back by itself after a short idle hold, as after any session end.
	ResetPeer(ctx context.Context, addr netip.Addr) error

	// Announce originates our own routes (adding or replacing them), and
	// Withdraw stops originating them.
	Announce(ctx context.Context, routes []LocalRoute) error
	Withdraw(ctx context.Context, prefixes []netip.Prefix) error

	// WatchBestPaths calls fn with every destination whose best paths
	// change, first with all current ones, until ctx ends. A peer's
	// End-of-RIB comes in the same stream, as a Destination with EndOfRIB
	// set, after the changes its routes caused: a router that ends a
	// graceful restart on End-of-RIB then has every route the peer resent.
	WatchBestPaths(ctx context.Context, fn func([]Destination)) error
	// WatchPeers calls fn with every change of a peer's session state and
	// every error a session reports, until ctx ends.
	WatchPeers(ctx context.Context, fn func(PeerEvent)) error

	// Peers returns the state and counters of every configured peer and
	// of every dynamic neighbour that a range accepted (Dynamic set).
	Peers(ctx context.Context) ([]PeerStatus, error)
	// RIB returns the speaker's table: every destination with all its
	// paths, best first.
	RIB(ctx context.Context) ([]Destination, error)
}

// Global is the speaker's own identity.
type Global struct {
	AS       uint32
	RouterID netip.Addr
	// ListenPort is where peers connect; 0 means 179, and -1 means not
	// listening (tests that only dial).
	ListenPort int32
	// ListenAddresses restricts listening; empty means all addresses.
	ListenAddresses []netip.Addr
	// ExportPolicy says which paths leave the speaker.
	ExportPolicy ExportPolicy
	// ReceivedPaths says that the router selects the best paths itself
	// from WatchReceived (a PathWatcher speaker): a speaker that reports
	// its events from another process (router/speakerproc) then reports
	// received paths instead of best-path changes.
	ReceivedPaths bool
}

// ExportPolicy is the speaker-wide export rule.
type ExportPolicy int

const (
	// ExportLocalOnly advertises only the routes we originate: no transit.
	ExportLocalOnly ExportPolicy = iota
	// ExportNoExternal also reflects iBGP routes (a route-reflector node)
	// but never passes on what eBGP peers sent.
	ExportNoExternal
	// ExportAll leaves advertising to BGP's own rules.
	ExportAll
)

// PeerConfig is one neighbour as the speaker configures it.
type PeerConfig struct {
	Address      netip.Addr
	Port         uint16
	PeerAS       uint32
	LocalAS      uint32
	LocalAddress netip.Addr // zero: the kernel chooses
	Passive      bool
	// HoldTime and KeepaliveTime are what we propose; 0/0 means no
	// keepalives.
	HoldTime, KeepaliveTime time.Duration
	// Password is the TCP MD5 (RFC 2385) key, "" for none.
	Password             string
	RouteReflectorClient bool
	ClusterID            netip.Addr
	MaxPrefixes          uint32
	TTLSecurity          uint8
	EBGPMultihop         uint8
	KeepOriginalNextHop  bool
	// NextHopSelf sets the session's local address as the next hop of
	// every route sent, also those passed on to an iBGP peer
	// (nextHopMode Self); not with KeepOriginalNextHop.
	NextHopSelf     bool
	GracefulRestart GracefulRestart
	// Families to negotiate: IPv4 and/or IPv6 unicast.
	IPv4, IPv6 bool
	// Policy is the session's import and export policy (BGPFilters and
	// the default, see docs/policy.md). It is in force before the session
	// starts; a change is applied live by UpdatePeer without a reset
	// (the received routes are evaluated again, ours sent again).
	Policy routepolicy.Policy
}

// PeerRangeConfig is a range of dynamic neighbours as the speaker
// configures it: every session it accepts gets these settings. The
// routers connect, so there is no port, local address or passive mode;
// the family negotiated is the prefix's.
type PeerRangeConfig struct {
	Prefix  netip.Prefix
	PeerAS  uint32
	LocalAS uint32
	// HoldTime and KeepaliveTime are what we propose; 0/0 means no
	// keepalives.
	HoldTime, KeepaliveTime time.Duration
	// Password is the TCP MD5 (RFC 2385) key for the whole prefix, ""
	// for none.
	Password             string
	RouteReflectorClient bool
	ClusterID            netip.Addr
	MaxPrefixes          uint32
	TTLSecurity          uint8
	EBGPMultihop         uint8
	KeepOriginalNextHop  bool
	NextHopSelf          bool
	// GracefulRestart: LocalRestarting is not used (a router that
	// connects after our restart gets a fresh session).
	GracefulRestart GracefulRestart
	// Policy applies to every session the range accepts, as
	// PeerConfig's.
	Policy routepolicy.Policy
}

// GracefulRestart is RFC 4724 for one session.
type GracefulRestart struct {
	Enabled bool
	// RestartTime is what we ask the peer to wait for us; StaleRoutesTime
	// how long we keep a restarting peer's routes.
	RestartTime, StaleRoutesTime time.Duration
	// LongLivedStaleTime enables long-lived graceful restart (RFC 9494):
	// the peer keeps our routes as LLGR-stale for that long after the
	// restart time, and we keep its for the time it advertises (GoBGP's
	// helper). Zero is off.
	LongLivedStaleTime time.Duration
	// LocalRestarting sets the R bit: we are coming back from a restart
	// and peers should send End-of-RIB before we select routes.
	LocalRestarting bool
}

// LocalRoute is a route we originate.
type LocalRoute struct {
	Prefix netip.Prefix
	// NextHop is the zero Addr to let the speaker use the session's local
	// address (next-hop-self), which is what the router always does.
	NextHop     netip.Addr
	Communities []api.Community
	// GracefulShutdown sends the route to iBGP peers with LOCAL_PREF 0
	// (RFC 8326: a drained node, router/drain.go); the router puts the
	// GRACEFUL_SHUTDOWN community in Communities.
	GracefulShutdown bool
}

// Destination is one prefix in the BGP table.
type Destination struct {
	Prefix netip.Prefix
	// Paths are the destination's paths. From WatchBestPaths they are
	// the equal-cost best ones (the multipath set, best first); none
	// means the prefix is gone. From RIB they are all of them, best first.
	Paths []Path
	// EndOfRIB, when valid, makes this no destination but the End-of-RIB
	// of that peer (WatchBestPaths only; Prefix and Paths are unset).
	EndOfRIB netip.Addr
}

// Path is one path to a destination.
type Path struct {
	NextHop netip.Addr
	// Local is set on the paths we originate.
	Local bool
	// Peer is the neighbour it came from (zero for local paths) and
	// PeerAS its AS.
	Peer   netip.Addr
	PeerAS uint32
	// ASPath is the AS_PATH flattened; Communities the standard and large
	// communities.
	ASPath      []uint32
	Communities []api.Community
	LocalPref   uint32
	MED         uint32
	// Origin is the ORIGIN attribute: 0 IGP, 1 EGP, 2 INCOMPLETE.
	Origin uint8
	// Best marks the best path in RIB's output.
	Best bool
	// Stale marks a path kept for a restarting peer (RFC 4724).
	Stale bool
	Age   time.Time
}

// PeerEvent is a change of one session.
type PeerEvent struct {
	Address netip.Addr
	// State is set when the session's state changed.
	State api.BGPState
	// Err is set when the session reported a problem (a NOTIFICATION
	// sent or received, a malformed UPDATE treated as withdraw, the
	// prefix limit reached).
	Err string
	// EndOfRIB is set when the peer sent End-of-RIB for a family. A
	// speaker that can keep it in order with the peer's routes reports it
	// through WatchBestPaths instead (the GoBGP one does).
	EndOfRIB bool
}

// PeerStatus is one peer's state and counters.
type PeerStatus struct {
	Address            netip.Addr
	PeerAS             uint32
	State              api.BGPState
	Since              time.Time // when the state was entered (uptime when Established)
	PrefixesReceived   uint64
	PrefixesAccepted   uint64
	PrefixesAdvertised uint64
	// EndOfRIBReceived is true when the peer sent End-of-RIB for every
	// negotiated family.
	EndOfRIBReceived bool
	// Dynamic is set on a dynamic neighbour: a router that a range
	// accepted, not a configured peer.
	Dynamic bool
}

// SpeakerLoss says that the speaker died without Stop: its process ended
// (router/speakerproc runs it in a child process, where a panic in
// GoBGP's decoder on a peer's message ends only the child).
type SpeakerLoss struct {
	// At is when the loss was seen; Err why (the exit status).
	At  time.Time
	Err error
	// Panic is the start of the speaker's panic, "" if it printed none.
	Panic string
	// LastUp is the peer whose session came up last before the death
	// (zero: none did), and LastUpAt when. A peer's first UPDATE follows
	// its session's coming up, so a peer that crashes the speaker with
	// what it sends first is the last one up when the speaker dies.
	LastUp   netip.Addr
	LastUpAt time.Time
}

// LossWatcher is implemented by a Speaker that can die on its own. The
// router watches it: on a loss it keeps felix's and its own kernel routes,
// starts the speaker again after a backoff, replays its sessions and
// routes with graceful restart, and quarantines a peer that keeps
// crashing it (docs/robustness.md).
type LossWatcher interface {
	// WatchLoss calls fn on every loss until ctx ends, after every event
	// that the dead speaker sent to the watches of WatchPeers and
	// WatchBestPaths. After a loss, Start starts a new speaker.
	WatchLoss(ctx context.Context, fn func(SpeakerLoss)) error
}

// Received is one change of the paths the speaker's peers sent: a path
// (replacing the one the peer sent for the prefix before) or its
// withdrawal, or a peer's End-of-RIB.
type Received struct {
	Prefix netip.Prefix
	// Peer is the neighbour that sent it.
	Peer netip.Addr
	// Withdrawn says the peer no longer has a path to Prefix (it
	// withdrew it, its session ended, its stale paths were dropped, or
	// the speaker's own import rules reject it); Path is then unset.
	Withdrawn bool
	// Path is the path as the speaker holds it: after its own checks
	// (AS loops) and fixed import rules (a received GRACEFUL_SHUTDOWN's
	// LOCAL_PREF), with LocalPref 100 when the peer sent none (an eBGP
	// peer's path).
	Path Path
	// EndOfRIB, when valid, makes this no path but the End-of-RIB of that
	// peer, after the paths it ended.
	EndOfRIB netip.Addr
}

// PathWatcher is implemented by a Speaker that reports every path its
// peers send, not only best-path changes: the router then keeps them (its
// Adj-RIB-In), applies the sessions' import policy and selects the best
// paths itself, so that a policy change is evaluated in the router,
// without the speaker's soft reset (docs/policy.md).
type PathWatcher interface {
	// WatchReceived calls fn with every change of the received paths,
	// first with all current ones, until ctx ends. End-of-RIB comes in
	// the same stream, after the paths it ends.
	WatchReceived(ctx context.Context, fn func([]Received)) error
}
