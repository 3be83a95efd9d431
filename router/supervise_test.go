package router

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// dyingSpeaker is a FakeSpeaker that can die as a speaker process does:
// it forgets everything and reports the loss (router.LossWatcher).
type dyingSpeaker struct {
	*FakeSpeaker
	mu      sync.Mutex
	lossFns []func(SpeakerLoss)
	started int
}

func (d *dyingSpeaker) WatchLoss(_ context.Context, fn func(SpeakerLoss)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lossFns = append(d.lossFns, fn)
	return nil
}

// die ends the speaker as a crash would, with lastUp the peer that came
// up last.
func (d *dyingSpeaker) die(lastUp netip.Addr) {
	f := d.FakeSpeaker
	f.mu.Lock()
	f.started = false
	clear(f.peers)
	clear(f.ranges)
	clear(f.states)
	clear(f.announced)
	clear(f.learned)
	f.mu.Unlock()
	d.mu.Lock()
	fns := slices.Clone(d.lossFns)
	d.mu.Unlock()
	now := time.Now()
	for _, fn := range fns {
		fn(SpeakerLoss{At: now, Err: errors.New("speaker process lost: exit status 2"), Panic: "panic: test",
			LastUp: lastUp, LastUpAt: now.Add(-time.Millisecond)})
	}
}

// Start counts the speakers started.
func (d *dyingSpeaker) Start(ctx context.Context, g Global) error {
	err := d.FakeSpeaker.Start(ctx, g)
	if err == nil {
		d.mu.Lock()
		d.started++
		d.mu.Unlock()
	}
	return err
}

func (d *dyingSpeaker) starts() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.started
}

func peerSet(f *FakeSpeaker) []string {
	var out []string
	for _, p := range f.PeerConfigs() {
		out = append(out, p.Address.String())
	}
	slices.Sort(out)
	return out
}

func startDying(t *testing.T, sup Supervision, reg prometheus.Registerer) (*harness, *dyingSpeaker, *routetable.Fake) {
	t.Helper()
	d := &dyingSpeaker{FakeSpeaker: NewFakeSpeaker()}
	dp := routetable.NewFake()
	h := start(t, func(c *Config) {
		c.Speaker, c.Dataplane, c.Supervision, c.Metrics = d, dp, sup, reg
	})
	h.dp = dp
	// Graceful restart on (the default): a BGPConfiguration without it.
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), node("n3", "10.0.0.3/24"),
		&api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: "default"}})
	h.fib.ch <- FIBBatch{Snapshot: true, Routes: []FIBEvent{{Route: blackhole("10.65.1.0/26")}}}
	waitUntil(t, "two peers and our block announced", func() bool {
		return len(d.PeerConfigs()) == 2 && len(d.Announced()) == 1
	})
	return h, d, dp
}

// upWithRoute brings the peers up in the (new) speaker: n2 sends its
// block, both send End-of-RIB.
func upWithRoute(d *dyingSpeaker) {
	d.Learn(Destination{Prefix: pfx("10.65.2.0/26"), Paths: []Path{{NextHop: addr("10.0.0.2"), Peer: addr("10.0.0.2")}}})
	for _, a := range []string{"10.0.0.2", "10.0.0.3"} {
		d.SetPeerState(PeerEvent{Address: addr(a), State: api.BGPEstablished})
		d.Learn(Destination{EndOfRIB: addr(a)})
	}
}

// TestSpeakerLossRestartsWithGracefulRestart: the speaker dies; the router
// keeps the learned route in the kernel, starts a new speaker after the
// backoff, configures the sessions again with the restart bit, announces
// our block again, and installs what the peers send after End-of-RIB.
// One death blames a peer without quarantining it.
func TestSpeakerLossRestartsWithGracefulRestart(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, d, dp := startDying(t, Supervision{RestartBackoff: 10 * time.Millisecond}, reg)
	upWithRoute(d)
	want := []string{"10.65.2.0/26 via 10.0.0.2 proto 81"}
	waitUntil(t, "learned route installed", func() bool { return cmp.Equal(renderKernel(dp, 81), want) })

	d.die(addr("10.0.0.3"))
	waitUntil(t, "a new speaker with both sessions and our block", func() bool {
		return d.starts() == 2 && len(d.PeerConfigs()) == 2 && len(d.Announced()) == 1
	})
	for _, p := range d.PeerConfigs() {
		if !p.GracefulRestart.LocalRestarting {
			t.Errorf("session %s configured without the restart bit after the loss", p.Address)
		}
	}
	if got := renderKernel(dp, 81); !cmp.Equal(got, want) {
		t.Errorf("kernel right after the restart: %v, want %v (held)", got, want)
	}
	upWithRoute(d)
	waitUntil(t, "peers Established in the status", func() bool {
		s := h.status.get()
		return s != nil && len(s.Status.Peers) == 2 && s.Status.Peers[0].State == api.BGPEstablished && s.Status.Peers[1].State == api.BGPEstablished
	})
	if got := renderKernel(dp, 81); !cmp.Equal(got, want) {
		t.Errorf("kernel after End-of-RIB: %v, want %v", got, want)
	}
	for _, p := range h.status.get().Status.Peers {
		if p.QuarantinedUntil != "" {
			t.Errorf("peer %s quarantined after one death", p.PeerIP)
		}
	}
	if got := counterValue(t, reg, "bgpfabric_router_speaker_restarts_total", "", ""); got != 1 {
		t.Errorf("restarts counted %v, want 1", got)
	}
}

