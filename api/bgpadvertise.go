package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
)

// Advertisement settings of BGPConfiguration: community definitions,
// per-CIDR communities and service address ranges (docs/policy.md).

// CommunityEntry is one entry of BGPConfiguration spec.communities. In
// YAML or JSON it is either a string, a community attached to every route
// ("65000:100"), or an object {name, value}, a named definition (Calico's)
// that prefixAdvertisements refer to and that attaches nothing by itself.
type CommunityEntry struct {
	// Name is empty for a community attached to every route.
	Name  string `json:"name,omitempty"`
	Value string `json:"value"`
}

// UnmarshalJSON reads a string or {name, value}.
func (c *CommunityEntry) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		*c = CommunityEntry{}
		return json.Unmarshal(data, &c.Value)
	}
	type plain CommunityEntry
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("a community is \"asn:value\" or {name, value}: %w", err)
	}
	*c = CommunityEntry(p)
	return nil
}

// MarshalJSON writes an unnamed entry as a string, so that what was read
// is written back the same way.
func (c CommunityEntry) MarshalJSON() ([]byte, error) {
	if c.Name == "" {
		return json.Marshal(c.Value)
	}
	type plain CommunityEntry
	return json.Marshal(plain(c))
}

// PrefixAdvertisement attaches communities to the exported routes inside
// CIDR.
type PrefixAdvertisement struct {
	CIDR string `json:"cidr"`
	// Communities are names from spec.communities or literal communities.
	Communities []string `json:"communities"`
}

// ServiceIPBlock is a range of service addresses.
type ServiceIPBlock struct {
	CIDR string `json:"cidr"`
}

// GracefulShutdownCommunity is GRACEFUL_SHUTDOWN (RFC 8326), 65535:0.
var GracefulShutdownCommunity = Community{Global: 65535, Local1: 0}

func validateAdvertisements(fe *fieldErrors, s *BGPConfigurationSpec) {
	names := map[string]bool{}
	for i, e := range s.Communities {
		path := fmt.Sprintf("spec.communities[%d]", i)
		if e.Name != "" {
			if !validName(e.Name) {
				fe.add(path+".name", e.Name, "must be a lower-case DNS-1123 subdomain of at most 253 characters")
			} else if names[e.Name] {
				fe.add(path+".name", e.Name, "is defined twice")
			}
			names[e.Name] = true
			path += ".value"
		}
		if _, err := ParseCommunity(e.Value); err != nil {
			fe.add(path, e.Value, "%v", err)
		}
	}
	for i, pa := range s.PrefixAdvertisements {
		path := fmt.Sprintf("spec.prefixAdvertisements[%d]", i)
		validateNetworkPrefix(fe, path+".cidr", pa.CIDR)
		if len(pa.Communities) == 0 {
			fe.add(path+".communities", nil, "is required")
		}
		for j, c := range pa.Communities {
			if names[c] {
				continue
			}
			if _, err := ParseCommunity(c); err != nil {
				fe.add(fmt.Sprintf("%s.communities[%d]", path, j), c, "is neither a name defined in spec.communities nor a community: %v", err)
			}
		}
	}
	for _, r := range []struct {
		name   string
		blocks []ServiceIPBlock
	}{{"serviceClusterIPs", s.ServiceClusterIPs}, {"serviceExternalIPs", s.ServiceExternalIPs}, {"serviceLoadBalancerIPs", s.ServiceLoadBalancerIPs}} {
		for i, b := range r.blocks {
			validateNetworkPrefix(fe, fmt.Sprintf("spec.%s[%d].cidr", r.name, i), b.CIDR)
		}
	}
}

// Advertisements is the validated, parsed form of the advertisement
// settings.
type Advertisements struct {
	// All are attached to every exported route.
	All []Community
	// Prefixes attach communities to the routes inside them.
	Prefixes []PrefixCommunities
	// ClusterIPs are advertised whole; ServiceIPs are the ranges whose
	// local addresses are advertised as host routes.
	ClusterIPs, ServiceIPs []netip.Prefix
	// ExternalIPs and LoadBalancerIPs are the two kinds of ServiceIPs
	// apart: Kubernetes Services' addresses inside them are advertised
	// (ServiceRoutes).
	ExternalIPs, LoadBalancerIPs []netip.Prefix
}

// PrefixCommunities is one parsed prefixAdvertisements entry.
type PrefixCommunities struct {
	Prefix      netip.Prefix
	Communities []Community
}

// ParseAdvertisements returns the advertisement settings of a valid
// BGPConfiguration (c may be nil). What does not parse is left out:
// the datastore only holds validated resources.
func ParseAdvertisements(c *BGPConfiguration) Advertisements {
	var a Advertisements
	if c == nil {
		return a
	}
	s := &c.Spec
	named := map[string]Community{}
	for _, e := range s.Communities {
		cm, err := ParseCommunity(e.Value)
		switch {
		case err != nil:
		case e.Name != "":
			named[e.Name] = cm
		default:
			a.All = append(a.All, cm)
		}
	}
	for _, pa := range s.PrefixAdvertisements {
		p, err := netip.ParsePrefix(pa.CIDR)
		if err != nil {
			continue
		}
		pc := PrefixCommunities{Prefix: p.Masked()}
		for _, n := range pa.Communities {
			if cm, ok := named[n]; ok {
				pc.Communities = append(pc.Communities, cm)
			} else if cm, err := ParseCommunity(n); err == nil {
				pc.Communities = append(pc.Communities, cm)
			}
		}
		a.Prefixes = append(a.Prefixes, pc)
	}
	parse := func(bs []ServiceIPBlock) []netip.Prefix {
		var out []netip.Prefix
		for _, b := range bs {
			if p, err := netip.ParsePrefix(b.CIDR); err == nil {
				out = append(out, p.Masked())
			}
		}
		return out
	}
	a.ClusterIPs = parse(s.ServiceClusterIPs)
	a.ExternalIPs, a.LoadBalancerIPs = parse(s.ServiceExternalIPs), parse(s.ServiceLoadBalancerIPs)
	a.ServiceIPs = append(slices.Clone(a.ExternalIPs), a.LoadBalancerIPs...)
	return a
}

// CommunitiesFor returns the communities of an exported route to p: those
// for every route, then those of every prefixAdvertisements CIDR that
// contains p, without duplicates.
func (a *Advertisements) CommunitiesFor(p netip.Prefix) []Community {
	out := append([]Community(nil), a.All...)
	for _, pc := range a.Prefixes {
		if pc.Prefix.Bits() <= p.Bits() && pc.Prefix.Contains(p.Addr()) {
			for _, c := range pc.Communities {
				if !containsCommunity(out, c) {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

func containsCommunity(cs []Community, c Community) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}
