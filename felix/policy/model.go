package policy

import (
	"fmt"
	"net/netip"
)

// EndpointKind tells workload endpoints from host endpoints.
type EndpointKind uint8

// Endpoint kinds.
const (
	WorkloadEndpoint EndpointKind = iota + 1
	HostEndpoint
)

func (k EndpointKind) String() string {
	switch k {
	case WorkloadEndpoint:
		return "wep"
	case HostEndpoint:
		return "hep"
	}
	return fmt.Sprintf("EndpointKind(%d)", uint8(k))
}

// EndpointKey identifies an endpoint: a workload endpoint by namespace and
// name, a host endpoint by name (Namespace is empty).
type EndpointKey struct {
	Kind      EndpointKind
	Namespace string
	Name      string
}

func (k EndpointKey) String() string {
	if k.Kind == HostEndpoint {
		return "hep/" + k.Name
	}
	return "wep/" + k.Namespace + "/" + k.Name
}

// Less orders keys: kind, namespace, name.
func (k EndpointKey) Less(o EndpointKey) bool {
	if k.Kind != o.Kind {
		return k.Kind < o.Kind
	}
	if k.Namespace != o.Namespace {
		return k.Namespace < o.Namespace
	}
	return k.Name < o.Name
}

// PolicyKey identifies a policy: a NetworkPolicy by namespace and name, a
// GlobalNetworkPolicy by name (Namespace is empty).
type PolicyKey struct {
	Namespace string
	Name      string
}

// String is "gnp/<name>" or "np/<namespace>/<name>".
func (k PolicyKey) String() string {
	if k.Namespace == "" {
		return "gnp/" + k.Name
	}
	return "np/" + k.Namespace + "/" + k.Name
}

// SetID names an IP set: "s-" and a hash of its canonical selector, so
// that the same selector always gives the same ID (also across restarts).
type SetID string

// Action is what a rule does with a packet it matches.
type Action uint8

// Actions, as in api.Rule.
const (
	Allow Action = iota + 1
	Deny
	Log
	Pass
)

func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	case Log:
		return "log"
	case Pass:
		return "pass"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Ruleset is the whole desired ACL state of a node.
type Ruleset struct {
	// Endpoints are the local endpoints with their programs.
	Endpoints map[EndpointKey]*Endpoint
	// Policies and Profiles are the ones some local endpoint uses.
	Policies map[PolicyKey]*Rules
	Profiles map[string]*Rules
	// IPSets are the sets that the rules of Policies and Profiles use.
	IPSets map[SetID]*IPSet
	// Failsafe ports are open to and from host endpoints ahead of policy.
	FailsafeInbound, FailsafeOutbound []Failsafe
}

// Endpoint is the program of one local endpoint.
type Endpoint struct {
	Key EndpointKey
	// Interface is the Linux interface, or "*" for a host endpoint of all
	// the node's interfaces.
	Interface string
	// Addrs are the endpoint's addresses.
	Addrs []netip.Addr
	// Ingress applies to traffic to the endpoint, Egress to traffic from
	// it.
	Ingress, Egress Program
}

// Program is what one direction of an endpoint runs: the policies that
// apply, in order, then the profiles.
type Program struct {
	Policies []PolicyKey
	Profiles []string
}

// Rules are the rules of a policy or profile, per direction, in order.
type Rules struct {
	Ingress, Egress []Rule
}

// Rule is one rule with its matches resolved: selectors to IP sets, nets
// to prefixes, ports to ranges. Every match that is set must match.
type Rule struct {
	Action Action
	// IPVersion is 4 or 6, or 0 for both.
	IPVersion uint8
	// Protocol and NotProtocol are IP protocol numbers; 0 is unset.
	Protocol, NotProtocol uint8
	// ICMP and NotICMP match ICMP (or ICMPv6, by Protocol) type and code.
	ICMP, NotICMP *ICMPMatch
	// Src and Dst match the source and destination of the packet.
	Src, Dst Match
}

// ICMPMatch is an ICMP type and, when HasCode, code.
type ICMPMatch struct {
	Type    uint8
	Code    uint8
	HasCode bool
}

// Match is one end of a rule.
type Match struct {
	// Nets: the address is in one of them; NotNets: in none of them.
	Nets, NotNets []netip.Prefix
	// Set: the address is in the IP set; NotSet: it is not. Empty is
	// unset.
	Set, NotSet SetID
	// Ports: the port is in one of the ranges (or, when NamedPortSets is
	// set too, the address and port are in one of those sets); NotPorts:
	// the port is in none of the ranges and the address and port are in
	// none of NotNamedPortSets.
	Ports, NotPorts []PortRange
	// NamedPortSets and NotNamedPortSets are IP sets of (address,
	// protocol, port) for named ports; see namedport.go.
	NamedPortSets, NotNamedPortSets []SetID
}

// PortRange is an inclusive port range; a single port has Lo == Hi.
type PortRange struct{ Lo, Hi uint16 }

// IPSet is the set of addresses of every endpoint that a selector matches,
// or, for a named port set, of (address, protocol, port) members.
type IPSet struct {
	ID SetID
	// Selector is the canonical selector.
	Selector string
	// NamedPort is set for a named port set: its members are the
	// addresses of the selected endpoints that declare the port, each with
	// the protocol and number the endpoint gives it.
	NamedPort *NamedPort
	// Members are sorted; their ProtoPort is zero in a plain set.
	Members []Member
}

// NamedPort is what a named port set resolves.
type NamedPort struct {
	Protocol uint8
	Name     string
}

// ProtoPort is a protocol and port.
type ProtoPort struct {
	Protocol uint8
	Port     uint16
}

// Member is one member of an IP set: an address, and for a named port set
// a protocol and port.
type Member struct {
	Addr netip.Addr
	ProtoPort
}

// Less orders members by address, protocol and port.
func (m Member) Less(o Member) bool {
	if c := m.Addr.Compare(o.Addr); c != 0 {
		return c < 0
	}
	if m.Protocol != o.Protocol {
		return m.Protocol < o.Protocol
	}
	return m.Port < o.Port
}

// MemberDelta adds or removes one member of an IP set.
type MemberDelta struct {
	Set    SetID
	Member Member
	Add    bool
}

// Failsafe is a port that stays open to (inbound) or from (outbound) host
// endpoints whatever the policy.
type Failsafe struct {
	Protocol uint8
	Port     uint16
	// Net, when valid, restricts the failsafe to that remote network.
	Net netip.Prefix
}

// Update is what changed since the previous TakeUpdate. Map values that
// are nil mean removed. Applying every Update in turn to an empty Ruleset
// (Ruleset.Apply) gives the Calculator's current Ruleset.
type Update struct {
	Endpoints map[EndpointKey]*Endpoint
	Policies  map[PolicyKey]*Rules
	Profiles  map[string]*Rules
	// IPSets holds new sets with all their members, and nil for removed
	// sets. A set that changed only in membership is not here but in
	// Members.
	IPSets map[SetID]*IPSet
	// Members are membership changes of sets that existed before and
	// still exist, sorted by set and member.
	Members []MemberDelta
	// Failsafes is set on the first update (and whenever they change).
	Failsafes *Failsafes
}

// Failsafes are the failsafe port lists.
type Failsafes struct {
	Inbound, Outbound []Failsafe
}

// Empty reports whether the update changes nothing.
func (u *Update) Empty() bool {
	return len(u.Endpoints) == 0 && len(u.Policies) == 0 && len(u.Profiles) == 0 &&
		len(u.IPSets) == 0 && len(u.Members) == 0 && u.Failsafes == nil
}
