package routetable

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustApply(t *testing.T, rt *RouteTable) {
	t.Helper()
	if err := rt.Apply(context.Background()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func wantState(t *testing.T, f *Fake, want string) {
	t.Helper()
	if diff := cmp.Diff(want, f.Render()); diff != "" {
		t.Errorf("kernel routes (-want +got):\n%s", diff)
	}
}

func TestPendingUntilLinkIsUp(t *testing.T) {
	f := NewFake()
	rt := newTable(t, f)
	w := Route{Dst: pfx("10.65.0.7/32"), Iface: "cali7"}
	w6 := Route{Dst: pfx("fd00::7/128"), Iface: "cali7"}
	if err := rt.Set([]Route{w, w6}); err != nil {
		t.Fatal(err)
	}
	mustApply(t, rt)
	wantState(t, f, "")
	if diff := cmp.Diff([]Route{{Dst: w.Dst, Type: TypeUnicast, Iface: "cali7"}, {Dst: w6.Dst, Type: TypeUnicast, Iface: "cali7"}}, rt.Pending(),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("Pending (-want +got):\n%s", diff)
	}

	f.AddLink("cali7", false)
	rt.OnLinkUpdate(linkUpdate(f, "cali7"))
	mustApply(t, rt)
	wantState(t, f, "")

	f.SetLinkUp("cali7", true)
	rt.OnLinkUpdate(linkUpdate(f, "cali7"))
	mustApply(t, rt)
	up := lines("10.65.0.7 dev cali7 proto 80 scope link", "fd00::7 dev cali7 proto 80")
	wantState(t, f, up)
	if p := rt.Pending(); len(p) != 0 {
		t.Errorf("Pending = %v, want none", p)
	}

	// Down flushes the kernel's routes; they wait again, without errors.
	f.SetLinkUp("cali7", false)
	rt.OnLinkUpdate(linkUpdate(f, "cali7"))
	mustApply(t, rt)
	wantState(t, f, "")
	f.SetLinkUp("cali7", true)
	rt.OnLinkUpdate(linkUpdate(f, "cali7"))
	mustApply(t, rt)
	wantState(t, f, up)

	// Gone and back with a new index.
	f.DeleteLink("cali7")
	rt.OnLinkUpdate(LinkUpdate{Link: Link{Name: "cali7"}, Deleted: true})
	mustApply(t, rt)
	wantState(t, f, "")
	f.AddLink("cali7", true)
	rt.OnLinkUpdate(linkUpdate(f, "cali7"))
	mustApply(t, rt)
	wantState(t, f, up)
}

// TestLinkUpdateOrders replays the same link history in every order of its
// independent parts, with duplicates: the result depends only on the final
// state of each link.
func TestLinkUpdateOrders(t *testing.T) {
	names := []string{"cali1", "cali2", "cali3", "cali4"}
	var routes []Route
	for i, n := range names {
		routes = append(routes, Route{Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 65, 0, byte(i + 1)}), 32), Iface: n})
	}
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			f := NewFake()
			rt := newTable(t, f)
			if err := rt.Set(routes); err != nil {
				t.Fatal(err)
			}
			mustApply(t, rt)
			r := rand.New(rand.NewPCG(seed, 1))
			// cali1 up, cali2 down, cali3 up then deleted, cali4 never.
			var ups []LinkUpdate
			for _, n := range names[:3] {
				ups = append(ups, linkUpdate(f, n)) // deleted: not there yet
				l := f.AddLink(n, n != "cali2")
				ups = append(ups, LinkUpdate{Link: l})
			}
			perLink := map[string][]LinkUpdate{}
			for _, u := range ups {
				perLink[u.Name] = append(perLink[u.Name], u)
			}
			f.DeleteLink("cali3")
			perLink["cali3"] = append(perLink["cali3"], LinkUpdate{Link: Link{Name: "cali3"}, Deleted: true})
			// Interleave the links' histories randomly, keeping each
			// link's own order, and repeat some updates.
			for len(perLink) > 0 {
				n := names[r.IntN(3)]
				if len(perLink[n]) == 0 {
					delete(perLink, n)
					continue
				}
				rt.OnLinkUpdate(perLink[n][0])
				if r.IntN(3) == 0 {
					rt.OnLinkUpdate(perLink[n][0])
				}
				perLink[n] = perLink[n][1:]
				if r.IntN(2) == 0 {
					// May fail: the fake is ahead of the updates
					// replayed so far (ENODEV for cali3).
					_ = rt.Apply(context.Background())
				}
			}
			mustApply(t, rt)
			wantState(t, f, lines("10.65.0.1 dev cali1 proto 80 scope link"))
		})
	}
}

