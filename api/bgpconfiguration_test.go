package api

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBGPConfigurationDefault(t *testing.T) {
	full := BGPConfigurationSpec{
		ASNumber: ptr(uint32(64512)), NodeToNodeMeshEnabled: ptr(true), ListenPort: ptr(179),
		KeepaliveTime: "30s", HoldTime: "1m30s",
		GracefulRestart:   &GracefulRestart{Enabled: ptr(true), RestartTime: "2m0s", StaleRoutesTime: "6m0s"},
		LogSeverity:       "Info",
		EBGPDefaultPolicy: "Reject",
		DrainTime:         "15s",
	}
	with := func(f func(*BGPConfigurationSpec)) BGPConfigurationSpec {
		s := full
		gr := *full.GracefulRestart
		s.GracefulRestart = &gr
		f(&s)
		return s
	}
	tests := []struct {
		name     string
		cfgName  string
		in, want BGPConfigurationSpec
	}{
		{"empty default", "default", BGPConfigurationSpec{}, full},
		{"hold only", "default", BGPConfigurationSpec{HoldTime: "10s"},
			with(func(s *BGPConfigurationSpec) { s.HoldTime, s.KeepaliveTime = "10s", "3s" })},
		{"hold zero", "default", BGPConfigurationSpec{HoldTime: "0s"},
			with(func(s *BGPConfigurationSpec) { s.HoldTime, s.KeepaliveTime = "0s", "0s" })},
		{"keepalive only", "default", BGPConfigurationSpec{KeepaliveTime: "10s"},
			with(func(s *BGPConfigurationSpec) { s.KeepaliveTime = "10s" })},
		{"mesh off kept", "default", BGPConfigurationSpec{NodeToNodeMeshEnabled: ptr(false), GracefulRestart: &GracefulRestart{Enabled: ptr(false)}},
			with(func(s *BGPConfigurationSpec) {
				s.NodeToNodeMeshEnabled = ptr(false)
				s.GracefulRestart.Enabled = ptr(false)
			})},
		{"per-node not defaulted", "node.n1", BGPConfigurationSpec{ListenPort: ptr(1179)}, BGPConfigurationSpec{ListenPort: ptr(1179)}},
	}
	for _, tt := range tests {
		c := &BGPConfiguration{ObjectMeta: ObjectMeta{Name: tt.cfgName}, Spec: tt.in}
		c.Default()
		if diff := cmp.Diff(tt.want, c.Spec); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: defaulted config invalid: %v", tt.name, err)
		}
	}
}

