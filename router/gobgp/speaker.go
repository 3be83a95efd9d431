// Package gobgp is the router's Speaker on GoBGP v3 (pkg/server), used as a
// library in this process: no gobgpd, no gRPC. It is the only package of
// bgpfabric's router that imports GoBGP.
//
// TCP MD5: GoBGP sets the peers' keys on its listening sockets. Since Go
// 1.24, net.ListenConfig makes MPTCP sockets by default, and the kernel
// refuses TCP_MD5SIG on them (ENOPROTOOPT), so with MPTCP listeners a peer
// with a password could never connect to us. Binaries that use this
// package must turn MPTCP listeners off: `//go:debug multipathtcp=0` in
// package main (cmd/bgpfabric does) or GODEBUG=multipathtcp=0. AddPeer
// refuses a password while MPTCP listeners are on, naming the fix.
//
// Dynamic neighbours (speaker.PeerRangeConfig) are GoBGP peer groups with a
// dynamic-neighbour prefix, TCP MD5 included (TCP_MD5SIG_EXT on the
// listeners for the whole prefix): see ranges.go.
//
// Network namespaces: GoBGP opens its sockets from its own goroutines, so
// they are in the namespace of the process (of whatever thread the Go
// runtime picks). Run one Speaker per process, in the node's namespace.
package gobgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"

	bfapi "github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/router/speaker"
)

// Config configures a Speaker.
type Config struct {
	// Logger receives GoBGP's logs; nil discards them.
	Logger *slog.Logger
}

// Speaker is a speaker.Speaker on a GoBGP BgpServer.
type Speaker struct {
	lg  *slog.Logger
	srv *server.BgpServer

	mu      sync.Mutex // guards started and global; held across Start and Stop
	started bool
	global  speaker.Global

	// fnMu guards peerFns apart from mu: GoBGP logs (and so calls
	// peerError) while Stop waits for its sessions to end.
	fnMu    sync.Mutex
	peerFns []func(speaker.PeerEvent)

	// peerMu guards peers, the configuration of every peer we added, and
	// ranges, every range (ranges.go), and serialises changes to GoBGP's
	// peers and peer groups, so that endHoldExpired's delete and add
	// cannot interleave with the router's own.
	peerMu sync.Mutex
	peers  map[netip.Addr]speaker.PeerConfig
	ranges map[netip.Prefix]speaker.PeerRangeConfig
	// policies are the sessions' route policies in GoBGP (policy.go),
	// by peer address (a host prefix) or range prefix; policyGen numbers
	// their names.
	policies  map[netip.Prefix]*installedPolicy
	policyGen uint64
	// accepted caches the large peers' accepted counts (fixAccepted).
	accepted acceptedCache
	// originated are the routes we announce (reexport.go).
	originated originatedRoutes
	// drainOwn are the draining prefixes whose paths from peers are
	// rejected (drainown.go).
	drainOwn drainOwn

	// rangeErrMu guards rangeErrs, the problems GoBGP logged about a
	// range (rangeError), apart from peerMu, which is held while GoBGP
	// logs them.
	rangeErrMu sync.Mutex
	rangeErrs  map[netip.Prefix]string

	// opening ends sessions stuck in OpenSent or OpenConfirm (opening.go);
	// set while started, guarded by mu.
	opening *openingWatch

	// recv are the received-path watches (received.go).
	recv receivedWatches
}

var _ speaker.Speaker = (*Speaker)(nil)

// New returns a stopped Speaker. Its GoBGP server's event loop runs for the
// rest of the process (GoBGP cannot stop it); Start and Stop may be called
// many times.
func New(cfg Config) *Speaker {
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	s := &Speaker{lg: lg, peers: map[netip.Addr]speaker.PeerConfig{}, ranges: map[netip.Prefix]speaker.PeerRangeConfig{}, rangeErrs: map[netip.Prefix]string{},
		policies: map[netip.Prefix]*installedPolicy{}}
	gl := newSlogLogger(lg, s.peerError)
	gl.onRangeErr = s.rangeError
	s.srv = server.NewBgpServer(server.LoggerOption(gl))
	go s.srv.Serve()
	return s
}

