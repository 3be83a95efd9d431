package api

// Fully populated, valid examples of every kind, as Default leaves them.
// The round-trip, key and validation tests run over all of them.

func meta(name string) ObjectMeta {
	return ObjectMeta{
		Name:              name,
		Labels:            map[string]string{"example.com/rack": "r1", "role": "compute"},
		Annotations:       map[string]string{"example.com/owner": "net team"},
		UID:               "4f1a7c2e-0000-4000-8000-000000000001",
		CreationTimestamp: "2025-01-02T15:04:05Z",
	}
}

func nsMeta(ns, name string) ObjectMeta {
	m := meta(name)
	m.Namespace = ns
	return m
}

func tm(kind string) TypeMeta { return TypeMeta{APIVersion: APIVersion, Kind: kind} }

func exampleRule() Rule {
	return Rule{
		Action:      Allow,
		IPVersion:   ptr(4),
		Protocol:    ptr(ProtocolTCP),
		NotProtocol: nil,
		Source: EntityRule{
			Nets:              []string{"10.0.0.0/8"},
			NotNets:           []string{"10.1.0.0/16"},
			Selector:          "role == 'frontend'",
			NotSelector:       "has(quarantine)",
			NamespaceSelector: "team in {'a', 'b'}",
			NotPorts:          []Port{"1:1023"},
		},
		Destination: EntityRule{
			Nets:  []string{"192.168.0.0/24", "192.168.1.7/32"},
			Ports: []Port{"80", "8000:8080", "http"},
		},
	}
}

func exampleICMPRule() Rule {
	return Rule{
		Action:   Deny,
		Protocol: ptr(ProtocolICMPv6),
		ICMP:     &ICMPFields{Type: ptr(128), Code: ptr(0)},
		NotICMP:  &ICMPFields{Type: ptr(129)},
		Destination: EntityRule{
			NotNets: []string{"fd00::/64"},
		},
	}
}

