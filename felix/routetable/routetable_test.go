package routetable

import (
	"context"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/internal/memtrim"
)

var pfx = netip.MustParsePrefix
var addr = netip.MustParseAddr

// lines joins ip-route-like lines as Fake.Render writes them.
func lines(ls ...string) string {
	if len(ls) == 0 {
		return ""
	}
	return strings.Join(ls, "\n") + "\n"
}

func newTable(t *testing.T, dp Dataplane) *RouteTable {
	t.Helper()
	rt, err := New(Config{}, dp)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// linkUpdate says what the fake has for name.
func linkUpdate(f *Fake, name string) LinkUpdate {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[name]
	l.Name = name
	return LinkUpdate{Link: l, Deleted: !ok}
}

func TestApply(t *testing.T) {
	workload := Route{Dst: pfx("10.65.0.3/32"), Iface: "cali1"}
	block := Route{Dst: pfx("10.65.0.0/26"), Type: TypeBlackhole}
	workload6 := Route{Dst: pfx("fd00:65::3/128"), Iface: "cali1"}
	viaGW := Route{Dst: pfx("10.66.0.0/26"), Gateway: addr("192.168.0.2"), Iface: "eth0"}

	for _, tc := range []struct {
		name    string
		before  []KernelRoute
		desired []Route
		sneak   []KernelRoute // put into the fake after the resync
		fail    []fakeFailure
		wantErr []string // substrings of Apply's error
		want    string   // fake after the first Apply
		retry   *string  // fake after a second Apply, when it differs
	}{
		{
			name:    "empty",
			desired: nil,
			want:    "",
		},
		{
			name:    "adds workload, block, IPv6 and gateway routes",
			desired: []Route{workload, block, workload6, viaGW},
			want: lines(
				"blackhole 10.65.0.0/26 proto 80",
				"10.65.0.3 dev cali1 proto 80 scope link",
				"10.66.0.0/26 via 192.168.0.2 dev eth0 proto 80",
				"fd00:65::3 dev cali1 proto 80",
			),
		},
		{
			name: "fixes a route of ours that differs",
			before: []KernelRoute{
				{Table: 254, Protocol: 80, Type: TypeUnicast, Dst: pfx("10.65.0.3/32"), LinkIndex: 3, Scope: ScopeLink},
			},
			desired: []Route{workload},
			want:    lines("10.65.0.3 dev cali1 proto 80 scope link"),
		},
		{
			name: "deletes stale routes of ours, in any table only its own",
			before: []KernelRoute{
				{Table: 254, Protocol: 80, Type: TypeBlackhole, Dst: pfx("10.99.0.0/26")},
				{Table: 254, Protocol: 80, Type: TypeUnicast, Dst: pfx("fd00:99::1/128"), LinkIndex: 2},
				{Table: 100, Protocol: 80, Type: TypeBlackhole, Dst: pfx("10.98.0.0/26")},
			},
			desired: []Route{block},
			want: lines(
				"blackhole 10.98.0.0/26 table 100 proto 80",
				"blackhole 10.65.0.0/26 proto 80",
			),
		},
		{
			name: "leaves foreign routes alone and reports a conflict",
			before: []KernelRoute{
				{Table: 254, Protocol: 186, Type: TypeUnicast, Dst: pfx("10.65.0.3/32"), Gateway: addr("192.168.0.9"), LinkIndex: 3},
				{Table: 254, Protocol: 3, Type: TypeUnicast, Dst: pfx("192.168.0.0/24"), LinkIndex: 3, Scope: ScopeLink},
			},
			desired: []Route{workload, block},
			wantErr: []string{"route 10.65.0.3/32 in table 254 belongs to protocol 186"},
			want: lines(
				"blackhole 10.65.0.0/26 proto 80",
				"10.65.0.3 via 192.168.0.9 dev eth0 proto 186",
				"192.168.0.0/24 dev eth0 proto 3 scope link",
			),
		},
		{
			name: "takes over a route of ours it did not know",
			// E.g. added by an earlier instance that was still exiting.
			sneak: []KernelRoute{
				{Table: 254, Protocol: 80, Type: TypeBlackhole, Dst: pfx("10.65.0.3/32")},
			},
			desired: []Route{workload},
			want:    lines("10.65.0.3 dev cali1 proto 80 scope link"),
		},
		{
			name: "retries an add whose blocker went away",
			// The injected EEXIST leaves no route behind.
			fail:    []fakeFailure{{OpAdd, pfx("10.65.0.3/32"), syscall.EEXIST}},
			desired: []Route{workload},
			want:    lines("10.65.0.3 dev cali1 proto 80 scope link"),
		},
		{
			name: "a foreign route that appears after the resync is not overwritten",
			sneak: []KernelRoute{
				{Table: 254, Protocol: 12, Type: TypeBlackhole, Dst: pfx("10.65.0.3/32")},
			},
			desired: []Route{workload},
			wantErr: []string{"route 10.65.0.3/32 in table 254 belongs to protocol 12"},
			want:    lines("blackhole 10.65.0.3 proto 12"),
		},
		{
			name:    "waits for a missing interface",
			desired: []Route{{Dst: pfx("10.65.0.7/32"), Iface: "cali7"}, block},
			want:    lines("blackhole 10.65.0.0/26 proto 80"),
		},
		{
			name:    "waits for a down interface",
			desired: []Route{{Dst: pfx("10.65.0.8/32"), Iface: "down0"}, block},
			want:    lines("blackhole 10.65.0.0/26 proto 80"),
		},
		{
			name:    "a failed add is retried, the others stay",
			desired: []Route{workload, block, workload6},
			fail:    []fakeFailure{{OpAdd, pfx("10.65.0.3/32"), syscall.ENOMEM}},
			wantErr: []string{"adding route 10.65.0.3/32: cannot allocate memory"},
			want: lines(
				"blackhole 10.65.0.0/26 proto 80",
				"fd00:65::3 dev cali1 proto 80",
			),
			retry: ptr(lines(
				"blackhole 10.65.0.0/26 proto 80",
				"10.65.0.3 dev cali1 proto 80 scope link",
				"fd00:65::3 dev cali1 proto 80",
			)),
		},
		{
			name: "a failed delete is retried",
			before: []KernelRoute{
				{Table: 254, Protocol: 80, Type: TypeBlackhole, Dst: pfx("10.99.0.0/26")},
			},
			fail:    []fakeFailure{{OpDelete, netip.Prefix{}, syscall.EBUSY}},
			wantErr: []string{"deleting route 10.99.0.0/26: device or resource busy"},
			want:    lines("blackhole 10.99.0.0/26 proto 80"),
			retry:   ptr(""),
		},
		{
			name: "a route deleted behind our back is no error",
			before: []KernelRoute{
				{Table: 254, Protocol: 80, Type: TypeBlackhole, Dst: pfx("10.99.0.0/26")},
			},
			fail: []fakeFailure{{OpDelete, netip.Prefix{}, syscall.ESRCH}},
			want: lines("blackhole 10.99.0.0/26 proto 80"), // the injected ESRCH did not delete
			// ESRCH counts as gone, so nothing is retried without a resync.
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFake()
			f.AddLink("eth0", true) // 2
			f.AddLink("cali1", true)
			f.AddLink("down0", false)
			for _, r := range tc.before {
				if r.LinkIndex == 3 {
					r.LinkIndex = 2 // eth0; cali1 is 3 but tests read better this way
				}
				f.PutRoute(r)
			}
			rt := newTable(t, f)
			if err := rt.Set(tc.desired); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			// Resync first, so that injected failures hit the writes.
			if err := rt.resync(ctx); err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.sneak {
				f.PutRoute(r)
			}
			for _, fl := range tc.fail {
				f.FailNext(fl.kind, fl.dst, fl.err)
			}
			err := rt.Apply(ctx)
			checkErr(t, err, tc.wantErr)
			if diff := cmp.Diff(tc.want, f.Render()); diff != "" {
				t.Errorf("after Apply (-want +got):\n%s", diff)
			}
			retry := tc.want
			if tc.retry != nil {
				retry = *tc.retry
			}
			// Conflicts are only tried again after a resync, so the
			// second Apply has nothing to report.
			if err := rt.Apply(ctx); err != nil {
				t.Errorf("second Apply: %v", err)
			}
			if diff := cmp.Diff(retry, f.Render()); diff != "" {
				t.Errorf("after second Apply (-want +got):\n%s", diff)
			}
		})
	}
}

func checkErr(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Errorf("Apply: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Apply succeeded, want errors %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Apply error %q lacks %q", err, w)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// An Apply that changes the kernel's routes marks a change for the
// process's quiet trim (internal/memtrim).
func TestApplyMarksChanges(t *testing.T) {
	// Not parallel: memtrim's change signal is the process's.
	f := NewFake()
	f.AddLink("eth0", true)
	rt := newTable(t, f)
	if err := rt.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	armed := memtrim.WatchArming(t.Context())
	if err := rt.Apply(t.Context()); err != nil { // nothing to do
		t.Fatal(err)
	}
	if err := rt.SetRoute(Route{Dst: pfx("10.0.0.1/32"), Iface: "eth0"}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-armed:
	case <-time.After(10 * time.Second):
		t.Fatal("applying a route marked no change")
	}
}