// MPTCPListeners reports whether net.ListenConfig makes MPTCP sockets in
// this process, which breaks TCP MD5 on GoBGP's listeners.
func MPTCPListeners() bool {
	var lc net.ListenConfig
	return lc.MultipathTCP()
}

// peerError is called by GoBGP's goroutines while they log, some with
// locks held: it only queues the event (and starts endHoldExpired).
func (s *Speaker) peerError(addr netip.Addr, msg string) {
	if strings.HasPrefix(msg, holdTimerExpired) {
		go s.endHoldExpired(addr)
	}
	s.fnMu.Lock()
	fns := s.peerFns
	s.fnMu.Unlock()
	for _, fn := range fns {
		fn(speaker.PeerEvent{Address: addr, Err: msg})
	}
}

// eventQueue hands events to fn from one goroutine of its own, never
// blocking the producer (GoBGP's goroutines).
type eventQueue struct {
	mu     sync.Mutex
	q      []speaker.PeerEvent
	signal chan struct{}
}

func newEventQueue(ctx context.Context, fn func(speaker.PeerEvent)) *eventQueue {
	e := &eventQueue{signal: make(chan struct{}, 1)}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-e.signal:
			}
			e.mu.Lock()
			q := e.q
			e.q = nil
			e.mu.Unlock()
			for _, ev := range q {
				if ctx.Err() != nil {
					return
				}
				fn(ev)
			}
		}
	}()
	return e
}

func (e *eventQueue) push(ev speaker.PeerEvent) {
	e.mu.Lock()
	e.q = append(e.q, ev)
	e.mu.Unlock()
	select {
	case e.signal <- struct{}{}:
	default:
	}
}

// Start implements speaker.Speaker.
func (s *Speaker) Start(ctx context.Context, g speaker.Global) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("gobgp speaker: already started")
	}
	port := g.ListenPort
	if port == 0 {
		port = 179
	}
	req := &api.StartBgpRequest{Global: &api.Global{
		Asn:              g.AS,
		RouterId:         g.RouterID.String(),
		ListenPort:       port,
		UseMultiplePaths: true,
	}}
	for _, a := range g.ListenAddresses {
		req.Global.ListenAddresses = append(req.Global.ListenAddresses, a.String())
	}
	if err := s.srv.StartBgp(ctx, req); err != nil {
		return fmt.Errorf("starting BGP (AS %d, router ID %s, port %d): %w", g.AS, g.RouterID, port, err)
	}
	if err := s.setExportPolicy(ctx, g.ExportPolicy); err != nil {
		_ = s.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		return err
	}
	s.peerMu.Lock()
	err := s.setGShutPolicy(ctx) // gshut.go
	if err == nil {
		err = s.assignPoliciesLocked(ctx)
	}
	s.peerMu.Unlock()
	if err == nil {
		err = s.startOpeningWatch() // opening.go
	}
	if err == nil {
		err = s.recv.start(ctx, s) // received.go
	}
	if err != nil {
		s.recv.stop()
		_ = s.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		return err
	}
	s.started, s.global = true, g
	return nil
}

const exportPolicyName = "bgpfabric-export"

