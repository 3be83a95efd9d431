package router

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// TestLinkChangeRestoresRoutes: when a link goes down the kernel deletes
// the routes through it, and when it comes back nothing in BGP changes (the
// session returns with the same paths). The router relists its routes on
// every link change and puts back what the kernel dropped.
func TestLinkChangeRestoresRoutes(t *testing.T) {
	links := make(chan routetable.LinkUpdate)
	h := start(t, func(c *Config) {
		c.WatchLinks = func(ctx context.Context) (<-chan routetable.LinkUpdate, error) { return links, nil }
	})
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), meshConfig("90s"))
	waitUntil(t, "speaker started", func() bool { _, ok := h.sp.Started(); return ok })
	h.sp.Learn(Destination{Prefix: pfx("10.65.2.0/26"), Paths: []Path{{NextHop: addr("10.0.0.2"), Peer: addr("10.0.0.2")}}})
	want := []string{"10.65.2.0/26 via 10.0.0.2 proto 81"}
	waitUntil(t, "learned route installed", func() bool { return cmp.Equal(want, renderKernel(h.dp, 81)) })

	// The link goes down: the kernel flushes the route.
	h.dp.RemoveRoute(routetable.TableMain, pfx("10.65.2.0/26"))
	links <- routetable.LinkUpdate{Link: routetable.Link{Name: "eth0", Index: 2, Up: false}}
	// And up again: the route is back, though BGP never changed.
	links <- routetable.LinkUpdate{Link: routetable.Link{Name: "eth0", Index: 2, Up: true}}
	waitUntil(t, "route restored after the link came back", func() bool { return cmp.Equal(want, renderKernel(h.dp, 81)) })
}
