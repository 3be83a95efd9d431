package router

import (
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/bfd"
)

// fakeBFD is a BFDServer whose state changes the test emits.
type fakeBFD struct {
	mu       sync.Mutex
	sessions map[bfd.Key]bfd.Config
	subs     []func(bfd.StateChange)
	calls    []string
	closed   bool
}

func newFakeBFD() *fakeBFD { return &fakeBFD{sessions: map[bfd.Key]bfd.Config{}} }

func (f *fakeBFD) AddSession(c bfd.Config) (bfd.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.Multihop && !c.Local.IsValid() {
		return bfd.Key{}, fmt.Errorf("bfd config: local: required for multihop session to %s", c.Peer)
	}
	f.sessions[c.Key()] = c
	f.calls = append(f.calls, fmt.Sprintf("add %s %v/%v x%d", c.Key(), c.MinTx, c.MinRx, c.Multiplier))
	return c.Key(), nil
}

func (f *fakeBFD) UpdateSession(c bfd.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions[c.Key()] = c
	f.calls = append(f.calls, fmt.Sprintf("update %s %v/%v x%d", c.Key(), c.MinTx, c.MinRx, c.Multiplier))
	return nil
}

func (f *fakeBFD) RemoveSession(k bfd.Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sessions, k)
	f.calls = append(f.calls, "remove "+k.String())
	return nil
}

func (f *fakeBFD) Subscribe(fn func(bfd.StateChange)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = append(f.subs, fn)
	return func() {}
}

func (f *fakeBFD) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeBFD) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeBFD) has(peer string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.sessions {
		if k.Peer == addr(peer) {
			return true
		}
	}
	return false
}

// emit delivers a change of the session to peer.
func (f *fakeBFD) emit(peer string, old, new bfd.State, mod func(*bfd.StateChange)) {
	f.mu.Lock()
	var c bfd.StateChange
	for k := range f.sessions {
		if k.Peer == addr(peer) {
			c.Key = k
		}
	}
	subs := slices.Clone(f.subs)
	f.mu.Unlock()
	c.Old, c.New, c.RemoteState, c.At = old, new, new, time.Now()
	if new == bfd.StateDown {
		c.Diag = bfd.DiagControlDetectExpired
	}
	if mod != nil {
		mod(&c)
	}
	for _, fn := range subs {
		fn(c)
	}
}

func bgpConfigBFD(gr bool, b *api.BFD) *api.BGPConfiguration {
	c := meshConfig("90s")
	c.Spec.GracefulRestart.Enabled = &gr
	c.Spec.BFD = b
	return c
}

func peerStatus(h *harness, peer string) (api.BGPPeerStatus, bool) {
	st := h.status.get()
	if st == nil {
		return api.BGPPeerStatus{}, false
	}
	for _, p := range st.Status.Peers {
		if p.PeerIP == peer {
			return p, true
		}
	}
	return api.BGPPeerStatus{}, false
}

func startBFD(t *testing.T) (*harness, *fakeBFD, *prometheus.Registry) {
	fb := newFakeBFD()
	reg := prometheus.NewRegistry()
	h := start(t, func(c *Config) {
		c.BFD = func() (BFDServer, error) { return fb, nil }
		c.Metrics = reg
	})
	return h, fb, reg
}

// metricValue is the value of the series of name with the label
// name=value, -1 if there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					if m.Gauge != nil {
						return m.Gauge.GetValue()
					}
					return m.Counter.GetValue()
				}
			}
		}
	}
	return -1
}

func learnFrom2And3(h *harness) {
	h.sp.Learn(
		Destination{Prefix: pfx("10.65.2.0/26"), Paths: []Path{{NextHop: addr("10.0.0.2"), Peer: addr("10.0.0.2")}}},
		Destination{Prefix: pfx("10.65.3.0/26"), Paths: []Path{{NextHop: addr("10.0.0.3"), Peer: addr("10.0.0.3")}}},
	)
}

var both = []string{"10.65.2.0/26 via 10.0.0.2 proto 81", "10.65.3.0/26 via 10.0.0.3 proto 81"}

