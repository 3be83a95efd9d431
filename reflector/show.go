package reflector

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/bgpfabric/bgpfabric/internal/routeview"
	"iter"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// Read-only views of a running reflector for `bgpfabric reflector show`
// (cmd/bgpfabric/reflector_show.go): a summary, neighbour details and the
// RIB's paths. The RIB belongs to the RIB loop, so every read of it runs
// there, as RIBStats does; a dump of the whole RIB runs as many short ops
// of RouteChunk destinations each, so that route processing goes on
// between them and no more than one chunk is ever built at once.

// RouteChunk is how many destinations one RIB-loop op of a dump reads.
const RouteChunk = 1024

// Families lists the family names `--family` accepts, in the RIB's order.
func Families() []string {
	out := make([]string, 0, numFamilies)
	for f := range numFamilies {
		out = append(out, f.String())
	}
	return out
}

// familyNamed parses a family name; "" is every family.
func familyNamed(name string) (fams []family, err error) {
	for f := range numFamilies {
		if name == "" || f.String() == name {
			fams = append(fams, f)
		}
	}
	if len(fams) == 0 {
		return nil, fmt.Errorf("family %q: want one of %v", name, Families())
	}
	return fams, nil
}

// FamilyCount is one family's size in the RIB.
type FamilyCount struct {
	Family   string `json:"family"`
	Prefixes int    `json:"prefixes"`
	Paths    int    `json:"paths"`
}

// Summary is `show summary`.
type Summary struct {
	RouterID  netip.Addr     `json:"routerID"`
	AS        uint32         `json:"asNumber"`
	ClusterID netip.Addr     `json:"clusterID"`
	Families  []FamilyCount  `json:"families"`
	Neighbors []NeighborInfo `json:"neighbors"`
}

// Summary reports the identity, the RIB's size per family and every
// neighbour's status.
func (r *Reflector) Summary(ctx context.Context) (Summary, error) {
	r.mu.Lock()
	s := Summary{RouterID: r.cfg.RouterID, AS: r.local.asn, ClusterID: uintToAddr(r.local.clusterID)}
	r.mu.Unlock()
	if !r.env.rib.call(ctx, func(rl *ribLoop) {
		for f, t := range rl.tables {
			if family(f).generic() && t.len() == 0 {
				continue // the other families only when they hold routes
			}
			s.Families = append(s.Families, FamilyCount{Family: family(f).String(), Prefixes: t.len(), Paths: t.npaths})
		}
	}) {
		return s, errNotRunning(ctx)
	}
	s.Neighbors = r.NeighborDetails(false)
	return s, nil
}

func errNotRunning(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return errors.New("the reflector is not running")
}

// NeighborInfo is a neighbour as `show summary` and `show neighbors`
// report it: its status (NeighborStatus) and, in detail, what its
// established session negotiated (empty while none is).
type NeighborInfo struct {
	Address       string `json:"address"`
	Description   string `json:"description,omitempty"`
	PeerAS        uint32 `json:"peerAS"`
	Client        bool   `json:"client"`
	Dynamic       bool   `json:"dynamic"`
	State         string `json:"state"`
	UptimeSeconds int64  `json:"uptimeSeconds"`
	// Since is when the neighbour last went up or down.
	Since time.Time `json:"since"`
	// PrefixesReceived are all the paths it sent, PrefixesAccepted those
	// its import policy let in, PrefixesSent what it was sent.
	PrefixesReceived int64  `json:"prefixesReceived"`
	PrefixesAccepted int64  `json:"prefixesAccepted"`
	PrefixesSent     int64  `json:"prefixesSent"`
	UpdatesReceived  int64  `json:"updatesReceived"`
	UpdatesSent      int64  `json:"updatesSent"`
	OutQueueBytes    int64  `json:"outQueueBytes"`
	OutQueuePeak     int64  `json:"outQueuePeakBytes"`
	LastError        string `json:"lastError,omitempty"`
	BFD              string `json:"bfd,omitempty"`
	Policy           string `json:"policy,omitempty"`

	// Detail (show neighbors) only:
	*NeighborSession `json:",omitempty"`
}