func TestBGPConfigurationValidate(t *testing.T) {
	base := func() *BGPConfiguration { return &BGPConfiguration{ObjectMeta: ObjectMeta{Name: "default"}} }
	spec := func(f func(*BGPConfigurationSpec)) func(*BGPConfiguration) {
		return func(c *BGPConfiguration) { f(&c.Spec) }
	}
	runValidation(t, base, []validationCase[*BGPConfiguration]{
		{"defaults", func(*BGPConfiguration) {}, nil},
		{"other name", func(c *BGPConfiguration) { c.Name = "global" }, []string{"metadata.name"}},
		{"per-node", func(c *BGPConfiguration) { c.Name = "node.rack1-n1"; c.Spec.LogSeverity = "Debug" }, nil},
		{"per-node bad node", func(c *BGPConfiguration) { c.Name = "node.-x" }, []string{"metadata.name"}},
		{"per-node global fields", func(c *BGPConfiguration) {
			c.Name = "node.n1"
			c.Spec.ASNumber = ptr(uint32(1))
			c.Spec.Communities = []CommunityEntry{{Value: "1:1"}}
			c.Spec.PrefixAdvertisements = []PrefixAdvertisement{{CIDR: "10.0.0.0/8", Communities: []string{"1:1"}}}
			c.Spec.ServiceExternalIPs = []ServiceIPBlock{{CIDR: "10.0.0.0/8"}}
			c.Spec.DrainTime = "1s"
		}, []string{"spec.asNumber", "spec.communities", "spec.drainTime", "spec.prefixAdvertisements", "spec.serviceExternalIPs"}},
		{"ASN 0", spec(func(s *BGPConfigurationSpec) { s.ASNumber = ptr(uint32(0)) }), []string{"spec.asNumber"}},
		{"port 0", spec(func(s *BGPConfigurationSpec) { s.ListenPort = ptr(0) }), []string{"spec.listenPort"}},
		{"port 65536", spec(func(s *BGPConfigurationSpec) { s.ListenPort = ptr(65536) }), []string{"spec.listenPort"}},
		{"hold 0 keepalive 0", spec(func(s *BGPConfigurationSpec) { s.HoldTime, s.KeepaliveTime = "0s", "0s" }), nil},
		{"hold 0 keepalive 10s", spec(func(s *BGPConfigurationSpec) { s.HoldTime, s.KeepaliveTime = "0", "10s" }), []string{"spec.keepaliveTime"}},
		{"hold 2s", spec(func(s *BGPConfigurationSpec) { s.HoldTime, s.KeepaliveTime = "2s", "1s" }), []string{"spec.holdTime"}},
		{"hold 3s", spec(func(s *BGPConfigurationSpec) { s.HoldTime, s.KeepaliveTime = "3s", "1s" }), nil},
		{"keepalive = hold", spec(func(s *BGPConfigurationSpec) { s.HoldTime, s.KeepaliveTime = "9s", "9s" }), []string{"spec.keepaliveTime"}},
		{"keepalive 0 with hold", spec(func(s *BGPConfigurationSpec) { s.HoldTime, s.KeepaliveTime = "9s", "0s" }), []string{"spec.keepaliveTime"}},
		{"keepalive above default hold", spec(func(s *BGPConfigurationSpec) { s.KeepaliveTime = "2m" }), []string{"spec.keepaliveTime"}},
		{"fractional", spec(func(s *BGPConfigurationSpec) { s.HoldTime = "9.5s" }), []string{"spec.holdTime"}},
		{"not a duration", spec(func(s *BGPConfigurationSpec) { s.HoldTime = "90" }), []string{"spec.holdTime"}},
		{"hold too long", spec(func(s *BGPConfigurationSpec) { s.HoldTime = "20h" }), []string{"spec.holdTime"}},
		{"restart time too long", spec(func(s *BGPConfigurationSpec) {
			s.GracefulRestart = &GracefulRestart{RestartTime: "4096s", StaleRoutesTime: "0s"}
		}), []string{"spec.gracefulRestart.restartTime", "spec.gracefulRestart.staleRoutesTime"}},
		{"long-lived stale time", spec(func(s *BGPConfigurationSpec) {
			s.GracefulRestart = &GracefulRestart{LongLivedStaleTime: "16777215s"}
		}), nil},
		{"long-lived stale time too long", spec(func(s *BGPConfigurationSpec) {
			s.GracefulRestart = &GracefulRestart{LongLivedStaleTime: "16777216s"}
		}), []string{"spec.gracefulRestart.longLivedStaleTime"}},
		{"long-lived stale time fractional", spec(func(s *BGPConfigurationSpec) {
			s.GracefulRestart = &GracefulRestart{LongLivedStaleTime: "1.5s"}
		}), []string{"spec.gracefulRestart.longLivedStaleTime"}},
		{"communities", spec(func(s *BGPConfigurationSpec) {
			for _, v := range []string{"65535:65535", "4294967295:0:4294967295", "65536:1", "1", "1:2:3:4", "a:b", "1:-1"} {
				s.Communities = append(s.Communities, CommunityEntry{Value: v})
			}
		}), []string{"spec.communities[2]", "spec.communities[3]", "spec.communities[4]", "spec.communities[5]", "spec.communities[6]"}},
		{"named communities", spec(func(s *BGPConfigurationSpec) {
			s.Communities = []CommunityEntry{{Name: "rack-1", Value: "65000:1"}, {Name: "rack-1", Value: "65000:2"},
				{Name: "Bad_Name", Value: "1:1"}, {Name: "big", Value: "1:2:3:4"}}
		}), []string{"spec.communities[1].name", "spec.communities[2].name", "spec.communities[3].value"}},
		{"prefix advertisements", spec(func(s *BGPConfigurationSpec) {
			s.Communities = []CommunityEntry{{Name: "rack-1", Value: "65000:1"}}
			s.PrefixAdvertisements = []PrefixAdvertisement{
				{CIDR: "10.65.0.0/16", Communities: []string{"rack-1", "65000:2", "1:2:3"}},
				{CIDR: "10.65.0.1/16", Communities: []string{"rack-2"}},
				{CIDR: "fd00::/64"},
				{CIDR: "nope", Communities: []string{"1:1"}},
			}
		}), []string{"spec.prefixAdvertisements[1].cidr", "spec.prefixAdvertisements[1].communities[0]",
			"spec.prefixAdvertisements[2].communities", "spec.prefixAdvertisements[3].cidr"}},
		{"service ranges", spec(func(s *BGPConfigurationSpec) {
			s.ServiceClusterIPs = []ServiceIPBlock{{CIDR: "10.96.0.0/12"}, {CIDR: "10.96.0.1/12"}}
			s.ServiceExternalIPs = []ServiceIPBlock{{CIDR: "192.0.2.0/24"}, {CIDR: ""}}
			s.ServiceLoadBalancerIPs = []ServiceIPBlock{{CIDR: "fd00:5::/112"}, {CIDR: "300.0.0.0/8"}}
		}), []string{"spec.serviceClusterIPs[1].cidr", "spec.serviceExternalIPs[1].cidr", "spec.serviceLoadBalancerIPs[1].cidr"}},
		{"drain time", spec(func(s *BGPConfigurationSpec) { s.DrainTime = "2h" }), []string{"spec.drainTime"}},
		{"drain time fraction", spec(func(s *BGPConfigurationSpec) { s.DrainTime = "1.5s" }), []string{"spec.drainTime"}},
		{"log severity", spec(func(s *BGPConfigurationSpec) { s.LogSeverity = "info" }), []string{"spec.logSeverity"}},
		{"log severity fatal", spec(func(s *BGPConfigurationSpec) { s.LogSeverity = "Fatal" }), nil},
		{"ebgp default accept", spec(func(s *BGPConfigurationSpec) { s.EBGPDefaultPolicy = "Accept" }), nil},
		{"ebgp default bad", spec(func(s *BGPConfigurationSpec) { s.EBGPDefaultPolicy = "Deny" }), []string{"spec.ebgpDefaultPolicy"}},
		{"ebgp default per node", func(c *BGPConfiguration) { c.Name = "node.n1"; c.Spec.EBGPDefaultPolicy = "Accept" }, []string{"spec.ebgpDefaultPolicy"}},
		{"log severity trace", spec(func(s *BGPConfigurationSpec) { s.LogSeverity = "Trace" }), []string{"spec.logSeverity"}},
	})
}

