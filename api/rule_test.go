package api

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRuleValidate checks rules through a NetworkPolicy, so that the paths
// are the ones users see.
func TestRuleValidate(t *testing.T) {
	base := func() *NetworkPolicy {
		return &NetworkPolicy{ObjectMeta: ObjectMeta{Namespace: "prod", Name: "p"}, Spec: NetworkPolicySpec{PolicySpec{
			Ingress: []Rule{{Action: Allow}, {Action: Deny}, {Action: Allow}},
		}}}
	}
	rule := func(f func(*Rule)) func(*NetworkPolicy) { return func(p *NetworkPolicy) { f(&p.Spec.Ingress[2]) } }
	tcp := ptr(ProtocolTCP)
	runValidation(t, base, []validationCase[*NetworkPolicy]{
		{"valid", func(*NetworkPolicy) {}, nil},
		{"no action", rule(func(r *Rule) { r.Action = "" }), []string{"spec.ingress[2].action"}},
		{"bad action", rule(func(r *Rule) { r.Action = "allow" }), []string{"spec.ingress[2].action"}},
		{"ip version", rule(func(r *Rule) { r.IPVersion = ptr(5) }), []string{"spec.ingress[2].ipVersion"}},
		{"protocols", rule(func(r *Rule) { r.Protocol, r.NotProtocol = ptr(Protocol("GRE")), ptr(Protocol("0")) }),
			[]string{"spec.ingress[2].notProtocol", "spec.ingress[2].protocol"}},
		{"protocol numbers", rule(func(r *Rule) { r.Protocol, r.NotProtocol = ptr(Protocol("255")), ptr(Protocol("1")) }), nil},
		{"protocol 256", rule(func(r *Rule) { r.Protocol = ptr(Protocol("256")) }), []string{"spec.ingress[2].protocol"}},
		{"ports", rule(func(r *Rule) {
			r.Protocol = tcp
			r.Destination.Ports = []Port{"1", "65535", "1:65535", "80:80", "http", "my-port-1"}
		}), nil},
		{"bad ports", rule(func(r *Rule) {
			r.Protocol = tcp
			r.Destination.Ports = []Port{"0", "65536", "2000:1000", "1:2:3", "-", "HTTP", "a--b", "verylongportname", "1:", "", "80"}
		}), []string{
			"spec.ingress[2].destination.ports[0]", "spec.ingress[2].destination.ports[1]", "spec.ingress[2].destination.ports[2]",
			"spec.ingress[2].destination.ports[3]", "spec.ingress[2].destination.ports[4]", "spec.ingress[2].destination.ports[5]",
			"spec.ingress[2].destination.ports[6]", "spec.ingress[2].destination.ports[7]", "spec.ingress[2].destination.ports[8]",
			"spec.ingress[2].destination.ports[9]"}},
		{"ports need protocol", rule(func(r *Rule) { r.Source.Ports = []Port{"80"}; r.Destination.NotPorts = []Port{"81"} }),
			[]string{"spec.ingress[2].destination.notPorts", "spec.ingress[2].source.ports"}},
		{"ports with ICMP", rule(func(r *Rule) { r.Protocol = ptr(ProtocolICMP); r.Source.Ports = []Port{"80"} }),
			[]string{"spec.ingress[2].source.ports"}},
		{"ports with SCTP number", rule(func(r *Rule) { r.Protocol = ptr(Protocol("132")); r.Source.Ports = []Port{"80"} }), nil},
		{"ports with notProtocol only", rule(func(r *Rule) { r.NotProtocol = tcp; r.Source.Ports = []Port{"80"} }),
			[]string{"spec.ingress[2].source.ports"}},
		{"icmp", rule(func(r *Rule) { r.Protocol = ptr(ProtocolICMP); r.ICMP = &ICMPFields{Type: ptr(8), Code: ptr(0)} }), nil},
		{"icmp needs protocol", rule(func(r *Rule) { r.ICMP = &ICMPFields{Type: ptr(8)} }), []string{"spec.ingress[2].icmp"}},
		{"icmp with tcp", rule(func(r *Rule) { r.Protocol = tcp; r.NotICMP = &ICMPFields{Type: ptr(8)} }), []string{"spec.ingress[2].notICMP"}},
		{"icmp ranges", rule(func(r *Rule) {
			r.Protocol = ptr(ProtocolICMPv6)
			r.ICMP = &ICMPFields{Type: ptr(255), Code: ptr(256)}
			r.NotICMP = &ICMPFields{Code: ptr(1)}
		}), []string{"spec.ingress[2].icmp.code", "spec.ingress[2].icmp.type", "spec.ingress[2].notICMP.code"}},
		{"icmp and ipVersion", rule(func(r *Rule) { r.Protocol, r.IPVersion = ptr(ProtocolICMP), ptr(6) }), []string{"spec.ingress[2].protocol"}},
		{"nets", rule(func(r *Rule) {
			r.Source.Nets = []string{"10.0.0.0/8", "10.0.0.1", "fd00::/8", "fd00::1"}
			r.Destination.NotNets = []string{"10.1.2.3/16"}
		}), nil},
		{"bad nets", rule(func(r *Rule) {
			r.Source.Nets = []string{"10.0.0.0/33", "x"}
			r.Destination.NotNets = []string{"fe80::1%eth0"}
		}), []string{"spec.ingress[2].destination.notNets[0]", "spec.ingress[2].source.nets[0]", "spec.ingress[2].source.nets[1]"}},
		{"nets and ipVersion", rule(func(r *Rule) {
			r.IPVersion = ptr(4)
			r.Source.Nets = []string{"10.0.0.0/8", "fd00::/8"}
			r.Destination.NotNets = []string{"fd00::/16"}
		}), []string{"spec.ingress[2].destination.notNets[0]", "spec.ingress[2].source.nets[1]"}},
		{"nets and ICMPv6", rule(func(r *Rule) { r.Protocol = ptr(ProtocolICMPv6); r.Destination.Nets = []string{"10.0.0.0/8"} }),
			[]string{"spec.ingress[2].destination.nets[0]"}},
		{"nets families disagree", rule(func(r *Rule) {
			r.Source.Nets = []string{"10.0.0.0/8"}
			r.Destination.Nets = []string{"fd00::/8"}
		}), []string{"spec.ingress[2].destination.nets"}},
		{"selectors", rule(func(r *Rule) {
			r.Source.Selector = "role == "
			r.Source.NotSelector = "has(x"
			r.Destination.NamespaceSelector = "a == 'b' c"
			r.Destination.Selector = "all()"
		}), []string{"spec.ingress[2].destination.namespaceSelector", "spec.ingress[2].source.notSelector", "spec.ingress[2].source.selector"}},
		{"egress path", func(p *NetworkPolicy) {
			p.Spec.Egress = []Rule{{Action: Allow}, {Action: Allow, Destination: EntityRule{Ports: []Port{"80"}}}}
		}, []string{"spec.egress[1].destination.ports"}},
	})
}