// setExportPolicy installs the global export policy: the
// keepOriginalNextHop statement (nexthop.go), then a statement per route
// type that must not leave, default accept.
func (s *Speaker) setExportPolicy(ctx context.Context, p speaker.ExportPolicy) error {
	var reject []api.Conditions_RouteType
	switch p {
	case speaker.ExportLocalOnly:
		reject = []api.Conditions_RouteType{api.Conditions_ROUTE_TYPE_INTERNAL, api.Conditions_ROUTE_TYPE_EXTERNAL}
	case speaker.ExportNoExternal:
		reject = []api.Conditions_RouteType{api.Conditions_ROUTE_TYPE_EXTERNAL}
	}
	pol := &api.Policy{Name: exportPolicyName, Statements: nextHopPolicyStatements()}
	for i, rt := range reject {
		pol.Statements = append(pol.Statements, &api.Statement{
			Name:       exportPolicyName + "-" + strconv.Itoa(i),
			Conditions: &api.Conditions{RouteType: rt},
			Actions:    &api.Actions{RouteAction: api.RouteAction_REJECT},
		})
	}
	// StopBgp keeps policies: replace ours.
	_ = s.srv.DeletePolicyAssignment(ctx, &api.DeletePolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_EXPORT}, All: true})
	_ = s.srv.DeletePolicy(ctx, &api.DeletePolicyRequest{Policy: &api.Policy{Name: exportPolicyName}, PreserveStatements: false, All: true})
	if err := s.resetNextHopSets(ctx); err != nil { // nexthop.go
		return err
	}
	if err := s.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: pol, ReferExistingStatements: false}); err != nil {
		return fmt.Errorf("adding export policy: %w", err)
	}
	err := s.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name:          "global",
		Direction:     api.PolicyDirection_EXPORT,
		Policies:      []*api.Policy{{Name: exportPolicyName}},
		DefaultAction: api.RouteAction_ACCEPT,
	}})
	if err != nil {
		return fmt.Errorf("assigning export policy: %w", err)
	}
	return nil
}

// Stop implements speaker.Speaker.
func (s *Speaker) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return nil
	}
	s.started = false
	s.stopOpeningWatch() // before peerMu, which it takes
	s.recv.stop()        // received.go: before the sessions are deleted
	s.peerMu.Lock()
	// StopBgp deletes every peer but keeps the peer groups, which only a
	// running server can delete: remove the ranges first.
	s.removeRangesLocked(ctx)
	clear(s.peers)
	s.clearPoliciesLocked(ctx) // policy.go
	// Every peer is deleted before StopBgp, which then finds none: with
	// peers, GoBGP v3.37.0's StopBgp sets its shutdown WaitGroup on the
	// server's goroutine and reads and clears it on ours while the
	// sessions' FSM messages read it there (a data race). Deleting a peer
	// sends it the same Cease (peer de-configured) StopBgp would.
	s.deleteAllPeers(ctx)
	s.peerMu.Unlock()
	if err := s.srv.StopBgp(ctx, &api.StopBgpRequest{}); err != nil {
		return fmt.Errorf("stopping BGP: %w", err)
	}
	return nil
}

// stopWait bounds how long Stop waits for the deleted sessions' FSM
// goroutines to end.
const stopWait = 5 * time.Second

// deleteAllPeers deletes every peer GoBGP has, configured and dynamic,
// and waits (up to stopWait) until GoBGP has reported each established
// one Idle, which it does only after the session's goroutines, its
// receive loop among them, have ended: after that nothing reads the
// global configuration StopBgp clears. Failures are logged: Stop goes on
// to StopBgp, which deletes what is left.
func (s *Speaker) deleteAllPeers(ctx context.Context) {
	var addrs []string
	established := map[string]bool{}
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		a := p.GetConf().GetNeighborAddress()
		if a == "" {
			a = p.GetState().GetNeighborAddress()
		}
		if a == "" {
			return
		}
		addrs = append(addrs, a)
		if p.GetState().GetSessionState() == api.PeerState_ESTABLISHED {
			established[a] = true
		}
	})
	if err != nil {
		s.lg.Warn("listing peers to stop", "err", err)
		return
	}
	wctx, cancel := context.WithTimeout(ctx, stopWait)
	defer cancel()
	idle := make(chan string, len(addrs))
	if len(established) > 0 {
		err := s.srv.WatchEvent(wctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, func(r *api.WatchEventResponse) {
			// The Idle of a deleted peer comes with no event type
			// (UNKNOWN); INIT events list the peers as they were.
			pe := r.GetPeer()
			init := pe.GetType() == api.WatchEventResponse_PeerEvent_INIT || pe.GetType() == api.WatchEventResponse_PeerEvent_END_OF_INIT
			if !init && pe.GetPeer().GetState().GetSessionState() == api.PeerState_IDLE {
				select {
				case idle <- pe.GetPeer().GetState().GetNeighborAddress():
				default: // more Idle events than peers: only ours matter
				}
			}
		})
		if err != nil {
			s.lg.Warn("watching peers stop", "err", err)
			clear(established)
		}
	}
	for _, a := range addrs {
		// GoBGP may have deleted a dynamic peer meanwhile (its session ended).
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a}); err != nil && !strings.Contains(err.Error(), "can't delete a peer configuration") {
			s.lg.Warn("deleting a peer to stop", "peer", a, "err", err)
			delete(established, a)
		}
	}
	for len(established) > 0 {
		select {
		case a := <-idle:
			delete(established, a)
		case <-wctx.Done():
			s.lg.Warn("sessions still ending when BGP stops", "peers", len(established))
			return
		}
	}
}