func TestParseCommunity(t *testing.T) {
	tests := []struct {
		in   string
		want Community
	}{
		{"65000:100", Community{Global: 65000, Local1: 100}},
		{"0:0", Community{}},
		{"4200000000:1:2", Community{Large: true, Global: 4200000000, Local1: 1, Local2: 2}},
	}
	for _, tt := range tests {
		got, err := ParseCommunity(tt.in)
		if err != nil {
			t.Errorf("ParseCommunity(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseCommunity(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
}

func TestCommunityEntryJSON(t *testing.T) {
	in := `{"apiVersion":"bgpfabric.io/v1","kind":"BGPConfiguration","metadata":{"name":"default"},"spec":{"communities":["65000:1",{"name":"rack-1","value":"65000:2:3"}],` +
		`"prefixAdvertisements":[{"cidr":"10.65.0.0/16","communities":["rack-1","65000:9"]},{"cidr":"10.65.1.0/24","communities":["65000:1"]}]}}`
	var c BGPConfiguration
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	want := []CommunityEntry{{Value: "65000:1"}, {Name: "rack-1", Value: "65000:2:3"}}
	if diff := cmp.Diff(want, c.Spec.Communities); diff != "" {
		t.Errorf("communities (-want +got):\n%s", diff)
	}
	out, err := json.Marshal(c.Spec.Communities)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); got != `["65000:1",{"name":"rack-1","value":"65000:2:3"}]` {
		t.Errorf("marshalled %s", got)
	}
	if err := json.Unmarshal([]byte(`{"name":"x","valu":"1:1"}`), new(CommunityEntry)); err == nil {
		t.Error("unknown field accepted")
	}
	a := ParseAdvertisements(&c)
	mk := func(s string) Community { cm, _ := ParseCommunity(s); return cm }
	for _, tc := range []struct {
		prefix string
		want   []Community
	}{
		{"10.65.1.5/32", []Community{mk("65000:1"), mk("65000:2:3"), mk("65000:9")}},
		{"10.65.2.0/26", []Community{mk("65000:1"), mk("65000:2:3"), mk("65000:9")}},
		{"10.0.0.0/8", []Community{mk("65000:1")}},
		{"10.66.0.1/32", []Community{mk("65000:1")}},
	} {
		if diff := cmp.Diff(tc.want, a.CommunitiesFor(netip.MustParsePrefix(tc.prefix))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.prefix, diff)
		}
	}
}
