package e2e

import (
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/bgpfabric/bgpfabric/sim"
)

// nodeNetlink returns a netlink handle in a node's namespace, closed when
// the test ends.
func nodeNetlink(t *testing.T, f *sim.Fabric, node string) *netlink.Handle {
	t.Helper()
	ns, err := f.NodeNetns(node)
	if err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink in %s: %v", node, err)
	}
	t.Cleanup(h.Close)
	return h
}
