package api

import (
	"fmt"
	"net/netip"
)

// validateRules checks rules under path, e.g. "spec.ingress".
func validateRules(fe *fieldErrors, path string, rules []Rule) {
	for i := range rules {
		validateRule(fe, fmt.Sprintf("%s[%d]", path, i), &rules[i])
	}
}

func validateRule(fe *fieldErrors, path string, r *Rule) {
	switch r.Action {
	case Allow, Deny, Log, Pass:
	case "":
		fe.add(path+".action", nil, "is required (Allow, Deny, Log or Pass)")
	default:
		fe.add(path+".action", string(r.Action), "must be Allow, Deny, Log or Pass")
	}
	version := 0 // 4 or 6 when the rule is restricted to one family
	why := ""
	if r.IPVersion != nil {
		if *r.IPVersion != 4 && *r.IPVersion != 6 {
			fe.add(path+".ipVersion", *r.IPVersion, "must be 4 or 6")
		} else {
			version, why = *r.IPVersion, "ipVersion"
		}
	}
	for _, p := range []struct {
		name string
		p    *Protocol
	}{{"protocol", r.Protocol}, {"notProtocol", r.NotProtocol}} {
		if p.p != nil {
			if _, ok := p.p.Number(); !ok {
				fe.add(path+"."+p.name, string(*p.p), "must be TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number from 1 to 255")
			}
		}
	}
	if r.Protocol != nil {
		if v := r.Protocol.IsICMP(); v != 0 {
			if version != 0 && v != version {
				fe.add(path+".protocol", string(*r.Protocol), "is for IPv%d but ipVersion is %d", v, version)
			}
			version, why = v, "protocol"
		}
	}
	validateICMP(fe, path+".icmp", r.ICMP, r.Protocol)
	validateICMP(fe, path+".notICMP", r.NotICMP, r.Protocol)
	validateEntity(fe, path+".source", &r.Source, r.Protocol, version, why)
	validateEntity(fe, path+".destination", &r.Destination, r.Protocol, version, why)
	if version == 0 {
		// Positive nets of only one family at one end and only the other
		// at the other end can never match the same packet.
		s, d := netsFamily(r.Source.Nets), netsFamily(r.Destination.Nets)
		if s != 0 && d != 0 && s != d {
			fe.add(path+".destination.nets", nil, "are all IPv%d but source.nets are all IPv%d: the rule can never match", d, s)
		}
	}
}

func validateICMP(fe *fieldErrors, path string, icmp *ICMPFields, proto *Protocol) {
	if icmp == nil {
		return
	}
	if proto == nil || proto.IsICMP() == 0 {
		fe.add(path, nil, "requires protocol ICMP or ICMPv6")
	}
	if icmp.Type != nil && (*icmp.Type < 0 || *icmp.Type > 254) {
		fe.add(path+".type", *icmp.Type, "must be from 0 to 254")
	}
	if icmp.Code != nil {
		if *icmp.Code < 0 || *icmp.Code > 255 {
			fe.add(path+".code", *icmp.Code, "must be from 0 to 255")
		}
		if icmp.Type == nil {
			fe.add(path+".code", *icmp.Code, "requires type")
		}
	}
}

// validateEntity checks one end of a rule. version (4, 6 or 0 for both) is
// the family the rule is restricted to, and why says by which field.
func validateEntity(fe *fieldErrors, path string, e *EntityRule, proto *Protocol, version int, why string) {
	validateNets(fe, path+".nets", e.Nets, version, why)
	validateNets(fe, path+".notNets", e.NotNets, version, why)
	for _, s := range []struct{ name, sel string }{
		{"selector", e.Selector}, {"notSelector", e.NotSelector}, {"namespaceSelector", e.NamespaceSelector},
	} {
		if s.sel != "" {
			validateSelector(fe, path+"."+s.name, s.sel)
		}
	}
	validatePorts(fe, path+".ports", e.Ports, proto)
	validatePorts(fe, path+".notPorts", e.NotPorts, proto)
}

func validateNets(fe *fieldErrors, path string, nets []string, version int, why string) {
	for i, n := range nets {
		p := fmt.Sprintf("%s[%d]", path, i)
		pfx, err := parseNet(n)
		if err != nil {
			fe.add(p, n, "%v", err)
			continue
		}
		if v := ipVersion(pfx.Addr()); version != 0 && v != version {
			fe.add(p, n, "is IPv%d but the rule is IPv%d only (by its %s)", v, version, why)
		}
	}
}

func validatePorts(fe *fieldErrors, path string, ports []Port, proto *Protocol) {
	if len(ports) > 0 && (proto == nil || !proto.HasPorts()) {
		fe.add(path, nil, "require protocol TCP, UDP, SCTP or UDPLite")
	}
	for i, port := range ports {
		if msg := port.check(); msg != "" {
			fe.add(fmt.Sprintf("%s[%d]", path, i), string(port), "%s", msg)
		}
	}
}

// netsFamily returns 4 or 6 if every parseable net is of that family, else 0.
func netsFamily(nets []string) int {
	family := 0
	for _, n := range nets {
		p, err := parseNet(n)
		if err != nil {
			continue
		}
		v := ipVersion(p.Addr())
		if family != 0 && family != v {
			return 0
		}
		family = v
	}
	return family
}

// Prefixes returns the parsed, canonical forms of Nets and NotNets,
// skipping any that do not parse (Validate reports those).
func (e *EntityRule) Prefixes() (nets, notNets []netip.Prefix) {
	return parseNets(e.Nets), parseNets(e.NotNets)
}

func parseNets(nets []string) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range nets {
		if p, err := parseNet(n); err == nil {
			out = append(out, p)
		}
	}
	return out
}
