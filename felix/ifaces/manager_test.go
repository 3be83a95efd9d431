package ifaces

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func lines(s ...string) string { return strings.Join(s, "\n") }

var (
	globals = []string{"net/ipv4/ip_forward = 1", "net/ipv6/conf/all/forwarding = 1"}
	wlaV4   = []string{
		"net/ipv4/conf/wla/forwarding = 1", "net/ipv4/conf/wla/proxy_arp = 1", "net/ipv4/conf/wla/rp_filter = 1",
		"net/ipv4/neigh/wla/proxy_delay = 0", "net/ipv6/conf/wla/accept_ra = 0",
	}
	gw1 = netip.MustParseAddr("fe80::1")
	gw2 = netip.MustParseAddr("fe80::2")
)

func join(parts ...[]string) string {
	var all []string
	for _, p := range parts {
		all = append(all, p...)
	}
	return lines(all...)
}

func check(t *testing.T, f *Fake, want string) {
	t.Helper()
	sorted := func(s string) []string {
		l := strings.Split(s, "\n")
		slices.Sort(l)
		return l
	}
	if diff := cmp.Diff(sorted(want), sorted(f.Render())); diff != "" {
		t.Errorf("kernel state (-want +got):\n%s", diff)
	}
}

func TestManagerWaitsForInterface(t *testing.T) {
	ctx := context.Background()
	f := NewFake()
	m := NewManager(Config{}, f)
	m.Set("wla", &Settings{IPv4: true})
	if err := m.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, f, join(globals))
	if diff := cmp.Diff([]string{"wla"}, m.Pending()); diff != "" {
		t.Errorf("pending: %s", diff)
	}

	f.AddLink("wla", 7)
	m.OnLinkUpdate("wla", 7, false)
	if err := m.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, f, join(globals, wlaV4))
	if len(m.Pending()) != 0 {
		t.Errorf("pending: %v", m.Pending())
	}

	// Nothing to do: nothing written.
	n := f.Writes()
	m.Set("wla", &Settings{IPv4: true})
	m.OnLinkUpdate("wla", 7, false)
	if err := m.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if f.Writes() != n {
		t.Errorf("idempotent Apply wrote %d sysctls", f.Writes()-n)
	}

	// The interface is recreated (new index): written again.
	f.DeleteLink("wla")
	m.OnLinkUpdate("wla", 7, true)
	f.AddLink("wla", 9)
	m.OnLinkUpdate("wla", 9, false)
	if err := m.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, f, join(globals, wlaV4))
}

func TestManagerIPv6AndProxies(t *testing.T) {
	ctx := context.Background()
	f := NewFake()
	f.AddLink("wla", 7)
	m := NewManager(Config{}, f)
	m.OnLinkUpdate("wla", 7, false)
	m.OnLinkUpdate("eth0", 2, false) // not ours
	m.Set("wla", &Settings{IPv6: true, ProxyNDP: []netip.Addr{gw2, gw1, gw1}})
	if err := m.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, f, join(globals, []string{
		"net/ipv6/conf/wla/accept_ra = 0", "net/ipv6/conf/wla/forwarding = 1", "net/ipv6/conf/wla/proxy_ndp = 1",
		"net/ipv6/neigh/wla/proxy_delay = 0", "proxy fe80::1 dev wla", "proxy fe80::2 dev wla",
	}))

	m.Set("wla", &Settings{IPv6: true, ProxyNDP: []netip.Addr{gw1}})
	if err := m.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(f.Render(), "fe80::2") {
		t.Errorf("proxy fe80::2 not removed:\n%s", f.Render())
	}

	// No longer a workload interface: proxies go, sysctls stay.
	m.Set("wla", nil)
	if err := m.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(f.Render(), "proxy fe80") {
		t.Errorf("proxies left:\n%s", f.Render())
	}
}

func TestManagerNoIPv6(t *testing.T) {
	f := NewFake()
	f.DisableIPv6()
	f.AddLink("wla", 7)
	m := NewManager(Config{}, f)
	m.OnLinkUpdate("wla", 7, false)
	m.Set("wla", &Settings{IPv4: true})
	if err := m.Apply(context.Background()); err != nil {
		t.Fatalf("IPv4-only interface in a namespace without IPv6: %v", err)
	}
	m.Set("wla", &Settings{IPv4: true, IPv6: true})
	if err := m.Apply(context.Background()); err == nil || !strings.Contains(err.Error(), "net/ipv6/conf/wla/forwarding") {
		t.Errorf("IPv6 interface without IPv6: err = %v, want one naming the sysctl", err)
	}
}

func TestManagerRetriesAndResyncs(t *testing.T) {
	ctx := context.Background()
	f := NewFake()
	f.AddLink("wla", 7)
	m := NewManager(Config{}, f)
	m.OnLinkUpdate("wla", 7, false)
	m.Set("wla", &Settings{IPv4: true})
	boom := errors.New("boom")
	f.FailNext(boom)          // globals
	f.FailNext(syscall.EPERM) // wla
	err := m.Apply(ctx)
	if !errors.Is(err, boom) || !errors.Is(err, syscall.EPERM) || !strings.Contains(err.Error(), "interface wla") {
		t.Fatalf("Apply = %v, want both failures, naming wla", err)
	}
	if err := m.Apply(ctx); err != nil {
		t.Fatalf("retry: %v", err)
	}
	check(t, f, join(globals, wlaV4))

	// Changed behind our back: repaired by a resync, not before.
	f.Set("net/ipv4/conf/wla/proxy_arp", "0")
	f.Set("net/ipv4/ip_forward", "0")
	if err := m.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.Render(), "proxy_arp = 0") {
		t.Fatal("Apply without Resync rewrote settings")
	}
	m.Resync()
	if err := m.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, f, join(globals, wlaV4))
}

func TestManagerRename(t *testing.T) {
	ctx := context.Background()
	f := NewFake()
	m := NewManager(Config{}, f)
	m.Set("wla", &Settings{IPv4: true})
	// CNI creates the veth under a temporary name and renames it.
	f.AddLink("tmp123", 7)
	m.OnLinkUpdate("tmp123", 7, false)
	f.DeleteLink("tmp123")
	f.AddLink("wla", 7)
	m.OnLinkUpdate("wla", 7, false)
	if err := m.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, f, join(globals, wlaV4))
}
