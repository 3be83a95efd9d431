package reflector

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

func TestFIBRoute(t *testing.T) {
	peerA := &ribPeer{addr: netip.MustParseAddr("10.0.0.1"), routerID: 1}
	peerB := &ribPeer{addr: netip.MustParseAddr("10.0.0.2"), routerID: 2}
	peerC := &ribPeer{addr: netip.MustParseAddr("10.0.0.3"), routerID: 3}
	ebgp := &ribPeer{addr: netip.MustParseAddr("10.0.0.4"), routerID: 4, ebgp: true}
	at := func(nh string, f func(*attrs)) *attrs {
		a := &attrs{localPref: 100, asPathLen: 1, firstAS: 65001}
		if nh != "" {
			a.nextHop = netip.MustParseAddr(nh)
		}
		if f != nil {
			f(a)
		}
		return a
	}
	v4, v6 := netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("fd00:1::/64")
	tests := []struct {
		name       string
		dst        netip.Prefix
		paths      []path
		singlePath bool
		want       string // the route's gateways; "" for none
	}{
		{"one path", v4, []path{{src: peerA, a: at("192.0.2.1", nil)}}, false, "192.0.2.1"},
		{"equal paths: ECMP", v4, []path{{src: peerA, a: at("192.0.2.1", nil)}, {src: peerB, a: at("192.0.2.2", nil)}}, false, "192.0.2.1 192.0.2.2"},
		{"equal paths, single path asked", v4, []path{{src: peerA, a: at("192.0.2.1", nil)}, {src: peerB, a: at("192.0.2.2", nil)}}, true, "192.0.2.1"},
		{"same next hop twice", v4, []path{{src: peerA, a: at("192.0.2.1", nil)}, {src: peerB, a: at("192.0.2.1", nil)}}, false, "192.0.2.1"},
		{"worse path not used", v4, []path{
			{src: peerA, a: at("192.0.2.1", nil)},
			{src: peerB, a: at("192.0.2.2", func(a *attrs) { a.localPref = 50 })},
			{src: peerC, a: at("192.0.2.3", func(a *attrs) { a.asPathLen = 2 })},
		}, false, "192.0.2.1"},
		{"med differs within one AS", v4, []path{{src: peerA, a: at("192.0.2.1", nil)}, {src: peerB, a: at("192.0.2.2", func(a *attrs) { a.med = 5 })}}, false, "192.0.2.1"},
		{"med ignored across ASes", v4, []path{{src: peerA, a: at("192.0.2.1", nil)}, {src: peerB, a: at("192.0.2.2", func(a *attrs) { a.med, a.firstAS = 5, 65002 })}}, false, "192.0.2.1 192.0.2.2"},
		{"eBGP and iBGP do not mix", v4, []path{{src: ebgp, a: at("192.0.2.4", nil)}, {src: peerA, a: at("192.0.2.1", nil)}}, false, "192.0.2.4"},
		{"unusable best, usable equal", v4, []path{{src: peerA, a: at("", nil)}, {src: peerB, a: at("192.0.2.2", nil)}}, false, "192.0.2.2"},
		{"wrong family", v4, []path{{src: peerA, a: at("fd00::1", nil)}}, false, ""},
		{"unspecified", v4, []path{{src: peerA, a: at("0.0.0.0", nil)}}, false, ""},
		{"no paths", v4, nil, false, ""},
		{"v6", v6, []path{{src: peerA, a: at("fd00::1", nil)}, {src: peerB, a: at("fd00::2", nil)}}, false, "fd00::1 fd00::2"},
		{"v6 link-local only", v6, []path{{src: peerA, a: at("fe80::1", nil)}}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := fibRoute(tc.dst, tc.paths, !tc.singlePath)
			got := ""
			if ok {
				if r.Dst != tc.dst {
					t.Errorf("route for %v, want %v", r.Dst, tc.dst)
				}
				var gws []string
				for _, g := range gateways(r) {
					gws = append(gws, g.String())
				}
				got = strings.Join(gws, " ")
			}
			if got != tc.want {
				t.Errorf("gateways %q, want %q", got, tc.want)
			}
		})
	}
}

func gateways(r routetable.Route) []netip.Addr {
	if len(r.NextHops) == 0 {
		return []netip.Addr{r.Gateway}
	}
	var out []netip.Addr
	for _, nh := range r.NextHops {
		out = append(out, nh.Gateway)
	}
	return out
}

