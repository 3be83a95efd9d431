package convert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/api/selector"
)

const (
	// PolicyNamePrefix starts the name of a converted NetworkPolicy
	// (Calico's "knp.default.").
	PolicyNamePrefix = "knp.default."
	// PolicyOrder is the order of converted policies (Calico's 1000).
	PolicyOrder = 1000
	// MaxRules bounds the rules one converted policy may have (a rule's
	// peers times its ports' protocols, summed): a larger policy is
	// refused.
	MaxRules = 10000
)

// Error is a Kubernetes object that cannot be converted exactly.
type Error struct {
	// Field is the path of the offending field, e.g.
	// "spec.ingress[0].from[1].ipBlock.except[0]".
	Field string
	// Reason says why.
	Reason string
}

func (e *Error) Error() string { return e.Field + ": " + e.Reason }

func errorf(field, format string, args ...any) *Error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// PolicyName returns the name of the bgpfabric policy converted from the
// Kubernetes NetworkPolicy named name: PolicyNamePrefix and the name, or,
// when that is longer than a name may be (253 characters), the name cut
// short and a hash of the whole name, so that it stays unique.
func PolicyName(name string) string {
	n := PolicyNamePrefix + name
	if len(n) <= 253 {
		return n
	}
	sum := sha256.Sum256([]byte(name))
	return strings.TrimRight(n[:253-17], ".-") + "-" + hex.EncodeToString(sum[:8])
}

// AnnotationK8sName, on a converted policy, is the name of the Kubernetes
// NetworkPolicy it was converted from.
const AnnotationK8sName = "bgpfabric.io/k8s-name"

// NetworkPolicy converts a Kubernetes NetworkPolicy. The result is
// defaulted and valid; an error is an *Error naming the field that cannot
// be expressed exactly.
func NetworkPolicy(np *networkingv1.NetworkPolicy) (*api.NetworkPolicy, error) {
	if np.Namespace == "" {
		return nil, errorf("metadata.namespace", "is required")
	}
	podSel, err := labelSelector("spec.podSelector", &np.Spec.PodSelector, podKey)
	if err != nil {
		return nil, err
	}
	sel, err := render("spec.podSelector", podSel, k8sOnly)
	if err != nil {
		return nil, err
	}
	ingress, egress := false, len(np.Spec.Egress) > 0
	if len(np.Spec.PolicyTypes) == 0 {
		ingress = true
	}
	for i, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		default:
			return nil, errorf(fmt.Sprintf("spec.policyTypes[%d]", i), "%q is neither Ingress nor Egress", t)
		}
	}
	if len(np.Spec.PolicyTypes) > 0 && !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		egress = false
	}
	order := float64(PolicyOrder)
	out := &api.NetworkPolicy{
		ObjectMeta: api.ObjectMeta{
			Name:        PolicyName(np.Name),
			Namespace:   np.Namespace,
			Annotations: map[string]string{AnnotationManagedBy: ManagedBy, AnnotationK8sName: np.Name},
		},
		Spec: api.NetworkPolicySpec{PolicySpec: api.PolicySpec{Order: &order, Selector: sel}},
	}
	s := &out.Spec.PolicySpec
	if ingress {
		s.Types = append(s.Types, api.PolicyTypeIngress)
		for i, r := range np.Spec.Ingress {
			rules, err := rule(fmt.Sprintf("spec.ingress[%d]", i), "from", r.From, r.Ports, true)
			if err != nil {
				return nil, err
			}
			s.Ingress = append(s.Ingress, rules...)
		}
	}
	if egress {
		s.Types = append(s.Types, api.PolicyTypeEgress)
		for i, r := range np.Spec.Egress {
			rules, err := rule(fmt.Sprintf("spec.egress[%d]", i), "to", r.To, r.Ports, false)
			if err != nil {
				return nil, err
			}
			s.Egress = append(s.Egress, rules...)
		}
	}
	if n := len(s.Ingress) + len(s.Egress); n > MaxRules {
		return nil, errorf("spec", "converts into %d rules: at most %d are supported", n, MaxRules)
	}
	out.Default()
	if err := out.Validate(); err != nil {
		return nil, errorf("spec", "converts into an invalid bgpfabric policy: %v", err)
	}
	return out, nil
}