// NeighborSession is what a neighbour's established session negotiated,
// and the hold time we propose.
type NeighborSession struct {
	ConfiguredHoldSeconds int64 `json:"configuredHoldTimeSeconds"`
	// RemoteRouterID is the neighbour's BGP identifier.
	RemoteRouterID netip.Addr `json:"remoteRouterID,omitzero"`
	LocalAddr      string     `json:"localAddr,omitempty"`
	RemoteAddr     string     `json:"remoteAddr,omitempty"`
	// HoldSeconds and KeepaliveSeconds are the negotiated timers.
	HoldSeconds      int64 `json:"holdTimeSeconds"`
	KeepaliveSeconds int64 `json:"keepaliveSeconds"`
	// Families are the families both sides advertised; AddPathSend those
	// we send path identifiers in.
	Families        []string `json:"families,omitempty"`
	AddPathSend     []string `json:"addPathSend,omitempty"`
	GracefulRestart bool     `json:"gracefulRestart"`
	// RestartSeconds is the neighbour's graceful-restart time.
	RestartSeconds int64 `json:"restartTimeSeconds,omitempty"`
	RouteRefresh   bool  `json:"routeRefresh"`
}

// NeighborDetails reports every neighbour, ordered by address; detail
// adds what their sessions negotiated.
func (r *Reflector) NeighborDetails(detail bool) []NeighborInfo {
	sts := r.Neighbors()
	r.mu.Lock()
	peers := make(map[string]*peer, len(r.peers))
	for a, p := range r.peers {
		peers[a.String()] = p
	}
	r.mu.Unlock()
	out := make([]NeighborInfo, 0, len(sts))
	for _, st := range sts {
		d := NeighborInfo{
			Address: st.Address, Description: st.Description, PeerAS: st.ASN, Client: st.Client, Dynamic: st.Dynamic,
			State: st.State.String(), UptimeSeconds: int64(st.Uptime / time.Second), Since: st.Since,
			PrefixesReceived: st.PrefixesReceived, PrefixesAccepted: st.PrefixesIn, PrefixesSent: st.PrefixesOut,
			UpdatesReceived: st.UpdatesIn, UpdatesSent: st.UpdatesOut, OutQueueBytes: st.OutQueueBytes,
			OutQueuePeak: st.OutQueuePeak, LastError: st.LastError, BFD: st.BFD, Policy: st.Policy,
		}
		if p := peers[st.Address]; detail && p != nil {
			d.NeighborSession = p.detail()
		}
		out = append(out, d)
	}
	return out
}

// detail reports what the peer's established session negotiated.
func (p *peer) detail() *NeighborSession {
	d := &NeighborSession{ConfiguredHoldSeconds: int64(p.cfg.HoldTime / time.Second)}
	p.mu.Lock()
	var s *session
	for _, x := range p.sessions {
		if x.State() == StateEstablished {
			s = x
		}
	}
	p.mu.Unlock()
	if s == nil {
		return d
	}
	n := s.neg // read-only once established
	d.RemoteRouterID = uintToAddr(n.remoteID)
	d.LocalAddr, d.RemoteAddr = s.conn.LocalAddr().String(), s.conn.RemoteAddr().String()
	d.HoldSeconds, d.KeepaliveSeconds = int64(n.hold/time.Second), int64(n.keepalive/time.Second)
	for f := range numFamilies {
		if n.fams.has(f) {
			d.Families = append(d.Families, f.String())
		}
		if n.addPath.has(f) {
			d.AddPathSend = append(d.AddPathSend, f.String())
		}
	}
	d.GracefulRestart, d.RestartSeconds, d.RouteRefresh = n.gr, int64(n.grTime), n.refreshCap
	return d
}