// peerAPI converts a PeerConfig to GoBGP's.
func peerAPI(p speaker.PeerConfig) *api.Peer {
	ap := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.PeerAS,
			LocalAsn:        p.LocalAS,
			AuthPassword:    p.Password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:           5,
			HoldTime:               uint64(p.HoldTime / time.Second),
			KeepaliveInterval:      uint64(p.KeepaliveTime / time.Second),
			IdleHoldTimeAfterReset: idleHoldAfterReset,
		}},
		Transport: &api.Transport{
			PassiveMode: p.Passive,
			RemotePort:  uint32(p.Port),
		},
	}
	if p.LocalAddress.IsValid() {
		ap.Transport.LocalAddress = p.LocalAddress.String()
	}
	if p.RouteReflectorClient {
		ap.RouteReflector = &api.RouteReflector{RouteReflectorClient: true, RouteReflectorClusterId: p.ClusterID.String()}
	}
	if p.TTLSecurity > 0 {
		ap.TtlSecurity = &api.TtlSecurity{Enabled: true, TtlMin: uint32(256 - int(p.TTLSecurity))}
	}
	if p.EBGPMultihop > 0 {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.EBGPMultihop)}
	}
	gr := p.GracefulRestart
	if gr.Enabled {
		ap.GracefulRestart = &api.GracefulRestart{
			Enabled:             true,
			RestartTime:         uint32(gr.RestartTime / time.Second),
			StaleRoutesTime:     uint32(gr.StaleRoutesTime / time.Second),
			NotificationEnabled: true, // RFC 8538: a Cease keeps our routes at the peer
			LocalRestarting:     gr.LocalRestarting,
		}
		if gr.LocalRestarting {
			ap.GracefulRestart.DeferralTime = uint32(max(gr.RestartTime/time.Second, 1))
		}
		// RFC 9494: GoBGP advertises the LLGR capability with each
		// family's time, and keeps a peer's routes as LLGR-stale past its
		// restart time.
		ap.GracefulRestart.LonglivedEnabled = gr.LongLivedStaleTime > 0
	}
	fams := []*api.Family{}
	if p.IPv4 {
		fams = append(fams, &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST})
	}
	if p.IPv6 {
		fams = append(fams, &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST})
	}
	for _, f := range fams {
		as := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}}
		if p.MaxPrefixes > 0 {
			as.PrefixLimits = &api.PrefixLimit{Family: f, MaxPrefixes: p.MaxPrefixes, ShutdownThresholdPct: 80}
		}
		if gr.Enabled {
			as.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
			if gr.LongLivedStaleTime > 0 {
				as.LongLivedGracefulRestart = &api.LongLivedGracefulRestart{Config: &api.LongLivedGracefulRestartConfig{
					Enabled: true, RestartTime: uint32(gr.LongLivedStaleTime / time.Second)}}
			}
		}
		ap.AfiSafis = append(ap.AfiSafis, as)
	}
	return ap
}

// holdTimerExpired is the message GoBGP logs when a peer's hold timer
// fires.
const holdTimerExpired = "hold timer expired"

