package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/router"
	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// Route policy end to end (docs/policy.md): BGPFilters on real sessions
// with FRR and BIRD, read from both sides.

// The ToR's routes in topologies/policy-tor.yaml (its routerConfig).
var (
	defaultRoute = netip.MustParsePrefix("0.0.0.0/0")
	bogusRoute   = netip.MustParsePrefix("10.244.112.200/32")
)

// protoDHCP is the protocol number a DHCP client's routes carry
// (RTPROT_DHCP): the "other owner" of a default route.
const protoDHCP = 16

// missingFilterLog is the message a node logs when a BGPPeer names a
// filter that does not exist (router/policy.go).
const missingFilterLog = "BGPPeer names a missing filter"

// TestPolicyToR boots policy-tor (compute nodes eBGP to an FRR ToR that
// sends a default route and a bogus /32 inside node-1's block), first
// without the BGPPeer's filters:
//
//   - RFC 8212: the sessions come up, the ToR sends its two routes, and
//     nothing is exchanged in either direction: no learned route in any
//     node's kernel, nothing accepted by FRR from the nodes, no block in
//     FRR's kernel; each node's BGPStatus says why.
//   - The BGPPeer's filters are applied live (bgpfabric apply): routes flow
//     both ways, the fabric converges, and no session was reset: FRR's
//     established time and counts of established and dropped connections,
//     and the nodes' BGPStatus "since", are unchanged.
//   - The import filter takes the default and the pool's blocks and
//     rejects the /32: every node routes the other nodes' blocks and the
//     default via the ToR and nothing else; node-3, which has a DHCP
//     default route (metric 100), keeps it and installs no learned
//     default, although its BGP table holds the ToR's.
//   - The filter deleted while in use: the sessions fall back to the
//     default alone (RFC 8212: nothing in or out), the status says so, and
//     each node logs it once, also across a later policy change; created
//     again, it applies live, still without a session reset.
//   - An invalid filter and a BGPPeer with an invalid filter name are
//     refused by bgpfabric apply, naming each field; nothing is written.
func TestPolicyToR(t *testing.T) {
	ctx := context.Background()
	data, err := os.ReadFile(filepath.Join("..", "topologies", "policy-tor.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const filtersLine = "      filters: [tor-in, pools-out]\n"
	if !strings.Contains(string(data), filtersLine) {
		t.Fatalf("policy-tor.yaml has no line %q", filtersLine)
	}
	topo, err := topology.Parse("policy-tor-without-filters.yaml", []byte(strings.Replace(string(data), filtersLine, "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	f := bootTopo(t, topo)
	nodes := computeNodes(f)
	torIP := f.Plan.Node("tor").IPv4.Addr().String()

	// RFC 8212: up, but nothing exchanged.
	waitUntil(t, 60*time.Second, "eBGP sessions Established with the RFC 8212 note, and the ToR's two routes sent", func() string {
		for _, n := range nodes {
			p := nodeSession(t, f, n, torIP)
			if p == nil || p.State != api.BGPEstablished {
				return fmt.Sprintf("%s: session to the ToR %+v", n, p)
			}
			if p.Policy != router.RFC8212Note {
				return fmt.Sprintf("%s: policy note %q", n, p.Policy)
			}
		}
		for a, nb := range frrNeighbors(t, f, "tor") {
			if nb.State != "Established" || nb.sent() < 2 {
				return fmt.Sprintf("ToR: neighbour %s %s, %d prefixes sent", a, nb.State, nb.sent())
			}
		}
		return ""
	})
	// A node would send its blocks right after the session came up, and
	// the ToR has sent its routes: give both a moment to arrive.
	wait(ctx, 3*time.Second)
	blocks := blocksByNode(t, f)
	// The /32 the ToR sends lies in another node's block (IPAM picks a
	// node's block by a hash of its name: see the topology's header).
	var bogusOwner string
	for owner, bs := range blocks {
		for _, b := range bs {
			if b.Contains(bogusRoute.Addr()) {
				bogusOwner = owner
			}
		}
	}
	if bogusOwner == "" {
		t.Fatalf("%s is in no node's block (%v): fix the ToR's routerConfig in policy-tor.yaml", bogusRoute, blocks)
	}
	if nbs := frrNeighbors(t, f, "tor"); len(nbs) != len(nodes) {
		t.Fatalf("the ToR has %d neighbours, want %d: %+v", len(nbs), len(nodes), nbs)
	}
	for _, n := range nodes {
		for _, r := range routesOf(t, f, n) {
			if r.Protocol == router.ProtoRouter {
				t.Errorf("RFC 8212: %s installed a learned route: %+v", n, r)
			}
		}
	}
	for a, nb := range frrNeighbors(t, f, "tor") {
		if nb.accepted() != 0 {
			t.Errorf("RFC 8212: the ToR accepted %d prefixes from %s", nb.accepted(), a)
		}
	}
	torRoutes := prefixSet(routesOf(t, f, "tor"))
	for owner, bs := range blocks {
		for _, b := range bs {
			if torRoutes[b] {
				t.Errorf("RFC 8212: the ToR has a route to %s (block of %s)", b, owner)
			}
		}
	}
	if t.Failed() {
		return
	}
	t.Log("RFC 8212: sessions Established, nothing exchanged")

	// node-3 has a default route of another owner, as a DHCP client
	// would set it: a learned default must never displace it.
	addForeignDefault(t, f, "node-3", netip.MustParseAddr(torIP))

	before := sessionMarks(t, f, nodes, torIP)
	apply(t, f, `apiVersion: bgpfabric.io/v1
kind: BGPPeer
metadata: {name: sim-tor}
spec:
  nodeSelector: bgpfabric.io/segment == 'rack1'
  peerIP: `+torIP+`
  asNumber: 65001
  filters: [tor-in, pools-out]
`)
	converge(t, f)
	requireChecks(t, f)
	requireToRRoutes(t, f, torIP, "node-3")
	requireNoReset(t, f, before, sessionMarks(t, f, nodes, torIP))
	for _, n := range nodes {
		if p := nodeSession(t, f, n, torIP); p == nil || p.Policy != "" {
			t.Errorf("%s: with filters, the session's policy note is %+v", n, p)
		}
	}
	// node-3 accepted the ToR's default (its BGP table has it) but did not
	// install it over the DHCP client's.
	rep, err := router.FetchRoutes(ctx, router.ControlSocketPath(f.Dir(), "node-3"))
	if err != nil {
		t.Fatal(err)
	}
	var bgpDefault bool
	for _, d := range rep.BGP {
		if d.Prefix == defaultRoute {
			bgpDefault = true
		}
		if d.Prefix == bogusRoute {
			t.Errorf("node-3's BGP table has the rejected %s: %+v", bogusRoute, d)
		}
	}
	if !bgpDefault {
		t.Errorf("node-3's BGP table has no %s: the import filter did not accept it", defaultRoute)
	}
	if t.Failed() {
		return
	}

	// The filter deleted while in use.
	bgpfabric(t, f, "", "delete", "bgpfilter", "tor-in")
	const missingNote = "BGPFilter tor-in not found: default policy only"
	waitUntil(t, 30*time.Second, "the default policy alone after tor-in's deletion", func() string {
		for _, n := range nodes {
			if p := nodeSession(t, f, n, torIP); p == nil || p.Policy != missingNote {
				return fmt.Sprintf("%s: session %+v", n, p)
			}
			for _, r := range routesOf(t, f, n) {
				if r.Protocol == router.ProtoRouter {
					return fmt.Sprintf("%s still routes %s learned", n, r.Dst)
				}
			}
		}
		for a, nb := range frrNeighbors(t, f, "tor") {
			if nb.accepted() != 0 {
				return fmt.Sprintf("the ToR still has %d prefixes from %s", nb.accepted(), a)
			}
		}
		return ""
	})
	// Another policy change while the filter is missing: a reconcile that
	// must not log the missing filter again.
	apply(t, f, `apiVersion: bgpfabric.io/v1
kind: BGPFilter
metadata: {name: pools-out}
spec:
  exportV4:
  - {cidr: 192.0.2.0/24, matchOperator: Equal, action: Reject}
  - {cidr: 10.244.0.0/16, matchOperator: In, action: Accept}
`)
	apply(t, f, `apiVersion: bgpfabric.io/v1
kind: BGPFilter
metadata: {name: tor-in}
spec:
  importV4:
  - {cidr: 0.0.0.0/0, matchOperator: Equal, action: Accept}
  - {cidr: 10.244.0.0/16, matchOperator: In, prefixLength: {max: 26}, action: Accept}
  - {action: Reject}
`)
	converge(t, f)
	requireToRRoutes(t, f, torIP, "node-3")
	requireNoReset(t, f, before, sessionMarks(t, f, nodes, torIP))
	for _, n := range nodes {
		if got := countLogLines(t, f, n, missingFilterLog); got != 1 {
			t.Errorf("%s logged %q %d times, want once", n, missingFilterLog, got)
		}
	}

	// Bad input is refused at apply, naming the field, and nothing of the
	// file is written: the filter in force stays as it was.
	out := bgpfabricFails(t, f, `apiVersion: bgpfabric.io/v1
kind: BGPFilter
metadata: {name: tor-in}
spec:
  importV4:
  - {cidr: 0.0.0.0/0, matchOperator: Equal, action: Accept}
  - {cidr: 10.244.0.0/33, matchOperator: In, action: Accept}
  - {cidr: 10.244.0.0/16, matchOperator: In, prefixLength: {max: 33}, action: Accept}
  - {action: Allow}
---
apiVersion: bgpfabric.io/v1
kind: BGPPeer
metadata: {name: sim-tor}
spec:
  nodeSelector: bgpfabric.io/segment == 'rack1'
  peerIP: `+torIP+`
  asNumber: 65001
  filters: [tor-in, Pools Out]
`, "apply", "-f", "-")
	for _, field := range []string{"spec.importV4[1].cidr", "spec.importV4[2].prefixLength.max", "spec.importV4[3].action", "spec.filters[1]"} {
		if !strings.Contains(out, field) {
			t.Errorf("bgpfabric apply's error does not name %s:\n%s", field, out)
		}
	}
	r, err := f.Client().Get(ctx, api.KindBGPFilter, "", "tor-in")
	if err != nil {
		t.Fatal(err)
	}
	if rules := r.(*api.BGPFilter).Spec.ImportV4; len(rules) != 3 || rules[1].CIDR != "10.244.0.0/16" {
		t.Errorf("a refused apply changed tor-in: %+v", rules)
	}
}

// TestPolicyCommunities boots policy-communities: export filters on the
// nodes' BGPPeers tag each rack's blocks with the rack's communities. At
// rack 1's FRR ToR (vtysh), every block of rack 1 carries 65000:101 and
// the large 65000:0:1, every block of rack 2 (through the spine) 65000:102
// and neither of rack 1's. The BIRD spine's filter (a pipe that passes
// only routes with 65000:101) keeps exactly rack 1's blocks in its table
// rack1 (birdc) and its kernel table 101, while its main table has both
// racks'.
func TestPolicyCommunities(t *testing.T) {
	f := boot(t, "policy-communities")
	converge(t, f)
	requireChecks(t, f)
	blocks := blocksByNode(t, f)
	rackOf := func(node string) string { return f.Plan.Node(node).Segment }
	var rack1, all []netip.Prefix
	for owner, bs := range blocks {
		for _, b := range bs {
			all = append(all, b)
			if rackOf(owner) == "rack1" {
				rack1 = append(rack1, b)
			}
			comm, large := frrCommunities(t, f, "tor-r1", b)
			switch rackOf(owner) {
			case "rack1":
				if !slices.Contains(comm, "65000:101") || !slices.Contains(large, "65000:0:1") {
					t.Errorf("tor-r1: %s (block of %s, rack 1) has communities %v, large %v; want 65000:101 and 65000:0:1", b, owner, comm, large)
				}
			case "rack2":
				if !slices.Contains(comm, "65000:102") || slices.Contains(comm, "65000:101") || len(large) > 0 {
					t.Errorf("tor-r1: %s (block of %s, rack 2) has communities %v, large %v; want 65000:102 only", b, owner, comm, large)
				}
			}
		}
	}
	if len(rack1) == 0 || len(rack1) == len(all) {
		t.Fatalf("blocks %v: want some in rack 1 and some in rack 2", blocks)
	}
	sortPrefixes(rack1)
	sortPrefixes(all)
	if got := birdTable(t, f, "spine", "rack1"); !slices.Equal(got, rack1) {
		t.Errorf("BIRD's table rack1 holds %v, want rack 1's blocks %v", got, rack1)
	}
	if got := birdTable(t, f, "spine", "master4"); !isSubset(all, got) {
		t.Errorf("BIRD's master4 holds %v, want every block %v", got, all)
	}
	if got := kernelTable(t, f, "spine", 101); !slices.Equal(got, rack1) {
		t.Errorf("the spine's kernel table 101 holds %v, want rack 1's blocks %v", got, rack1)
	}
}

// TestPolicyReflectorCommunities boots policy-rr-communities: per-rack
// export filters on the nodes' BGPPeers to a bgpfabric reflector. Every
// node's BGP table has every other node's block with exactly the owner's
// rack community (reflected unchanged); the rack-2 nodes' import filter,
// matching rack 2's community, gives rack 2's blocks local preference
// 200, all others keep 100.
func TestPolicyReflectorCommunities(t *testing.T) {
	f := boot(t, "policy-rr-communities")
	converge(t, f)
	requireChecks(t, f)
	requireExactRoutes(t, f, viaOwner(f))
	rack := func(node string) string { return f.Plan.Node(node).Labels["rack"] }
	community := map[string]string{"r1": "65000:101", "r2": "65000:102"}
	blocks := blocksByNode(t, f)
	checked := 0
	for _, n := range computeNodes(f) {
		rep, err := router.FetchRoutes(context.Background(), router.ControlSocketPath(f.Dir(), n))
		if err != nil {
			t.Fatalf("reading %s's routes: %v", n, err)
		}
		paths := map[netip.Prefix]router.Path{}
		for _, d := range rep.BGP {
			if len(d.Paths) > 0 {
				paths[d.Prefix] = d.Paths[0]
			}
		}
		for owner, bs := range blocks {
			if owner == n {
				continue
			}
			for _, b := range bs {
				p, ok := paths[b]
				if !ok {
					t.Errorf("%s has no path to %s (block of %s)", n, b, owner)
					continue
				}
				var comms []string
				for _, c := range p.Communities {
					comms = append(comms, c.String())
				}
				if want := []string{community[rack(owner)]}; !slices.Equal(comms, want) {
					t.Errorf("%s: %s (block of %s, rack %s) has communities %v, want %v", n, b, owner, rack(owner), comms, want)
				}
				wantPref := uint32(100)
				if rack(n) == "r2" && rack(owner) == "r2" {
					wantPref = 200
				}
				if p.LocalPref != wantPref {
					t.Errorf("%s: %s (block of %s) has local preference %d, want %d", n, b, owner, p.LocalPref, wantPref)
				}
				checked++
			}
		}
	}
	if checked == 0 {
		t.Fatal("no path checked")
	}
}

// waitUntil asks check every 100 ms until it returns "" (the routers push
// no events): at the end of d the test fails with check's last answer.
func waitUntil(t *testing.T, d time.Duration, what string, check func() string) {
	t.Helper()
	start := time.Now()
	for {
		msg := check()
		if msg == "" {
			t.Logf("%s (%s)", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > d {
			t.Fatalf("%s: not after %s: %s", what, d, msg)
		}
		wait(context.Background(), 100*time.Millisecond)
	}
}

// nodeSession is a node's session to a peer, from its BGPStatus.
func nodeSession(t *testing.T, f *sim.Fabric, node, peer string) *api.BGPPeerStatus {
	t.Helper()
	r, err := f.Client().Get(context.Background(), api.KindBGPStatus, "", node)
	if err != nil {
		return nil
	}
	for _, p := range r.(*api.BGPStatus).Status.Peers {
		if p.PeerIP == peer {
			return &p
		}
	}
	return nil
}

func routesOf(t *testing.T, f *sim.Fabric, node string) []sim.Route {
	t.Helper()
	rs, err := f.Routes(node)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func prefixSet(rs []sim.Route) map[netip.Prefix]bool {
	m := map[netip.Prefix]bool{}
	for _, r := range rs {
		m[r.Dst] = true
	}
	return m
}

// requireToRRoutes checks every compute node's learned routes: exactly the
// other nodes' blocks, via their owners (the ToR passes on eBGP next hops
// on the segment it shares with both), and the default via the ToR,
// except that the nodes in foreignDefault have a DHCP default instead of
// a learned one. The bogus /32 is nowhere.
func requireToRRoutes(t *testing.T, f *sim.Fabric, tor string, foreignDefault ...string) {
	t.Helper()
	waitUntil(t, 20*time.Second, "exactly the blocks and the default learned", func() string {
		return toRRoutesDiff(t, f, tor, foreignDefault)
	})
}

func toRRoutesDiff(t *testing.T, f *sim.Fabric, tor string, foreignDefault []string) string {
	t.Helper()
	var diffs []string
	blocks := blocksByNode(t, f)
	for _, n := range computeNodes(f) {
		want := []string{}
		for owner, bs := range blocks {
			if owner == n {
				continue
			}
			for _, b := range bs {
				want = append(want, fmt.Sprintf("%s via %s", b, nodeAddr(f, owner, false)))
			}
		}
		if !contains(foreignDefault, n) {
			want = append(want, fmt.Sprintf("%s via %s", defaultRoute, tor))
		}
		var got []string
		dhcp := 0
		for _, r := range routesOf(t, f, n) {
			if r.Dst == bogusRoute {
				diffs = append(diffs, fmt.Sprintf("%s has a route to the rejected %s: %+v", n, bogusRoute, r))
			}
			switch r.Protocol {
			case router.ProtoRouter:
				gws := make([]string, len(r.Gateways))
				for i, g := range r.Gateways {
					gws[i] = g.String()
				}
				got = append(got, fmt.Sprintf("%s via %s", r.Dst, strings.Join(gws, ",")))
			case protoDHCP:
				if r.Dst == defaultRoute {
					dhcp++
				}
			}
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			diffs = append(diffs, fmt.Sprintf("%s's learned routes: %q, want %q", n, got, want))
		}
		if wantDHCP := contains(foreignDefault, n); wantDHCP != (dhcp == 1) {
			diffs = append(diffs, fmt.Sprintf("%s has %d DHCP default routes (want one: %v)", n, dhcp, wantDHCP))
		}
	}
	return strings.Join(diffs, "; ")
}

// addForeignDefault adds a default route of another owner to a node, as a
// DHCP client sets it: protocol dhcp, metric 100, via gw on eth0. It goes
// with the node's namespace.
func addForeignDefault(t *testing.T, f *sim.Fabric, node string, gw netip.Addr) {
	t.Helper()
	h := nodeNetlink(t, f, node)
	link, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	_, dst, _ := net.ParseCIDR(defaultRoute.String())
	err = h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: dst, Gw: gw.AsSlice(), Protocol: protoDHCP,
		Priority: 100, Table: unix.RT_TABLE_MAIN})
	if err != nil {
		t.Fatalf("adding a DHCP default route to %s: %v", node, err)
	}
}

// sessionMark is what shows a session reset: at the ToR (FRR), when the
// session was established and how many times a connection was
// established and dropped; at the node, its BGPStatus "since".
type sessionMark struct {
	frrEpoch             int64
	frrUp, frrDropped    int
	nodeState, nodeSince string
}

func sessionMarks(t *testing.T, f *sim.Fabric, nodes []string, tor string) map[string]sessionMark {
	t.Helper()
	nbs := frrNeighbors(t, f, "tor")
	out := map[string]sessionMark{}
	for _, n := range nodes {
		nb, ok := nbs[f.Plan.Node(n).IPv4.Addr().String()]
		if !ok {
			t.Fatalf("the ToR has no neighbour %s", n)
		}
		m := sessionMark{frrEpoch: nb.Epoch, frrUp: nb.Established, frrDropped: nb.Dropped}
		if p := nodeSession(t, f, n, tor); p != nil {
			m.nodeState, m.nodeSince = string(p.State), p.Since
		}
		out[n] = m
	}
	return out
}

// requireNoReset compares the marks of sessions. FRR derives the
// established time from the session's uptime and the clock, so it may
// move by a second without a reset: the connection counts must not move
// at all.
func requireNoReset(t *testing.T, f *sim.Fabric, before, after map[string]sessionMark) {
	t.Helper()
	for n, b := range before {
		a := after[n]
		if d := a.frrEpoch - b.frrEpoch; d >= -2 && d <= 2 {
			a.frrEpoch = b.frrEpoch
		}
		if a != b {
			t.Errorf("%s's session to the ToR was reset: before %+v, after %+v", n, b, a)
		}
	}
}

// frrNeighbor is one neighbour of bgpd's "show bgp neighbors json".
type frrNeighbor struct {
	State       string `json:"bgpState"`
	Epoch       int64  `json:"bgpTimerUpEstablishedEpoch"`
	Established int    `json:"connectionsEstablished"`
	Dropped     int    `json:"connectionsDropped"`
	AFs         map[string]struct {
		Accepted uint64 `json:"acceptedPrefixCounter"`
		Sent     uint64 `json:"sentPrefixCounter"`
	} `json:"addressFamilyInfo"`
}

func (n frrNeighbor) accepted() (c uint64) {
	for _, af := range n.AFs {
		c += af.Accepted
	}
	return c
}

func (n frrNeighbor) sent() (c uint64) {
	for _, af := range n.AFs {
		c += af.Sent
	}
	return c
}

func frrNeighbors(t *testing.T, f *sim.Fabric, node string) map[string]frrNeighbor {
	t.Helper()
	var out map[string]frrNeighbor
	if err := json.Unmarshal(vtysh(t, f, node, "show bgp neighbors json"), &out); err != nil {
		t.Fatalf("%s's neighbours: %v", node, err)
	}
	return out
}

// frrCommunities reads the communities of a prefix's best path at an FRR
// router.
func frrCommunities(t *testing.T, f *sim.Fabric, node string, p netip.Prefix) (comm, large []string) {
	t.Helper()
	var out struct {
		Paths []struct {
			Best *struct {
				Overall bool `json:"overall"`
			} `json:"bestpath"`
			Community *struct {
				List []string `json:"list"`
			} `json:"community"`
			Large *struct {
				String string `json:"string"`
			} `json:"largeCommunity"`
		} `json:"paths"`
	}
	data := vtysh(t, f, node, "show bgp ipv4 unicast "+p.String()+" json")
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s's paths of %s: %v", node, p, err)
	}
	for _, path := range out.Paths {
		if path.Best == nil || !path.Best.Overall {
			continue
		}
		if path.Community != nil {
			comm = path.Community.List
		}
		if path.Large != nil {
			large = strings.Fields(path.Large.String)
		}
		return comm, large
	}
	t.Errorf("%s has no best path to %s: %s", node, p, data)
	return nil, nil
}

// vtysh runs a command on an FRR router's bgpd through vtysh and its
// socket in the run's directory.
func vtysh(t *testing.T, f *sim.Fabric, node, cmd string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "vtysh", "--vty_socket", filepath.Join(f.Dir(), "routers", node), "-d", "bgpd", "-c", cmd).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		t.Fatalf("vtysh on %s: %q: %v", node, cmd, err)
	}
	return out
}

// birdTable lists the prefixes of a BIRD table (birdc "show route table").
func birdTable(t *testing.T, f *sim.Fabric, node, table string) []netip.Prefix {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "birdc", "-s", filepath.Join(f.Dir(), "routers", node, "bird.ctl"), "show", "route", "table", table).Output()
	if err != nil {
		t.Fatalf("birdc on %s: %v: %s", node, err, out)
	}
	var got []netip.Prefix
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if p, err := netip.ParsePrefix(fields[0]); err == nil {
			got = append(got, p)
		}
	}
	sortPrefixes(got)
	return got
}

// kernelTable lists the IPv4 destinations of a kernel routing table in a
// node's namespace.
func kernelTable(t *testing.T, f *sim.Fabric, node string, table int) []netip.Prefix {
	t.Helper()
	h := nodeNetlink(t, f, node)
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Prefix
	for _, r := range rs {
		if r.Dst == nil {
			continue
		}
		a, _ := netip.AddrFromSlice(r.Dst.IP)
		bits, _ := r.Dst.Mask.Size()
		out = append(out, netip.PrefixFrom(a.Unmap(), bits))
	}
	sortPrefixes(out)
	return out
}

func sortPrefixes(ps []netip.Prefix) {
	slices.SortFunc(ps, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
}

func isSubset(sub, set []netip.Prefix) bool {
	for _, p := range sub {
		if !slices.Contains(set, p) {
			return false
		}
	}
	return true
}

// apply applies a document through `bgpfabric apply -f -`, as an operator
// would.
func apply(t *testing.T, f *sim.Fabric, doc string) {
	t.Helper()
	bgpfabric(t, f, doc, "apply", "-f", "-")
}

// bgpfabric runs a datastore command of the binary on the fabric's
// datastore, with stdin as its input.
func bgpfabric(t *testing.T, f *sim.Fabric, stdin string, args ...string) {
	t.Helper()
	cmd := exec.Command(binary, append(args, "--datastore", f.Datastore())...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bgpfabric %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// bgpfabricFails runs a datastore command of the binary that must fail,
// and returns its output.
func bgpfabricFails(t *testing.T, f *sim.Fabric, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append(args, "--datastore", f.Datastore())...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("bgpfabric %s succeeded, want an error:\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

// countLogLines counts the lines of a node's log that contain s.
func countLogLines(t *testing.T, f *sim.Fabric, node, s string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.Dir(), "logs", node+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), s)
}