func TestSelectorErrorMessage(t *testing.T) {
	p := &NetworkPolicy{ObjectMeta: ObjectMeta{Namespace: "prod", Name: "p"}, Spec: NetworkPolicySpec{PolicySpec{Selector: "role == "}}}
	err := ValidateResource(p)
	want := `NetworkPolicy prod/p is invalid: spec.selector: column 9: expected a quoted value (got "role == ")`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestRuleDefault(t *testing.T) {
	rules := []Rule{{
		Action: Allow, Protocol: ptr(Protocol("udplite")), NotProtocol: ptr(Protocol("icmpv6")),
		Source:      EntityRule{Nets: []string{"10.1.2.3/16", "10.0.0.1", "FD00::1/64", "bad"}},
		Destination: EntityRule{NotNets: []string{"fd00::1"}},
	}}
	defaultRules(rules)
	want := []Rule{{
		Action: Allow, Protocol: ptr(ProtocolUDPLite), NotProtocol: ptr(ProtocolICMPv6),
		Source:      EntityRule{Nets: []string{"10.1.0.0/16", "10.0.0.1/32", "fd00::/64", "bad"}},
		Destination: EntityRule{NotNets: []string{"fd00::1/128"}},
	}}
	if diff := cmp.Diff(want, rules); diff != "" {
		t.Errorf("defaultRules (-want +got):\n%s", diff)
	}
	nets, notNets := rules[0].Source.Prefixes()
	if len(nets) != 3 || len(notNets) != 0 {
		t.Errorf("Prefixes() = %v, %v", nets, notNets)
	}
}

func TestProtocolAndPort(t *testing.T) {
	protos := []struct {
		p       Protocol
		num     uint8
		ok      bool
		ports   bool
		icmpVer int
	}{
		{"TCP", 6, true, true, 0},
		{"tcp", 6, true, true, 0},
		{"17", 17, true, true, 0},
		{"ICMP", 1, true, false, 4},
		{"58", 58, true, false, 6},
		{"UDPLite", 136, true, true, 0},
		{"0", 0, false, false, 0},
		{"GRE", 0, false, false, 0},
		{"1.5", 0, false, false, 0},
	}
	for _, tt := range protos {
		n, ok := tt.p.Number()
		if n != tt.num || ok != tt.ok || tt.p.HasPorts() != tt.ports || tt.p.IsICMP() != tt.icmpVer {
			t.Errorf("Protocol(%q): Number() = %d, %v; HasPorts() = %v; IsICMP() = %d", tt.p, n, ok, tt.p.HasPorts(), tt.p.IsICMP())
		}
	}
	ports := []struct {
		p      Port
		lo, hi uint16
		name   string
	}{
		{PortNumber(80), 80, 80, ""},
		{PortRange(1000, 2000), 1000, 2000, ""},
		{"http", 0, 0, "http"},
		{"x1", 0, 0, "x1"},
	}
	for _, tt := range ports {
		lo, hi, _ := tt.p.Range()
		name, _ := tt.p.Name()
		if lo != tt.lo || hi != tt.hi || name != tt.name {
			t.Errorf("Port(%q): Range() = %d, %d; Name() = %q", tt.p, lo, hi, name)
		}
	}
}
