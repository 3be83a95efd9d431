//go:build !nodeonly

package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/bgpfabric/bgpfabric/api"
)

// column is one extra column of `get`'s table for a kind.
type column struct {
	head  string
	value func(api.Resource) string
}

// kindColumns are the columns `get` shows after a resource's name, per kind.
var kindColumns = map[string][]column{
	api.KindNode: {
		{"ASN", func(r api.Resource) string {
			if b := r.(*api.Node).Spec.BGP; b != nil && b.ASNumber != nil {
				return u32(*b.ASNumber)
			}
			return "(default)"
		}},
		{"IPV4", nodeBGP(func(b *api.NodeBGPSpec) string { return b.IPv4Address })},
		{"IPV6", nodeBGP(func(b *api.NodeBGPSpec) string { return b.IPv6Address })},
		{"RR-CLUSTER", nodeBGP(func(b *api.NodeBGPSpec) string { return b.RouteReflectorClusterID })},
	},
	api.KindBGPConfiguration: {
		{"ASN", func(r api.Resource) string { return optU32(r.(*api.BGPConfiguration).Spec.ASNumber) }},
		{"MESH", func(r api.Resource) string { return optBool(r.(*api.BGPConfiguration).Spec.NodeToNodeMeshEnabled) }},
		{"PORT", func(r api.Resource) string {
			if p := r.(*api.BGPConfiguration).Spec.ListenPort; p != nil {
				return strconv.Itoa(*p)
			}
			return ""
		}},
		{"HOLD", func(r api.Resource) string { return string(r.(*api.BGPConfiguration).Spec.HoldTime) }},
	},
	api.KindBGPPeer: {
		{"ON", func(r api.Resource) string {
			s := r.(*api.BGPPeer).Spec
			switch {
			case s.Node != "":
				return "node " + s.Node
			case s.NodeSelector != "":
				return s.NodeSelector
			}
			return "(all nodes)"
		}},
		{"PEER", func(r api.Resource) string {
			s := r.(*api.BGPPeer).Spec
			switch {
			case s.PeerIP != "":
				return s.PeerIP
			case s.PeerPrefix != "":
				return "any from " + s.PeerPrefix
			}
			return s.PeerSelector
		}},
		{"ASN", func(r api.Resource) string { return optU32(r.(*api.BGPPeer).Spec.ASNumber) }},
		{"FILTERS", func(r api.Resource) string { return strings.Join(r.(*api.BGPPeer).Spec.Filters, ",") }},
	},
	api.KindBGPFilter: {
		{"IMPORT-V4", filterRules(func(s *api.BGPFilterSpec) []api.BGPFilterRule { return s.ImportV4 })},
		{"EXPORT-V4", filterRules(func(s *api.BGPFilterSpec) []api.BGPFilterRule { return s.ExportV4 })},
		{"IMPORT-V6", filterRules(func(s *api.BGPFilterSpec) []api.BGPFilterRule { return s.ImportV6 })},
		{"EXPORT-V6", filterRules(func(s *api.BGPFilterSpec) []api.BGPFilterRule { return s.ExportV6 })},
		{"IMPORT-VPN/EVPN", filterRules(func(s *api.BGPFilterSpec) []api.BGPFilterRule {
			return slices.Concat(s.ImportVPNv4, s.ImportVPNv6, s.ImportEVPN)
		})},
		{"EXPORT-VPN/EVPN", filterRules(func(s *api.BGPFilterSpec) []api.BGPFilterRule {
			return slices.Concat(s.ExportVPNv4, s.ExportVPNv6, s.ExportEVPN)
		})},
	},
	api.KindIPPool: {
		{"CIDR", func(r api.Resource) string { return r.(*api.IPPool).Spec.CIDR }},
		{"BLOCK", func(r api.Resource) string { return "/" + strconv.Itoa(r.(*api.IPPool).Spec.BlockSize) }},
		{"VXLAN", func(r api.Resource) string { return string(r.(*api.IPPool).Spec.VXLANMode) }},
		{"DISABLED", func(r api.Resource) string { return strconv.FormatBool(r.(*api.IPPool).Spec.Disabled) }},
		{"SELECTOR", func(r api.Resource) string { return r.(*api.IPPool).Spec.NodeSelector }},
	},
	api.KindIPAMBlock: {
		{"CIDR", func(r api.Resource) string { return r.(*api.IPAMBlock).Spec.CIDR }},
		{"AFFINITY", func(r api.Resource) string { return r.(*api.IPAMBlock).Spec.Affinity }},
		{"USED", func(r api.Resource) string {
			b := r.(*api.IPAMBlock)
			used := 0
			for _, a := range b.Spec.Allocations {
				if a != nil {
					used++
				}
			}
			return fmt.Sprintf("%d/%d", used, b.NumAddresses())
		}},
	},
	api.KindWorkloadEndpoint: {
		{"NODE", func(r api.Resource) string { return r.(*api.WorkloadEndpoint).Spec.Node }},
		{"WORKLOAD", func(r api.Resource) string { return r.(*api.WorkloadEndpoint).Spec.Workload }},
		{"INTERFACE", func(r api.Resource) string { return r.(*api.WorkloadEndpoint).Spec.InterfaceName }},
		{"IPS", func(r api.Resource) string { return strings.Join(r.(*api.WorkloadEndpoint).Spec.IPNetworks, ",") }},
	},
	api.KindHostEndpoint: {
		{"NODE", func(r api.Resource) string { return r.(*api.HostEndpoint).Spec.Node }},
		{"INTERFACE", func(r api.Resource) string { return r.(*api.HostEndpoint).Spec.InterfaceName }},
		{"IPS", func(r api.Resource) string { return strings.Join(r.(*api.HostEndpoint).Spec.ExpectedIPs, ",") }},
	},
	api.KindProfile: {
		{"INGRESS", func(r api.Resource) string { return strconv.Itoa(len(r.(*api.Profile).Spec.Ingress)) + " rules" }},
		{"EGRESS", func(r api.Resource) string { return strconv.Itoa(len(r.(*api.Profile).Spec.Egress)) + " rules" }},
	},
	api.KindNetworkPolicy: policyColumns(func(r api.Resource) *api.PolicySpec { return &r.(*api.NetworkPolicy).Spec.PolicySpec }),
	api.KindGlobalNetworkPolicy: policyColumns(func(r api.Resource) *api.PolicySpec {
		return &r.(*api.GlobalNetworkPolicy).Spec.PolicySpec
	}),
	api.KindFelixStatus: {
		{"READY", func(r api.Resource) string { return strconv.FormatBool(r.(*api.FelixStatus).Status.Ready) }},
		{"IN-SYNC", func(r api.Resource) string { return strconv.FormatBool(r.(*api.FelixStatus).Status.InSync) }},
		{"DATAPLANE", func(r api.Resource) string {
			d := r.(*api.FelixStatus).Status.Dataplane
			if d.Error != "" {
				return string(d.State) + ": " + d.Error
			}
			return string(d.State)
		}},
		{"ENDPOINTS", func(r api.Resource) string { return strconv.Itoa(r.(*api.FelixStatus).Status.Endpoints) }},
		{"ROUTES", func(r api.Resource) string { return strconv.Itoa(r.(*api.FelixStatus).Status.Routes) }},
		{"UPDATED", func(r api.Resource) string { return r.(*api.FelixStatus).Status.LastUpdate }},
	},
	api.KindBGPStatus: {
		{"ROUTER-ID", func(r api.Resource) string { return r.(*api.BGPStatus).Status.RouterID }},
		{"ASN", func(r api.Resource) string { return u32(r.(*api.BGPStatus).Status.ASNumber) }},
		{"PEERS-UP", func(r api.Resource) string {
			s := r.(*api.BGPStatus).Status
			up := 0
			for _, p := range s.Peers {
				if p.State == api.BGPEstablished {
					up++
				}
			}
			return fmt.Sprintf("%d/%d", up, len(s.Peers))
		}},
		{"UPDATED", func(r api.Resource) string { return r.(*api.BGPStatus).Status.LastUpdate }},
	},
}

