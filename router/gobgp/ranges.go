package gobgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/bgpfabric/bgpfabric/router/speaker"
)

// Dynamic neighbours (speaker.PeerRangeConfig) are GoBGP peer groups: one
// group per range, named after its prefix and holding the range's
// settings, and a dynamic neighbour (AddDynamicNeighbor) that sends the
// connections from the prefix to that group. GoBGP then creates a passive
// peer for each router that connects from inside the prefix and is no
// configured peer (configured peers win), lists it in ListPeer (with no
// configured address: see Peers) and deletes it when its session ends
// (with graceful restart, when the restart time is over).
//
// TCP MD5: AddDynamicNeighbor sets the group's password on the listening
// sockets for the whole prefix (TCP_MD5SIG_EXT with a prefix length, Linux
// 4.13 and later), so a password on a range works as on a peer, with the
// same MPTCP caveat (package doc). GoBGP only logs when it cannot set the
// key; the Speaker catches that log line and fails AddPeerRange.
//
// GoBGP gotchas handled here: AddDynamicNeighbor and DeleteDynamicNeighbor
// dereference the peer group without checking that it exists (a panic in
// GoBGP's server goroutine), so they are only called for groups we made;
// a peer group with peers cannot be deleted, and the dynamic peers are not
// its members, so DeletePeerRange deletes them first; StopBgp keeps peer
// groups, and deleting one needs a running server, so Stop removes the
// ranges before it stops; and a dynamic peer takes the group's transport
// settings, so the group is passive (a dynamic peer never connects out).

// rangeGroup is the name of the peer group of a range.
func rangeGroup(p netip.Prefix) string { return "bgpfabric-range-" + p.String() }

// peerGroupAPI converts a range to GoBGP's peer group: the settings of a
// peer (peerAPI) in a group.
func peerGroupAPI(r speaker.PeerRangeConfig) *api.PeerGroup {
	ap := peerAPI(speaker.PeerConfig{
		Address:              r.Prefix.Addr(),
		PeerAS:               r.PeerAS,
		LocalAS:              r.LocalAS,
		Passive:              true,
		HoldTime:             r.HoldTime,
		KeepaliveTime:        r.KeepaliveTime,
		Password:             r.Password,
		RouteReflectorClient: r.RouteReflectorClient,
		ClusterID:            r.ClusterID,
		MaxPrefixes:          r.MaxPrefixes,
		TTLSecurity:          r.TTLSecurity,
		EBGPMultihop:         r.EBGPMultihop,
		KeepOriginalNextHop:  r.KeepOriginalNextHop,
		GracefulRestart: speaker.GracefulRestart{
			Enabled:         r.GracefulRestart.Enabled,
			RestartTime:     r.GracefulRestart.RestartTime,
			StaleRoutesTime: r.GracefulRestart.StaleRoutesTime,
			// RFC 9494: zero is off.
			LongLivedStaleTime: r.GracefulRestart.LongLivedStaleTime,
		},
		IPv4: r.Prefix.Addr().Is4(),
		IPv6: r.Prefix.Addr().Is6(),
	})
	return &api.PeerGroup{
		Conf: &api.PeerGroupConf{
			PeerGroupName: rangeGroup(r.Prefix),
			PeerAsn:       r.PeerAS,
			LocalAsn:      r.LocalAS,
			AuthPassword:  r.Password,
		},
		Timers:          ap.Timers,
		Transport:       &api.Transport{PassiveMode: true},
		RouteReflector:  ap.RouteReflector,
		GracefulRestart: ap.GracefulRestart,
		AfiSafis:        ap.AfiSafis,
		EbgpMultihop:    ap.EbgpMultihop,
		TtlSecurity:     ap.TtlSecurity,
	}
}

// AddPeerRange implements speaker.Speaker.
func (s *Speaker) AddPeerRange(ctx context.Context, r speaker.PeerRangeConfig) error {
	if err := s.checkListening(r.Prefix); err != nil {
		return err
	}
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	return s.addRange(ctx, r)
}