// TestQuarantineAfterRepeatedCrashes: the peer that came up last before
// two deaths is held down (not configured, shown with the end of its
// quarantine) while the other comes back; when the hold-down is over it
// is configured again.
func TestQuarantineAfterRepeatedCrashes(t *testing.T) {
	reg := prometheus.NewRegistry()
	const hold = 3 * time.Second // longer than the status write interval (at most one a second)
	h, d, _ := startDying(t, Supervision{RestartBackoff: 10 * time.Millisecond, Quarantine: QuarantinePolicy{HoldDown: hold}}, reg)
	upWithRoute(d)
	d.die(addr("10.0.0.3"))
	waitUntil(t, "second speaker configured", func() bool { return d.starts() == 2 && len(d.PeerConfigs()) == 2 })
	upWithRoute(d)
	d.die(addr("10.0.0.3"))
	waitUntil(t, "third speaker without n3", func() bool {
		return d.starts() == 3 && cmp.Equal(peerSet(d.FakeSpeaker), []string{"10.0.0.2"})
	})
	var q api.BGPPeerStatus
	waitUntil(t, "n3 quarantined in the status", func() bool {
		s := h.status.get()
		for _, p := range s.Status.Peers {
			if p.PeerIP == "10.0.0.3" && p.QuarantinedUntil != "" {
				q = p
				return true
			}
		}
		return false
	})
	if q.State != api.BGPIdle || !strings.Contains(q.LastError, "quarantined") {
		t.Errorf("quarantined peer shown %s, %q; want Idle with the reason", q.State, q.LastError)
	}
	if got := gaugeValue(t, reg, "bgpfabric_router_peers_quarantined"); got != 1 {
		t.Errorf("quarantined gauge %v, want 1", got)
	}
	waitUntil(t, "n3 configured again after the hold-down", func() bool {
		return cmp.Equal(peerSet(d.FakeSpeaker), []string{"10.0.0.2", "10.0.0.3"})
	})
	waitUntil(t, "n3 no longer quarantined in the status", func() bool {
		for _, p := range h.status.get().Status.Peers {
			if p.PeerIP == "10.0.0.3" {
				return p.QuarantinedUntil == ""
			}
		}
		return false
	})
	if got := gaugeValue(t, reg, "bgpfabric_router_peers_quarantined"); got != 0 {
		t.Errorf("quarantined gauge %v after the release, want 0", got)
	}
}

// TestSpeakerLossShownInStatus: until the new speaker runs (a long
// backoff here), the dead speaker's sessions stay in the status, Idle,
// with the reason.
func TestSpeakerLossShownInStatus(t *testing.T) {
	h, d, _ := startDying(t, Supervision{RestartBackoff: time.Hour}, nil)
	upWithRoute(d)
	d.die(addr("10.0.0.3"))
	waitUntil(t, "both sessions Idle, restarting", func() bool {
		s := h.status.get()
		if s == nil || len(s.Status.Peers) != 2 {
			return false
		}
		for _, p := range s.Status.Peers {
			if p.State != api.BGPIdle || !strings.Contains(p.LastError, "restarting") || p.Type != api.PeerTypeMesh {
				return false
			}
		}
		return true
	})
	if n := d.starts(); n != 1 {
		t.Errorf("%d starts within the backoff, want 1", n)
	}
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// TestEndOfRIBBeforeSessionEvents: a restarted speaker's End-of-RIB (on
// the best-path stream) can overtake the session's OpenSent and
// OpenConfirm events (on the peer stream; through a speaker process it
// often does). It still ends the graceful-restart hold.
func TestEndOfRIBBeforeSessionEvents(t *testing.T) {
	dp := routetable.NewFake()
	stale := routetable.KernelRoute{Table: 254, Protocol: 81, Type: routetable.TypeUnicast, Dst: pfx("10.65.7.0/26"), Gateway: addr("10.0.0.2")}
	dp.WriteRoutes(context.Background(), []routetable.RouteOp{{Kind: routetable.OpAdd, Route: stale}})
	h := start(t, func(c *Config) { c.Dataplane = dp })
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), &api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: "default"}})
	waitUntil(t, "peer configured", func() bool { return len(h.sp.PeerConfigs()) == 1 })
	h.sp.Learn(Destination{Prefix: pfx("10.65.2.0/26"), Paths: []Path{{NextHop: addr("10.0.0.2"), Peer: addr("10.0.0.2")}}},
		Destination{EndOfRIB: addr("10.0.0.2")})
	for _, st := range []api.BGPState{api.BGPActive, api.BGPOpenSent, api.BGPOpenConfirm, api.BGPEstablished} {
		h.sp.SetPeerState(PeerEvent{Address: addr("10.0.0.2"), State: st})
	}
	waitUntil(t, "stale route replaced", func() bool {
		return cmp.Equal(renderKernel(dp, 81), []string{"10.65.2.0/26 via 10.0.0.2 proto 81"})
	})
}