// TestBFDDownResetsPeer: a BFD session per BGP session with BFD on, with
// the configured intervals; its Down after Up ends that BGP session at
// once (its routes leave the kernel), and only that one, which is then
// configured again; the status and the metrics show it.
func TestBFDDownResetsPeer(t *testing.T) {
	h, fb, reg := startBFD(t)
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), node("n3", "10.0.0.3/24"),
		bgpConfigBFD(false, &api.BFD{Enabled: ptr(true), MinTx: "100ms", MinRx: "200ms", Multiplier: ptr(4)}))
	waitUntil(t, "BFD sessions", func() bool { return fb.has("10.0.0.2") && fb.has("10.0.0.3") })
	calls := fb.Calls()
	slices.Sort(calls)
	want := []string{"add 10.0.0.2 from 10.0.0.1 100ms/200ms x4", "add 10.0.0.3 from 10.0.0.1 100ms/200ms x4"}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("BFD sessions (-want +got):\n%s", diff)
	}
	learnFrom2And3(h)
	waitUntil(t, "routes installed", func() bool { return cmp.Equal(both, renderKernel(h.dp, 81)) })
	fb.emit("10.0.0.2", bfd.StateDown, bfd.StateUp, nil)
	fb.emit("10.0.0.3", bfd.StateDown, bfd.StateUp, nil)
	waitUntil(t, "BFD Up in the status", func() bool { p, _ := peerStatus(h, "10.0.0.2"); return p.BFD == "Up" })
	establish(t, h, "10.0.0.2", "10.0.0.3")
	h.sp.Calls()

	// Down before Up (Init → Down) is no failure of a working path.
	fb.emit("10.0.0.3", bfd.StateInit, bfd.StateDown, nil)
	fb.emit("10.0.0.2", bfd.StateUp, bfd.StateDown, nil)
	waitUntil(t, "n2's route withdrawn", func() bool { return cmp.Equal(both[1:], renderKernel(h.dp, 81)) })
	waitUntil(t, "n2 configured again", func() bool { return strings.Contains(peerAddrs(h.sp), "10.0.0.2/90") })
	if diff := cmp.Diff([]string{"DeletePeer 10.0.0.2", "AddPeer 10.0.0.2"}, h.sp.Calls()); diff != "" {
		t.Errorf("speaker calls on BFD down (-want +got):\n%s", diff)
	}
	waitUntil(t, "status", func() bool {
		p, _ := peerStatus(h, "10.0.0.2")
		return p.BFD == "Down" && strings.Contains(p.LastError, "BGP session reset")
	})

	waitUntil(t, "metrics", func() bool {
		return metricValue(t, reg, "bgpfabric_router_bfd_down_total", "action", "reset") == 1 &&
			metricValue(t, reg, "bgpfabric_router_bfd_sessions", "state", "Up") == 0 &&
			metricValue(t, reg, "bgpfabric_router_bfd_sessions", "state", "Down") == 2
	})
	// Changing the intervals updates the BFD session, not the BGP one.
	h.res.put(t, bgpConfigBFD(false, &api.BFD{Enabled: ptr(true), MinTx: "300ms", MinRx: "200ms", Multiplier: ptr(4)}))
	waitUntil(t, "BFD updated", func() bool { return len(fb.Calls()) == 2 })
	if c := h.sp.Calls(); len(c) != 0 {
		t.Errorf("a BFD change touched the BGP sessions: %v", c)
	}
	// Off: the BFD sessions go.
	h.res.put(t, bgpConfigBFD(false, nil))
	waitUntil(t, "BFD sessions removed", func() bool { return !fb.has("10.0.0.2") && !fb.has("10.0.0.3") })
	h.stop(t)
	if !fb.closed {
		t.Error("BFD server not closed")
	}
}

// establish reports the peers' BGP sessions Established and waits for
// the status to show it.
func establish(t *testing.T, h *harness, peers ...string) {
	t.Helper()
	for _, p := range peers {
		h.sp.SetPeerState(PeerEvent{Address: addr(p), State: api.BGPEstablished})
	}
	for _, p := range peers {
		waitUntil(t, p+" Established", func() bool { st, _ := peerStatus(h, p); return st.State == api.BGPEstablished })
	}
}

