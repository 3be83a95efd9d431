package router

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
)

// FakeSpeaker is an in-memory Speaker for unit tests, after Cilium's
// fake_router.go: it keeps the configured peers, ranges and announced
// routes, logs every call, lets tests inject learned paths, peer events
// and dynamic neighbours (Accept), and can fail chosen calls. It is safe
// for concurrent use.
type FakeSpeaker struct {
	mu        sync.Mutex
	started   bool
	global    Global
	peers     map[netip.Addr]PeerConfig
	ranges    map[netip.Prefix]PeerRangeConfig
	states    map[netip.Addr]PeerStatus // configured and dynamic peers
	announced map[netip.Prefix]LocalRoute
	learned   map[netip.Prefix][]Path
	calls     []string
	failNext  map[string]error
	bestFns   []func([]Destination)
	peerFns   []func(PeerEvent)
}

var _ Speaker = (*FakeSpeaker)(nil)

// NewFakeSpeaker returns a stopped FakeSpeaker.
func NewFakeSpeaker() *FakeSpeaker {
	return &FakeSpeaker{
		peers:     map[netip.Addr]PeerConfig{},
		ranges:    map[netip.Prefix]PeerRangeConfig{},
		states:    map[netip.Addr]PeerStatus{},
		announced: map[netip.Prefix]LocalRoute{},
		learned:   map[netip.Prefix][]Path{},
		failNext:  map[string]error{},
	}
}

// FailNext makes the next call of method (e.g. "AddPeer") fail with err.
func (f *FakeSpeaker) FailNext(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[method] = err
}

func (f *FakeSpeaker) callLocked(method, format string, args ...any) error {
	f.calls = append(f.calls, method+" "+fmt.Sprintf(format, args...))
	if err, ok := f.failNext[method]; ok {
		delete(f.failNext, method)
		return err
	}
	return nil
}

// Calls returns and forgets the calls made so far, one line each, e.g.
// "AddPeer 10.0.0.2".
func (f *FakeSpeaker) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// Start implements Speaker.
func (f *FakeSpeaker) Start(_ context.Context, g Global) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.callLocked("Start", "as %d id %s port %d", g.AS, g.RouterID, g.ListenPort); err != nil {
		return err
	}
	if f.started {
		return errors.New("fake speaker: already started")
	}
	f.started, f.global = true, g
	return nil
}

// Stop implements Speaker: it forgets peers and routes, as GoBGP does.
func (f *FakeSpeaker) Stop(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.callLocked("Stop", ""); err != nil {
		return err
	}
	f.started = false
	clear(f.peers)
	clear(f.ranges)
	clear(f.states)
	clear(f.announced)
	return nil
}

// AddPeer implements Speaker.
func (f *FakeSpeaker) AddPeer(_ context.Context, p PeerConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.callLocked("AddPeer", "%s", p.Address); err != nil {
		return err
	}
	if _, ok := f.peers[p.Address]; ok {
		return fmt.Errorf("fake speaker: peer %s exists", p.Address)
	}
	f.peers[p.Address] = p
	f.states[p.Address] = PeerStatus{Address: p.Address, PeerAS: p.PeerAS, State: api.BGPActive}
	return nil
}

// UpdatePeer implements Speaker.
func (f *FakeSpeaker) UpdatePeer(_ context.Context, p PeerConfig, reset bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	what := "live"
	if reset {
		what = "reset"
	}
	if err := f.callLocked("UpdatePeer", "%s %s", p.Address, what); err != nil {
		return err
	}
	if _, ok := f.peers[p.Address]; !ok {
		return fmt.Errorf("fake speaker: no peer %s", p.Address)
	}
	f.peers[p.Address] = p
	return nil
}

// DeletePeer implements Speaker.
func (f *FakeSpeaker) DeletePeer(_ context.Context, a netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.callLocked("DeletePeer", "%s", a); err != nil {
		return err
	}
	if _, ok := f.peers[a]; !ok {
		return fmt.Errorf("fake speaker: no peer %s", a)
	}
	delete(f.peers, a)
	delete(f.states, a)
	// As GoBGP's DeleteNeighbor: the peer's paths go at once.
	var gone []Destination
	for p, paths := range f.learned {
		kept := slices.DeleteFunc(slices.Clone(paths), func(x Path) bool { return x.Peer == a })
		if len(kept) == len(paths) {
			continue
		}
		if len(kept) == 0 {
			delete(f.learned, p)
		} else {
			f.learned[p] = kept
		}
		gone = append(gone, Destination{Prefix: p, Paths: slices.Clone(kept)})
	}
	if len(gone) > 0 {
		fns := slices.Clone(f.bestFns)
		// Watchers must not call back into the speaker: unlock first.
		f.mu.Unlock()
		for _, fn := range fns {
			fn(gone)
		}
		f.mu.Lock()
	}
	return nil
}

