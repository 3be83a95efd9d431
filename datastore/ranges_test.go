package datastore

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
)

// TestWatchRanges: the ranges each agent's syncer watches never cover a
// status kind it does not sync, and as few ranges as that allows.
func TestWatchRanges(t *testing.T) {
	r := api.KeyRoot
	for _, tc := range []struct {
		name  string
		kinds []string
		want  []keyRange
	}{
		{"router: status keys sit between its kinds", []string{api.KindNode, api.KindBGPConfiguration, api.KindBGPPeer},
			[]keyRange{{r + "bgpconfigurations/", r + "bgppeers0"}, {r + "nodes/", r + "nodes0"}}},
		{"felix with ACLs: one range", []string{api.KindWorkloadEndpoint, api.KindHostEndpoint, api.KindIPAMBlock, api.KindIPPool, api.KindProfile, api.KindNetworkPolicy, api.KindGlobalNetworkPolicy},
			[]keyRange{{r + "globalnetworkpolicies/", r + "workloadendpoints0"}}},
		{"sim: statuses are what it syncs", []string{api.KindBGPStatus, api.KindFelixStatus, api.KindIPAMBlock},
			[]keyRange{{r + "bgpstatuses/", r + "ipamblocks0"}}},
		{"one kind", []string{api.KindNode}, []keyRange{{r + "nodes/", r + "nodes0"}}},
	} {
		kinds := map[string]bool{}
		for _, k := range tc.kinds {
			kinds[k] = true
		}
		if diff := cmp.Diff(tc.want, watchRanges(kinds), cmp.AllowUnexported(keyRange{})); diff != "" {
			t.Errorf("%s: ranges (-want +got):\n%s", tc.name, diff)
		}
	}
}
