package api

import (
	"fmt"
	"net/netip"
	"strings"
)

// ipVersion is 4 or 6 for an address; 4-in-6 mapped addresses count as 6,
// as they are written in IPv6 notation.
func ipVersion(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// parsePrefix parses an address with a prefix length ("10.0.0.1/24"),
// saying what is wrong in terms a user understands.
func parsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.Prefix{}, fmt.Errorf("must have a prefix length, e.g. %s/%d", s, a.BitLen())
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("must be a CIDR such as 10.0.0.0/24 or fd00::/64")
	}
	return p, nil
}

// parseNet parses a network that a rule matches: a CIDR, whose host bits
// are cleared, or a single address, which becomes a /32 or /128.
func parseNet(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("must be a CIDR or an IP address")
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("must be a CIDR or an IP address")
	}
	return p.Masked(), nil
}

// canonicalNets rewrites the parseable entries of nets into their
// canonical CIDR form; the others are left for Validate to report.
func canonicalNets(nets []string) {
	for i, n := range nets {
		if p, err := parseNet(n); err == nil {
			nets[i] = p.String()
		}
	}
}

// canonicalPrefix rewrites s into netip's canonical form if it is a valid
// CIDR whose host bits are clear (so that no meaning is changed).
func canonicalPrefix(s string) string {
	if p, err := netip.ParsePrefix(s); err == nil && p == p.Masked() {
		return p.String()
	}
	return s
}

// validateIP checks an optional single IP address of any (version 0) or one
// family.
func validateIP(fe *fieldErrors, path, s string, version int) {
	if s == "" {
		return
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil || a.Zone() != "":
		fe.add(path, s, "must be an IP address")
	case version == 4 && !a.Is4():
		fe.add(path, s, "must be an IPv4 address")
	case version == 6 && (!a.Is6() || a.Is4In6()):
		fe.add(path, s, "must be an IPv6 address")
	}
}

// validateDottedQuad checks an optional 32-bit ID written as an IPv4
// address (router and cluster IDs).
func validateDottedQuad(fe *fieldErrors, path, s string) {
	if s == "" {
		return
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil || !a.Is4():
		fe.add(path, s, "must be a dotted quad such as 10.0.0.1")
	case a.IsUnspecified():
		fe.add(path, s, "must not be 0.0.0.0")
	}
}
