package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/bgpfabric/bgpfabric/api"
)

// Pod annotations the plugin reads (Calico's names, so that manifests
// written for Calico work unchanged).
const (
	// AnnotationIPv4Pools and AnnotationIPv6Pools restrict the pod's
	// addresses to these pools: a JSON list of pool names or CIDRs.
	AnnotationIPv4Pools = "cni.projectcalico.org/ipv4pools"
	AnnotationIPv6Pools = "cni.projectcalico.org/ipv6pools"
	// AnnotationIPAddrs gives the pod fixed addresses: a JSON list of at
	// most one IPv4 and one IPv6 address, each in an enabled pool.
	AnnotationIPAddrs = "cni.projectcalico.org/ipAddrs"
)

// podAddressing is what a pod's annotations ask of IPAM.
type podAddressing struct {
	pools4, pools6 []string     // pool names or CIDRs, as written
	fixed          []netip.Addr // AnnotationIPAddrs
}

// parseAnnotations reads the addressing annotations of a pod. Errors name
// the annotation.
func parseAnnotations(ann map[string]string) (podAddressing, error) {
	var pa podAddressing
	list := func(key string) ([]string, error) {
		v, ok := ann[key]
		if !ok {
			return nil, nil
		}
		var l []string
		if err := json.Unmarshal([]byte(v), &l); err != nil || len(l) == 0 {
			return nil, fmt.Errorf("pod annotation %s: %q must be a non-empty JSON list of strings", key, v)
		}
		return l, nil
	}
	var err error
	if pa.pools4, err = list(AnnotationIPv4Pools); err != nil {
		return pa, err
	}
	if pa.pools6, err = list(AnnotationIPv6Pools); err != nil {
		return pa, err
	}
	ips, err := list(AnnotationIPAddrs)
	if err != nil {
		return pa, err
	}
	if ips != nil && (pa.pools4 != nil || pa.pools6 != nil) {
		return pa, fmt.Errorf("pod annotation %s: cannot be combined with %s or %s", AnnotationIPAddrs, AnnotationIPv4Pools, AnnotationIPv6Pools)
	}
	n4, n6 := 0, 0
	for i, s := range ips {
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" {
			return pa, fmt.Errorf("pod annotation %s[%d]: %q is not an IP address", AnnotationIPAddrs, i, s)
		}
		ip = ip.Unmap()
		if ip.Is4() {
			n4++
		} else {
			n6++
		}
		if n4 > 1 || n6 > 1 {
			return pa, fmt.Errorf("pod annotation %s: at most one IPv4 and one IPv6 address", AnnotationIPAddrs)
		}
		pa.fixed = append(pa.fixed, ip)
	}
	return pa, nil
}

// resolvePools turns the pool entries of an annotation (names or CIDRs)
// into pool names: a CIDR names the pool whose CIDR it is. An entry that
// matches no pool is an error naming the annotation.
func resolvePools(ctx context.Context, s Store, key string, entries []string) ([]string, error) {
	var pools []*api.IPPool
	out := make([]string, 0, len(entries))
	for i, e := range entries {
		cidr, err := netip.ParsePrefix(e)
		if err != nil {
			out = append(out, e) // a name; IPAM checks that it exists
			continue
		}
		if pools == nil {
			rs, _, err := s.List(ctx, api.KindIPPool, "")
			if err != nil {
				return nil, fmt.Errorf("listing IP pools: %w", err)
			}
			pools = []*api.IPPool{}
			for _, r := range rs {
				if p, ok := r.(*api.IPPool); ok {
					pools = append(pools, p)
				}
			}
		}
		found := ""
		for _, p := range pools {
			if pc, err := netip.ParsePrefix(p.Spec.CIDR); err == nil && pc.Masked() == cidr.Masked() {
				found = p.Name
			}
		}
		if found == "" {
			return nil, fmt.Errorf("pod annotation %s[%d]: no IP pool has the CIDR %s", key, i, e)
		}
		out = append(out, found)
	}
	return out, nil
}
