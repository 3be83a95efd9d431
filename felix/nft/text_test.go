package nft

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/felix/policy"
	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables/expr"
)

// Every kind of match a policy rule can have, rendered to expressions and
// read back as text: the text says what the expressions do.
func TestRuleText(t *testing.T) {
	r := &renderer{cfg: Config{}.withDefaults()}
	pfx := netip.MustParsePrefix
	cases := []struct {
		name    string
		rule    policy.Rule
		ingress bool
		want    []string
	}{
		{"allow ingress", policy.Rule{Action: policy.Allow}, true, []string{"accept"}},
		{"allow egress", policy.Rule{Action: policy.Allow}, false,
			[]string{"meta mark set meta mark | 0x00010000 return"}},
		{"deny", policy.Rule{Action: policy.Deny}, true, []string{"drop"}},
		{"pass", policy.Rule{Action: policy.Pass}, true, []string{"meta mark set meta mark | 0x00020000 return"}},
		{"log", policy.Rule{Action: policy.Log}, true, []string{`log prefix "bgpfabric gnp/x "`}},
		{"protocol", policy.Rule{Action: policy.Deny, Protocol: 6}, true,
			[]string{"meta l4proto tcp drop"}},
		{"not protocol", policy.Rule{Action: policy.Deny, NotProtocol: 17}, true,
			[]string{"meta l4proto != udp drop"}},
		{"nets of both families, not nets", policy.Rule{Action: policy.Allow, Src: policy.Match{
			Nets:    []netip.Prefix{pfx("10.1.0.0/16"), pfx("fd00::/64"), pfx("10.2.0.1/32")},
			NotNets: []netip.Prefix{pfx("10.1.2.0/24"), pfx("fd00::5/128")}}}, true,
			[]string{
				"meta nfproto ipv4 ip saddr 10.1.0.0/16 ip saddr != 10.1.2.0/24 accept",
				"meta nfproto ipv4 ip saddr 10.2.0.1 ip saddr != 10.1.2.0/24 accept",
				"meta nfproto ipv6 ip6 saddr fd00::/64 ip6 saddr != fd00::5 accept",
			}},
		{"notNets of one family make a rule of that family", policy.Rule{Action: policy.Allow, Src: policy.Match{
			NotNets: []netip.Prefix{pfx("fd00:65::4/126")}, Set: "s-a"}}, true,
			[]string{"meta nfproto ipv6 ip6 saddr != fd00:65::4/126 ip6 saddr @s-a-6 accept"}},
		{"destination net with an odd prefix", policy.Rule{Action: policy.Allow, Dst: policy.Match{
			Nets: []netip.Prefix{pfx("fd00:65::4/126")}}}, true,
			[]string{"meta nfproto ipv6 ip6 daddr fd00:65::4/126 accept"}},
		{"ports, ranges, source ports, not ports", policy.Rule{Action: policy.Allow, Protocol: 17,
			Src: policy.Match{Ports: []policy.PortRange{{Lo: 40000, Hi: 40009}}},
			Dst: policy.Match{Ports: []policy.PortRange{{Lo: 53, Hi: 53}, {Lo: 8000, Hi: 8080}}, NotPorts: []policy.PortRange{{Lo: 8001, Hi: 8001}}}}, true,
			[]string{
				"meta l4proto udp th sport 40000-40009 th dport 53 th dport != 8001 accept",
				"meta l4proto udp th sport 40000-40009 th dport 8000-8080 th dport != 8001 accept",
			}},
		{"selectors", policy.Rule{Action: policy.Allow, Src: policy.Match{Set: "s-a", NotSet: "s-b"}}, true,
			[]string{
				"meta nfproto ipv4 ip saddr @s-a-4 ip saddr != @s-b-4 accept",
				"meta nfproto ipv6 ip6 saddr @s-a-6 ip6 saddr != @s-b-6 accept",
			}},
		{"named ports", policy.Rule{Action: policy.Allow, Protocol: 6, IPVersion: 6,
			Dst: policy.Match{NamedPortSets: []policy.SetID{"s-np"}, NotNamedPortSets: []policy.SetID{"s-nn"}}}, true,
			[]string{"meta nfproto ipv6 meta l4proto tcp ip6 daddr . meta l4proto . th dport @s-np-6 " +
				"ip6 daddr . meta l4proto . th dport != @s-nn-6 accept"}},
		{"source named port", policy.Rule{Action: policy.Allow, Protocol: 6, IPVersion: 4,
			Src: policy.Match{NamedPortSets: []policy.SetID{"s-np"}}}, true,
			[]string{"meta nfproto ipv4 meta l4proto tcp ip saddr . meta l4proto . th sport @s-np-4 accept"}},
		{"icmp type", policy.Rule{Action: policy.Allow, Protocol: 1, IPVersion: 4, ICMP: &policy.ICMPMatch{Type: 8}}, true,
			[]string{"meta nfproto ipv4 meta l4proto icmp icmp type 8 accept"}},
		{"icmpv6 type and code, not type and code", policy.Rule{Action: policy.Allow, Protocol: 58, IPVersion: 6,
			ICMP: &policy.ICMPMatch{Type: 128, Code: 0, HasCode: true}, NotICMP: &policy.ICMPMatch{Type: 128, Code: 1, HasCode: true}}, true,
			[]string{"meta nfproto ipv6 meta l4proto ipv6-icmp icmpv6 type . code 128 . 0 icmpv6 type . code != 128 . 1 accept"}},
		{"not icmp type", policy.Rule{Action: policy.Deny, Protocol: 1, IPVersion: 4, NotICMP: &policy.ICMPMatch{Type: 0}}, true,
			[]string{"meta nfproto ipv4 meta l4proto icmp icmp type != 0 drop"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, ru := range r.ruleVariants(&c.rule, "gnp/x", c.ingress, false) {
				got = append(got, ru.Text)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("text (-want +got):\n%s", diff)
			}
		})
	}
}