// endHoldExpired makes a hold-timer expiry end the session for good: the
// peer's routes are removed now, not kept as stale.
//
// With graceful restart negotiated, GoBGP handles a hold-timer expiry as a
// restart of the peer and keeps its routes for the peer's restart time
// (osrg/gobgp #2174), 120 s by default. RFC 8538 allows that with the N
// bit, for a peer whose control plane stalled but still forwards; but in a
// fabric a silent peer is nearly always a dead link or host, and keeping
// its routes blackholes the traffic for two minutes where the hold time
// promised 9 s. BIRD keeps routes on hold expiry only with long-lived
// graceful restart; a restart proper (the process dies, TCP closes) still
// keeps them here. GoBGP offers no call to end a peer's restart, so the
// peer is deleted, which drops its paths, and added again with the same
// configuration.
//
// A dynamic neighbour (a router a range accepted) is only deleted: GoBGP
// creates it again when the router connects, and would have deleted it
// itself had the session ended without graceful restart.
func (s *Speaker) endHoldExpired(addr netip.Addr) {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	ctx := context.Background()
	p, ok := s.peers[addr]
	if !ok {
		s.endDynamicHoldExpiredLocked(ctx, addr)
		return
	}
	if !p.GracefulRestart.Enabled {
		return // without graceful restart GoBGP drops the routes itself
	}
	s.lg.Info("hold timer expired: removing the peer's routes instead of keeping them for graceful restart", "peer", addr)
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
		s.lg.Warn("removing a peer whose hold timer expired", "peer", addr, "err", err)
		return
	}
	if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerAPI(p)}); err != nil {
		s.lg.Error("adding back a peer whose hold timer expired", "peer", addr, "err", err)
		delete(s.peers, addr)
	}
}

// endDynamicHoldExpiredLocked deletes the dynamic neighbour at addr, if
// GoBGP keeps it after its hold timer expired (graceful restart).
func (s *Speaker) endDynamicHoldExpiredLocked(ctx context.Context, addr netip.Addr) {
	if len(s.ranges) == 0 {
		return
	}
	gr := false
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{Address: addr.String()}, func(p *api.Peer) {
		if c := p.GetConf(); c != nil && c.NeighborAddress == "" && c.PeerGroup != "" {
			gr = p.GetGracefulRestart().GetEnabled()
		}
	})
	if err != nil || !gr {
		return // gone, not dynamic, or without graceful restart: GoBGP drops it
	}
	s.lg.Info("hold timer expired: removing the dynamic neighbour and its routes instead of keeping them for graceful restart", "peer", addr)
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
		s.lg.Warn("removing a dynamic neighbour whose hold timer expired", "peer", addr, "err", err)
	}
}

// AddPeer implements speaker.Speaker.
func (s *Speaker) AddPeer(ctx context.Context, p speaker.PeerConfig) error {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	return s.addPeer(ctx, p)
}

func (s *Speaker) addPeer(ctx context.Context, p speaker.PeerConfig) error {
	if p.Password != "" && MPTCPListeners() {
		return fmt.Errorf("peer %s: TCP MD5 needs plain TCP listeners, but Go makes MPTCP ones: build with //go:debug multipathtcp=0 or run with GODEBUG=multipathtcp=0", p.Address)
	}
	// A router that a range accepted at this address gives way to the
	// configured peer (GoBGP would refuse to add it).
	if len(s.ranges) > 0 {
		dyn, err := s.dynamicPeer(ctx, p.Address)
		if err != nil {
			return fmt.Errorf("adding peer %s: %w", p.Address, err)
		}
		if dyn {
			if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: p.Address.String()}); err != nil {
				return fmt.Errorf("adding peer %s: ending its dynamic session: %w", p.Address, err)
			}
		}
	}
	// Before the session can start, so that its first routes have the
	// right next hop.
	if err := s.setNextHop(ctx, hostPrefix(p.Address), nextHopAuto, peerNextHop(p)); err != nil {
		return err
	}
	// The route policy too (policy.go): no route may pass before it.
	if _, err := s.setSessionPolicyLocked(ctx, hostPrefix(p.Address), p.Policy); err != nil {
		_ = s.setNextHop(ctx, hostPrefix(p.Address), peerNextHop(p), nextHopAuto)
		return fmt.Errorf("adding peer %s: %w", p.Address, err)
	}
	if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerAPI(p)}); err != nil {
		_ = s.setNextHop(ctx, hostPrefix(p.Address), peerNextHop(p), nextHopAuto)
		_ = s.removeSessionPolicyLocked(ctx, hostPrefix(p.Address))
		return fmt.Errorf("adding peer %s: %w", p.Address, err)
	}
	s.peers[p.Address] = p
	return nil
}

