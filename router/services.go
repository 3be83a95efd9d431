package router

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/api"
)

// Service addresses (BGPConfiguration serviceClusterIPs,
// serviceExternalIPs, serviceLoadBalancerIPs; docs/policy.md).
//
// With no Kubernetes to say which node serves which service, a node's
// service addresses are the addresses assigned to its interfaces: every
// node advertises each serviceClusterIPs CIDR whole (as Calico does), and
// a node advertises, as a host route, every address of its interfaces
// that is inside a serviceExternalIPs or serviceLoadBalancerIPs CIDR
// (Calico's externalTrafficPolicy Local: only the nodes that serve it).
// Two nodes with the same address give their peers two paths: ECMP.
//
// With Kubernetes, kube-controllers writes a ServiceAdvertisement per
// Service, and the node announces the host routes api.ServiceRoutes
// gives for it (Calico's rules for externalTrafficPolicy Cluster and
// Local; docs/kubernetes.md).

// AddressSource delivers the addresses assigned to the node's interfaces.
type AddressSource interface {
	// Watch calls fn with every address, then again with all of them
	// after each change, until ctx ends (nil) or the feed breaks (an
	// error: the caller watches again).
	Watch(ctx context.Context, fn func([]netip.Addr)) error
}

// NetlinkAddresses is the AddressSource of a real kernel: a netlink
// address subscription in the namespace.
type NetlinkAddresses struct {
	// Netns is the namespace; netns.None() (or 0) is the caller's.
	Netns netns.NsHandle
}

// Watch implements AddressSource.
func (n NetlinkAddresses) Watch(ctx context.Context, fn func([]netip.Addr)) error {
	ns := n.Netns
	if ns == 0 {
		ns = netns.None()
	}
	raw := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	errCh := make(chan error, 1)
	err := netlink.AddrSubscribeWithOptions(raw, done, netlink.AddrSubscribeOptions{
		Namespace:    &ns,
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case errCh <- err:
			default:
			}
		},
	})
	if err != nil {
		close(done)
		return fmt.Errorf("subscribing to addresses: %w", err)
	}
	defer func() {
		close(done) // closes the socket; netlink then closes raw
		for range raw {
		}
	}()
	type key struct {
		addr netip.Addr
		link int
	}
	have := map[key]bool{}
	// The existing addresses come as a burst: wait for it to end (a
	// short quiet period) before the first call.
	quiet := time.NewTimer(time.Hour)
	defer quiet.Stop()
	dirty := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errCh:
			return fmt.Errorf("address subscription: %w", err)
		case u, ok := <-raw:
			if !ok {
				return fmt.Errorf("address subscription closed")
			}
			a, ok := netip.AddrFromSlice(u.LinkAddress.IP)
			if !ok {
				continue
			}
			k := key{a.Unmap(), u.LinkIndex}
			if u.NewAddr {
				have[k] = true
			} else {
				delete(have, k)
			}
			if !dirty {
				dirty = true
				quiet.Reset(20 * time.Millisecond)
			}
		case <-quiet.C:
			dirty = false
			out := make([]netip.Addr, 0, len(have))
			for k := range have {
				out = append(out, k.addr)
			}
			slices.SortFunc(out, netip.Addr.Compare)
			fn(slices.Compact(out))
		}
	}
}

// runAddresses runs the address feed, starting it again when it breaks.
func (l *loop) runAddresses(ctx context.Context, src AddressSource) {
	for ctx.Err() == nil {
		err := src.Watch(ctx, func(as []netip.Addr) {
			send(ctx, l.resCh, func() { l.setLocalAddresses(as) })
		})
		if err != nil && ctx.Err() == nil {
			l.lg.Warn("address feed broke; resyncing", logKeyError, err)
			sleep(ctx, l.r.cfg.RetryDelay)
		}
	}
}

// setLocalAddresses records the node's addresses; a change of those
// inside a service range changes the exports.
func (l *loop) setLocalAddresses(as []netip.Addr) {
	if !slices.Equal(l.serviceAddrs(as), l.serviceAddrs(l.localAddrs)) {
		l.exportDirty = true
	}
	l.localAddrs = as
}

// serviceAddrs returns the addresses of as inside a service range.
func (l *loop) serviceAddrs(as []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range as {
		for _, r := range l.adv.ServiceIPs {
			if r.Contains(a) {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

// services returns the service routes the node advertises: the cluster
// IP ranges, and a host route for each of its addresses inside a service
// range. A drained node (drain.go) advertises them as its other routes.
func (l *loop) services() []netip.Prefix {
	out := slices.Clone(l.adv.ClusterIPs)
	for _, a := range l.serviceAddrs(l.localAddrs) {
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	out = append(out, l.kubeServices...)
	slices.SortFunc(out, comparePrefix)
	return slices.Compact(out)
}

// updateKubeServices recomputes the Kubernetes Services' host routes from
// the ServiceAdvertisements and the service ranges; a change changes the
// exports.
func (l *loop) updateKubeServices() {
	var svcs []*api.ServiceAdvertisement
	for _, r := range l.resources {
		if s, ok := r.(*api.ServiceAdvertisement); ok {
			svcs = append(svcs, s)
		}
	}
	routes := api.ServiceRoutes(l.r.cfg.NodeName, &l.adv, svcs)
	if !slices.Equal(routes, l.kubeServices) {
		l.kubeServices = routes
		l.exportDirty = true
	}
}