// RouteDestination is one destination with its paths, best first; its
// JSON names are those of the node's `bgpfabric routes -o json` (both use
// internal/routeview, which the node binary links without the reflector).
type RouteDestination = routeview.Destination

// RoutePath is one path of a destination.
type RoutePath = routeview.Path

// RouteQuery selects destinations.
type RouteQuery struct {
	// Family restricts to one family (see Families); "" is all.
	Family string
	// Prefix selects that prefix exactly; Addr the longest prefix that
	// contains it. Neither: every destination.
	Prefix netip.Prefix
	Addr   netip.Addr
}

// Routes calls fn with the selected destinations: one for Prefix or Addr
// (none when nothing matches), else every destination, RouteChunk at a
// time (sorted within a chunk, in no order across chunks), each chunk
// read by one short op in the RIB loop and handed to fn outside it. An
// error from fn ends the dump and is returned.
func (r *Reflector) Routes(ctx context.Context, q RouteQuery, fn func([]RouteDestination) error) error {
	fams, err := familyNamed(q.Family)
	if err != nil {
		return err
	}
	rl := r.env.rib
	if q.Prefix.IsValid() || q.Addr.IsValid() {
		var d *RouteDestination
		if !rl.call(ctx, func(rl *ribLoop) { d = rl.lookupRoute(fams, q) }) {
			return errNotRunning(ctx)
		}
		if d == nil {
			return fn(nil)
		}
		return fn([]RouteDestination{*d})
	}
	for _, f := range fams {
		if err := r.dumpFamily(ctx, f, fn); err != nil {
			return err
		}
	}
	return nil
}

// dumpFamily dumps one table, RouteChunk destinations per RIB-loop op. The
// table is walked by a map iterator suspended between ops (iter.Pull2):
// Go's maps may change during a range, so prefixes added or removed in
// between are seen or not, and none is seen twice.
func (r *Reflector) dumpFamily(ctx context.Context, f family, fn func([]RouteDestination) error) error {
	rl := r.env.rib
	var next func() (pfxKey, uint32, bool)
	var stop func()
	defer func() {
		if stop != nil {
			// The iterator runs on the loop's goroutine: stop it there,
			// or here once the loop has ended.
			if !rl.call(context.Background(), func(*ribLoop) { stop() }) {
				stop()
			}
		}
	}()
	for {
		var chunk []RouteDestination
		done := false
		if !rl.call(ctx, func(rl *ribLoop) {
			t := rl.tables[f]
			if next == nil {
				next, stop = iter.Pull2(t.all())
			}
			chunk = make([]RouteDestination, 0, RouteChunk)
			for len(chunk) < RouteChunk {
				k, n, ok := next()
				if !ok {
					done = true
					return
				}
				if ps := t.paths(n); len(ps) > 0 { // not emptied this round
					chunk = append(chunk, t.routeDestination(k, ps))
				}
			}
		}) {
			return errNotRunning(ctx)
		}
		slices.SortFunc(chunk, func(a, b RouteDestination) int {
			return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), a.Prefix.Bits()-b.Prefix.Bits(), cmp.Compare(a.NLRI, b.NLRI))
		})
		if len(chunk) > 0 {
			if err := fn(chunk); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}

// all iterates the table's prefixes and slot numbers.
func (t *table) all() iter.Seq2[pfxKey, uint32] {
	return func(yield func(pfxKey, uint32) bool) {
		if t.v4 != nil {
			for v, n := range t.v4 {
				if !yield(v4PfxKey(v), n) {
					return
				}
			}
			return
		}
		if t.byKey != nil {
			for _, n := range t.byKey {
				if !yield(pfxKey{hi: uint64(n)}, n) {
					return
				}
			}
			return
		}
		for k, n := range t.v6 {
			if !yield(k, n) {
				return
			}
		}
	}
}