// UpdatePeerRange implements speaker.Speaker: the range is deleted (ending
// the sessions it accepted) and added with the new settings, since GoBGP
// gives a dynamic peer its group's settings when it connects.
func (s *Speaker) UpdatePeerRange(ctx context.Context, r speaker.PeerRangeConfig) error {
	if err := s.checkListening(r.Prefix); err != nil {
		return err
	}
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	if err := s.deleteRange(ctx, r.Prefix); err != nil {
		return err
	}
	return s.addRange(ctx, r)
}

// DeletePeerRange implements speaker.Speaker.
func (s *Speaker) DeletePeerRange(ctx context.Context, p netip.Prefix) error {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	return s.deleteRange(ctx, p)
}

// checkListening refuses a range when the speaker runs without listening
// (ListenPort -1): no router could connect.
func (s *Speaker) checkListening(p netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started && s.global.ListenPort < 0 {
		return fmt.Errorf("peer range %s: the speaker does not listen (listen port -1), so no router could connect", p)
	}
	return nil
}

func (s *Speaker) addRange(ctx context.Context, r speaker.PeerRangeConfig) error {
	if !r.Prefix.IsValid() || r.Prefix != r.Prefix.Masked() {
		return fmt.Errorf("peer range %s: not a network prefix", r.Prefix)
	}
	if _, ok := s.ranges[r.Prefix]; ok {
		return fmt.Errorf("peer range %s exists", r.Prefix)
	}
	if r.Password != "" && MPTCPListeners() {
		return fmt.Errorf("peer range %s: TCP MD5 needs plain TCP listeners, but Go makes MPTCP ones: build with //go:debug multipathtcp=0 or run with GODEBUG=multipathtcp=0", r.Prefix)
	}
	name := rangeGroup(r.Prefix)
	if err := s.removeLeftoverGroup(ctx, r.Prefix); err != nil {
		return err
	}
	if err := s.setNextHop(ctx, r.Prefix, nextHopAuto, rangeNextHop(r)); err != nil { // nexthop.go
		return err
	}
	if _, err := s.setSessionPolicyLocked(ctx, r.Prefix, r.Policy); err != nil { // policy.go
		_ = s.setNextHop(ctx, r.Prefix, rangeNextHop(r), nextHopAuto)
		return fmt.Errorf("adding peer range %s: %w", r.Prefix, err)
	}
	if err := s.srv.AddPeerGroup(ctx, &api.AddPeerGroupRequest{PeerGroup: peerGroupAPI(r)}); err != nil {
		_ = s.setNextHop(ctx, r.Prefix, rangeNextHop(r), nextHopAuto)
		_ = s.removeSessionPolicyLocked(ctx, r.Prefix)
		return fmt.Errorf("adding peer range %s: %w", r.Prefix, err)
	}
	s.takeRangeError(r.Prefix)
	err := s.srv.AddDynamicNeighbor(ctx, &api.AddDynamicNeighborRequest{DynamicNeighbor: &api.DynamicNeighbor{
		Prefix: r.Prefix.String(), PeerGroup: name,
	}})
	if err == nil {
		// GoBGP logs a key it could not set (while it handled the call)
		// and carries on.
		if msg := s.takeRangeError(r.Prefix); msg != "" {
			err = fmt.Errorf("TCP MD5 key for the prefix: %s", msg)
		}
	}
	if err != nil {
		s.ranges[r.Prefix] = r // for deleteRange
		if derr := s.deleteRange(ctx, r.Prefix); derr != nil {
			// The next addRange removes what is left (removeLeftoverGroup).
			s.lg.Warn("removing a peer range that failed", "range", r.Prefix, "err", derr)
			delete(s.ranges, r.Prefix)
		}
		return fmt.Errorf("adding peer range %s: %w", r.Prefix, err)
	}
	s.ranges[r.Prefix] = r
	return nil
}

