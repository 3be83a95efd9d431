package reflector

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// Long-lived graceful restart (RFC 9494).
//
// As a helper: when a neighbour that negotiated it (both sides advertised
// graceful restart and the LLGR capability) goes away and its graceful
// restart time ends without it coming back, its stale paths are not
// flushed but kept, per family it listed with a non-zero Long-lived Stale
// Time (LLST), for that time (at most our own): they carry the LLGR_STALE
// community (65535:6), lose best-path selection to every path without it,
// and go only to neighbours that negotiated LLGR for the family (the
// others see them withdrawn: RFC 9494 4.3, without the optional partial
// deployment of 4.7). Paths carrying NO_LLGR (65535:7) and the families
// the neighbour did not list are flushed as at the end of graceful
// restart. The neighbour's End-of-RIB of a family, or the family's LLST
// running out, removes what is still stale. A path received with
// LLGR_STALE is treated the same (depreferred, sent to LLGR neighbours
// only), whoever marked it.
//
// The RIB loop holds the state (ribPeer.llgr, llgrUntil) so that the
// End-of-RIB, the sweeps and the timers agree; the neighbour's manager
// (peer.go) runs the timer and asks the RIB when it fires.
//
// As the restarting side: the reflector advertises the capability with
// the F bit set for every family, for the reason graceful restart's F
// bits are set (open.go): it forwards nothing, so it never loses
// forwarding state. A client that keeps our routes through a reflector
// outage longer than our restart time keeps them as LLGR-stale.

const (
	llgrStaleCommunity = 0xffff0006 // LLGR_STALE, RFC 9494 4.1
	noLLGRCommunity    = 0xffff0007 // NO_LLGR
	// maxLongLivedStaleTime is the largest LLST: a 24-bit field.
	maxLongLivedStaleTime = (1<<24 - 1) * time.Second
	maxRestartTime        = 4095 * time.Second // a 12-bit field
)

// checkRestartTimes validates a neighbour's or range's graceful-restart
// times; the error starts with the field name.
func checkRestartTimes(gr bool, restart, llst time.Duration) error {
	switch {
	case restart < 0 || restart > maxRestartTime || restart%time.Second != 0:
		return fmt.Errorf("RestartTime: %v is not whole seconds from 0 to 4095", restart)
	case llst < 0 || llst > maxLongLivedStaleTime || llst%time.Second != 0:
		return fmt.Errorf("LongLivedStaleTime: %v is not whole seconds up to 16777215", llst)
	case llst > 0 && !gr:
		return errors.New("LongLivedStaleTime: needs GracefulRestart (RFC 9494 3)")
	}
	return nil
}

// restartTime is the restart time we advertise, in seconds.
func (n *NeighborConfig) restartTime() uint16 {
	if n.RestartTime == 0 {
		return grRestartTime
	}
	return uint16(n.RestartTime / time.Second)
}

// llgrNeg is what the LLGR capabilities negotiated: nothing unless both
// sides advertised graceful restart and LLGR.
type llgrNeg struct {
	recv families // the families the neighbour listed: it understands LLGR_STALE in them
	keep families // of recv, those whose stale paths we keep (a non-zero LLST)
	fwd  families // of recv, those with the F bit (forwarding state kept)
	llst [numFamilies]time.Duration
}

// llgrCap is our LLGR capability, or nil when not configured.
func (s *session) llgrCap() bgp.ParameterCapabilityInterface {
	if !s.cfg.GracefulRestart || s.cfg.LongLivedStaleTime <= 0 {
		return nil
	}
	llst := uint32(s.cfg.LongLivedStaleTime / time.Second)
	var ts []*bgp.CapLongLivedGracefulRestartTuple
	fams := s.cfg.families()
	for f := range numFamilies {
		if fams.has(f) {
			ts = append(ts, bgp.NewCapLongLivedGracefulRestartTuple(f.routeFamily(), true, llst))
		}
	}
	return bgp.NewCapLongLivedGracefulRestart(ts)
}

