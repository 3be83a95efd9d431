package api

import (
	"testing"
)

func TestLookupKind(t *testing.T) {
	tests := []struct {
		names []string
		kind  string
	}{
		{[]string{"Node", "node", "nodes", "no", "NODES"}, KindNode},
		{[]string{"BGPConfiguration", "bgpconfigurations", "bgpconfig", "bgpconfigs"}, KindBGPConfiguration},
		{[]string{"BGPPeer", "bgppeers", "bgppeer", "BgpPeer"}, KindBGPPeer},
		{[]string{"BGPFilter", "bgpfilters", "bgpfilter"}, KindBGPFilter},
		{[]string{"IPPool", "ippools", "ippool", "pool"}, KindIPPool},
		{[]string{"IPAMBlock", "ipamblocks", "block"}, KindIPAMBlock},
		{[]string{"WorkloadEndpoint", "workloadendpoints", "wep", "weps", "WEP"}, KindWorkloadEndpoint},
		{[]string{"HostEndpoint", "hostendpoints", "hep", "heps"}, KindHostEndpoint},
		{[]string{"Profile", "profiles", "pro"}, KindProfile},
		{[]string{"NetworkPolicy", "networkpolicies", "netpol", "np"}, KindNetworkPolicy},
		{[]string{"GlobalNetworkPolicy", "globalnetworkpolicies", "gnp"}, KindGlobalNetworkPolicy},
		{[]string{"FelixStatus", "felixstatuses", "felixstatus"}, KindFelixStatus},
		{[]string{"BGPStatus", "bgpstatuses", "bgpstatus"}, KindBGPStatus},
		{[]string{"ServiceAdvertisement", "serviceadvertisements", "svcadv"}, KindServiceAdvertisement},
	}
	for _, tt := range tests {
		for _, n := range tt.names {
			ki, err := LookupKind(n)
			if err != nil || ki.Kind != tt.kind {
				t.Errorf("LookupKind(%q) = %v, %v; want %s", n, ki, err, tt.kind)
			}
		}
	}
	if _, err := LookupKind("router"); err == nil {
		t.Error(`LookupKind("router") succeeded`)
	}
	if got, want := len(Kinds()), len(tests); got != want {
		t.Errorf("%d kinds registered, want %d", got, want)
	}
}

func TestKindNamesUnique(t *testing.T) {
	owner := map[string]string{}
	for _, ki := range Kinds() {
		names := append([]string{ki.Plural}, ki.Short...)
		for _, n := range names {
			if o, dup := owner[n]; dup && o != ki.Kind {
				t.Errorf("name %q of %s is also a name of %s", n, ki.Kind, o)
			}
			owner[n] = ki.Kind
		}
		r, err := New(ki.Kind)
		if err != nil || r.GetTypeMeta().Kind != ki.Kind {
			t.Errorf("New(%s) = %v, %v", ki.Kind, r, err)
		}
		if wantStatus := ki.Kind == KindFelixStatus || ki.Kind == KindBGPStatus; ki.Status != wantStatus {
			t.Errorf("%s: Status = %v", ki.Kind, ki.Status)
		}
	}
}

func TestKeyRoundTrip(t *testing.T) {
	for _, r := range examples() {
		key, err := KeyOf(r)
		if err != nil {
			t.Fatal(err)
		}
		ki, ns, name, err := ParseKey(key)
		m := r.GetObjectMeta()
		if err != nil || ki.Kind != r.GetTypeMeta().Kind || ns != m.Namespace || name != m.Name {
			t.Errorf("ParseKey(%q) = %v, %q, %q, %v", key, ki, ns, name, err)
		}
		prefix := ListPrefix(ki, m.Namespace)
		if len(key) <= len(prefix) || key[:len(prefix)] != prefix {
			t.Errorf("key %q is not under ListPrefix %q", key, prefix)
		}
	}
	for key, want := range map[string]string{
		"/bgpfabric/v1/nodes/node-1":                      "",
		"/bgpfabric/v1/workloadendpoints/default/a-k8s-b": "",
		"/bgpfabric/v1/ipamblocks/fd00-1---122":           "",
		"/bgpfabric/v1/nodes/a/b":                         `key "/bgpfabric/v1/nodes/a/b": malformed for kind Node`,
		"/bgpfabric/v1/workloadendpoints/default":         `key "/bgpfabric/v1/workloadendpoints/default": malformed for kind WorkloadEndpoint`,
		"/bgpfabric/v1/routers/x":                         `key "/bgpfabric/v1/routers/x": unknown kind segment "routers"`,
		"/calico/v1/nodes/x":                              `key "/calico/v1/nodes/x" is not under /bgpfabric/v1/`,
	} {
		_, _, _, err := ParseKey(key)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("ParseKey(%q) error = %q, want %q", key, got, want)
		}
	}
}