// AddPeerRange implements Speaker.
func (f *FakeSpeaker) AddPeerRange(_ context.Context, r PeerRangeConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.callLocked("AddPeerRange", "%s", r.Prefix); err != nil {
		return err
	}
	if _, ok := f.ranges[r.Prefix]; ok {
		return fmt.Errorf("fake speaker: range %s exists", r.Prefix)
	}
	f.ranges[r.Prefix] = r
	return nil
}

// UpdatePeerRange implements Speaker: like GoBGP's, it ends the sessions
// the range accepted.
func (f *FakeSpeaker) UpdatePeerRange(_ context.Context, r PeerRangeConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.callLocked("UpdatePeerRange", "%s", r.Prefix); err != nil {
		return err
	}
	f.endDynamicLocked(r.Prefix)
	f.ranges[r.Prefix] = r
	return nil
}

// DeletePeerRange implements Speaker.
func (f *FakeSpeaker) DeletePeerRange(_ context.Context, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.callLocked("DeletePeerRange", "%s", p); err != nil {
		return err
	}
	f.endDynamicLocked(p)
	delete(f.ranges, p)
	return nil
}

// endDynamicLocked forgets the dynamic neighbours inside p.
func (f *FakeSpeaker) endDynamicLocked(p netip.Prefix) {
	for a, st := range f.states {
		if st.Dynamic && p.Contains(a) {
			delete(f.states, a)
		}
	}
}

// Accept makes a router at a connect as a dynamic neighbour: if a
// configured range holds it (and no configured peer has its address), its
// session is Established and watchers are told; otherwise it is refused
// with an error, as GoBGP closes the connection.
func (f *FakeSpeaker) Accept(a netip.Addr, peerAS uint32) error {
	f.mu.Lock()
	if _, ok := f.peers[a]; ok {
		f.mu.Unlock()
		return fmt.Errorf("fake speaker: %s is a configured peer", a)
	}
	in := false
	for p := range f.ranges {
		in = in || p.Contains(a)
	}
	if !f.started || !in {
		f.mu.Unlock()
		return fmt.Errorf("fake speaker: no range holds %s", a)
	}
	f.states[a] = PeerStatus{Address: a, PeerAS: peerAS, State: api.BGPEstablished, Since: time.Now(), Dynamic: true}
	fns := slices.Clone(f.peerFns)
	f.mu.Unlock()
	for _, fn := range fns {
		fn(PeerEvent{Address: a, State: api.BGPActive})
		fn(PeerEvent{Address: a, State: api.BGPEstablished})
	}
	return nil
}

// SoftReset implements Speaker.
func (f *FakeSpeaker) SoftReset(_ context.Context, a netip.Addr, in bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.callLocked("SoftReset", "%s in=%v", a, in)
}

// ResetPeer implements Speaker: the session goes through Idle and
// comes back in the state it had, as GoBGP's after its idle hold.
func (f *FakeSpeaker) ResetPeer(_ context.Context, a netip.Addr) error {
	f.mu.Lock()
	if err := f.callLocked("ResetPeer", "%s", a); err != nil {
		f.mu.Unlock()
		return err
	}
	if _, ok := f.peers[a]; !ok {
		f.mu.Unlock()
		return fmt.Errorf("fake speaker: no peer %s", a)
	}
	prev := f.states[a].State
	fns := slices.Clone(f.peerFns)
	f.mu.Unlock()
	for _, fn := range fns {
		fn(PeerEvent{Address: a, State: api.BGPIdle})
		fn(PeerEvent{Address: a, State: prev})
	}
	return nil
}

// Announce implements Speaker.
func (f *FakeSpeaker) Announce(_ context.Context, rs []LocalRoute) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ps []string
	for _, r := range rs {
		ps = append(ps, r.Prefix.String())
	}
	if err := f.callLocked("Announce", "%s", strings.Join(ps, ",")); err != nil {
		return err
	}
	for _, r := range rs {
		f.announced[r.Prefix] = r
	}
	return nil
}

// Withdraw implements Speaker.
func (f *FakeSpeaker) Withdraw(_ context.Context, ps []netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	if err := f.callLocked("Withdraw", "%s", strings.Join(s, ",")); err != nil {
		return err
	}
	for _, p := range ps {
		delete(f.announced, p)
	}
	return nil
}

// WatchBestPaths implements Speaker; the learned paths are delivered at
// once, then what Learn injects.
func (f *FakeSpeaker) WatchBestPaths(ctx context.Context, fn func([]Destination)) error {
	f.mu.Lock()
	var init []Destination
	for p, paths := range f.learned {
		init = append(init, Destination{Prefix: p, Paths: slices.Clone(paths)})
	}
	f.bestFns = append(f.bestFns, fn)
	f.mu.Unlock()
	if len(init) > 0 {
		fn(init)
	}
	return nil
}

// WatchPeers implements Speaker.
func (f *FakeSpeaker) WatchPeers(ctx context.Context, fn func(PeerEvent)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peerFns = append(f.peerFns, fn)
	return nil
}

