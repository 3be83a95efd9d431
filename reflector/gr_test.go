package reflector

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

func grConfig(clients ...string) Config {
	cfg := testConfig(clients...)
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].GracefulRestart = true
	}
	return cfg
}

// waitState polls the reflector until addr's session is (or is not, when
// not is set) in state st. Session ends are not events the API offers.
func waitState(t *testing.T, r *Reflector, addr string, st State, not bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, ctx, fmt.Sprintf("%s state %v (not=%v)", addr, st, not), func() bool {
		for _, n := range r.Neighbors() {
			if n.Address == addr {
				return (n.State == st) != not
			}
		}
		return false
	})
}

// probe sends a fresh route from prober and reads mon's view until it
// arrives: whatever the reflector queued to mon before is then in view.
func probe(t *testing.T, prober, mon *rawSpeaker, view map[string]route, p string) {
	t.Helper()
	prober.send(t, ipv4Update("192.0.2.99", pfx(p)))
	collectInto(t, mon, false, view, hasKeys(p))
}

// TestGracefulRestartHelper: a client that restarts keeps its routes at the
// other clients while it is away (stale), replaces them on reconnect, and
// the ones it no longer announces go at its End-of-RIB.
func TestGracefulRestartHelper(t *testing.T) {
	r, addr := startReflector(t, grConfig("127.0.0.2", "127.0.0.3", "127.0.0.4"))
	gro := speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90, gr: true}
	a := connect(t, addr, "127.0.0.2", gro)
	mon := connect(t, addr, "127.0.0.3", speakerOpts{asn: testASN, id: "10.0.0.3", hold: 90, gr: true})
	prober := connect(t, addr, "127.0.0.4", opts("10.0.0.4"))
	for _, s := range []*rawSpeaker{a, mon, prober} {
		collect(t, s, false, hasEORs)
	}
	a.send(t, ipv4Update("192.0.2.2", pfx("10.20.0.0/24", "10.20.1.0/24")))
	view := collect(t, mon, false, hasKeys("10.20.0.0/24", "10.20.1.0/24"))

	a.conn.Close() // no NOTIFICATION: a restart
	waitState(t, r, "127.0.0.2", StateEstablished, true)
	probe(t, prober, mon, view, "10.21.0.0/24")
	if _, ok := view["10.20.1.0/24"]; !ok {
		t.Fatalf("routes of the restarting client withdrawn while it is away: %v", view)
	}

	// Back: it re-announces one route, adds one, and sends End-of-RIB.
	a2 := connect(t, addr, "127.0.0.2", gro)
	collect(t, a2, false, hasKeys("10.21.0.0/24", "EOR ipv4-unicast"))
	a2.send(t, ipv4Update("192.0.2.2", pfx("10.20.0.0/24", "10.20.2.0/24")))
	// A withdrawal of the stale routes at reconnect would come before this.
	collectInto(t, mon, false, view, hasKeys("10.20.2.0/24"))
	for _, p := range []string{"10.20.0.0/24", "10.20.1.0/24", "10.20.2.0/24"} {
		if _, ok := view[p]; !ok {
			t.Errorf("before End-of-RIB: %s missing at the monitor (%v)", p, view)
		}
	}
	a2.send(t, bgp.NewEndOfRib(bgp.RF_IPv4_UC))
	collectInto(t, mon, false, view, func(m map[string]route) bool { _, ok := m["10.20.1.0/24"]; return !ok })
	if _, ok := view["10.20.0.0/24"]; !ok {
		t.Errorf("End-of-RIB flushed a refreshed route: %v", view)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, _ := r.RIBStats(ctx); st.Prefixes[0] != 3 { // 10.20.0, 10.20.2, the probe
		t.Errorf("RIB holds %d IPv4 prefixes, want 3", st.Prefixes[0])
	}
}