// TestBFDGracefulRestart: RFC 5882 §4.3. A BFD Down whose BGP session
// has already ended (the peer restarts: its TCP closed at once, BFD
// expired a detection time later) leaves graceful restart to run: no
// speaker call, the routes stay (§4.3.2: our C bit is clear). A BFD Down
// of an Established session ends it and its routes at once, graceful
// restart on or not, whatever the peer's C bit. A peer's AdminDown
// (§3.2) leaves the BGP session up.
func TestBFDGracefulRestart(t *testing.T) {
	h, fb, reg := startBFD(t)
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), node("n3", "10.0.0.3/24"),
		bgpConfigBFD(true, &api.BFD{Enabled: ptr(true)}))
	waitUntil(t, "BFD sessions", func() bool { return fb.has("10.0.0.2") && fb.has("10.0.0.3") })
	learnFrom2And3(h)
	waitUntil(t, "routes installed", func() bool { return cmp.Equal(both, renderKernel(h.dp, 81)) })
	for _, p := range []string{"10.0.0.2", "10.0.0.3"} {
		fb.emit(p, bfd.StateDown, bfd.StateUp, nil)
	}
	establish(t, h, "10.0.0.2", "10.0.0.3")
	h.sp.Calls()
	// n2 restarts: its BGP session ends (graceful restart keeps its
	// routes), then its BFD expires.
	h.sp.SetPeerState(PeerEvent{Address: addr("10.0.0.2"), State: api.BGPActive})
	waitUntil(t, "n2 Active", func() bool { st, _ := peerStatus(h, "10.0.0.2"); return st.State == api.BGPActive })
	fb.emit("10.0.0.2", bfd.StateUp, bfd.StateDown, nil)
	adminDown := func(c *bfd.StateChange) { c.RemoteState, c.Diag = bfd.StateAdminDown, bfd.DiagNeighborSignaledDown }
	fb.emit("10.0.0.3", bfd.StateUp, bfd.StateDown, adminDown)
	waitUntil(t, "status", func() bool {
		p2, _ := peerStatus(h, "10.0.0.2")
		p3, _ := peerStatus(h, "10.0.0.3")
		return strings.Contains(p2.LastError, "graceful restart (if any) left to run") && strings.Contains(p3.LastError, "AdminDown")
	})
	if c := h.sp.Calls(); len(c) != 0 {
		t.Errorf("speaker calls on a BFD Down during a restart or on AdminDown: %v", c)
	}
	for _, a := range []string{bfdActionKept, bfdActionAdminDown} {
		if v := metricValue(t, reg, "bgpfabric_router_bfd_down_total", "action", a); v != 1 {
			t.Errorf("bfd_down_total{action=%s} = %v, want 1", a, v)
		}
	}
	if got := renderKernel(h.dp, 81); !cmp.Equal(both, got) {
		t.Errorf("routes = %v, want both kept", got)
	}
	// Established, the peer's C bit set, graceful restart on: the
	// session and its routes go now.
	fb.emit("10.0.0.3", bfd.StateDown, bfd.StateUp, nil)
	fb.emit("10.0.0.3", bfd.StateUp, bfd.StateDown, func(c *bfd.StateChange) { c.RemoteControlPlaneIndependent = true })
	waitUntil(t, "n3's route withdrawn", func() bool { return cmp.Equal(both[:1], renderKernel(h.dp, 81)) })
	if diff := cmp.Diff([]string{"DeletePeer 10.0.0.3", "AddPeer 10.0.0.3"}, h.sp.Calls()); diff != "" {
		t.Errorf("speaker calls (-want +got):\n%s", diff)
	}
}

// TestBFDRequireUp: with requireUp the BGP session is configured only
// while BFD is Up, and goes (with its routes) when BFD goes Down.
func TestBFDRequireUp(t *testing.T) {
	h, fb, _ := startBFD(t)
	tor := &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "tor"}, Spec: api.BGPPeerSpec{
		PeerIP: "10.0.0.254", ASNumber: ptr(uint32(65000)), BFD: &api.BFD{Enabled: ptr(true), RequireUp: ptr(true), Multihop: ptr(true)}}}
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), meshConfig("90s"), tor)
	waitUntil(t, "BFD session", func() bool { return fb.has("10.0.0.254") })
	if diff := cmp.Diff([]string{"add 10.0.0.254 from 10.0.0.1 multihop 300ms/300ms x3"}, fb.Calls()); diff != "" {
		t.Errorf("BFD session (-want +got):\n%s", diff)
	}
	waitUntil(t, "held in the status", func() bool { p, _ := peerStatus(h, "10.0.0.254"); return p.LastError == bfdHoldMsg })
	if got := peerAddrs(h.sp); got != "10.0.0.2/90" {
		t.Fatalf("peers = %s, want only the mesh peer while BFD is not Up", got)
	}
	if fb.has("10.0.0.2") {
		t.Error("BFD session for the mesh peer, which does not enable it")
	}
	fb.emit("10.0.0.254", bfd.StateDown, bfd.StateInit, nil)
	fb.emit("10.0.0.254", bfd.StateInit, bfd.StateUp, nil)
	waitUntil(t, "tor configured", func() bool { return peerAddrs(h.sp) == "10.0.0.2/90 10.0.0.254/90" })
	h.sp.Learn(Destination{Prefix: pfx("10.9.0.0/16"), Paths: []Path{{NextHop: addr("10.0.0.254"), Peer: addr("10.0.0.254"), PeerAS: 65000}}})
	waitUntil(t, "route installed", func() bool { return len(renderKernel(h.dp, 81)) == 1 })
	establish(t, h, "10.0.0.254")
	h.sp.Calls()
	fb.emit("10.0.0.254", bfd.StateUp, bfd.StateDown, nil)
	waitUntil(t, "route withdrawn", func() bool { return len(renderKernel(h.dp, 81)) == 0 })
	waitUntil(t, "held again", func() bool { p, _ := peerStatus(h, "10.0.0.254"); return p.LastError == bfdHoldMsg })
	if diff := cmp.Diff([]string{"DeletePeer 10.0.0.254"}, h.sp.Calls()); diff != "" {
		t.Errorf("speaker calls (-want +got):\n%s", diff)
	}
	fb.emit("10.0.0.254", bfd.StateDown, bfd.StateUp, nil)
	waitUntil(t, "tor configured again", func() bool { return peerAddrs(h.sp) == "10.0.0.2/90 10.0.0.254/90" })
}