// Learn injects best paths as if peers had sent them (no paths: the
// destination is gone) and tells the watchers.
func (f *FakeSpeaker) Learn(ds ...Destination) {
	f.mu.Lock()
	for _, d := range ds {
		if len(d.Paths) == 0 {
			delete(f.learned, d.Prefix)
		} else {
			f.learned[d.Prefix] = slices.Clone(d.Paths)
		}
	}
	fns := slices.Clone(f.bestFns)
	f.mu.Unlock()
	for _, fn := range fns {
		fn(ds)
	}
}

// SetPeerState injects a peer event (state change or error). A dynamic
// neighbour that goes Idle is forgotten, as GoBGP does.
func (f *FakeSpeaker) SetPeerState(e PeerEvent) {
	f.mu.Lock()
	if st, ok := f.states[e.Address]; ok && e.State != "" {
		st.State = e.State
		st.Since = time.Now()
		f.states[e.Address] = st
		if st.Dynamic && e.State == api.BGPIdle {
			delete(f.states, e.Address)
		}
	}
	fns := slices.Clone(f.peerFns)
	f.mu.Unlock()
	for _, fn := range fns {
		fn(e)
	}
}

// Peers implements Speaker.
func (f *FakeSpeaker) Peers(context.Context) ([]PeerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Collect(maps.Values(f.states))
	slices.SortFunc(out, func(a, b PeerStatus) int { return a.Address.Compare(b.Address) })
	return out, nil
}

// RIB implements Speaker.
func (f *FakeSpeaker) RIB(context.Context) ([]Destination, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Destination
	for p, r := range f.announced {
		out = append(out, Destination{Prefix: p, Paths: []Path{{Local: true, Best: true, Communities: r.Communities}}})
	}
	for p, paths := range f.learned {
		out = append(out, Destination{Prefix: p, Paths: slices.Clone(paths)})
	}
	slices.SortFunc(out, func(a, b Destination) int { return comparePrefix(a.Prefix, b.Prefix) })
	return out, nil
}

// PeerConfigs returns the configured peers, by address.
func (f *FakeSpeaker) PeerConfigs() []PeerConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Collect(maps.Values(f.peers))
	slices.SortFunc(out, func(a, b PeerConfig) int { return a.Address.Compare(b.Address) })
	return out
}

// PeerRanges returns the configured ranges, by prefix.
func (f *FakeSpeaker) PeerRanges() []PeerRangeConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Collect(maps.Values(f.ranges))
	slices.SortFunc(out, func(a, b PeerRangeConfig) int { return comparePrefix(a.Prefix, b.Prefix) })
	return out
}

// Announced returns the announced routes, by prefix.
func (f *FakeSpeaker) Announced() []LocalRoute {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Collect(maps.Values(f.announced))
	slices.SortFunc(out, func(a, b LocalRoute) int { return comparePrefix(a.Prefix, b.Prefix) })
	return out
}

// Started reports whether the speaker runs, and with what.
func (f *FakeSpeaker) Started() (Global, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.global, f.started
}

// FakePathSpeaker is a FakeSpeaker that also reports received paths
// (PathWatcher), as the GoBGP speaker does: the router then applies the
// import policy and selects the best paths itself. Receive injects the
// paths peers send; Learn is not used with it.
type FakePathSpeaker struct {
	*FakeSpeaker

	rmu     sync.Mutex
	recvFns []func([]Received)
	current map[netip.Prefix]map[netip.Addr]Received
}

// NewFakePathSpeaker returns an empty FakePathSpeaker.
func NewFakePathSpeaker() *FakePathSpeaker {
	return &FakePathSpeaker{FakeSpeaker: NewFakeSpeaker(), current: map[netip.Prefix]map[netip.Addr]Received{}}
}

// WatchReceived implements PathWatcher: the current paths at once, then
// what Receive injects.
func (f *FakePathSpeaker) WatchReceived(_ context.Context, fn func([]Received)) error {
	f.rmu.Lock()
	var init []Received
	for _, byPeer := range f.current {
		for _, r := range byPeer {
			init = append(init, r)
		}
	}
	f.recvFns = append(f.recvFns, fn)
	f.rmu.Unlock()
	if len(init) > 0 {
		fn(init)
	}
	return nil
}

// Receive injects received paths and withdrawals, in order, and tells
// the watchers.
func (f *FakePathSpeaker) Receive(rs ...Received) {
	f.rmu.Lock()
	for _, r := range rs {
		if r.EndOfRIB.IsValid() {
			continue
		}
		if r.Withdrawn {
			delete(f.current[r.Prefix], r.Peer)
			continue
		}
		if f.current[r.Prefix] == nil {
			f.current[r.Prefix] = map[netip.Addr]Received{}
		}
		f.current[r.Prefix][r.Peer] = r
	}
	fns := slices.Clone(f.recvFns)
	f.rmu.Unlock()
	for _, fn := range fns {
		fn(rs)
	}
}