// The base chains' shapes: conntrack, marks, interface names and
// prefixes, verdict maps, failsafes, jumps.
func TestBaseChainText(t *testing.T) {
	r := &renderer{cfg: Config{WorkloadInterfacePrefixes: []string{"wl"}}.withDefaults()}
	fs := &policy.Failsafes{Inbound: []policy.Failsafe{{Protocol: 6, Port: 22},
		{Protocol: 6, Port: 179, Net: netip.MustParsePrefix("fd00::/8")}}}
	chains := r.baseChains(fs, &progPair{"ep-in-1", "ep-out-1"})
	var got []string
	for _, ru := range chains[chainInput] {
		got = append(got, ru.Text)
	}
	want := []string{
		"ct state established,related accept",
		"ct state invalid drop",
		"meta mark set meta mark & 0xfffcffff",
		"meta nfproto ipv6 meta l4proto ipv6-icmp icmpv6 type 130-133 accept",
		"meta nfproto ipv6 meta l4proto ipv6-icmp icmpv6 type 135-136 accept",
		"meta nfproto ipv6 meta l4proto ipv6-icmp icmpv6 type 143 accept",
		"iifname vmap @wl-from",
		"meta mark & 0x00010000 == 0x00010000 accept",
		`iifname "wl*" meta mark & 0x00010000 == 0x00000000 drop`,
		`iifname "lo" accept`,
		"meta l4proto tcp th dport 22 accept",
		"meta nfproto ipv6 ip6 saddr fd00::/8 meta l4proto tcp th dport 179 accept",
		"iifname vmap @hep-from",
		"meta mark & 0x00010000 == 0x00010000 accept",
		"jump ep-in-1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("input chain (-want +got):\n%s", diff)
	}
	last := chains[chainInput][len(chains[chainInput])-1]
	if diff := cmp.Diff([]string{"ep-in-1"}, last.Refs); diff != "" {
		t.Errorf("refs of the jump (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"@wl-from"}, chains[chainInput][6].Refs); diff != "" {
		t.Errorf("refs of the vmap (-want +got):\n%s", diff)
	}
}

// An expression the renderer does not know shows as such, rather than
// vanishing from the text, and a golden file never contains one.
func TestRuleTextUnknown(t *testing.T) {
	got := ruleText([]expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept}})
	if got != "[unknown *expr.Counter] accept" {
		t.Errorf("text = %q", got)
	}
	f := newFixture(t)
	f.sample()
	f.mustApply()
	if s := f.fake.Render(); strings.Contains(s, "[unknown") {
		t.Errorf("the sample renders an unknown expression:\n%s", s)
	}
}

// Program chains are named by a hash of the derived text: two programs
// whose expressions differ in one byte get different chains.
func TestProgramNameFollowsExpressions(t *testing.T) {
	a := []*Rule{new(builder).port(false, 80, 80, false).verdict(expr.VerdictAccept)}
	b := []*Rule{new(builder).port(false, 81, 81, false).verdict(expr.VerdictAccept)}
	if programName(a, true) == programName(b, true) {
		t.Errorf("programs with dport 80 and 81 share the name %s", programName(a, true))
	}
}
