package router

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
)

// fakeAddresses delivers the address lists sent on ch.
type fakeAddresses struct{ ch chan []netip.Addr }

func (f fakeAddresses) Watch(ctx context.Context, fn func([]netip.Addr)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case as := <-f.ch:
			fn(as)
		}
	}
}

// TestServiceRoutes: the cluster IP ranges are advertised whole; a node
// address inside an external or load-balancer range is advertised as a
// host route while the node has it; a change of the ranges re-evaluates
// the addresses.
func TestServiceRoutes(t *testing.T) {
	addrs := fakeAddresses{ch: make(chan []netip.Addr, 4)}
	h := start(t, func(c *Config) { c.Addresses = addrs })
	cfg := meshConfig("90s")
	cfg.Spec.ServiceClusterIPs = []api.ServiceIPBlock{{CIDR: "10.96.0.0/16"}}
	cfg.Spec.ServiceExternalIPs = []api.ServiceIPBlock{{CIDR: "203.0.113.0/24"}}
	cfg.Spec.ServiceLoadBalancerIPs = []api.ServiceIPBlock{{CIDR: "192.0.2.0/24"}, {CIDR: "fd00:5::/112"}}
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), cfg)
	h.fib.ch <- FIBBatch{Snapshot: true, Routes: []FIBEvent{{Route: blackhole("10.65.1.0/26")}}}
	addrs.ch <- []netip.Addr{addr("10.0.0.1"), addr("127.0.0.1"), addr("192.0.2.10"), addr("198.51.100.1"), addr("203.0.113.5"), addr("fd00:5::7")}
	announced := func() string {
		var s []string
		for _, r := range h.sp.Announced() {
			s = append(s, r.Prefix.String())
		}
		return strings.Join(s, ",")
	}
	waitUntil(t, "block, cluster range and the node's service addresses", func() bool {
		return announced() == "10.65.1.0/26,10.96.0.0/16,192.0.2.10/32,203.0.113.5/32,fd00:5::7/128"
	})
	addrs.ch <- []netip.Addr{addr("10.0.0.1"), addr("203.0.113.5")}
	waitUntil(t, "the removed addresses withdrawn", func() bool {
		return announced() == "10.65.1.0/26,10.96.0.0/16,203.0.113.5/32"
	})
	cfg2 := meshConfig("90s")
	cfg2.Spec.ServiceLoadBalancerIPs = []api.ServiceIPBlock{{CIDR: "203.0.113.0/28"}}
	h.res.put(t, cfg2)
	waitUntil(t, "the ranges changed: cluster range gone, address kept by the new range", func() bool {
		return announced() == "10.65.1.0/26,203.0.113.5/32"
	})
}