// rule converts one Kubernetes rule into Allow rules: one per peer (or
// one for any peer) and per protocol of its ports (or one for any port).
// ingress says the peers are sources; otherwise they are destinations.
func rule(path, peersField string, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, ingress bool) ([]api.Rule, error) {
	ends := []api.EntityRule{{}}
	if len(peers) > 0 {
		ends = ends[:0]
		for i := range peers {
			e, err := peer(fmt.Sprintf("%s.%s[%d]", path, peersField, i), &peers[i])
			if err != nil {
				return nil, err
			}
			ends = append(ends, e)
		}
	}
	groups, err := portGroups(path+".ports", ports)
	if err != nil {
		return nil, err
	}
	if len(ends)*len(groups) > MaxRules {
		return nil, errorf(path, "converts into %d rules: at most %d are supported", len(ends)*len(groups), MaxRules)
	}
	var out []api.Rule
	for _, e := range ends {
		for _, g := range groups {
			r := api.Rule{Action: api.Allow}
			if g.proto != "" {
				p := g.proto
				r.Protocol = &p
			}
			e := e
			e.Nets, e.NotNets = slices.Clone(e.Nets), slices.Clone(e.NotNets)
			if ingress {
				r.Source = e
				r.Destination.Ports = slices.Clone(g.ports)
			} else {
				e.Ports = slices.Clone(g.ports)
				r.Destination = e
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// peer converts one peer into the end of a rule.
func peer(path string, p *networkingv1.NetworkPolicyPeer) (api.EntityRule, error) {
	var e api.EntityRule
	if p.IPBlock != nil {
		if p.PodSelector != nil || p.NamespaceSelector != nil {
			return e, errorf(path, "ipBlock cannot be combined with podSelector or namespaceSelector")
		}
		return ipBlock(path+".ipBlock", p.IPBlock)
	}
	if p.PodSelector == nil && p.NamespaceSelector == nil {
		return e, errorf(path, "must set podSelector, namespaceSelector or ipBlock")
	}
	xs := []selector.Expr{k8sOnly}
	if p.PodSelector != nil {
		x, err := labelSelector(path+".podSelector", p.PodSelector, podKey)
		if err != nil {
			return e, err
		}
		xs = append(xs, x)
	}
	if p.NamespaceSelector != nil {
		x, err := labelSelector(path+".namespaceSelector", p.NamespaceSelector, NamespaceLabelKey)
		if err != nil {
			return e, err
		}
		xs = append(xs, x)
		// Any namespace: felix scopes a rule's selector to the policy's
		// namespace unless the rule has a namespaceSelector; which
		// namespaces match is said by the pcns. labels in the selector.
		e.NamespaceSelector = selector.All{}.String()
	}
	sel, err := render(path, xs...)
	if err != nil {
		return e, err
	}
	e.Selector = sel
	return e, nil
}

// ipBlock converts an ipBlock: cidr as nets, except as notNets, each
// except inside the cidr.
func ipBlock(path string, b *networkingv1.IPBlock) (api.EntityRule, error) {
	var e api.EntityRule
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return e, errorf(path+".cidr", "%q is not a CIDR", b.CIDR)
	}
	cidr = cidr.Masked()
	e.Nets = []string{cidr.String()}
	for i, x := range b.Except {
		p := fmt.Sprintf("%s.except[%d]", path, i)
		ex, err := netip.ParsePrefix(x)
		if err != nil {
			return e, errorf(p, "%q is not a CIDR", x)
		}
		ex = ex.Masked()
		if ex.Addr().Is4() != cidr.Addr().Is4() || ex.Bits() <= cidr.Bits() || !cidr.Contains(ex.Addr()) {
			return e, errorf(p, "%s must be strictly inside cidr %s", ex, cidr)
		}
		e.NotNets = append(e.NotNets, ex.String())
	}
	return e, nil
}

// portGroup is the ports of one protocol; no ports is every port.
type portGroup struct {
	proto api.Protocol // "" for any protocol
	ports []api.Port
}

// portGroups groups a rule's ports by protocol, in the order the protocols
// first appear. A port without a number makes its protocol any port. No
// ports at all is one group of any protocol.
func portGroups(path string, ports []networkingv1.NetworkPolicyPort) ([]portGroup, error) {
	if len(ports) == 0 {
		return []portGroup{{}}, nil
	}
	var groups []portGroup
	all := map[api.Protocol]bool{}
	for i, pp := range ports {
		p := fmt.Sprintf("%s[%d]", path, i)
		proto := corev1.ProtocolTCP
		if pp.Protocol != nil {
			proto = *pp.Protocol
		}
		var ap api.Protocol
		switch proto {
		case corev1.ProtocolTCP:
			ap = api.ProtocolTCP
		case corev1.ProtocolUDP:
			ap = api.ProtocolUDP
		case corev1.ProtocolSCTP:
			ap = api.ProtocolSCTP
		default:
			return nil, errorf(p+".protocol", "%q is not TCP, UDP or SCTP", proto)
		}
		gi := slices.IndexFunc(groups, func(g portGroup) bool { return g.proto == ap })
		if gi < 0 {
			groups = append(groups, portGroup{proto: ap})
			gi = len(groups) - 1
		}
		port, err := portOf(p, &pp)
		if err != nil {
			return nil, err
		}
		if port == "" {
			all[ap] = true
			continue
		}
		if !slices.Contains(groups[gi].ports, port) {
			groups[gi].ports = append(groups[gi].ports, port)
		}
	}
	for i := range groups {
		if all[groups[i].proto] {
			groups[i].ports = nil
		}
	}
	return groups, nil
}

// portOf converts one port: "" for any port of the protocol.
func portOf(path string, pp *networkingv1.NetworkPolicyPort) (api.Port, error) {
	if pp.Port == nil {
		if pp.EndPort != nil {
			return "", errorf(path+".endPort", "needs port")
		}
		return "", nil
	}
	if pp.Port.Type == intstr.String {
		name := pp.Port.StrVal
		if pp.EndPort != nil {
			return "", errorf(path+".endPort", "needs a numeric port, not the named port %q", name)
		}
		if _, ok := api.Port(name).Name(); !ok {
			return "", errorf(path+".port", "%q is not a port name (at most 15 lower-case letters, digits and inner dashes, with a letter)", name)
		}
		return api.Port(name), nil
	}
	n := pp.Port.IntVal
	if n < 1 || n > 65535 {
		return "", errorf(path+".port", "%d is not a port from 1 to 65535", n)
	}
	if pp.EndPort == nil {
		return api.PortNumber(uint16(n)), nil
	}
	end := *pp.EndPort
	if end < n || end > 65535 {
		return "", errorf(path+".endPort", "%d must be from port (%d) to 65535", end, n)
	}
	if end == n {
		return api.PortNumber(uint16(n)), nil
	}
	return api.PortRange(uint16(n), uint16(end)), nil
}