// fibLines renders a Fake's routes without the trailing newline.
func fibLines(f *routetable.Fake) string { return strings.TrimSpace(f.Render()) }

// waitFIB polls the fake kernel until it renders want. The FIB writer
// offers no event for "applied", and the fake none for "written".
func waitFIB(t *testing.T, f *routetable.Fake, want string) {
	t.Helper()
	want = strings.TrimSpace(want)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := fibLines(f)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kernel routes (-want +got):\n%s", cmp.Diff(strings.Split(want, "\n"), strings.Split(got, "\n")))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fibFake is a fake kernel holding a route that an earlier run of ours
// left (protocol 81) and a route of another protocol (4, static) on a
// prefix that a client will announce.
func fibFake() *routetable.Fake {
	f := routetable.NewFake()
	f.PutRoute(routetable.KernelRoute{Table: routetable.TableMain, Protocol: 81, Type: routetable.TypeUnicast,
		Dst: netip.MustParsePrefix("10.77.0.0/24"), Gateway: netip.MustParseAddr("192.0.2.77")})
	f.PutRoute(routetable.KernelRoute{Table: routetable.TableMain, Protocol: 4, Type: routetable.TypeUnicast,
		Dst: netip.MustParsePrefix("10.88.0.0/24"), Gateway: netip.MustParseAddr("192.0.2.88")})
	return f
}

const (
	staleRoute   = "10.77.0.0/24 via 192.0.2.77 proto 81"
	foreignRoute = "10.88.0.0/24 via 192.0.2.88 proto 4"
)

// TestFIBProgramsBestPaths: with ProgramFIB, the reflector removes what an
// earlier run left, installs its best paths (one ECMP route for equal
// paths from two clients), follows withdrawals, never touches another
// protocol's route, and removes its routes when it stops, unless it stops
// for a graceful restart.
func TestFIBProgramsBestPaths(t *testing.T) {
	for _, graceful := range []bool{false, true} {
		name := "clean stop"
		if graceful {
			name = "graceful restart"
		}
		t.Run(name, func(t *testing.T) {
			f := fibFake()
			cfg := testConfig("127.0.0.2", "127.0.0.3")
			cfg.ProgramFIB, cfg.FIB.Dataplane = true, f
			cfg.ListenAddrs = []string{"127.0.0.1:0"}
			_, addr, stop := runReflectorCause(t, cfg)
			waitFIB(t, f, foreignRoute) // the earlier run's route is gone
			a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
			b := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
			collect(t, a, false, hasEORs)
			collect(t, b, false, hasEORs)

			a.send(t, ipv4Update("192.0.2.2", pfx("10.1.0.0/24", "10.2.0.0/24", "10.88.0.0/24")))
			b.send(t, ipv4Update("192.0.2.3", pfx("10.1.0.0/24")))
			waitFIB(t, f, `
10.1.0.0/24 proto 81 nexthop via 192.0.2.2 nexthop via 192.0.2.3
10.2.0.0/24 via 192.0.2.2 proto 81
`+foreignRoute)

			a.send(t, ipv4Withdraw(pfx("10.1.0.0/24")))
			waitFIB(t, f, `
10.1.0.0/24 via 192.0.2.3 proto 81
10.2.0.0/24 via 192.0.2.2 proto 81
`+foreignRoute)
			b.send(t, ipv4Update("192.0.2.3", pfx("10.1.0.0/24"), bgp.NewPathAttributeLocalPref(200)))
			a.send(t, ipv4Update("192.0.2.2", pfx("10.1.0.0/24")))
			b.send(t, ipv4Withdraw(pfx("10.1.0.0/24")))
			waitFIB(t, f, `
10.1.0.0/24 via 192.0.2.2 proto 81
10.2.0.0/24 via 192.0.2.2 proto 81
`+foreignRoute)

			if graceful {
				stop(ErrGracefulRestart)
				waitFIB(t, f, `
10.1.0.0/24 via 192.0.2.2 proto 81
10.2.0.0/24 via 192.0.2.2 proto 81
`+foreignRoute)
				return
			}
			stop(nil)
			if got := fibLines(f); got != foreignRoute {
				t.Errorf("after a clean stop, kernel routes:\n%s\nwant only the foreign one", got)
			}
		})
	}
}

// TestFIBRestartingKeepsRoutes: a restarting reflector leaves the routes
// of its last run in place until it has relearnt the fabric (the end of
// the selection deferral), then replaces them: kept where re-learnt,
// removed where not.
func TestFIBRestartingKeepsRoutes(t *testing.T) {
	f := fibFake()
	cfg := grConfig("127.0.0.2")
	cfg.Restarting, cfg.ProgramFIB, cfg.FIB.Dataplane = true, true, f
	r, addr := startReflector(t, cfg)
	a := connect(t, addr, "127.0.0.2", speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90, gr: true})
	a.send(t, ipv4Update("192.0.2.2", pfx("10.1.0.0/24")))
	// Once the route is in the RIB and the writer has taken it, nothing
	// has been written: the kernel is held until the deferral ends.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waitFor(t, ctx, "the route in the RIB and taken by the FIB writer", func() bool {
		st, _ := r.RIBStats(ctx)
		r.fib.feed.mu.Lock()
		defer r.fib.feed.mu.Unlock()
		return st.Paths == 1 && len(r.fib.feed.pending) == 0
	})
	if st := f.Stats(); st.Writes != 0 || st.Lists != 0 {
		t.Errorf("kernel calls %+v while deferring, want none", st)
	}
	if got := fibLines(f); got != staleRoute+"\n"+foreignRoute {
		t.Errorf("kernel routes changed while deferring:\n%s", got)
	}
	a.send(t, bgp.NewEndOfRib(bgp.RF_IPv4_UC), bgp.NewEndOfRib(bgp.RF_IPv6_UC))
	waitFIB(t, f, `
10.1.0.0/24 via 192.0.2.2 proto 81
`+foreignRoute)
}

