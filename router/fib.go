package router

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// FIBBatch is a batch of changes to the routes the router exports from:
// the routes of felix's protocol in the main table.
type FIBBatch struct {
	// Snapshot replaces everything known before with Routes.
	Snapshot bool
	Routes   []FIBEvent
}

// FIBEvent is one route, added or changed, or deleted.
type FIBEvent struct {
	Route   routetable.KernelRoute
	Deleted bool
}

// FIBSource is the router's feed of what felix programmed. It decouples
// the router from felix: the kernel's FIB is the contract, so the router
// works whether or not felix runs in the same process.
type FIBSource interface {
	// Watch calls fn with a snapshot of the main table's routes of
	// protocol proto, then with their changes, until ctx ends (nil) or the
	// feed breaks (an error: the caller watches again, which starts with
	// a new snapshot). fn is called from Watch's goroutine.
	Watch(ctx context.Context, proto uint8, fn func(FIBBatch)) error
}

// NetlinkFIB is the FIBSource of a real kernel: a netlink route
// subscription in the namespace, opened before the dump of the current
// routes, so that no change falls between the two.
type NetlinkFIB struct {
	// Netns is the namespace; netns.None() (or 0) is the caller's.
	Netns netns.NsHandle
}

// subscriptionBuffer is the receive buffer of the subscription socket:
// a burst of route changes (the router's own installs are seen too) must
// not overflow it; if it does, the feed breaks and starts again.
const subscriptionBuffer = 16 << 20

// Watch implements FIBSource.
func (n NetlinkFIB) Watch(ctx context.Context, proto uint8, fn func(FIBBatch)) error {
	ns := n.Netns
	if ns == 0 {
		ns = netns.None()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	raw := make(chan netlink.RouteUpdate, 1024)
	done := make(chan struct{})
	errc := make(chan error, 1)
	err := netlink.RouteSubscribeWithOptions(raw, done, netlink.RouteSubscribeOptions{
		Namespace:              &ns,
		ReceiveBufferSize:      subscriptionBuffer,
		ReceiveBufferForceSize: true,
		ErrorCallback: func(err error) {
			select {
			case errc <- err:
			default:
			}
		},
	})
	if err != nil {
		close(done)
		return fmt.Errorf("subscribing to routes: %w", err)
	}
	defer func() {
		close(done)
		for range raw {
		}
	}()
	dp, err := routetable.NewNetlinkDataplane(ns)
	if err != nil {
		return fmt.Errorf("route feed: %w", err)
	}
	var snap []FIBEvent
	err = dp.ListRoutes(ctx, routetable.TableMain, proto, func(r routetable.KernelRoute) {
		snap = append(snap, FIBEvent{Route: r})
	})
	dp.Close()
	if err != nil {
		return fmt.Errorf("route feed: %w", err)
	}
	fn(FIBBatch{Snapshot: true, Routes: snap})
	for {
		var batch []FIBEvent
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return fmt.Errorf("route subscription: %w", err)
		case u, ok := <-raw:
			if !ok {
				return errors.New("route subscription closed")
			}
			batch = appendFIBEvent(batch, u, proto)
		}
		// Coalesce what is queued into one batch.
	drain:
		for len(batch) < 4096 {
			select {
			case u, ok := <-raw:
				if !ok {
					break drain
				}
				batch = appendFIBEvent(batch, u, proto)
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			fn(FIBBatch{Routes: batch})
		}
	}
}

// appendFIBEvent converts an update of a route of ours (main table,
// protocol proto) and appends it.
func appendFIBEvent(b []FIBEvent, u netlink.RouteUpdate, proto uint8) []FIBEvent {
	r := u.Route
	if uint8(r.Protocol) != proto || (r.Table != 0 && r.Table != routetable.TableMain) {
		return b
	}
	k := routetable.KernelRoute{
		Table:     routetable.TableMain,
		Protocol:  uint8(r.Protocol),
		Type:      routetable.RouteType(r.Type),
		Scope:     routetable.Scope(r.Scope),
		LinkIndex: r.LinkIndex,
		Priority:  uint32(r.Priority),
		Multipath: len(r.MultiPath) > 0,
	}
	if r.Dst != nil {
		a, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok {
			return b
		}
		ones, _ := r.Dst.Mask.Size()
		if a.Is4In6() {
			a = a.Unmap()
			if ones > 32 {
				ones -= 96
			}
		}
		k.Dst = netip.PrefixFrom(a, ones).Masked()
	} else if r.Family == unix.AF_INET6 {
		k.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	} else {
		k.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	if r.Gw != nil {
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			k.Gateway = gw.Unmap()
		}
	}
	if k.Type == 0 {
		k.Type = routetable.TypeUnicast
	}
	return append(b, FIBEvent{Route: k, Deleted: u.Type == unix.RTM_DELROUTE})
}