func examples() []Resource {
	return []Resource{
		&Node{TypeMeta: tm(KindNode), ObjectMeta: meta("node-1"), Spec: NodeSpec{BGP: &NodeBGPSpec{
			ASNumber:                ptr(uint32(65001)),
			IPv4Address:             "10.0.0.1/24",
			IPv6Address:             "fd00::1/64",
			RouterID:                "10.0.0.1",
			RouteReflectorClusterID: "224.0.0.1",
		}}},
		&BGPConfiguration{TypeMeta: tm(KindBGPConfiguration), ObjectMeta: meta("default"), Spec: BGPConfigurationSpec{
			ASNumber:              ptr(uint32(64512)),
			NodeToNodeMeshEnabled: ptr(false),
			ListenPort:            ptr(1179),
			KeepaliveTime:         "20s",
			HoldTime:              "1m0s",
			GracefulRestart:       &GracefulRestart{Enabled: ptr(true), RestartTime: "2m", StaleRoutesTime: "6m"},
			Communities:           []CommunityEntry{{Value: "65000:100"}, {Value: "65000:1:2"}},
			DrainTime:             "15s",
			LogSeverity:           "Debug",
			EBGPDefaultPolicy:     FilterAccept,
		}},
		&BGPPeer{TypeMeta: tm(KindBGPPeer), ObjectMeta: meta("tor-rack1"), Spec: BGPPeerSpec{
			NodeSelector:        "rack == 'r1'",
			PeerIP:              "[fd00::fe]:1179",
			ASNumber:            ptr(uint32(65100)),
			Password:            &BGPPassword{SecretKeyRef: &SecretKeySelector{Name: "bgp-secrets", Key: "tor.password"}},
			KeepOriginalNextHop: true,
			MaxPrefixes:         10000,
			KeepaliveTime:       "3s",
			HoldTime:            "9s",
			SourceAddress:       SourceAddressUseNodeIP,
			EBGPMultihop:        ptr(2),
			Filters:             []string{"tor-in", "pools-out"},
		}},
		&BGPFilter{TypeMeta: tm(KindBGPFilter), ObjectMeta: meta("tor-in"), Spec: BGPFilterSpec{
			ImportV4: []BGPFilterRule{
				{CIDR: "0.0.0.0/0", MatchOperator: MatchEqual, Action: FilterAccept, LocalPref: ptr(uint32(50))},
				{Communities: []string{"65000:666"}, Action: FilterReject},
			},
			ExportV4: []BGPFilterRule{{CIDR: "10.244.0.0/16", MatchOperator: MatchIn,
				PrefixLength: &BGPFilterPrefixLength{Min: ptr(16), Max: ptr(26)}, Source: FilterSourceRemotePeers,
				Action: FilterAccept, AddCommunities: []string{"65000:1:2"}, MED: ptr(uint32(10)),
				PrependASPath: &BGPFilterASPathPrepend{ASNumber: 64512, Repeat: 2}}},
			ExportV6: []BGPFilterRule{{CIDR: "fd00:10::/64", MatchOperator: MatchNotIn, Action: FilterReject}},
			ImportV6: []BGPFilterRule{{CIDR: "::/0", MatchOperator: MatchNotEqual, Action: FilterAccept}},
		}},
		&IPPool{TypeMeta: tm(KindIPPool), ObjectMeta: meta("pool-v6"), Spec: IPPoolSpec{
			CIDR:         "fd00:10::/64",
			BlockSize:    122,
			VXLANMode:    VXLANNever,
			NATOutgoing:  true,
			Disabled:     true,
			NodeSelector: "!has(no-pods)",
		}},
		exampleBlock(),
		&WorkloadEndpoint{TypeMeta: tm(KindWorkloadEndpoint), ObjectMeta: nsMeta("default", "node--1-k8s-web--0-eth0"), Spec: WorkloadEndpointSpec{
			Node:          "node-1",
			Orchestrator:  "k8s",
			Workload:      "web-0",
			ContainerID:   "0123456789abcdef",
			Endpoint:      "eth0",
			InterfaceName: "cali0123456789a",
			MAC:           "02:00:0a:00:00:01",
			IPNetworks:    []string{"10.244.0.5/32", "fd00:10::5/128"},
			IPv4Gateway:   "169.254.1.1",
			IPv6Gateway:   "fe80::1",
			Profiles:      []string{"kns.default", "ksa.default.web"},
			Ports:         []EndpointPort{{Name: "http", Protocol: ProtocolTCP, Port: 8080}, {Name: "dns", Protocol: ProtocolUDP, Port: 53}},
		}},
		&HostEndpoint{TypeMeta: tm(KindHostEndpoint), ObjectMeta: meta("node-1-eth0"), Spec: HostEndpointSpec{
			Node:          "node-1",
			InterfaceName: "eth0",
			ExpectedIPs:   []string{"10.0.0.1", "fd00::1"},
			Profiles:      []string{"hosts"},
			Ports:         []EndpointPort{{Name: "bgp", Protocol: ProtocolTCP, Port: 179}},
		}},
		&Profile{TypeMeta: tm(KindProfile), ObjectMeta: meta("kns.default"), Spec: ProfileSpec{
			Ingress:       []Rule{exampleRule()},
			Egress:        []Rule{{Action: Allow}},
			LabelsToApply: map[string]string{"ns": "default"},
		}},
		&NetworkPolicy{TypeMeta: tm(KindNetworkPolicy), ObjectMeta: nsMeta("prod", "allow-web"), Spec: NetworkPolicySpec{PolicySpec{
			Order:    ptr(100.5),
			Selector: "app == 'web'",
			Types:    []PolicyType{PolicyTypeIngress, PolicyTypeEgress},
			Ingress:  []Rule{exampleRule(), exampleICMPRule()},
			Egress:   []Rule{{Action: Pass}, {Action: Log, NotProtocol: ptr(Protocol("47"))}},
		}}},
		&GlobalNetworkPolicy{TypeMeta: tm(KindGlobalNetworkPolicy), ObjectMeta: meta("host-protect"), Spec: GlobalNetworkPolicySpec{
			PolicySpec: PolicySpec{
				Order:    ptr(10.0),
				Selector: "has(host-endpoint)",
				Types:    []PolicyType{PolicyTypeIngress},
				Ingress:  []Rule{exampleRule()},
			},
			NamespaceSelector: "all()",
		}},
		&FelixStatus{TypeMeta: tm(KindFelixStatus), ObjectMeta: meta("node-1"), Status: FelixStatusReport{
			Ready:      true,
			InSync:     false,
			LastUpdate: "2025-01-02T15:04:05Z",
			Dataplane:  DataplaneStatus{State: DataplaneFailed, Error: "adding route 10.244.0.5/32: file exists"},
			Endpoints:  3,
			Routes:     120,
			Rules:      42,
		}},
		&BGPStatus{TypeMeta: tm(KindBGPStatus), ObjectMeta: meta("node-1"), Status: BGPStatusReport{
			RouterID:   "10.0.0.1",
			ASNumber:   64512,
			LastUpdate: "2025-01-02T15:04:05+01:00",
			Peers: []BGPPeerStatus{
				{PeerIP: "10.0.0.2", ASNumber: 64512, Type: PeerTypeMesh, State: BGPEstablished, Since: "2025-01-02T15:00:00Z",
					PrefixesReceived: 10, PrefixesAccepted: 9, PrefixesAdvertised: 4},
				{PeerIP: "fd00::fe", ASNumber: 65100, Type: PeerTypeNode, State: BGPActive, LastError: "hold timer expired"},
			},
		}},
		&ServiceAdvertisement{TypeMeta: tm(KindServiceAdvertisement), ObjectMeta: nsMeta("prod", "web"), Spec: ServiceAdvertisementSpec{
			ClusterIPs: []string{"10.96.0.10", "fd00:96::a"}, LoadBalancerIPs: []string{"192.0.2.10"},
			ExternalTrafficPolicy: ServiceTrafficLocal, Nodes: []string{"node-1", "node-2"},
		}},
	}
}

func exampleBlock() *IPAMBlock {
	b := &IPAMBlock{TypeMeta: tm(KindIPAMBlock), ObjectMeta: meta("10-244-0-0-30"), Spec: IPAMBlockSpec{
		CIDR:           "10.244.0.0/30",
		Affinity:       "host:node-1",
		StrictAffinity: true,
		Allocations:    []*int{ptr(0), nil, ptr(1), nil},
		Unallocated:    []int{3, 1},
		Attributes: []AllocationAttribute{
			{HandleID: "k8s-pod-network.abc", Secondary: map[string]string{"node": "node-1", "pod": "web-0"}},
			{HandleID: "ipip-tunnel-addr-node-1"},
		},
		Deleted: true,
	}}
	return b
}