func TestApplyIsIncremental(t *testing.T) {
	f := NewFake()
	f.AddLink("cali1", true)
	rt := newTable(t, f)
	var routes []Route
	for i := range 100 {
		routes = append(routes, Route{Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 65, 0, byte(i)}), 32), Iface: "cali1"})
	}
	if err := rt.Set(routes); err != nil {
		t.Fatal(err)
	}
	mustApply(t, rt)
	before := f.Stats()
	if err := rt.Set(routes); err != nil {
		t.Fatal(err)
	}
	mustApply(t, rt)
	if got := f.Stats(); got != before {
		t.Errorf("same Set and Apply again made calls: %+v, before %+v", got, before)
	}

	if err := rt.SetRoute(Route{Dst: pfx("10.65.0.5/32"), Type: TypeBlackhole}); err != nil {
		t.Fatal(err)
	}
	rt.DeleteRoute(pfx("10.65.0.6/32"))
	mustApply(t, rt)
	got := f.Stats()
	if want := (FakeStats{Lists: before.Lists, Writes: before.Writes + 1, Ops: before.Ops + 2}); got != want {
		t.Errorf("stats after a change of 2 routes = %+v, want %+v", got, want)
	}
	if r := f.Render(); !strings.Contains(r, "blackhole 10.65.0.5 proto 80\n") || strings.Contains(r, "10.65.0.6 ") {
		t.Errorf("routes after the change:\n%s", r)
	}
}

func TestResyncRepairsChangesBehindOurBack(t *testing.T) {
	f := NewFake()
	f.AddLink("cali1", true)
	rt := newTable(t, f)
	routes := []Route{
		{Dst: pfx("10.65.0.1/32"), Iface: "cali1"},
		{Dst: pfx("10.65.0.2/32"), Iface: "cali1"},
		{Dst: pfx("10.65.0.0/26"), Type: TypeBlackhole},
	}
	if err := rt.Set(routes); err != nil {
		t.Fatal(err)
	}
	mustApply(t, rt)
	want := f.Render()

	f.RemoveRoute(254, pfx("10.65.0.1/32"))
	f.PutRoute(KernelRoute{Table: 254, Protocol: 80, Type: TypeUnreachable, Dst: pfx("10.65.0.2/32")})
	f.PutRoute(KernelRoute{Table: 254, Protocol: 80, Type: TypeBlackhole, Dst: pfx("10.77.0.0/26")})
	foreign := KernelRoute{Table: 254, Protocol: 4, Type: TypeBlackhole, Dst: pfx("10.88.0.0/26")}
	f.PutRoute(foreign)
	mustApply(t, rt) // without a resync, nothing is noticed
	if f.Render() == want+"blackhole 10.88.0.0/26 proto 4\n" {
		t.Fatal("repaired without a resync")
	}
	rt.Resync()
	mustApply(t, rt)
	wantState(t, f, want+"blackhole 10.88.0.0/26 proto 4\n")
}

func TestConflictIsRetriedAfterResync(t *testing.T) {
	f := NewFake()
	foreign := KernelRoute{Table: 254, Protocol: 186, Type: TypeBlackhole, Dst: pfx("10.65.0.0/26")}
	f.PutRoute(foreign)
	rt := newTable(t, f)
	if err := rt.SetRoute(Route{Dst: pfx("10.65.0.0/26"), Type: TypeBlackhole}); err != nil {
		t.Fatal(err)
	}
	err := rt.Apply(context.Background())
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Protocol != 186 {
		t.Fatalf("Apply = %v, want a ConflictError for protocol 186", err)
	}
	if diff := cmp.Diff([]ConflictError{*ce}, rt.Conflicts(), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Conflicts (-want +got):\n%s", diff)
	}
	mustApply(t, rt) // not retried without a resync
	f.RemoveRoute(254, foreign.Dst)
	rt.Resync()
	mustApply(t, rt)
	wantState(t, f, lines("blackhole 10.65.0.0/26 proto 80"))
	if c := rt.Conflicts(); len(c) != 0 {
		t.Errorf("Conflicts = %v after the foreign route went", c)
	}
}