// parseLLGR reads the neighbour's LLGR capability; negotiate drops it
// again when graceful restart was not negotiated (RFC 9494 4.1).
func (s *session) parseLLGR(c *bgp.CapLongLivedGracefulRestart) llgrNeg {
	var n llgrNeg
	if !s.cfg.GracefulRestart || s.cfg.LongLivedStaleTime <= 0 {
		return n
	}
	for _, t := range c.Tuples {
		f, ok := familyOf(bgp.AfiSafiToRouteFamily(t.AFI, t.SAFI))
		if !ok {
			continue
		}
		n.recv = n.recv.with(f)
		if t.Flags&0x80 != 0 {
			n.fwd = n.fwd.with(f)
		}
		if t.RestartTime > 0 {
			n.keep = n.keep.with(f)
			n.llst[f] = min(time.Duration(t.RestartTime)*time.Second, s.cfg.LongLivedStaleTime)
		}
	}
	return n
}

// restrict keeps the families of fams.
func (n llgrNeg) restrict(fams families) llgrNeg {
	n.recv &= fams
	n.keep &= fams
	n.fwd &= fams
	return n
}

// llgrFlags returns whether the communities of list carry LLGR_STALE and
// NO_LLGR.
func llgrFlags(list []bgp.PathAttributeInterface) (stale, no bool) {
	for _, p := range list {
		if c, ok := p.(*bgp.PathAttributeCommunities); ok {
			return slices.Contains(c.Value, llgrStaleCommunity), slices.Contains(c.Value, noLLGRCommunity)
		}
	}
	return false, false
}

// withLLGRStale returns a's attributes with LLGR_STALE added (not
// interned). fromEBGP is the path's source.
func withLLGRStale(a *attrs, fromEBGP bool) *attrs {
	list := make([]bgp.PathAttributeInterface, 0, len(a.list)+1)
	found := false
	for _, p := range a.list {
		if c, ok := p.(*bgp.PathAttributeCommunities); ok {
			found = true
			p = bgp.NewPathAttributeCommunities(append(slices.Clone(c.Value), llgrStaleCommunity))
		}
		list = append(list, p)
	}
	if !found {
		list = append(list, bgp.NewPathAttributeCommunities([]uint32{llgrStaleCommunity}))
	}
	in := attrsInput{list: list, nextHop: a.nextHop, nextHopLL: a.nextHopLL, fromEBGP: fromEBGP,
		gen: a.gen, rawNH: []byte(a.rawNH), extra: []byte(a.extra)}
	if fromEBGP && a.localPref != defaultLocalPref {
		in.localPref, in.setLocalPref = a.localPref, true // an import policy's
	}
	return newAttrs(in)
}

// enterLLGR starts the long-lived stale period of the neighbour at addr,
// whose restart time has ended: its stale paths in the families neg keeps
// become LLGR-stale (those with NO_LLGR go), those of other families go.
// A family already long-lived stale keeps its deadline (RFC 9494 4.2: the
// timer is not renewed before the neighbour has synchronised). It returns
// the earliest deadline, zero when nothing is kept.
func (rl *ribLoop) enterLLGR(addr netip.Addr, neg llgrNeg, now time.Time) time.Time {
	rp := rl.peers[addr]
	if rp == nil {
		return time.Time{}
	}
	rl.sweep(rp, true, ^neg.keep)
	if rl.peers[addr] != rp { // nothing left
		return time.Time{}
	}
	rp.llgr &= neg.keep // a family no longer listed: its stale paths just went
	for f := range numFamilies {
		if !neg.keep.has(f) {
			continue
		}
		if !rp.llgr.has(f) {
			rp.llgr = rp.llgr.with(f)
			rp.llgrUntil[f] = now.Add(neg.llst[f])
		}
		rl.llgrMark(rl.tables[f], rp)
	}
	rl.storeCounts(rp)
	rl.log.Info("long-lived graceful restart: keeping stale routes", logKeyPeer, addr.String(), logKeyPrefixes, rp.prefixes)
	return rl.llgrNext(rp)
}