// lookupRoute finds q's destination: exact for a prefix, longest match
// for an address.
func (rl *ribLoop) lookupRoute(fams []family, q RouteQuery) *RouteDestination {
	for _, f := range fams {
		if f.generic() {
			continue // prefixes and addresses select unicast routes
		}
		t := rl.tables[f]
		if q.Prefix.IsValid() {
			if q.Prefix.Addr().Is4() != (f == famV4) {
				continue
			}
			k := keyOf(q.Prefix)
			if n, ok := t.lookup(k); ok {
				if ps := t.paths(n); len(ps) > 0 {
					d := t.routeDestination(k, ps)
					return &d
				}
			}
			continue
		}
		a := q.Addr.Unmap()
		if a.Is4() != (f == famV4) {
			continue
		}
		for bits := a.BitLen(); bits >= 0; bits-- {
			k := keyOf(netip.PrefixFrom(a, bits))
			if n, ok := t.lookup(k); ok {
				if ps := t.paths(n); len(ps) > 0 {
					d := t.routeDestination(k, ps)
					return &d
				}
			}
		}
	}
	return nil
}

// routeDestination renders a destination's paths (best first): a unicast
// prefix, or a generic family's NLRI as GoBGP renders it.
func (t *table) routeDestination(k pfxKey, ps []path) RouteDestination {
	f := t.fam
	d := RouteDestination{Family: f.String(), Paths: make([]RoutePath, len(ps))}
	if f.generic() {
		d.NLRI = genString(f, t.keys[k.hi], ps[0].a.extra)
	} else {
		d.Prefix = k.prefix(f)
	}
	for i, p := range ps {
		d.Paths[i] = routePath(p, i == 0)
	}
	return d
}

func routePath(p path, best bool) RoutePath {
	a := p.a
	rp := RoutePath{
		Peer: p.src.addr, PeerAS: p.src.asn, NextHop: a.nextHop, LocalPref: a.localPref, MED: a.med,
		Best: best, Stale: p.stale, ASPath: []uint32{},
	}
	switch a.origin {
	case bgp.BGP_ORIGIN_ATTR_TYPE_IGP:
		rp.Origin = "igp"
	case bgp.BGP_ORIGIN_ATTR_TYPE_EGP:
		rp.Origin = "egp"
	default:
		rp.Origin = "incomplete"
	}
	if a.hasOriginator {
		rp.OriginatorID = uintToAddr(a.originatorID)
	}
	for _, c := range a.clusterList {
		rp.ClusterList = append(rp.ClusterList, uintToAddr(c))
	}
	for _, pa := range a.list {
		switch v := pa.(type) {
		case *bgp.PathAttributeAsPath:
			for _, seg := range v.Value {
				rp.ASPath = append(rp.ASPath, seg.GetAS()...)
			}
		case *bgp.PathAttributeCommunities:
			for _, c := range v.Value {
				rp.Communities = append(rp.Communities, strconv.Itoa(int(c>>16))+":"+strconv.Itoa(int(c&0xffff)))
			}
		case *bgp.PathAttributeLargeCommunities:
			for _, c := range v.Values {
				rp.Communities = append(rp.Communities, fmt.Sprintf("%d:%d:%d", c.ASN, c.LocalData1, c.LocalData2))
			}
		case *bgp.PathAttributeExtendedCommunities:
			for _, c := range v.Value {
				rp.ExtendedCommunities = append(rp.ExtendedCommunities, c.String())
			}
		}
	}
	return rp
}

// genString renders a generic family's route (its key and a path's
// labels, ESI or gateway) as GoBGP renders the NLRI, or as hex if GoBGP
// cannot decode it.
func genString(f family, key, extra string) string {
	b := genJoin(nil, f, key, extra)
	afi, safi := bgp.RouteFamilyToAfiSafi(f.routeFamily())
	n, err := bgp.NewPrefixFromRouteFamily(afi, safi)
	if err == nil {
		err = n.DecodeFromBytes(b)
	}
	if err != nil {
		return hex.EncodeToString(b)
	}
	return n.String()
}