// UpdatePeer implements speaker.Speaker. A reset is a delete and an add, so
// that everything negotiated in OPEN or set on the socket is new.
func (s *Speaker) UpdatePeer(ctx context.Context, p speaker.PeerConfig, reset bool) error {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	if reset {
		if err := s.deletePeer(ctx, p.Address); err != nil {
			return err
		}
		return s.addPeer(ctx, p)
	}
	if _, err := s.srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: peerAPI(p)}); err != nil {
		return fmt.Errorf("updating peer %s: %w", p.Address, err)
	}
	if err := s.setNextHop(ctx, hostPrefix(p.Address), peerNextHop(s.peers[p.Address]), peerNextHop(p)); err != nil {
		return err
	}
	// What the new export policy no longer sends must be withdrawn,
	// which GoBGP's soft reset out does not do (reexport.go).
	// Only a changed import chain needs the Adj-RIB-In evaluated again;
	// on a node whose router evaluates the import filters, the chain the
	// speaker gets accepts everything and a change is export only.
	importChanged := !chainEqual(s.peers[p.Address].Policy.Import, p.Policy.Import)
	tightened := s.originated.newlyRejected(s.peers[p.Address].Policy.Export, p.Policy.Export)
	s.withdrawForPolicy(ctx, tightened)
	policyChanged, err := s.setSessionPolicyLocked(ctx, hostPrefix(p.Address), p.Policy)
	s.reannounce(ctx, tightened)
	if err != nil {
		return fmt.Errorf("updating peer %s: %w", p.Address, err)
	}
	s.peers[p.Address] = p
	if policyChanged && importChanged {
		// Evaluate what the peer sent again (GoBGP keeps its
		// Adj-RIB-In: no route refresh needed).
		if err := s.SoftReset(ctx, p.Address, true); err != nil {
			return err
		}
	}
	// Next-hop handling and the export policy change what we send: send
	// it again.
	return s.SoftReset(ctx, p.Address, false)
}

// DeletePeer implements speaker.Speaker.
func (s *Speaker) DeletePeer(ctx context.Context, addr netip.Addr) error {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	return s.deletePeer(ctx, addr)
}

func (s *Speaker) deletePeer(ctx context.Context, addr netip.Addr) error {
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
		return fmt.Errorf("deleting peer %s: %w", addr, err)
	}
	if err := s.setNextHop(ctx, hostPrefix(addr), peerNextHop(s.peers[addr]), nextHopAuto); err != nil {
		return err
	}
	if err := s.removeSessionPolicyLocked(ctx, hostPrefix(addr)); err != nil {
		return fmt.Errorf("deleting peer %s: %w", addr, err)
	}
	delete(s.peers, addr)
	return nil
}

// SoftReset implements speaker.Speaker.
func (s *Speaker) SoftReset(ctx context.Context, addr netip.Addr, in bool) error {
	dir := api.ResetPeerRequest_OUT
	if in {
		dir = api.ResetPeerRequest_IN
	}
	if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Soft: true, Direction: dir}); err != nil {
		return fmt.Errorf("soft reset of peer %s: %w", addr, err)
	}
	return nil
}

// localPath builds the GoBGP path of one of our routes.
func localPath(r speaker.LocalRoute, withdraw bool) (*api.Path, error) {
	p := r.Prefix
	var nlri bgp.AddrPrefixInterface
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	if p.Addr().Is4() {
		nlri = bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())
		nh := "0.0.0.0"
		if r.NextHop.IsValid() {
			nh = r.NextHop.String()
		}
		attrs = append(attrs, bgp.NewPathAttributeNextHop(nh))
	} else {
		nlri = bgp.NewIPv6AddrPrefix(uint8(p.Bits()), p.Addr().String())
		nh := "::"
		if r.NextHop.IsValid() {
			nh = r.NextHop.String()
		}
		attrs = append(attrs, bgp.NewPathAttributeMpReachNLRI(nh, []bgp.AddrPrefixInterface{nlri}))
	}
	var std []uint32
	var large []*bgp.LargeCommunity
	for _, c := range r.Communities {
		if c.Large {
			large = append(large, bgp.NewLargeCommunity(c.Global, c.Local1, c.Local2))
		} else {
			std = append(std, c.Global<<16|c.Local1&0xffff)
		}
	}
	if len(std) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeCommunities(std))
	}
	if len(large) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeLargeCommunities(large))
	}
	if r.GracefulShutdown {
		// Kept towards iBGP peers, dropped towards eBGP ones
		// (table.UpdatePathAttrs), as RFC 8326 asks.
		attrs = append(attrs, bgp.NewPathAttributeLocalPref(0))
	}
	return apiutil.NewPath(nlri, withdraw, attrs, time.Now())
}