// llgrNext is rp's earliest long-lived stale deadline, zero when none.
func (rl *ribLoop) llgrNext(rp *ribPeer) time.Time {
	var next time.Time
	for f := range numFamilies {
		if rp.llgr.has(f) && (next.IsZero() || rp.llgrUntil[f].Before(next)) {
			next = rp.llgrUntil[f]
		}
	}
	return next
}

// llgrMark makes rp's stale paths in t LLGR-stale, or removes them when
// they carry NO_LLGR.
func (rl *ribLoop) llgrMark(t *table, rp *ribPeer) {
	var keys []pfxKey
	t.each(func(k pfxKey, n uint32) {
		ps := t.paths(n)
		if i := indexOf(ps, rp); i >= 0 && ps[i].stale && !ps[i].a.llgrStale {
			keys = append(keys, k)
		}
	})
	conv := map[*attrs]*attrs{} // paths share attrs: one copy each
	for _, k := range keys {
		rl.llgrMarkOne(t, rp, k, conv)
	}
	for _, la := range conv {
		rl.attrs.dropUnused(la)
	}
}

// llgrMarkOne is llgrMark for one prefix; conv, when not nil, caches the
// LLGR-stale attrs by original.
func (rl *ribLoop) llgrMarkOne(t *table, rp *ribPeer, k pfxKey, conv map[*attrs]*attrs) {
	n, ok := t.lookup(k)
	if !ok {
		return
	}
	s := t.slot(n)
	ps := t.load(s, t.scratch[:0])
	t.scratch = ps
	i := indexOf(ps, rp)
	if i < 0 || !ps[i].stale || ps[i].a.llgrStale {
		return
	}
	t.markChanged(k, s, ps)
	a := ps[i].a
	if a.noLLGR {
		t.removeAt(s, ps, i, rl.attrs, &rl.cmp)
		rp.prefixes--
		return
	}
	la := conv[a]
	if la == nil {
		la = rl.attrs.get(withLLGRStale(a, rp.ebgp))
		if conv != nil {
			conv[a] = la
		}
	}
	la.refs++
	rl.attrs.release(a)
	ps[i] = path{src: rp, a: la, stale: true}
	rl.cmp.selectBest(ps)
	t.store(s, ps)
}

// expireLLGR removes the stale paths of rp's families whose long-lived
// stale time has passed at now, and returns the next deadline (zero:
// none left).
func (rl *ribLoop) expireLLGR(addr netip.Addr, now time.Time) time.Time {
	rp := rl.peers[addr]
	if rp == nil {
		return time.Time{}
	}
	var done families
	for f := range numFamilies {
		if rp.llgr.has(f) && !now.Before(rp.llgrUntil[f]) {
			done = done.with(f)
		}
	}
	if done != 0 {
		rp.llgr &^= done
		rl.log.Info("long-lived stale time passed: removing stale routes", logKeyPeer, addr.String())
		rl.sweep(rp, true, done)
	}
	return rl.llgrNext(rp)
}

// llgrReconnect runs when the neighbour at addr is back: the families in
// long-lived stale whose forwarding state it did not keep (no F bit in its
// new LLGR capability, or no capability) lose their stale paths at once
// (RFC 9494 4.2); the others wait for End-of-RIB or their deadline. It
// reports whether any family is still long-lived stale.
func (rl *ribLoop) llgrReconnect(addr netip.Addr, fwd families) bool {
	rp := rl.peers[addr]
	if rp == nil {
		return false
	}
	if drop := rp.llgr &^ fwd; drop != 0 {
		rp.llgr &^= drop
		rl.sweep(rp, true, drop)
	}
	return rp.llgr != 0
}

// The neighbour manager's side (peer.go).

