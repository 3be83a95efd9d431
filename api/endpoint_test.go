package api

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWorkloadEndpointValidate(t *testing.T) {
	base := func() *WorkloadEndpoint {
		return &WorkloadEndpoint{ObjectMeta: ObjectMeta{Namespace: "default", Name: "n1-k8s-web-eth0"}, Spec: WorkloadEndpointSpec{
			Node: "n1", Orchestrator: "k8s", Workload: "web", Endpoint: "eth0", InterfaceName: "cali1",
			IPNetworks: []string{"10.244.0.5/32", "fd00::5/128"},
		}}
	}
	spec := func(f func(*WorkloadEndpointSpec)) func(*WorkloadEndpoint) {
		return func(w *WorkloadEndpoint) { f(&w.Spec) }
	}
	runValidation(t, base, []validationCase[*WorkloadEndpoint]{
		{"valid", func(*WorkloadEndpoint) {}, nil},
		{"no namespace", func(w *WorkloadEndpoint) { w.Namespace = "" }, []string{"metadata.namespace"}},
		{"required", spec(func(s *WorkloadEndpointSpec) { *s = WorkloadEndpointSpec{} }),
			[]string{"spec.endpoint", "spec.interfaceName", "spec.node", "spec.orchestrator", "spec.workload"}},
		{"ifname 15", spec(func(s *WorkloadEndpointSpec) { s.InterfaceName = "cali0123456789a" }), nil},
		{"ifname 16", spec(func(s *WorkloadEndpointSpec) { s.InterfaceName = "cali0123456789ab" }), []string{"spec.interfaceName"}},
		{"ifname slash", spec(func(s *WorkloadEndpointSpec) { s.InterfaceName = "a/b" }), []string{"spec.interfaceName"}},
		{"ifname dotdot", spec(func(s *WorkloadEndpointSpec) { s.InterfaceName = ".." }), []string{"spec.interfaceName"}},
		{"mac", spec(func(s *WorkloadEndpointSpec) { s.MAC = "02:00:0A:00:00:01" }), nil},
		{"bad mac", spec(func(s *WorkloadEndpointSpec) { s.MAC = "02:00:0a:00:00" }), []string{"spec.mac"}},
		{"eui64 mac", spec(func(s *WorkloadEndpointSpec) { s.MAC = "02:00:0a:00:00:01:02:03" }), []string{"spec.mac"}},
		{"ip networks", spec(func(s *WorkloadEndpointSpec) {
			s.IPNetworks = []string{"10.244.0.0/24", "10.244.0.5", "fd00::5/128", "nope/32", "10.244.0.5/32", "10.244.0.5/32"}
		}), []string{"spec.ipNetworks[0]", "spec.ipNetworks[1]", "spec.ipNetworks[3]", "spec.ipNetworks[5]"}},
		{"gateways", spec(func(s *WorkloadEndpointSpec) { s.IPv4Gateway, s.IPv6Gateway = "169.254.1.1", "fe80::1" }), nil},
		{"gateway families", spec(func(s *WorkloadEndpointSpec) { s.IPv4Gateway, s.IPv6Gateway = "fe80::1", "169.254.1.1" }),
			[]string{"spec.ipv4Gateway", "spec.ipv6Gateway"}},
		{"profiles", spec(func(s *WorkloadEndpointSpec) { s.Profiles = []string{"kns.default", "Bad"} }), []string{"spec.profiles[1]"}},
		{"ports", spec(func(s *WorkloadEndpointSpec) {
			s.Ports = []EndpointPort{
				{Name: "http", Protocol: "tcp", Port: 80},
				{Name: "http", Protocol: ProtocolUDP, Port: 80},
				{Name: "http", Protocol: ProtocolTCP, Port: 8080},
				{Name: "HTTP", Protocol: ProtocolICMP, Port: 0},
				{Name: "123", Protocol: ProtocolTCP, Port: 65536},
			}
		}), []string{"spec.ports[2].name", "spec.ports[3].name", "spec.ports[3].port", "spec.ports[3].protocol", "spec.ports[4].name", "spec.ports[4].port"}},
	})
}

func TestWorkloadEndpointDefault(t *testing.T) {
	w := &WorkloadEndpoint{Spec: WorkloadEndpointSpec{
		MAC: "02:00:0A:00:00:01", IPNetworks: []string{"FD00::0005/128", "10.0.0.0/24"},
		Ports: []EndpointPort{{Name: "dns", Protocol: "udp", Port: 53}},
	}}
	w.Default()
	want := WorkloadEndpointSpec{
		MAC: "02:00:0a:00:00:01", IPNetworks: []string{"fd00::5/128", "10.0.0.0/24"},
		Ports: []EndpointPort{{Name: "dns", Protocol: ProtocolUDP, Port: 53}},
	}
	if diff := cmp.Diff(want, w.Spec); diff != "" {
		t.Errorf("Default (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]netip.Addr{netip.MustParseAddr("fd00::5")}, w.Spec.Addrs(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("Addrs (-want +got):\n%s", diff)
	}
}

func TestWorkloadEndpointName(t *testing.T) {
	tests := []struct {
		node, orch, workload, endpoint, want string
	}{
		{"node1", "k8s", "web", "eth0", "node1-k8s-web-eth0"},
		{"node-1", "k8s", "web-0", "eth0", "node--1-k8s-web--0-eth0"},
		{"a-", "cni", "-b", "eth0", "a---cni---b-eth0"},
	}
	for _, tt := range tests {
		if got := WorkloadEndpointName(tt.node, tt.orch, tt.workload, tt.endpoint); got != tt.want {
			t.Errorf("WorkloadEndpointName(%q, %q, %q, %q) = %q, want %q", tt.node, tt.orch, tt.workload, tt.endpoint, got, tt.want)
		}
	}
}

func TestHostEndpointValidate(t *testing.T) {
	base := func() *HostEndpoint {
		return &HostEndpoint{ObjectMeta: ObjectMeta{Name: "n1-eth0"}, Spec: HostEndpointSpec{Node: "n1", InterfaceName: "eth0"}}
	}
	spec := func(f func(*HostEndpointSpec)) func(*HostEndpoint) { return func(h *HostEndpoint) { f(&h.Spec) } }
	runValidation(t, base, []validationCase[*HostEndpoint]{
		{"valid", func(*HostEndpoint) {}, nil},
		{"all interfaces", spec(func(s *HostEndpointSpec) { s.InterfaceName = "*" }), nil},
		{"expected IPs only", spec(func(s *HostEndpointSpec) { s.InterfaceName, s.ExpectedIPs = "", []string{"10.0.0.1", "fd00::1"} }), nil},
		{"neither", spec(func(s *HostEndpointSpec) { s.InterfaceName = "" }), []string{"spec.interfaceName"}},
		{"bad interface", spec(func(s *HostEndpointSpec) { s.InterfaceName = "eth0:1" }), []string{"spec.interfaceName"}},
		{"bad IPs", spec(func(s *HostEndpointSpec) { s.ExpectedIPs = []string{"10.0.0.1/24", "", "x"} }),
			[]string{"spec.expectedIPs[0]", "spec.expectedIPs[1]", "spec.expectedIPs[2]"}},
		{"no node", spec(func(s *HostEndpointSpec) { s.Node = "" }), []string{"spec.node"}},
		{"namespaced", func(h *HostEndpoint) { h.Namespace = "x" }, []string{"metadata.namespace"}},
		{"ports", spec(func(s *HostEndpointSpec) { s.Ports = []EndpointPort{{Name: "ssh", Protocol: "TCP", Port: 0}} }), []string{"spec.ports[0].port"}},
	})
}
