package reflector

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// Interop of the families other than unicast: FRR bgpd and gobgpd
// clients (Debian packages) exchange EVPN, VPNv4 and flowspec routes
// through our reflector, and gobgpd's route target constraint.

// gobgpd is a gobgpd instance with its gobgp CLI.
type gobgpd struct {
	cli     string
	api     string // host:port of its gRPC API
	address string
}

// startGoBGPD runs gobgpd on addr, a client of the reflector at rr for
// afiSafis (gobgpd's names), and returns it once its API answers.
func startGoBGPD(t *testing.T, ctx context.Context, addr, id string, rr netip.AddrPort, afiSafis ...string) *gobgpd {
	t.Helper()
	bin := daemonBinary(t, "gobgpd")
	cli := daemonBinary(t, "gobgp")
	dir := t.TempDir()
	conf := fmt.Sprintf(`[global.config]
  as = %d
  router-id = %q
  port = -1
[[neighbors]]
  [neighbors.config]
    neighbor-address = %q
    peer-as = %d
  [neighbors.transport.config]
    local-address = %q
    remote-port = %d
  [neighbors.timers.config]
    connect-retry = 1
`, testASN, id, rr.Addr().String(), testASN, addr, rr.Port())
	for _, f := range afiSafis {
		conf += fmt.Sprintf("  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = %q\n", f)
	}
	f := filepath.Join(dir, "gobgpd.toml")
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	g := &gobgpd{cli: cli, api: net2(addr, freePort(t, addr)), address: addr}
	runDaemon(t, dir, bin, "-f", f, "--api-hosts", g.api, "--log-level", "debug")
	waitFor(t, ctx, "gobgpd's API on "+g.api, func() bool {
		_, err := g.run("global")
		return err == nil
	})
	return g
}

func net2(host string, port int) string {
	return netip.AddrPortFrom(netip.MustParseAddr(host), uint16(port)).String()
}

