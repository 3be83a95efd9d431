package main

import (
	"github.com/bgpfabric/bgpfabric/api"
)

// columnsFor returns the extra table columns `get` shows for a kind, after
// its name.
func columnsFor(ki *api.KindInfo) (head []string, row func(api.Resource) []string) {
	switch ki.Kind {
	case api.KindNode:
		return []string{"ASN", "IPV4", "IPV6", "RR-CLUSTER"}, func(r api.Resource) []string {
			n := r.(*api.Node)
			b := n.Spec.BGP
			if b == nil {
				return []string{"", "", "", ""}
			}
			asn := ""
			if b.ASNumber != nil {
				asn = itoa(uint64(*b.ASNumber))
			}
			return []string{asn, b.IPv4Address, b.IPv6Address, b.RouteReflectorClusterID}
		}
	}
	return nil, func(api.Resource) []string { return nil }
}