// Announce implements speaker.Speaker.
func (s *Speaker) Announce(ctx context.Context, routes []speaker.LocalRoute) error {
	errs := []error{s.drainOwnAdd(ctx, routes)} // drainown.go
	for _, r := range routes {
		path, err := localPath(r, false)
		if err == nil {
			_, err = s.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path})
		}
		if err == nil {
			s.originated.add(r) // reexport.go
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("announcing %s: %w", r.Prefix, err))
		}
	}
	errs = append(errs, s.drainOwnRemove(ctx, routes, nil))
	return errors.Join(errs...)
}

// Withdraw implements speaker.Speaker.
func (s *Speaker) Withdraw(ctx context.Context, prefixes []netip.Prefix) error {
	var errs []error
	for _, p := range prefixes {
		path, err := localPath(speaker.LocalRoute{Prefix: p}, true)
		if err == nil {
			err = s.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: path.Family, Path: path})
		}
		if err == nil {
			s.originated.remove(p)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("withdrawing %s: %w", p, err))
		}
	}
	errs = append(errs, s.drainOwnRemove(ctx, nil, prefixes)) // drainown.go
	return errors.Join(errs...)
}

// WatchBestPaths implements speaker.Speaker. GoBGP's best-path events carry,
// with multipath on, the new multipath set of each changed destination (a
// single withdrawn path when it has none left): one event per destination,
// except the first (Init), which holds the whole table. No BatchSize: with
// one, GoBGP allocates a slice of that capacity for every event (100,000
// events of 32 KB for as many received prefixes at 4096), and it could
// split one destination's multipath set over two calls of fn.
func (s *Speaker) WatchBestPaths(ctx context.Context, fn func([]speaker.Destination)) error {
	//
	// End-of-RIB markers come through the same watcher: GoBGP notifies its
	// watchers from its one server goroutine, best paths as it applies an
	// UPDATE and End-of-RIB when it reads one, so one watcher keeps them in
	// wire order, where two (this and WatchPeers) would race: a restarting
	// router once saw a peer's End-of-RIB before that peer's routes and
	// removed them from the kernel for a moment.
	req := &api.WatchEventRequest{Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
		{Type: api.WatchEventRequest_Table_Filter_BEST, Init: true},
		{Type: api.WatchEventRequest_Table_Filter_EOR},
	}}}
	return s.srv.WatchEvent(ctx, req, func(r *api.WatchEventResponse) {
		t := r.GetTable()
		if t == nil || len(t.Paths) == 0 {
			return
		}
		if p := t.Paths[0]; p.Nlri == nil && p.NeighborIp != "" { // GoBGP's End-of-RIB path: no NLRI
			if a, err := netip.ParseAddr(p.NeighborIp); err == nil {
				fn([]speaker.Destination{{EndOfRIB: a}})
			}
			return
		}
		fn(groupPaths(t.Paths, s.lg))
	})
}

// WatchPeers implements speaker.Speaker.
func (s *Speaker) WatchPeers(ctx context.Context, fn func(speaker.PeerEvent)) error {
	call := newEventQueue(ctx, fn).push
	s.fnMu.Lock()
	s.peerFns = append(s.peerFns, call)
	s.fnMu.Unlock()
	req := &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}
	return s.srv.WatchEvent(ctx, req, func(r *api.WatchEventResponse) {
		if pe := r.GetPeer(); pe != nil && pe.Peer != nil && pe.Peer.State != nil {
			if pe.Type != api.WatchEventResponse_PeerEvent_STATE {
				return
			}
			a, err := netip.ParseAddr(pe.Peer.State.NeighborAddress)
			if err != nil {
				return
			}
			call(speaker.PeerEvent{Address: a, State: sessionState(pe.Peer.State.SessionState)})
		}
	})
}