// run runs a gobgp CLI command against this gobgpd.
func (g *gobgpd) run(args ...string) (string, error) {
	hp, _ := netip.ParseAddrPort(g.api)
	out, err := exec.Command(g.cli, append([]string{"-u", hp.Addr().String(), "-p", strconv.Itoa(int(hp.Port()))}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("gobgp %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (g *gobgpd) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := g.run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// frrVPNTable is `show bgp ipv4 vpn json`.
type frrVPNTable struct {
	Routes struct {
		RDs map[string]map[string][]struct {
			Nexthops []struct {
				IP string `json:"ip"`
			} `json:"nexthops"`
			PathFrom string `json:"pathFrom"`
		} `json:"routeDistinguishers"`
	} `json:"routes"`
}

// frrEVPNRoutes returns `show bgp l2vpn evpn json` as RD -> route -> its
// paths' originator (FRR lists the route types in its prefix strings).
func frrEVPNRoutes(out string) map[string]map[string]int {
	var raw map[string]json.RawMessage
	if json.Unmarshal([]byte(out), &raw) != nil {
		return nil
	}
	got := map[string]map[string]int{}
	for rd, v := range raw {
		var routes map[string]json.RawMessage
		if json.Unmarshal(v, &routes) != nil {
			continue // a scalar: table version, router id...
		}
		for pfx, r := range routes {
			var route struct {
				Paths []struct {
					PathFrom string `json:"pathFrom"`
				} `json:"paths"`
			}
			if json.Unmarshal(r, &route) == nil && len(route.Paths) > 0 {
				if got[rd] == nil {
					got[rd] = map[string]int{}
				}
				got[rd][pfx] = len(route.Paths)
			}
		}
	}
	return got
}

func frrFamilyConf(rr netip.AddrPort, addr, id, vpnNets, evpnNets string) string {
	return fmt.Sprintf(`frr defaults traditional
hostname %s
log stdout debugging
!
route-map NH permit 10
 set ipv4 vpn next-hop 198.18.0.%s
!
router bgp %d
 bgp router-id %s
 no bgp default ipv4-unicast
 neighbor %s remote-as %d
 neighbor %s port %d
 neighbor %s update-source %s
 neighbor %s timers connect 1
 address-family ipv4 vpn
  neighbor %s activate
  neighbor %s route-map NH out
%s exit-address-family
 address-family l2vpn evpn
  neighbor %s activate
%s exit-address-family
!
`, id, id[strings.LastIndex(id, ".")+1:], testASN, id, rr.Addr(), testASN, rr.Addr(), rr.Port(), rr.Addr(), addr, rr.Addr(),
		rr.Addr(), rr.Addr(), vpnNets, rr.Addr(), evpnNets)
}

// TestInteropFRREVPNAndVPN: two FRR bgpd clients exchange VPNv4 routes and
// EVPN type-5 routes (FRR's static network statements) through the
// reflector, and both learn an EVPN type-2 route that a gobgpd client
// originates; each FRR reads the others' routes back with vtysh.
func TestInteropFRREVPNAndVPN(t *testing.T) {
	daemonBinary(t, "/usr/lib/frr/bgpd")
	daemonBinary(t, "gobgpd")
	const aAddr, bAddr, gAddr = "127.0.32.1", "127.0.32.2", "127.0.32.3"
	cfg := testConfig(aAddr, bAddr, gAddr)
	fams, _ := ParseFamilies([]string{"l2vpn-evpn", "ipv4-vpn"})
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].Families = fams
	}
	_, rr := startReflector(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startFRR(t, aAddr, frrFamilyConf(rr, aAddr, "10.0.32.1",
		"  network 10.70.0.0/24 rd 65000:1 label 100\n",
		"  network 10.71.0.0/24 rd 65000:1 ethtag 0 label 200 esi 00:00:00:00:00:00:00:00:00:00 gwip 0.0.0.0 routermac 00:00:00:00:00:00\n"))
	b := startFRR(t, bAddr, frrFamilyConf(rr, bAddr, "10.0.32.2",
		"  network 10.72.0.0/24 rd 65000:2 label 101\n",
		"  network 10.73.0.0/24 rd 65000:2 ethtag 0 label 201 esi 00:00:00:00:00:00:00:00:00:00 gwip 0.0.0.0 routermac 00:00:00:00:00:00\n"))
	g := startGoBGPD(t, ctx, gAddr, "10.0.32.3", rr, "l2vpn-evpn", "l3vpn-ipv4-unicast")
	g.must(t, "global", "rib", "-a", "evpn", "add", "macadv", "aa:bb:cc:00:00:01", "10.74.0.1", "etag", "0", "label", "300",
		"rd", "65000:3", "rt", "65000:3", "nexthop", "198.18.0.3")

	for _, c := range []struct {
		name       string
		f          *frr
		vpnRD, vpn string
		evpnRD     string
		evpn       []string
	}{
		{"FRR a", a, "65000:2", "10.72.0.0/24", "65000:2", []string{"[5]:[0]:[24]:[10.73.0.0]"}},
		{"FRR b", b, "65000:1", "10.70.0.0/24", "65000:1", []string{"[5]:[0]:[24]:[10.71.0.0]"}},
	} {
		waitFor(t, ctx, c.name+" to learn the other's VPNv4 route", func() bool {
			var v frrVPNTable
			if json.Unmarshal([]byte(c.f.show("show bgp ipv4 vpn json")), &v) != nil {
				return false
			}
			ps := v.Routes.RDs[c.vpnRD][c.vpn]
			return len(ps) == 1 && ps[0].PathFrom == "internal" && len(ps[0].Nexthops) > 0 &&
				ps[0].Nexthops[0].IP == "198.18.0."+map[string]string{"65000:1": "1", "65000:2": "2"}[c.vpnRD]
		})
		waitFor(t, ctx, c.name+" to learn the EVPN type-5 and gobgpd's type-2 routes", func() bool {
			got := frrEVPNRoutes(c.f.show("show bgp l2vpn evpn json"))
			for _, r := range c.evpn {
				if got[c.evpnRD][r] != 1 {
					return false
				}
			}
			for r := range got["65000:3"] {
				if strings.HasPrefix(r, "[2]:[0]:[48]:[aa:bb:cc:00:00:01]:[32]:[10.74.0.1]") {
					return true
				}
			}
			return false
		})
	}
	// gobgpd learns FRR's routes too: VPNv4 with its label.
	waitFor(t, ctx, "gobgpd to learn FRR's VPNv4 routes", func() bool {
		out, err := g.run("global", "rib", "-a", "vpnv4")
		return err == nil && strings.Contains(out, "65000:1:10.70.0.0/24") && strings.Contains(out, "65000:2:10.72.0.0/24") &&
			strings.Contains(out, "[100]") && strings.Contains(out, "[101]")
	})
}

// TestInteropGoBGPFlowspec: gobgpd clients exchange an IPv4 flowspec rule
// through the reflector.
func TestInteropGoBGPFlowspec(t *testing.T) {
	daemonBinary(t, "gobgpd")
	const g1Addr, g2Addr = "127.0.34.1", "127.0.34.2"
	cfg := testConfig(g1Addr, g2Addr)
	fams, _ := ParseFamilies([]string{"ipv4-flowspec"})
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].Families = fams
	}
	_, rr := startReflector(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	g1 := startGoBGPD(t, ctx, g1Addr, "10.0.34.1", rr, "ipv4-flowspec")
	g2 := startGoBGPD(t, ctx, g2Addr, "10.0.34.2", rr, "ipv4-flowspec")
	g1.must(t, "global", "rib", "-a", "ipv4-flowspec", "add", "match", "destination", "10.80.0.0/24", "protocol", "tcp", "then", "discard")
	waitFor(t, ctx, "gobgpd 2 to learn the flowspec rule", func() bool {
		out, err := g2.run("global", "rib", "-a", "ipv4-flowspec")
		return err == nil && strings.Contains(out, "[destination: 10.80.0.0/24][protocol: ==tcp]") && strings.Contains(out, "discard")
	})
}

// TestInteropGoBGPRTC: with route target constraint (RFC 4684),
// a gobgpd client whose only VRF imports 65000:9 receives the VPNv4 route
// that carries it and not the one with 65000:1, which a client that is a
// member of 65000:1 receives. The sending gobgpd learns both memberships
// from the reflector, which reflects them, and sends both routes. (No
// client here carries VPNv4 without RTC: the default membership the
// reflector would then advertise crashes gobgpd 3.10, see famrtc.go; and
// gobgpd applies RTC to flowspec too, so flowspec has its own test.)
func TestInteropGoBGPRTC(t *testing.T) {
	daemonBinary(t, "gobgpd")
	const g1Addr, g2Addr, sAddr = "127.0.33.1", "127.0.33.2", "127.0.33.3"
	cfg := testConfig(g1Addr, g2Addr, sAddr)
	fams, _ := ParseFamilies([]string{"ipv4-vpn", "rtc"})
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].Families = fams
	}
	_, rr := startReflector(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	g1 := startGoBGPD(t, ctx, g1Addr, "10.0.33.1", rr, "l3vpn-ipv4-unicast", "rtc")
	g2 := startGoBGPD(t, ctx, g2Addr, "10.0.33.2", rr, "l3vpn-ipv4-unicast", "rtc")
	g2.must(t, "vrf", "add", "red", "rd", "65000:9", "rt", "both", "65000:9")
	var s *rawSpeaker
	waitFor(t, ctx, "the reflector to accept the speaker", func() bool {
		var err error
		s, err = dialSpeaker(ctx, rr, sAddr, speakerOpts{asn: testASN, id: "10.0.33.3", hold: 90, fams: []bgp.RouteFamily{bgp.RF_IPv4_VPN, bgp.RF_RTC_UC}})
		return err == nil
	})
	defer s.conn.Close()
	s.send(t, mpUpdate("192.0.2.3", []bgp.AddrPrefixInterface{bgp.NewRouteTargetMembershipNLRI(testASN, rt(1))}))

	waitFor(t, ctx, "gobgpd 1 to learn both memberships", func() bool {
		out, err := g1.run("global", "rib", "-a", "rtc")
		return err == nil && strings.Contains(out, "65000:65000:9") && strings.Contains(out, "65000:65000:1")
	})
	g1.must(t, "global", "rib", "-a", "vpnv4", "add", "10.91.0.0/24", "label", "101", "rd", "65000:1", "rt", "65000:1", "nexthop", "198.18.0.1")
	g1.must(t, "global", "rib", "-a", "vpnv4", "add", "10.90.0.0/24", "label", "100", "rd", "65000:1", "rt", "65000:9", "nexthop", "198.18.0.1")
	key := func(p string) string { return bgp.RF_IPv4_VPN.String() + " 65000:1:" + p }
	got := genCollect(t, s, map[string]genRoute{}, genHas(key("10.91.0.0/24")))
	waitFor(t, ctx, "gobgpd 2 to import 10.90.0.0/24 into its VRF", func() bool {
		out, err := g2.run("vrf", "red", "rib")
		return err == nil && strings.Contains(out, "10.90.0.0/24")
	})
	// gobgpd 1 sent 10.91.0.0/24 before 10.90.0.0/24 (the speaker has
	// it), and the reflector sends in order: gobgpd 2 would have it now.
	if out := g2.must(t, "global", "rib", "-a", "vpnv4"); strings.Contains(out, "10.91.0.0/24") {
		t.Errorf("gobgpd 2, a member of 65000:9 only, received the route of 65000:1:\n%s", out)
	}
	// The speaker, a member of 65000:1 only, does not get 10.90.0.0/24: a
	// probe of 65000:1 sent after it arrives alone.
	g1.must(t, "global", "rib", "-a", "vpnv4", "add", "10.92.0.0/24", "label", "102", "rd", "65000:1", "rt", "65000:1", "nexthop", "198.18.0.1")
	got = genCollect(t, s, got, genHas(key("10.92.0.0/24")))
	if _, ok := got[key("10.90.0.0/24")]; ok {
		t.Errorf("the speaker, a member of 65000:1 only, received the route of 65000:9")
	}
}