// columnsFor returns the extra table columns `get` shows for a kind.
func columnsFor(ki *api.KindInfo) (head []string, row func(api.Resource) []string) {
	cols := kindColumns[ki.Kind]
	for _, c := range cols {
		head = append(head, c.head)
	}
	return head, func(r api.Resource) []string {
		out := make([]string, len(cols))
		for i, c := range cols {
			out[i] = c.value(r)
		}
		return out
	}
}

func policyColumns(spec func(api.Resource) *api.PolicySpec) []column {
	return []column{
		{"ORDER", func(r api.Resource) string {
			if o := spec(r).Order; o != nil {
				return strconv.FormatFloat(*o, 'g', -1, 64)
			}
			return "(last)"
		}},
		{"SELECTOR", func(r api.Resource) string { return spec(r).Selector }},
		{"TYPES", func(r api.Resource) string {
			var ts []string
			for _, t := range spec(r).Types {
				ts = append(ts, string(t))
			}
			return strings.Join(ts, ",")
		}},
	}
}

func nodeBGP(f func(*api.NodeBGPSpec) string) func(api.Resource) string {
	return func(r api.Resource) string {
		if b := r.(*api.Node).Spec.BGP; b != nil {
			return f(b)
		}
		return ""
	}
}

func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func optU32(v *uint32) string {
	if v == nil {
		return ""
	}
	return u32(*v)
}

func optBool(v *bool) string {
	if v == nil {
		return ""
	}
	return strconv.FormatBool(*v)
}

// filterRules is a BGPFilter column: the number of rules of one list.
func filterRules(list func(*api.BGPFilterSpec) []api.BGPFilterRule) func(api.Resource) string {
	return func(r api.Resource) string { return strconv.Itoa(len(list(&r.(*api.BGPFilter).Spec))) }
}
