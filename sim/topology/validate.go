package topology

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bgpfabric/bgpfabric/api/selector"
)

// Limits of one topology.
const (
	MaxNodes     = 1000
	MaxWorkloads = 5000
	maxNameLen   = 40
	// MaxRouterConfig bounds a group's routerConfig, in bytes.
	MaxRouterConfig = 64 << 10
)

var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// checker collects errors with their location.
type checker struct {
	t    *Topology
	errs ErrorList
}

func (c *checker) add(p path, format string, args ...any) {
	line, col := locate(c.t.root, p)
	c.errs = append(c.errs, &Error{File: c.t.file, Line: line, Column: col, Field: p.String(), Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) result() error {
	if len(c.errs) == 0 {
		return nil
	}
	return c.errs.sorted()
}

func (c *checker) name(p path, s string, required bool) {
	switch {
	case s == "" && required:
		c.add(p, "is required")
	case s == "":
	case len(s) > maxNameLen || !dnsLabelRE.MatchString(s):
		c.add(p, "must be a lower-case DNS label of at most %d characters (got %q)", maxNameLen, s)
	}
}

func (c *checker) duration(p path, s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		c.add(p, "must be a duration such as 30s or 2m (got %q)", s)
		return 0
	}
	return d
}

func (c *checker) prefix(p path, s string, v6 bool, minBits, maxBits int) (netip.Prefix, bool) {
	if s == "" {
		return netip.Prefix{}, false
	}
	pfx, err := netip.ParsePrefix(s)
	fam := "IPv4"
	if v6 {
		fam = "IPv6"
	}
	switch {
	case err != nil:
		c.add(p, "must be an %s CIDR (got %q)", fam, s)
	case pfx.Addr().Is4() == v6 || pfx.Addr().Is4In6():
		c.add(p, "must be an %s CIDR (got %q)", fam, s)
	case pfx != pfx.Masked():
		c.add(p, "has host bits set: the network is %s", pfx.Masked())
	case pfx.Bits() < minBits || pfx.Bits() > maxBits:
		c.add(p, "prefix length must be from /%d to /%d (got %q)", minBits, maxBits, s)
	default:
		return pfx, true
	}
	return netip.Prefix{}, false
}

func (c *checker) selector(p path, s string) {
	if s == "" {
		return
	}
	if _, err := selector.Parse(s); err != nil {
		c.add(p, "invalid selector: %v", err)
	}
}

func (c *checker) count(p path, n *int, max int) int {
	if n == nil {
		return 1
	}
	if *n < 1 || *n > max {
		c.add(p, "must be from 1 to %d (got %d)", max, *n)
		return 1
	}
	return *n
}

// validate checks what does not need the expanded node names; Expand
// checks the rest.
func (t *Topology) validate() error {
	c := &checker{t: t}
	c.name(path{"name"}, t.Name, true)

	b := t.BGP
	switch b.Model {
	case "", ModelMesh, ModelReflectors, ModelASPerRack, ModelASPerNode:
	default:
		c.add(path{"bgp", "model"}, "must be mesh, reflectors, as-per-rack or as-per-node (got %q)", b.Model)
	}
	keep := c.duration(path{"bgp", "keepaliveTime"}, b.KeepaliveTime)
	hold := c.duration(path{"bgp", "holdTime"}, b.HoldTime)
	if hold != 0 && hold < 3*time.Second {
		c.add(path{"bgp", "holdTime"}, "must be 0s or at least 3s (got %q)", b.HoldTime)
	}
	if keep != 0 && hold != 0 && keep >= hold {
		c.add(path{"bgp", "keepaliveTime"}, "must be below holdTime")
	}
	if b.ListenPort < 0 || b.ListenPort > 65535 {
		c.add(path{"bgp", "listenPort"}, "must be from 1 to 65535 (got %d)", b.ListenPort)
	}
	if b.ClusterID != "" {
		if a, err := netip.ParseAddr(b.ClusterID); err != nil || !a.Is4() {
			c.add(path{"bgp", "clusterID"}, "must be a dotted quad such as 244.0.0.1 (got %q)", b.ClusterID)
		}
	}

	c.prefix(path{"addressing", "ipv4"}, t.Addressing.IPv4, false, 8, 22)
	if t.Addressing.IPv6 != "auto" {
		c.prefix(path{"addressing", "ipv6"}, t.Addressing.IPv6, true, 32, 56)
	}

	segs := map[string]bool{}
	if len(t.Segments) == 0 {
		segs[defaultSegment] = true // the implicit segment
	}
	for i, s := range t.Segments {
		p := path{"segments", i}
		c.name(p.key("name"), s.Name, true)
		if segs[s.Name] {
			c.add(p.key("name"), "segment %q is defined twice", s.Name)
		}
		segs[s.Name] = true
		c.prefix(p.key("ipv4"), s.IPv4, false, 8, 30)
		c.prefix(p.key("ipv6"), s.IPv6, true, 32, 126)
		c.impairment(p.key("impair"), s.Impair)
	}

	if len(t.Nodes) == 0 {
		c.add(path{"nodes"}, "at least one node group is required")
	}
	groups := map[string]bool{}
	total := 0
	for i, g := range t.Nodes {
		p := path{"nodes", i}
		c.name(p.key("name"), g.Name, true)
		if groups[g.Name] {
			c.add(p.key("name"), "group %q is defined twice", g.Name)
		}
		groups[g.Name] = true
		n := c.count(p.key("count"), g.Count, MaxNodes)
		total += n
		switch g.Role {
		case "", RoleCompute:
			if g.Router != "" {
				c.add(p.key("router"), "only tor, external and reflector nodes run another router; compute nodes run bgpfabric node")
			}
		case RoleReflector:
			switch g.Router {
			case "", RouterBIRD, RouterFRR, RouterGoBGPd:
			default:
				c.add(p.key("router"), "must be bird, frr or gobgpd, or left out for bgpfabric's reflector (got %q)", g.Router)
			}
			if g.Router != "" && b.ListenPort != 0 && b.ListenPort != 179 {
				c.add(p.key("router"), "a reflector run by %s listens on port 179, but bgp.listenPort is %d", g.Router, b.ListenPort)
			}
		case RoleToR, RoleExternal:
			switch g.Router {
			case "", RouterFRR, RouterBIRD, RouterGoBGPd:
			default:
				c.add(p.key("router"), "must be frr, bird or gobgpd (got %q)", g.Router)
			}
			if g.Role == RoleExternal && g.ASNumber == 0 {
				c.add(p.key("asNumber"), "is required for external routers")
			}
			if len(g.Workloads) > 0 {
				c.add(p.key("workloads"), "only compute nodes have workloads")
			}
		default:
			c.add(p.key("role"), "must be compute, reflector, tor or external (got %q)", g.Role)
		}
		if g.Role == RoleReflector && len(g.Workloads) > 0 {
			c.add(p.key("workloads"), "only compute nodes have workloads")
		}
		c.routerConfig(p.key("routerConfig"), g)
		if g.Segment != "" && !segs[g.Segment] {
			c.add(p.key("segment"), "no segment %q is defined", g.Segment)
		}
		if g.Addresses != nil && len(g.Addresses) != n {
			c.add(p.key("addresses"), "has %d addresses for %d nodes", len(g.Addresses), n)
		}
		for j, a := range g.Addresses {
			if pfx, err := netip.ParsePrefix(a); err != nil || pfx.Addr() == pfx.Masked().Addr() {
				c.add(p.key("addresses").idx(j), "must be a host address with prefix length, such as 10.0.0.5/24 (got %q)", a)
			}
		}
		c.impairment(p.key("impair"), g.Impair)
		wls := map[string]bool{}
		for j, w := range g.Workloads {
			wp := p.key("workloads").idx(j)
			c.name(wp.key("name"), w.Name, true)
			if wls[w.Name] {
				c.add(wp.key("name"), "workload %q is defined twice", w.Name)
			}
			wls[w.Name] = true
			c.count(wp.key("count"), w.Count, 100)
			c.name(wp.key("namespace"), w.Namespace, false)
			for k, port := range w.Ports {
				if port < 1 || port > 65535 {
					c.add(wp.key("ports").idx(k), "must be from 1 to 65535 (got %d)", port)
				}
			}
		}
	}
	if total > MaxNodes {
		c.add(path{"nodes"}, "has %d nodes; at most %d", total, MaxNodes)
	}

	for i, l := range t.Links {
		p := path{"links", i}
		if len(l.Between) != 2 {
			c.add(p.key("between"), "must name exactly two nodes")
		}
		if pfx, ok := c.prefix(p.key("ipv4"), l.IPv4, false, 30, 31); ok {
			_ = pfx
		}
		c.prefix(p.key("ipv6"), l.IPv6, true, 126, 127)
		c.impairment(p.key("impair"), l.Impair)
	}
	for i, pl := range t.Pools {
		p := path{"pools", i}
		c.name(p.key("name"), pl.Name, false)
		if pl.CIDR == "" {
			c.add(p.key("cidr"), "is required")
		}
		c.selector(p.key("nodeSelector"), pl.NodeSelector)
	}
	for i, f := range t.Faults {
		c.fault(path{"faults", i}, f)
	}
	c.duration(path{"checks", "convergence"}, t.Checks.Convergence)
	for _, fl := range []struct {
		key   string
		flows []Flow
	}{{"connectivity", t.Checks.Connectivity}, {"blocked", t.Checks.Blocked}} {
		for i, f := range fl.flows {
			p := path{"checks", fl.key, i}
			c.selector(p.key("from"), f.From)
			c.selector(p.key("to"), f.To)
			switch f.Protocol {
			case "", "icmp":
				if f.Port != 0 {
					c.add(p.key("port"), "is only for tcp")
				}
			case "tcp":
				if f.Port < 1 || f.Port > 65535 {
					c.add(p.key("port"), "must be from 1 to 65535 for tcp (got %d)", f.Port)
				}
			default:
				c.add(p.key("protocol"), "must be icmp or tcp (got %q)", f.Protocol)
			}
			if f.Sample < 0 {
				c.add(p.key("sample"), "must not be negative")
			}
			if f.Family != nil && *f.Family != 0 && *f.Family != 4 && *f.Family != 6 {
				c.add(p.key("family"), "must be 4, 6 or 0 for both (got %d)", *f.Family)
			}
		}
	}
	for i, r := range t.Checks.Routes {
		p := path{"checks", "routes", i}
		if r.Node == "" {
			c.add(p.key("node"), "is required")
		}
		for _, l := range []struct {
			key  string
			list []string
		}{{"present", r.Present}, {"absent", r.Absent}} {
			for j, s := range l.list {
				if _, err := netip.ParsePrefix(s); err != nil {
					c.add(p.key(l.key).idx(j), "must be a CIDR (got %q)", s)
				}
			}
		}
	}
	return c.result()
}

func roleOr(r string) string {
	if r == "" {
		return RoleCompute
	}
	return r
}

// routerConfig checks a group's routerConfig: only for nodes that a
// router from Debian runs (tor, external, or a reflector with router),
// bounded, and text that a configuration file can hold.
func (c *checker) routerConfig(p path, g NodeGroup) {
	s := g.RouterConfig
	switch {
	case s == "":
	case g.Role != RoleToR && g.Role != RoleExternal && (g.Role != RoleReflector || g.Router == ""):
		c.add(p, "only tor and external routers, and reflectors run by bird, frr or gobgpd, take a router configuration")
	case len(s) > MaxRouterConfig:
		c.add(p, "is %d bytes; at most %d", len(s), MaxRouterConfig)
	case !utf8.ValidString(s) || strings.ContainsRune(s, 0):
		c.add(p, "must be text (UTF-8, no NUL bytes)")
	}
}
