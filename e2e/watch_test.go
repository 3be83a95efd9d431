package e2e

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/sim"
)

// routeEvent is one change of a watched route in a node's kernel.
type routeEvent struct {
	At      time.Time
	Node    string
	Dst     netip.Prefix
	Deleted bool
}

// routeWatch records, through netlink subscriptions (events, not polls),
// every addition and deletion of the watched prefixes in some nodes'
// kernels.
type routeWatch struct {
	mu     sync.Mutex
	events []routeEvent
	poke   chan struct{}
}

func watchRoutes(t testing.TB, f *sim.Fabric, nodes []string, prefixes []netip.Prefix) *routeWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := &routeWatch{poke: make(chan struct{}, 1)}
	want := map[netip.Prefix]bool{}
	for _, p := range prefixes {
		want[p.Masked()] = true
	}
	for _, node := range nodes {
		h, err := f.NodeNetns(node)
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan netlink.RouteUpdate, 256)
		if err := netlink.RouteSubscribeWithOptions(ch, ctx.Done(), netlink.RouteSubscribeOptions{Namespace: &h}); err != nil {
			t.Fatalf("subscribing to routes of %s: %v", node, err)
		}
		go func() {
			for u := range ch {
				if u.Dst == nil {
					continue
				}
				a, _ := netip.AddrFromSlice(u.Dst.IP)
				bits, _ := u.Dst.Mask.Size()
				p := netip.PrefixFrom(a.Unmap(), bits)
				if !want[p] {
					continue
				}
				w.mu.Lock()
				w.events = append(w.events, routeEvent{At: time.Now(), Node: node, Dst: p, Deleted: u.Type == unix.RTM_DELROUTE})
				w.mu.Unlock()
				select {
				case w.poke <- struct{}{}:
				default:
				}
			}
		}()
	}
	return w
}

// deletions returns the deletions seen so far.
func (w *routeWatch) deletions() []routeEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []routeEvent
	for _, e := range w.events {
		if e.Deleted {
			out = append(out, e)
		}
	}
	return out
}

// waitDeleted waits until every watched prefix has been deleted on node
// (and not added back), and returns when the last went.
func (w *routeWatch) waitDeleted(ctx context.Context, node string, prefixes []netip.Prefix) (time.Time, bool) {
	for {
		w.mu.Lock()
		gone := map[netip.Prefix]time.Time{}
		for _, e := range w.events {
			if e.Node != node {
				continue
			}
			if e.Deleted {
				gone[e.Dst] = e.At
			} else {
				delete(gone, e.Dst)
			}
		}
		w.mu.Unlock()
		var last time.Time
		all := true
		for _, p := range prefixes {
			at, ok := gone[p.Masked()]
			if !ok {
				all = false
				break
			}
			if at.After(last) {
				last = at
			}
		}
		if all {
			return last, true
		}
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-w.poke:
		}
	}
}