func TestListFailureIsRetried(t *testing.T) {
	f := NewFake()
	rt := newTable(t, f)
	if err := rt.SetRoute(Route{Dst: pfx("10.65.0.0/26"), Type: TypeBlackhole}); err != nil {
		t.Fatal(err)
	}
	f.FailNextList(syscall.EINTR)
	if err := rt.Apply(context.Background()); !errors.Is(err, syscall.EINTR) {
		t.Fatalf("Apply = %v, want EINTR", err)
	}
	wantState(t, f, "")
	mustApply(t, rt)
	wantState(t, f, lines("blackhole 10.65.0.0/26 proto 80"))
}

func TestManyFailuresAreCapped(t *testing.T) {
	f := NewFake()
	rt := newTable(t, f)
	var routes []Route
	for i := range 40 {
		dst := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 65, 0, byte(i)}), 32)
		routes = append(routes, Route{Dst: dst, Type: TypeBlackhole})
		f.FailNext(OpAdd, dst, syscall.ENOBUFS)
	}
	if err := rt.Set(routes); err != nil {
		t.Fatal(err)
	}
	err := rt.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "and 24 more route errors") {
		t.Fatalf("Apply = %v, want 16 errors and a count of the other 24", err)
	}
	mustApply(t, rt)
	if n := strings.Count(f.Render(), "\n"); n != 40 {
		t.Errorf("%d routes after the retry, want 40", n)
	}
}

func TestSetRejectsBadRoutes(t *testing.T) {
	rt := newTable(t, NewFake())
	err := rt.Set([]Route{
		{Dst: pfx("10.65.0.1/24"), Iface: "cali1"},
		{Dst: pfx("10.65.0.0/26")},
		{Dst: pfx("10.65.1.0/26"), Type: TypeBlackhole, Iface: "cali1"},
		{Dst: pfx("10.65.2.0/26"), Gateway: addr("fd00::1")},
		{Dst: pfx("10.65.3.3/32"), Iface: "cali1"},
		{Dst: pfx("10.65.3.3/32"), Iface: "cali2"},
		{Dst: pfx("10.65.4.4/32"), Iface: "a-name-that-is-too-long"},
		{Dst: pfx("10.65.5.0/26"), Type: 42},
		{},
	})
	for _, want := range []string{
		"route 10.65.0.1/24: destination has host bits set (want 10.65.0.0/24)",
		"route 10.65.0.0/26: a unicast route needs an interface or a gateway",
		"route 10.65.1.0/26: a blackhole route takes no interface or gateway",
		"route 10.65.2.0/26: gateway fd00::1 is not in the destination's family",
		"route 10.65.3.3/32: given twice, keeping the first",
		`route 10.65.4.4/32: interface name "a-name-that-is-too-long" is longer than 15 bytes`,
		"route 10.65.5.0/26: unsupported type type42",
		"route invalid Prefix: invalid destination",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Set error %v lacks %q", err, want)
		}
	}
	if got := len(rt.desired); got != 1 {
		t.Errorf("%d routes kept, want the 1 valid one", got)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg     Config
		wantErr string
		proto   uint8
		table   uint32
	}{
		{cfg: Config{}, proto: 80, table: 254},
		{cfg: Config{Protocol: 81, Table: 100}, proto: 81, table: 100},
		{cfg: Config{Protocol: 3}, wantErr: "protocol 3 is the kernel's or an operator's"},
		{cfg: Config{Table: 255}, wantErr: "table 255 is the kernel's local table"},
	} {
		rt, err := New(tc.cfg, NewFake())
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%+v): %v", tc.cfg, err)
			continue
		}
		if rt.proto != tc.proto || rt.table != tc.table {
			t.Errorf("New(%+v): protocol %d table %d, want %d %d", tc.cfg, rt.proto, rt.table, tc.proto, tc.table)
		}
	}
}