func sessionState(s api.PeerState_SessionState) bfapi.BGPState {
	switch s {
	case api.PeerState_CONNECT:
		return bfapi.BGPConnect
	case api.PeerState_ACTIVE:
		return bfapi.BGPActive
	case api.PeerState_OPENSENT:
		return bfapi.BGPOpenSent
	case api.PeerState_OPENCONFIRM:
		return bfapi.BGPOpenConfirm
	case api.PeerState_ESTABLISHED:
		return bfapi.BGPEstablished
	}
	return bfapi.BGPIdle
}

// Peers implements speaker.Speaker.
func (s *Speaker) Peers(ctx context.Context) ([]speaker.PeerStatus, error) {
	var out []speaker.PeerStatus
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		if p.State == nil || p.Conf == nil {
			return
		}
		// A dynamic neighbour has no configured address, only the one it
		// connected from.
		dynamic := p.Conf.NeighborAddress == "" && p.Conf.PeerGroup != ""
		na := p.Conf.NeighborAddress
		if dynamic {
			na = p.State.NeighborAddress
		}
		a, err := netip.ParseAddr(na)
		if err != nil {
			return
		}
		ps := speaker.PeerStatus{Address: a, PeerAS: p.Conf.PeerAsn, State: sessionState(p.State.SessionState), EndOfRIBReceived: true, Dynamic: dynamic}
		if t := p.GetTimers().GetState(); t != nil {
			switch {
			case ps.State == bfapi.BGPEstablished && t.Uptime != nil:
				ps.Since = t.Uptime.AsTime()
			case t.Downtime != nil:
				ps.Since = t.Downtime.AsTime()
			}
		}
		negotiated := false
		// GoBGP counts an End-of-RIB marker per family among the
		// advertised paths when graceful restart is in use on the session
		// (its getBestFromLocal appends one): not a prefix.
		grInUse := p.GetGracefulRestart().GetEnabled() && (p.GetGracefulRestart().GetPeerRestartTime() > 0 || slices.ContainsFunc(p.AfiSafis, func(as *api.AfiSafi) bool {
			return as.GetMpGracefulRestart().GetState().GetReceived()
		}))
		for _, as := range p.AfiSafis {
			if st := as.State; st != nil {
				ps.PrefixesReceived += st.Received
				ps.PrefixesAccepted += st.Accepted
				adv := st.Advertised
				if grInUse && adv > 0 {
					adv--
				}
				ps.PrefixesAdvertised += adv
			}
			if g := as.GetMpGracefulRestart().GetState(); g != nil && g.Received {
				negotiated = true
				if !g.EndOfRibReceived {
					ps.EndOfRIBReceived = false
				}
			}
		}
		if !negotiated {
			ps.EndOfRIBReceived = ps.State == bfapi.BGPEstablished
		}
		out = append(out, ps)
	})
	if err != nil {
		return nil, fmt.Errorf("listing peers: %w", err)
	}
	s.fixAccepted(ctx, out) // policy.go
	return out, nil
}

// RIB implements speaker.Speaker.
func (s *Speaker) RIB(ctx context.Context) ([]speaker.Destination, error) {
	var out []speaker.Destination
	for _, fam := range []*api.Family{
		{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
		{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST},
	} {
		err := s.srv.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: fam, SortType: api.ListPathRequest_PREFIX}, func(d *api.Destination) {
			var dst speaker.Destination
			for _, ap := range d.Paths {
				pfx, p, err := convertPath(ap)
				if err != nil {
					continue
				}
				dst.Prefix = pfx
				if p.Best {
					dst.Paths = append([]speaker.Path{p}, dst.Paths...)
				} else {
					dst.Paths = append(dst.Paths, p)
				}
			}
			if dst.Prefix.IsValid() {
				out = append(out, dst)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("listing the BGP table: %w", err)
		}
	}
	return out, nil
}
