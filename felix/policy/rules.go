package policy

import (
	"fmt"
	"strconv"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/api/selector"
)

// setRef is an IP set that compiled rules use.
type setRef struct {
	id        SetID
	sel       *selector.Selector
	namedPort *NamedPort
}

// compiler turns api rules into model rules, collecting the IP sets they
// use. ns is the namespace of a NetworkPolicy, "" for global policies and
// profiles.
type compiler struct {
	ns   string
	refs []setRef
	seen map[SetID]bool
}

func (c *compiler) rules(rs []api.Rule) ([]Rule, error) {
	var out []Rule
	for i := range rs {
		r, err := c.rule(&rs[i])
		if err != nil {
			return nil, fmt.Errorf("rule %d: %w", i, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func (c *compiler) rule(r *api.Rule) (Rule, error) {
	var out Rule
	switch r.Action {
	case api.Allow:
		out.Action = Allow
	case api.Deny:
		out.Action = Deny
	case api.Log:
		out.Action = Log
	case api.Pass:
		out.Action = Pass
	default:
		return out, fmt.Errorf("action %q: must be Allow, Deny, Log or Pass", r.Action)
	}
	if r.IPVersion != nil {
		out.IPVersion = uint8(*r.IPVersion)
	}
	if r.Protocol != nil {
		n, ok := r.Protocol.Number()
		if !ok {
			return out, fmt.Errorf("protocol %q: unknown", *r.Protocol)
		}
		out.Protocol = n
		if v := r.Protocol.IsICMP(); v != 0 {
			out.IPVersion = uint8(v)
		}
	}
	if r.NotProtocol != nil {
		n, ok := r.NotProtocol.Number()
		if !ok {
			return out, fmt.Errorf("notProtocol %q: unknown", *r.NotProtocol)
		}
		out.NotProtocol = n
	}
	out.ICMP, out.NotICMP = icmpMatch(r.ICMP), icmpMatch(r.NotICMP)
	var err error
	if out.Src, err = c.entity(&r.Source, out.Protocol); err != nil {
		return out, fmt.Errorf("source: %w", err)
	}
	if out.Dst, err = c.entity(&r.Destination, out.Protocol); err != nil {
		return out, fmt.Errorf("destination: %w", err)
	}
	return out, nil
}

func icmpMatch(f *api.ICMPFields) *ICMPMatch {
	if f == nil || f.Type == nil {
		return nil
	}
	m := &ICMPMatch{Type: uint8(*f.Type)}
	if f.Code != nil {
		m.Code, m.HasCode = uint8(*f.Code), true
	}
	return m
}

func (c *compiler) entity(e *api.EntityRule, proto uint8) (Match, error) {
	var m Match
	m.Nets, m.NotNets = e.Prefixes()
	sel, notSel, err := c.selectors(e)
	if err != nil {
		return m, err
	}
	if sel != nil {
		m.Set = c.ref(sel, nil)
	}
	if notSel != nil {
		m.NotSet = c.ref(notSel, nil)
	}
	// Named ports resolve over the endpoints the positive selector picks,
	// or all endpoints.
	portSel := sel
	if portSel == nil {
		portSel = selector.New(selector.All{})
	}
	for _, p := range e.Ports {
		pr, id, err := c.port(p, proto, portSel)
		if err != nil {
			return m, fmt.Errorf("ports: %w", err)
		}
		if id != "" {
			m.NamedPortSets = append(m.NamedPortSets, id)
		} else {
			m.Ports = append(m.Ports, pr)
		}
	}
	for _, p := range e.NotPorts {
		pr, id, err := c.port(p, proto, portSel)
		if err != nil {
			return m, fmt.Errorf("notPorts: %w", err)
		}
		if id != "" {
			m.NotNamedPortSets = append(m.NotNamedPortSets, id)
		} else {
			m.NotPorts = append(m.NotPorts, pr)
		}
	}
	return m, nil
}

// selectors applies Calico's scoping: in a namespaced policy, or with a
// namespaceSelector, the positive selector is restricted to the namespace
// (or namespaces) when the end uses any selector; notSelector stays as it
// is.
func (c *compiler) selectors(e *api.EntityRule) (sel, notSel *selector.Selector, err error) {
	var nsExpr selector.Expr
	if e.NamespaceSelector != "" {
		ns, err := parseSel(e.NamespaceSelector)
		if err != nil {
			return nil, nil, fmt.Errorf("namespaceSelector: %w", err)
		}
		nsExpr = selector.And{Exprs: []selector.Expr{selector.Has{Key: LabelNamespace}, inNamespaces(ns.Expr())}}
	} else if c.ns != "" {
		nsExpr = inNamespace(c.ns)
	}
	var selExpr selector.Expr
	if e.Selector != "" {
		s, err := parseSel(e.Selector)
		if err != nil {
			return nil, nil, fmt.Errorf("selector: %w", err)
		}
		selExpr = s.Expr()
	}
	if nsExpr != nil && (e.Selector != "" || e.NotSelector != "" || e.NamespaceSelector != "") {
		sel = and(nsExpr, selExpr)
	} else if selExpr != nil {
		sel = selector.New(selExpr)
	}
	if e.NotSelector != "" {
		if notSel, err = parseSel(e.NotSelector); err != nil {
			return nil, nil, fmt.Errorf("notSelector: %w", err)
		}
	}
	return sel, notSel, nil
}

func (c *compiler) port(p api.Port, proto uint8, sel *selector.Selector) (PortRange, SetID, error) {
	if lo, hi, ok := p.Range(); ok {
		return PortRange{lo, hi}, "", nil
	}
	name, ok := p.Name()
	if !ok {
		return PortRange{}, "", fmt.Errorf("port %q: not a port, range or name", p)
	}
	if proto == 0 {
		return PortRange{}, "", fmt.Errorf("named port %q needs a protocol", name)
	}
	return PortRange{}, c.ref(sel, &NamedPort{Protocol: proto, Name: name}), nil
}

func (c *compiler) ref(sel *selector.Selector, np *NamedPort) SetID {
	key := sel.String()
	if np != nil {
		key = "namedport " + strconv.Itoa(int(np.Protocol)) + ":" + np.Name + " " + key
	}
	id := setID(key)
	if !c.seen[id] {
		if c.seen == nil {
			c.seen = map[SetID]bool{}
		}
		c.seen[id] = true
		c.refs = append(c.refs, setRef{id: id, sel: sel, namedPort: np})
	}
	return id
}
