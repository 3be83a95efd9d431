package router

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

func TestExports(t *testing.T) {
	c := api.Community{Global: 64512, Local1: 1}
	via := workload("10.65.8.0/26", 3)
	via.Gateway, via.Scope = addr("10.0.0.9"), 0
	fib := map[netip.Prefix]routetable.KernelRoute{}
	for _, r := range []routetable.KernelRoute{
		blackhole("10.65.1.0/26"),
		workload("10.65.1.5/32", 7),
		workload("10.65.9.17/32", 8),
		via,                           // a route to someone else's block: not ours
		workload("10.65.10.0/28", 9),  // not a host route
		blackhole("fd00:65::/122"),    // IPv6 block
		workload("fd00:65::3/128", 4), // inside it
		workload("fd00:99::3/128", 4), // borrowed
	} {
		fib[r.Dst] = r
	}
	pol, err := ParsePolicy([]byte(`
export:
  rules:
  - prefixes: ["10.65.9.0/24"]
    action: reject
  - prefixes: ["fd00::/16"]
    minLength: 128
    action: accept
    addCommunities: ["64512:2:3"]
`))
	if err != nil {
		t.Fatal(err)
	}
	adv := &api.Advertisements{All: []Community{c}}
	perPrefix := &api.Advertisements{All: []Community{c}, Prefixes: []api.PrefixCommunities{
		{Prefix: pfx("10.65.0.0/16"), Communities: []Community{{Global: 65000, Local1: 7}}},
		{Prefix: pfx("10.65.9.0/24"), Communities: []Community{{Large: true, Global: 65000, Local1: 9, Local2: 9}, c}},
		{Prefix: pfx("10.96.0.0/12"), Communities: []Community{{Global: 65000, Local1: 96}}},
	}}
	for _, tc := range []struct {
		name     string
		f        *Filter
		adv      *api.Advertisements
		services []netip.Prefix
		want     []string
	}{
		{"no filter", nil, adv, nil, []string{"10.65.1.0/26 [64512:1]", "10.65.9.17/32 [64512:1]", "fd00:65::/122 [64512:1]", "fd00:99::3/128 [64512:1]"}},
		{"filter", pol.Export, adv, nil, []string{"10.65.1.0/26 [64512:1]", "fd00:65::/122 [64512:1]", "fd00:99::3/128 [64512:1 64512:2:3]"}},
		{"prefix advertisements", nil, perPrefix, nil, []string{"10.65.1.0/26 [64512:1 65000:7]", "10.65.9.17/32 [64512:1 65000:7 65000:9:9]",
			"fd00:65::/122 [64512:1]", "fd00:99::3/128 [64512:1]"}},
		{"services", nil, perPrefix, []netip.Prefix{pfx("10.96.0.0/12"), pfx("192.0.2.7/32"), pfx("10.65.1.5/32")},
			[]string{"10.65.1.0/26 [64512:1 65000:7]", "10.65.9.17/32 [64512:1 65000:7 65000:9:9]", "10.96.0.0/12 [64512:1 65000:96]",
				"192.0.2.7/32 [64512:1]", "fd00:65::/122 [64512:1]", "fd00:99::3/128 [64512:1]"}},
		{"no advertisements", nil, &api.Advertisements{}, nil, []string{"10.65.1.0/26 []", "10.65.9.17/32 []", "fd00:65::/122 []", "fd00:99::3/128 []"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, r := range Exports(fib, tc.f, tc.adv, tc.services) {
				s := r.Prefix.String() + " ["
				for i, cm := range r.Communities {
					if i > 0 {
						s += " "
					}
					s += cm.String()
				}
				got = append(got, s+"]")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestImportRoute(t *testing.T) {
	own := func(a netip.Addr) bool { return a == addr("10.0.0.1") }
	pol, err := ParsePolicy([]byte(`
import:
  rules:
  - communities: ["65000:666"]
    action: reject
`))
	if err != nil {
		t.Fatal(err)
	}
	bad := api.Community{Global: 65000, Local1: 666}
	for _, tc := range []struct {
		name  string
		paths []Path
		want  string
	}{
		{"best", []Path{{NextHop: addr("10.0.0.2")}}, "10.0.0.2"},
		{"ecmp", []Path{{NextHop: addr("10.0.0.2")}, {NextHop: addr("10.0.0.3")}, {NextHop: addr("10.0.0.2")}}, "10.0.0.2 10.0.0.3"},
		{"local", []Path{{Local: true}}, ""},
		{"own next hop skipped", []Path{{NextHop: addr("10.0.0.1")}, {NextHop: addr("10.0.0.3")}}, "10.0.0.3"},
		{"filtered", []Path{{NextHop: addr("10.0.0.2"), Communities: []Community{bad}}}, ""},
		{"one of two filtered", []Path{{NextHop: addr("10.0.0.2"), Communities: []Community{bad}}, {NextHop: addr("10.0.0.4")}}, "10.0.0.4"},
		{"wrong family", []Path{{NextHop: addr("fd00::2")}}, ""},
		{"gone", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := importRoute(Destination{Prefix: pfx("10.65.2.0/26"), Paths: tc.paths}, pol.Import, own)
			var gws []string
			if ok {
				for _, g := range gateways(r) {
					gws = append(gws, g.String())
				}
				if len(r.NextHops) == 1 {
					t.Errorf("one next hop as a multipath route: %+v", r)
				}
			}
			got := strings.Join(gws, " ")
			if got != tc.want {
				t.Errorf("gateway = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParsePolicyErrors(t *testing.T) {
	_, err := ParsePolicy([]byte(`
export:
  default: maybe
  rules:
  - action: drop
    communities: ["x"]
import:
  rules:
  - action: accept
    addCommunities: ["1:1"]
`))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"export.default", "export.rules[0].action", "export.rules[0].communities[0]", "import.rules[0].addCommunities"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestSecrets(t *testing.T) {
	env := map[string]string{"BGPFABRIC_SECRET_TOR_PW_PASSWORD": "envpw"}
	s := Secrets{Getenv: func(k string) string { return env[k] }}
	pw, err := s.Password(secretRef("tor-pw", "password"))
	if err != nil || pw != "envpw" {
		t.Errorf("Password = %q, %v", pw, err)
	}
	if _, err := s.Password(secretRef("../etc", "x/y")); err == nil {
		t.Error("path traversal accepted")
	}
}