// TestFIBOff: without ProgramFIB the reflector never touches the kernel,
// even with a FIB configuration (here a fake kernel, which counts every
// call) and routes flowing.
func TestFIBOff(t *testing.T) {
	f := fibFake()
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	cfg.FIB.Dataplane = f
	r, addr, stop := runReflector(t, cfg)
	if r.fib != nil || r.env.rib.fib != nil {
		t.Fatal("a FIB writer exists without ProgramFIB")
	}
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	b := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	collect(t, a, false, hasEORs)
	collect(t, b, false, hasEORs)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.1.0.0/24")))
	collect(t, b, false, hasKeys("10.1.0.0/24"))
	stop()
	if st := f.Stats(); st != (routetable.FakeStats{}) {
		t.Errorf("kernel calls %+v, want none", st)
	}
	if got := fibLines(f); got != staleRoute+"\n"+foreignRoute {
		t.Errorf("kernel routes changed:\n%s", got)
	}
}

// TestFIBConfig: protocol and table defaults and refusals.
func TestFIBConfig(t *testing.T) {
	c, err := FIBConfig{}.withDefaults()
	if err != nil || c.Protocol != 81 || c.Table != routetable.TableMain || c.ResyncInterval <= 0 {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	for _, bad := range []FIBConfig{{Protocol: 4}, {Table: 255}} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	cfg := testConfig()
	cfg.ProgramFIB, cfg.FIB.Protocol = true, 2
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "FIB.Protocol") {
		t.Errorf("New with FIB protocol 2: %v", err)
	}
	cfg.ProgramFIB = false // not used, not checked
	if _, err := New(cfg); err != nil {
		t.Errorf("New without ProgramFIB: %v", err)
	}
}

// TestFIBRetriesFailedRoutes: a route the kernel refuses is tried again
// until it is installed.
func TestFIBRetriesFailedRoutes(t *testing.T) {
	f := routetable.NewFake()
	f.FailNext(routetable.OpAdd, netip.MustParsePrefix("10.1.0.0/24"), errors.New("ENETUNREACH (injected)"))
	cfg := testConfig("127.0.0.2")
	cfg.ProgramFIB, cfg.FIB.Dataplane = true, f
	_, addr := startReflector(t, cfg)
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	collect(t, a, false, hasEORs)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.1.0.0/24")))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waitFor(t, ctx, "the refused route installed on a retry", func() bool {
		return fibLines(f) == "10.1.0.0/24 via 192.0.2.2 proto 81"
	})
}