// TestGracefulRestartExpiry: a client that never comes back has its stale
// routes flushed when its advertised restart time runs out.
func TestGracefulRestartExpiry(t *testing.T) {
	r, addr := startReflector(t, grConfig("127.0.0.2", "127.0.0.3", "127.0.0.4"))
	a := connect(t, addr, "127.0.0.2", speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90, gr: true, grTime: 1})
	mon := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	prober := connect(t, addr, "127.0.0.4", opts("10.0.0.4"))
	for _, s := range []*rawSpeaker{a, mon, prober} {
		collect(t, s, false, hasEORs)
	}
	a.send(t, ipv4Update("192.0.2.2", pfx("10.22.0.0/24")))
	view := collect(t, mon, false, hasKeys("10.22.0.0/24"))
	a.conn.Close()
	down := time.Now()
	waitState(t, r, "127.0.0.2", StateEstablished, true)
	probe(t, prober, mon, view, "10.23.0.0/24")
	if _, ok := view["10.22.0.0/24"]; !ok {
		t.Fatalf("stale route withdrawn at once")
	}
	collectInto(t, mon, false, view, func(m map[string]route) bool { _, ok := m["10.22.0.0/24"]; return !ok })
	if el := time.Since(down); el < 800*time.Millisecond {
		t.Errorf("stale route withdrawn after %v, want about the 1 s restart time", el)
	}
}

// TestReflectorGracefulRestart: the reflector stops for a restart (no
// NOTIFICATION) and comes back as a restarting speaker; GoBGP clients with
// graceful restart keep its routes throughout and end with fresh ones.
func TestReflectorGracefulRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs GoBGP clients: not run with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := grConfig("127.0.0.2", "127.0.0.3")
	cfg.ListenAddrs = []string{"127.0.0.1:0"}
	r1, addr, stop1 := runReflectorCause(t, cfg)
	a := newGoClient(t, ctx, "10.0.0.2", "127.0.0.2", true, addr)
	b := newGoClient(t, ctx, "10.0.0.3", "127.0.0.3", true, addr)
	a.announce(t, ctx, netip.MustParsePrefix("10.40.0.0/24"), "192.0.2.2")
	b.announce(t, ctx, netip.MustParsePrefix("10.40.1.0/24"), "192.0.2.3")
	waitFor(t, ctx, "routes reflected", func() bool {
		return len(a.paths(ctx, "10.40.1.0/24")) == 1 && len(b.paths(ctx, "10.40.0.0/24")) == 1
	})
	lostA, lostB := a.watchWithdrawals(t, ctx), b.watchWithdrawals(t, ctx)

	stop1(ErrGracefulRestart)
	_ = r1
	waitFor(t, ctx, "clients to see the reflector go", func() bool { return a.established(ctx) == 0 && b.established(ctx) == 0 })
	if p := a.paths(ctx, "10.40.1.0/24"); len(p) != 1 || !p[0].Stale {
		var lost []string
		for len(lostA) > 0 {
			lost = append(lost, <-lostA)
		}
		t.Fatalf("client a during the restart: paths %+v, want one stale; withdrawn at a: %v; b has %+v", p, lost, b.paths(ctx, "10.40.0.0/24"))
	}

	cfg.ListenAddrs = []string{addr.String()}
	cfg.Restarting = true
	r2, _, stop2 := runReflectorCause(t, cfg)
	defer stop2(nil)
	// Read the clients' tables only once their sessions are back: GoBGP
	// v3.37.0 rewrites a peer's info (shared with its paths) in OpenSent
	// without a lock ListPath takes, a data race the race detector reports.
	waitFor(t, ctx, "fresh routes after the restart", func() bool {
		if a.established(ctx) != 1 || b.established(ctx) != 1 {
			return false
		}
		pa, pb := a.paths(ctx, "10.40.1.0/24"), b.paths(ctx, "10.40.0.0/24")
		return len(pa) == 1 && !pa[0].Stale && len(pb) == 1 && !pb[0].Stale
	})
	select {
	case p := <-lostA:
		t.Errorf("client a lost %s during the restart", p)
	case p := <-lostB:
		t.Errorf("client b lost %s during the restart", p)
	default:
	}
	for _, n := range r2.Neighbors() {
		if n.State != StateEstablished || n.PrefixesOut != 1 || n.PrefixesIn != 1 {
			t.Errorf("after restart: %+v, want Established with 1 prefix in and out", n)
		}
	}
}

// runReflectorCause is runReflector whose stop takes the cancel cause.
func runReflectorCause(t *testing.T, cfg Config) (*Reflector, netip.AddrPort, func(error)) {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop := func(cause error) {
		if stopped {
			return
		}
		stopped = true
		cancel(cause)
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return")
		}
	}
	t.Cleanup(func() { stop(nil) })
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return r, r.ListenAddrs()[0], stop
}
