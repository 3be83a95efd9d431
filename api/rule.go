package api

// Action is what a rule does with a packet it matches.
type Action string

// Rule actions.
const (
	// Allow accepts the packet; no further policy is consulted.
	Allow Action = "Allow"
	// Deny drops the packet.
	Deny Action = "Deny"
	// Log logs the packet and goes on to the next rule.
	Log Action = "Log"
	// Pass skips the rest of this policy and goes on to the next policy
	// (or the profiles when it is the last one).
	Pass Action = "Pass"
)

// Rule is one rule of a policy or profile, the same type as Calico's. A
// rule matches when every match criterion that is set matches.
type Rule struct {
	Action Action `json:"action"`
	// IPVersion restricts the rule to 4 or 6; unset matches both, except
	// as implied by ICMP/ICMPv6 or by the nets.
	IPVersion *int `json:"ipVersion,omitempty"`
	// Protocol and NotProtocol match the IP protocol, by name or number.
	Protocol    *Protocol `json:"protocol,omitempty"`
	NotProtocol *Protocol `json:"notProtocol,omitempty"`
	// ICMP and NotICMP match the ICMP type and code; they need Protocol
	// ICMP or ICMPv6.
	ICMP    *ICMPFields `json:"icmp,omitempty"`
	NotICMP *ICMPFields `json:"notICMP,omitempty"`
	// Source and Destination match the two ends of the packet.
	Source      EntityRule `json:"source,omitzero"`
	Destination EntityRule `json:"destination,omitzero"`
}

// ICMPFields matches an ICMP type and, optionally, code.
type ICMPFields struct {
	// Type is 0..254 (255 is reserved).
	Type *int `json:"type,omitempty"`
	// Code is 0..255 and needs Type.
	Code *int `json:"code,omitempty"`
}

// EntityRule matches one end (source or destination) of a packet. All the
// criteria that are set must match.
type EntityRule struct {
	// Nets and NotNets are CIDRs or single addresses; Default rewrites them
	// to canonical CIDRs (host bits cleared: "10.0.0.7/24" is 10.0.0.0/24).
	Nets    []string `json:"nets,omitempty"`
	NotNets []string `json:"notNets,omitempty"`
	// Selector and NotSelector match the labels of endpoints.
	Selector    string `json:"selector,omitempty"`
	NotSelector string `json:"notSelector,omitempty"`
	// NamespaceSelector matches the labels of namespaces: the endpoints in
	// matching namespaces are selected (further narrowed by Selector).
	NamespaceSelector string `json:"namespaceSelector,omitempty"`
	// Ports and NotPorts need Protocol TCP, UDP, SCTP or UDPLite.
	Ports    []Port `json:"ports,omitempty"`
	NotPorts []Port `json:"notPorts,omitempty"`
}

// defaultRules canonicalizes the rules of a policy or profile in place.
func defaultRules(rules []Rule) {
	for i := range rules {
		r := &rules[i]
		for _, p := range []*Protocol{r.Protocol, r.NotProtocol} {
			if p != nil {
				*p = p.canonical()
			}
		}
		for _, e := range []*EntityRule{&r.Source, &r.Destination} {
			canonicalNets(e.Nets)
			canonicalNets(e.NotNets)
		}
	}
}