// deleteRange stops accepting routers from the range, ends the sessions
// it accepted and deletes its peer group. A range we do not have is
// nothing to do.
func (s *Speaker) deleteRange(ctx context.Context, p netip.Prefix) error {
	if _, ok := s.ranges[p]; !ok {
		return nil
	}
	name := rangeGroup(p)
	if err := s.srv.DeleteDynamicNeighbor(ctx, &api.DeleteDynamicNeighborRequest{Prefix: p.String(), PeerGroup: name}); err != nil {
		return fmt.Errorf("deleting peer range %s: %w", p, err)
	}
	// No router joins the group any more; delete the ones it has, then
	// the group (twice: a peer may have been between the listing and the
	// deletion).
	var err error
	for range 2 {
		if err = s.deleteGroupPeers(ctx, name); err != nil {
			continue
		}
		if err = s.srv.DeletePeerGroup(ctx, &api.DeletePeerGroupRequest{Name: name}); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("deleting peer range %s: %w", p, err)
	}
	if err := s.setNextHop(ctx, p, rangeNextHop(s.ranges[p]), nextHopAuto); err != nil {
		return err
	}
	if err := s.removeSessionPolicyLocked(ctx, p); err != nil {
		return fmt.Errorf("deleting peer range %s: %w", p, err)
	}
	delete(s.ranges, p)
	return nil
}

// deleteGroupPeers deletes the dynamic peers of a peer group, which ends
// their sessions (a Cease, peer de-configured) and drops their routes.
func (s *Speaker) deleteGroupPeers(ctx context.Context, group string) error {
	var addrs []string
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if c := p.GetConf(); c != nil && c.PeerGroup == group && c.NeighborAddress == "" && p.GetState().GetNeighborAddress() != "" {
			addrs = append(addrs, p.State.NeighborAddress)
		}
	})
	if err != nil {
		return fmt.Errorf("listing the peers of %s: %w", group, err)
	}
	var errs []error
	for _, a := range addrs {
		// GoBGP may have deleted it meanwhile (its session ended).
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a}); err != nil && !strings.Contains(err.Error(), "can't delete a peer configuration") {
			errs = append(errs, fmt.Errorf("deleting dynamic neighbour %s: %w", a, err))
		}
	}
	return errors.Join(errs...)
}

// removeLeftoverGroup deletes a peer group of ours that GoBGP still has
// while we do not (a Stop that could not remove it), so that adding the
// range again does not fail.
func (s *Speaker) removeLeftoverGroup(ctx context.Context, p netip.Prefix) error {
	name := rangeGroup(p)
	found := false
	err := s.srv.ListPeerGroup(ctx, &api.ListPeerGroupRequest{PeerGroupName: name}, func(*api.PeerGroup) { found = true })
	if err != nil || !found {
		return err
	}
	s.ranges[p] = speaker.PeerRangeConfig{Prefix: p}
	if err := s.deleteRange(ctx, p); err != nil {
		delete(s.ranges, p)
		return fmt.Errorf("removing the peer group left by an earlier run: %w", err)
	}
	return nil
}

// removeRangesLocked deletes every range (Stop: before the server stops, while
// it can still delete peer groups). peerMu must be held.
func (s *Speaker) removeRangesLocked(ctx context.Context) {
	for p := range s.ranges {
		if err := s.deleteRange(ctx, p); err != nil {
			s.lg.Warn("removing peer range on stop", "range", p, "err", err)
		}
	}
	clear(s.ranges)
}

// rangeError is called by the logger (from GoBGP's server goroutine,
// while it handles our call) with a problem GoBGP logged about a range.
func (s *Speaker) rangeError(p netip.Prefix, msg string) {
	s.rangeErrMu.Lock()
	s.rangeErrs[p] = msg
	s.rangeErrMu.Unlock()
}

// takeRangeError returns and forgets the problem logged about p.
func (s *Speaker) takeRangeError(p netip.Prefix) string {
	s.rangeErrMu.Lock()
	defer s.rangeErrMu.Unlock()
	msg := s.rangeErrs[p]
	delete(s.rangeErrs, p)
	return msg
}

// dynamicPeer reports whether GoBGP has a dynamic neighbour at addr.
func (s *Speaker) dynamicPeer(ctx context.Context, addr netip.Addr) (bool, error) {
	found := false
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{Address: addr.String()}, func(p *api.Peer) {
		if c := p.GetConf(); c != nil && c.NeighborAddress == "" && c.PeerGroup != "" {
			found = true
		}
	})
	return found, err
}
