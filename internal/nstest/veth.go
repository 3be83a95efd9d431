package nstest

import (
	"testing"

	"github.com/vishvananda/netlink"
)

// Veth creates a veth pair with end name in a and end peer in b (b may be
// a) and sets both ends up. It returns their interface indexes. The pair
// goes away with the namespaces.
func Veth(tb testing.TB, a *NS, name string, b *NS, peer string) (index, peerIndex int) {
	tb.Helper()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: name},
		PeerName:      peer,
		PeerNamespace: netlink.NsFd(b.Handle),
	}
	if err := a.Netlink.LinkAdd(veth); err != nil {
		tb.Fatalf("nstest: adding veth %s (%s) - %s (%s): %v", name, a.Name, peer, b.Name, err)
	}
	index = setUp(tb, a, name)
	peerIndex = setUp(tb, b, peer)
	return index, peerIndex
}

func setUp(tb testing.TB, ns *NS, name string) int {
	tb.Helper()
	link, err := ns.Netlink.LinkByName(name)
	if err == nil {
		err = ns.Netlink.LinkSetUp(link)
	}
	if err != nil {
		tb.Fatalf("nstest: setting %s up in %s: %v", name, ns.Name, err)
	}
	return link.Attrs().Index
}
