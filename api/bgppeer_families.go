package api

import (
	"fmt"
	"slices"
	"strings"
)

// BGPPeer address families (spec.families). The names are the route
// reflector's (docs/reflector.md, Address families); reflector tests check
// that the two lists agree.
const (
	FamilyIPv4Unicast = "ipv4-unicast"
	FamilyIPv6Unicast = "ipv6-unicast"
)

// BGPPeerFamilies are the names spec.families takes, in canonical order.
// Nodes (GoBGP) carry the unicast families only; the others are carried
// by route reflectors.
var BGPPeerFamilies = []string{
	FamilyIPv4Unicast, FamilyIPv6Unicast, "l2vpn-evpn", "ipv4-vpn", "ipv6-vpn",
	"ipv4-labeled-unicast", "ipv6-labeled-unicast", "ipv4-flowspec", "ipv6-flowspec", "rtc",
}

// validateFamilies checks spec.families: known names, none twice, and
// no family beyond unicast on a global BGPPeer, which every node (route
// reflectors are a few of them) has sessions of. Which Nodes a selector
// picks is checked at apply (cmd/bgpfabric apply), and computed again by
// package peering whenever Nodes change.
func validateFamilies(fe *fieldErrors, field string, names []string, global bool) {
	for i, name := range names {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !slices.Contains(BGPPeerFamilies, name):
			fe.add(f, name, "unknown family (known: %s)", strings.Join(BGPPeerFamilies, ", "))
		case slices.Contains(names[:i], name):
			fe.add(f, name, "is listed twice")
		case global && !OnlyUnicast([]string{name}):
			fe.add(f, name, "is carried by route reflectors only (nodes carry ipv4-unicast and ipv6-unicast): select the reflectors with spec.node or spec.nodeSelector")
		}
	}
}

// OnlyUnicast reports whether families (a BGPPeer's spec.families) asks
// for IPv4 and IPv6 unicast only, which every node carries; empty is the
// default, both of them.
func OnlyUnicast(families []string) bool {
	for _, f := range families {
		if f != FamilyIPv4Unicast && f != FamilyIPv6Unicast {
			return false
		}
	}
	return true
}

// CanonicalFamilies returns families in canonical order joined by commas
// ("" for the default, IPv4 and IPv6 unicast), for a comparable session
// setting. Unknown names are left out (Validate refuses them).
func CanonicalFamilies(families []string) string {
	if len(families) == 0 {
		return ""
	}
	var out []string
	for _, f := range BGPPeerFamilies {
		if slices.Contains(families, f) {
			out = append(out, f)
		}
	}
	s := strings.Join(out, ",")
	if s == FamilyIPv4Unicast+","+FamilyIPv6Unicast {
		return ""
	}
	return s
}
