package reflector

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bgpfabric/bgpfabric/bfd"
)

// fakeBFD is a BFDServer whose state changes the test emits.
type fakeBFD struct {
	mu       sync.Mutex
	sessions map[bfd.Key]bfd.Config
	subs     []func(bfd.StateChange)
	closed   bool
}

func (f *fakeBFD) AddSession(c bfd.Config) (bfd.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions[c.Key()] = c
	return c.Key(), nil
}

func (f *fakeBFD) UpdateSession(c bfd.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions[c.Key()] = c
	return nil
}

func (f *fakeBFD) RemoveSession(k bfd.Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sessions, k)
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

func (f *fakeBFD) emit(peer string, old, new bfd.State, mod func(*bfd.StateChange)) {
	f.mu.Lock()
	c := bfd.StateChange{Old: old, New: new, RemoteState: new, At: time.Now()}
	for k := range f.sessions {
		if k.Peer == netip.MustParseAddr(peer) {
			c.Key = k
		}
	}
	subs := slices.Clone(f.subs)
	f.mu.Unlock()
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

func bfdNeighborState(r *Reflector, addr string) NeighborStatus {
	for _, n := range r.Neighbors() {
		if n.Address == addr {
			return n
		}
	}
	return NeighborStatus{}
}

// TestBFDDownCease: a BFD session per neighbour that enables BFD; its
// Down after Up closes the Established session with Cease, subcode 10
// (BFD Down, RFC 9384) and withdraws its routes at once, even with
// graceful restart and the neighbour's C bit set; on the neighbour's
// AdminDown the session stays; a Down once the session has ended (a
// restart: graceful restart in progress) does nothing (RFC 5882 §4.3.2).
func TestBFDDownCease(t *testing.T) {
	fb := &fakeBFD{sessions: map[bfd.Key]bfd.Config{}}
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	cfg.Neighbors[0].BFD = BFDConfig{Enabled: true, MinTx: 100 * time.Millisecond, MinRx: 100 * time.Millisecond, Multiplier: 3}
	cfg.Neighbors[0].GracefulRestart = true
	cfg.BFD = func() (BFDServer, error) { return fb, nil }
	r, addr := startReflector(t, cfg)
	if got := bfdNeighborState(r, "127.0.0.3").BFD; got != "" {
		t.Errorf("BFD state of a neighbour without BFD = %q", got)
	}
	a := connect(t, addr, "127.0.0.2", speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90, gr: true})
	b := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	collect(t, a, false, hasEORs)
	seen := collect(t, b, false, hasEORs)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.80.0.0/24")))
	collectInto(t, b, false, seen, hasKeys("10.80.0.0/24"))

	fb.emit("127.0.0.2", bfd.StateDown, bfd.StateUp, nil)
	if got := bfdNeighborState(r, "127.0.0.2").BFD; got != "Up" {
		t.Errorf("BFD state = %q, want Up", got)
	}
	fb.emit("127.0.0.2", bfd.StateUp, bfd.StateDown, func(c *bfd.StateChange) {
		c.RemoteState, c.Diag = bfd.StateAdminDown, bfd.DiagNeighborSignaledDown
	})
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(r.bfd.downs.WithLabelValues(bfdActionAdminDown)) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the AdminDown was not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := bfdNeighborState(r, "127.0.0.2"); st.State != StateEstablished {
		t.Errorf("after an AdminDown: state %v, want Established", st.State)
	}

	// New intervals: the BFD session changes, the BGP session stays.
	ns := slices.Clone(cfg.Neighbors)
	ns[0].BFD.MinTx = 200 * time.Millisecond
	if err := r.SetNeighbors(ns); err != nil {
		t.Fatal(err)
	}
	fb.mu.Lock()
	got := fb.sessions[bfd.Key{Peer: netip.MustParseAddr("127.0.0.2")}].MinTx
	fb.mu.Unlock()
	if got != 200*time.Millisecond {
		t.Errorf("BFD session minTx %v after the change, want 200ms", got)
	}
	fb.emit("127.0.0.2", bfd.StateDown, bfd.StateUp, nil)
	fb.emit("127.0.0.2", bfd.StateUp, bfd.StateDown, func(c *bfd.StateChange) { c.RemoteControlPlaneIndependent = true })
	// The first message a reads is the Cease: no new OPEN, so the BGP
	// session was not restarted by the BFD change.
	expectNotification(t, a, bgp.BGP_ERROR_CEASE, ceaseBFDDown)
	collectInto(t, b, false, seen, func(m map[string]route) bool { _, ok := m["10.80.0.0/24"]; return !ok })
	// Counted just after the Cease is queued: it may come after b saw
	// the withdrawal.
	for v := testutil.ToFloat64(r.bfd.downs.WithLabelValues(bfdActionCease)); v != 1; v = testutil.ToFloat64(r.bfd.downs.WithLabelValues(bfdActionCease)) {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatalf("cease count %v, want 1", v)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for st := bfdNeighborState(r, "127.0.0.2"); st.BFD != "Down" || !strings.Contains(st.LastError, "BFD down"); st = bfdNeighborState(r, "127.0.0.2") {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatalf("status %+v, want BFD Down and the reason", st)
		}
		time.Sleep(5 * time.Millisecond)
	}

	if v := testutil.ToFloat64(r.bfd.downs.WithLabelValues(bfdActionKept)); v != 0 {
		t.Errorf("keptGracefulRestart count %v, want 0", v)
	}
	// The session is gone: a Down now (as after a neighbour's restart)
	// has nothing to close.
	fb.emit("127.0.0.2", bfd.StateDown, bfd.StateUp, nil)
	fb.emit("127.0.0.2", bfd.StateUp, bfd.StateDown, nil)
	for testutil.ToFloat64(r.bfd.downs.WithLabelValues(bfdActionKept)) != 1 {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatal("a Down without a session was not counted as keptGracefulRestart")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if v := testutil.ToFloat64(r.bfd.downs.WithLabelValues(bfdActionCease)); v != 1 {
		t.Errorf("cease count %v after a Down without a session, want 1", v)
	}

	// Off: the BFD session goes.
	ns[0].BFD = BFDConfig{}
	if err := r.SetNeighbors(ns); err != nil {
		t.Fatal(err)
	}
	fb.mu.Lock()
	left := len(fb.sessions)
	fb.mu.Unlock()
	if left != 0 {
		t.Errorf("%d BFD sessions left after BFD was turned off", left)
	}
}

func TestBFDFileConfig(t *testing.T) {
	base := "routerID: 10.255.0.1\nasNumber: 64512\nneighbors:\n- address: 10.0.0.2\n"
	c, err := ParseConfigFile([]byte(base + "  bfd: {enabled: true, minTx: 100ms, minRx: 200ms, multiplier: 5, requireUp: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := BFDConfig{Enabled: true, MinTx: 100 * time.Millisecond, MinRx: 200 * time.Millisecond, Multiplier: 5, RequireUp: true}
	if got := c.Neighbors[0].BFD; got != want {
		t.Errorf("bfd = %+v, want %+v", got, want)
	}
	for _, tc := range []struct{ yaml, field string }{
		{"  bfd: {enabled: true, minTx: 5ms}\n", "neighbors[0].bfd.minTx"},
		{"  bfd: {enabled: true, minRx: 2m}\n", "neighbors[0].bfd.minRx"},
		{"  bfd: {enabled: true, multiplier: 256}\n", "neighbors[0].bfd.multiplier"},
		{"  bfd: {enabled: true, multihop: true}\n", "neighbors[0].bfd.multihop"},
	} {
		if _, err := ParseConfigFile([]byte(base + tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%q: error %v, want one naming %s", tc.yaml, err, tc.field)
		}
	}
	dyn := "routerID: 10.255.0.1\nasNumber: 64512\ndynamicNeighbors:\n- prefix: 10.0.0.0/24\n  bfd: {enabled: true}\n"
	if _, err := ParseConfigFile([]byte(dyn)); err == nil || !strings.Contains(err.Error(), "bfd") {
		t.Errorf("bfd on a dynamic neighbour: error %v, want it refused", err)
	}
}

// TestBFDRequireUpReflector: with requireUp a neighbour's connections are
// refused (Cease, Connection Rejected) until its BFD session is Up.
func TestBFDRequireUpReflector(t *testing.T) {
	fb := &fakeBFD{sessions: map[bfd.Key]bfd.Config{}}
	cfg := testConfig("127.0.0.2")
	cfg.Neighbors[0].BFD = BFDConfig{Enabled: true, RequireUp: true}
	cfg.BFD = func() (BFDServer, error) { return fb, nil }
	_, addr := startReflector(t, cfg)
	if s, err := dialSpeaker(context.Background(), addr, "127.0.0.2", opts("10.0.0.2")); err == nil || !strings.Contains(err.Error(), "notification 6/5") {
		if s != nil {
			s.conn.Close()
		}
		t.Fatalf("connecting before BFD is Up: %v, want Cease 6/5 (connection rejected)", err)
	}
	fb.emit("127.0.0.2", bfd.StateDown, bfd.StateUp, nil)
	// bfdLink has the new state before the subscriber returns: the next
	// connection is taken.
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	collect(t, a, false, hasEORs)
}