// llgrRun is a manager's long-lived graceful restart state.
type llgrRun struct {
	timer      *time.Timer // the next long-lived stale deadline
	neg        llgrNeg     // of the last session that ended gracefully
	restarting bool        // the restart time runs: grTimer is the restart timer
}

// restartTimeUp runs when the restart timer of a neighbour that went away
// ends: it starts the long-lived stale period and reports true, or
// reports false when LLGR was not negotiated (the stale routes go).
func (p *peer) restartTimeUp(ctx context.Context, pr *peerRun) bool {
	restarting := pr.llgr.restarting
	pr.llgr.restarting = false
	if !restarting || pr.llgr.neg.keep == 0 {
		return false
	}
	var next time.Time
	neg, now := pr.llgr.neg, time.Now()
	if !p.env.rib.call(ctx, func(rl *ribLoop) { next = rl.enterLLGR(p.cfg.Address, neg, now) }) {
		return true // stopping
	}
	p.armLLGR(pr, next)
	return true
}

// armLLGR sets the long-lived stale timer to next; zero means nothing is
// kept any more.
func (p *peer) armLLGR(pr *peerRun, next time.Time) {
	pr.llgr.timer.Stop()
	if next.IsZero() {
		pr.stale = pr.llgr.restarting // a restart time runs: paths may be stale
		return
	}
	pr.llgr.timer.Reset(max(time.Until(next), 0))
}

// llgrTimeUp runs when a long-lived stale deadline passes. It reports
// whether the manager of a dynamic neighbour is done.
func (p *peer) llgrTimeUp(ctx context.Context, pr *peerRun) bool {
	var next time.Time
	now := time.Now()
	if !p.env.rib.call(ctx, func(rl *ribLoop) { next = rl.expireLLGR(p.cfg.Address, now) }) {
		return false
	}
	p.armLLGR(pr, next)
	return next.IsZero() && !pr.llgr.restarting && p.dynamic && p.idle()
}

// llgrUp runs when a session of a neighbour with stale routes reaches
// Established. It reports whether the neighbour is in a long-lived stale
// period, whose deadlines then bound the stale routes instead of the
// stale-routes timer.
func (p *peer) llgrUp(ctx context.Context, pr *peerRun, s *session) bool {
	pr.llgr.restarting = false
	active := false
	fwd := s.neg.llgr.fwd
	p.env.rib.call(ctx, func(rl *ribLoop) { active = rl.llgrReconnect(p.cfg.Address, fwd) })
	if !active {
		pr.llgr.timer.Stop()
	}
	return active
}

// FileRestart are a neighbour's or range's graceful-restart times in the
// configuration file (docs/reflector.md).
type FileRestart struct {
	// RestartTime is the restart time we advertise: whole seconds, 1s to
	// 4095s (default 120s).
	RestartTime string `json:"restartTime,omitempty"`
	// LongLivedStaleTime enables long-lived graceful restart (RFC 9494):
	// whole seconds up to 16777215s; absent or "0s" is off. It needs
	// gracefulRestart.
	LongLivedStaleTime string `json:"longLivedStaleTime,omitempty"`
}

// restart checks and converts a neighbour's graceful-restart times.
func (fe *fieldErrs) restart(f string, r FileRestart, gr bool) (restart, llst time.Duration) {
	restart = fe.duration(f+".restartTime", r.RestartTime)
	if r.RestartTime != "" && (restart < time.Second || restart > maxRestartTime || restart%time.Second != 0) {
		fe.add(f+".restartTime", "must be whole seconds from 1s to 4095s")
		restart = 0
	}
	llst = fe.duration(f+".longLivedStaleTime", r.LongLivedStaleTime)
	switch {
	case llst < 0 || llst > maxLongLivedStaleTime || llst%time.Second != 0:
		fe.add(f+".longLivedStaleTime", "must be whole seconds up to 16777215s")
		llst = 0
	case llst > 0 && !gr:
		fe.add(f+".longLivedStaleTime", "needs gracefulRestart (RFC 9494)")
		llst = 0
	}
	return restart, llst
}
