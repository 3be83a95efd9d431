package reflector

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/testlog"
)

// Route policy on real sessions: raw speakers on loopback addresses send
// and receive UPDATEs through a running reflector.

// view is what a speaker has received: prefix -> the attributes that
// policy changes, rendered ("EOR" entries for End-of-RIB).
type view map[string]string

func renderAttrs(u *bgp.BGPUpdate) string {
	lp, med := "-", "-"
	var comm, large, path string
	for _, a := range u.PathAttributes {
		switch v := a.(type) {
		case *bgp.PathAttributeLocalPref:
			lp = fmt.Sprint(v.Value)
		case *bgp.PathAttributeMultiExitDisc:
			med = fmt.Sprint(v.Value)
		case *bgp.PathAttributeCommunities:
			for _, c := range v.Value {
				comm += fmt.Sprintf(" %d:%d", c>>16, c&0xffff)
			}
		case *bgp.PathAttributeLargeCommunities:
			for _, c := range v.Values {
				large += fmt.Sprintf(" %d:%d:%d", c.ASN, c.LocalData1, c.LocalData2)
			}
		case *bgp.PathAttributeAsPath:
			for _, s := range v.Value {
				path += fmt.Sprint(s.GetAS())
			}
		}
	}
	return fmt.Sprintf("lp=%s med=%s comm=[%s] large=[%s] path=%s", lp, med, strings.TrimSpace(comm), strings.TrimSpace(large), path)
}

// readView applies UPDATEs to v until cond holds.
func readView(t *testing.T, s *rawSpeaker, v view, cond func(view) bool) view {
	t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer s.conn.SetReadDeadline(time.Time{})
	for !cond(v) {
		u, err := s.nextUpdate(false)
		if err != nil {
			t.Fatalf("reading: %v (have %v)", err, v)
		}
		if eor, rf := u.IsEndOfRib(); eor {
			v["EOR "+rf.String()] = ""
			continue
		}
		for _, w := range u.WithdrawnRoutes {
			delete(v, w.String())
		}
		r := renderAttrs(u)
		for _, n := range u.NLRI {
			v[n.String()] = r
		}
		for _, a := range u.PathAttributes {
			switch m := a.(type) {
			case *bgp.PathAttributeMpReachNLRI:
				for _, n := range m.Value {
					v[n.String()] = r
				}
			case *bgp.PathAttributeMpUnreachNLRI:
				for _, n := range m.Value {
					delete(v, n.String())
				}
			}
		}
	}
	return v
}

func has(keys ...string) func(view) bool {
	return func(v view) bool {
		for _, k := range keys {
			if _, ok := v[k]; !ok {
				return false
			}
		}
		return true
	}
}

func hasNot(keys ...string) func(view) bool {
	return func(v view) bool {
		for _, k := range keys {
			if _, ok := v[k]; ok {
				return false
			}
		}
		return true
	}
}

// settle makes sure that mon has received everything the reflector
// derived from what was sent before: prober announces p1 and, once mon
// has it (so that its flush is done), p2, which a later flush carries.
// Both are left in v.
func settle(t *testing.T, prober, mon *rawSpeaker, v view, nh, p1, p2 string) view {
	t.Helper()
	prober.send(t, ipv4Update(nh, pfx(p1)))
	readView(t, mon, v, has(p1))
	prober.send(t, ipv4Update(nh, pfx(p2)))
	return readView(t, mon, v, has(p2))
}

func eors(v view) bool { return has("EOR ipv4-unicast", "EOR ipv6-unicast")(v) }

func largeComm(asn, d1, d2 uint32) bgp.PathAttributeInterface {
	return bgp.NewPathAttributeLargeCommunities([]*bgp.LargeCommunity{{ASN: asn, LocalData1: d1, LocalData2: d2}})
}

func stdComm(asn, v uint32) bgp.PathAttributeInterface {
	return bgp.NewPathAttributeCommunities([]uint32{asn<<16 | v})
}

func filter(name string, spec api.BGPFilterSpec) *api.BGPFilter {
	return &api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: name}, Spec: spec}
}

func neighborStatus(t *testing.T, r *Reflector, addr string) NeighborStatus {
	t.Helper()
	for _, n := range r.Neighbors() {
		if n.Address == addr {
			return n
		}
	}
	t.Fatalf("no neighbour %s", addr)
	return NeighborStatus{}
}

const (
	cliA = "127.0.0.2"
	cliB = "127.0.0.3"
	cliC = "127.0.0.4"
	ext  = "127.0.0.5"
)

// TestImportPolicy: a client's import filter, rule by rule (In, Equal,
// NotIn, prefix length, standard and large communities), decides what
// enters the RIB and so what another client receives, and its set
// actions change what is reflected.
func TestImportPolicy(t *testing.T) {
	const A, R = api.FilterAccept, api.FilterReject
	cfg := testConfig(cliA, cliB)
	cfg.Policy = PolicyConfig{
		Filters: []*api.BGPFilter{filter("in", api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{
			{CIDR: "10.9.0.0/16", MatchOperator: api.MatchIn, Action: R},
			{CIDR: "10.2.0.0/24", MatchOperator: api.MatchEqual, Action: A, LocalPref: ptrTo(uint32(250)), MED: ptrTo(uint32(33)),
				AddCommunities: []string{"65000:7", "65000:1:2"}},
			{Communities: []string{"65000:666"}, Action: R},
			{Communities: []string{"65000:5:5"}, Action: A, LocalPref: ptrTo(uint32(50))},
			{PrefixLength: &api.BGPFilterPrefixLength{Min: ptrTo(28)}, Action: R},
			{CIDR: "10.3.0.0/16", MatchOperator: api.MatchNotIn, Action: R},
		}})},
		Neighbors: map[netip.Addr][]string{netip.MustParseAddr(cliA): {"in"}},
	}
	r, addr := startReflector(t, cfg)
	a := connect(t, addr, cliA, opts("10.0.0.2"))
	b := connect(t, addr, cliB, opts("10.0.0.3"))
	readView(t, a, view{}, eors)
	got := readView(t, b, view{}, eors)
	a.send(t,
		ipv4Update("192.0.2.2", pfx("10.9.1.0/24")),                                       // In: reject
		ipv4Update("192.0.2.2", pfx("10.2.0.0/24")),                                       // Equal: accept, changed
		ipv4Update("192.0.2.2", pfx("10.3.1.0/24"), stdComm(65000, 666)),                  // community: reject
		ipv4Update("192.0.2.2", pfx("10.3.4.0/24"), largeComm(65000, 5, 5)),               // large community: accept, LP 50
		ipv4Update("192.0.2.2", pfx("10.3.2.0/28")),                                       // prefix length: reject
		ipv4Update("192.0.2.2", pfx("10.4.0.0/24")),                                       // NotIn: reject
		ipv4Update("192.0.2.2", pfx("10.3.3.0/24"), bgp.NewPathAttributeMultiExitDisc(9)), // default: accept
	)
	settle(t, a, b, got, "192.0.2.2", "10.3.100.0/24", "10.3.101.0/24")
	want := view{
		"EOR ipv4-unicast": "", "EOR ipv6-unicast": "",
		"10.2.0.0/24":   "lp=250 med=33 comm=[65000:7] large=[65000:1:2] path=",
		"10.3.4.0/24":   "lp=50 med=- comm=[] large=[65000:5:5] path=",
		"10.3.3.0/24":   "lp=100 med=9 comm=[] large=[] path=",
		"10.3.100.0/24": "lp=100 med=- comm=[] large=[] path=",
		"10.3.101.0/24": "lp=100 med=- comm=[] large=[] path=",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("client B's routes (-want +got):\n%s", d)
	}
	st := neighborStatus(t, r, cliA)
	if st.PrefixesReceived != 9 || st.PrefixesIn != 5 {
		t.Errorf("client A: %d received, %d accepted; want 9, 5", st.PrefixesReceived, st.PrefixesIn)
	}
}

// TestExportPolicyPerClient: an export filter applies to its client only
// (its own update group); the other clients get everything unchanged.
func TestExportPolicyPerClient(t *testing.T) {
	cfg := testConfig(cliA, cliB, cliC)
	cfg.Policy = PolicyConfig{
		Filters: []*api.BGPFilter{filter("out", api.BGPFilterSpec{ExportV4: []api.BGPFilterRule{
			{CIDR: "10.5.0.0/16", MatchOperator: api.MatchIn, Action: api.FilterAccept, AddCommunities: []string{"65000:55"}, MED: ptrTo(uint32(5))},
			{Action: api.FilterReject},
		}})},
		Neighbors: map[netip.Addr][]string{netip.MustParseAddr(cliB): {"out"}},
	}
	r, addr := startReflector(t, cfg)
	a := connect(t, addr, cliA, opts("10.0.0.2"))
	b := connect(t, addr, cliB, opts("10.0.0.3"))
	c := connect(t, addr, cliC, opts("10.0.0.4"))
	readView(t, a, view{}, eors)
	vb := readView(t, b, view{}, eors)
	vc := readView(t, c, view{}, eors)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.5.1.0/24", "10.6.1.0/24")))
	settle(t, a, b, vb, "192.0.2.2", "10.5.100.0/24", "10.5.101.0/24")
	readView(t, c, vc, has("10.5.1.0/24", "10.6.1.0/24", "10.5.100.0/24", "10.5.101.0/24"))
	tagged := "lp=100 med=5 comm=[65000:55] large=[] path="
	if d := cmp.Diff(view{"EOR ipv4-unicast": "", "EOR ipv6-unicast": "",
		"10.5.1.0/24": tagged, "10.5.100.0/24": tagged, "10.5.101.0/24": tagged}, vb); d != "" {
		t.Errorf("filtered client B (-want +got):\n%s", d)
	}
	plain := "lp=100 med=- comm=[] large=[] path="
	if d := cmp.Diff(view{"EOR ipv4-unicast": "", "EOR ipv6-unicast": "",
		"10.5.1.0/24": plain, "10.6.1.0/24": plain, "10.5.100.0/24": plain, "10.5.101.0/24": plain}, vc); d != "" {
		t.Errorf("unfiltered client C (-want +got):\n%s", d)
	}
	if s, _ := r.RIBStats(t.Context()); s.UpdateGroups != 2 {
		t.Errorf("%d update groups, want 2 (A and C share one, B has its own)", s.UpdateGroups)
	}
}

// TestPolicyLiveChange: changing filters re-evaluates the received routes
// (import, from the Adj-RIB-In) and re-advertises the difference (export:
// withdraw what is now rejected, announce what is now accepted), with no
// session reset.
func TestPolicyLiveChange(t *testing.T) {
	reject := func(cidr string) api.BGPFilterSpec {
		return api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{{CIDR: cidr, MatchOperator: api.MatchIn, Action: api.FilterReject}},
			ExportV4: []api.BGPFilterRule{{CIDR: cidr, MatchOperator: api.MatchIn, Action: api.FilterReject}}}
	}
	pc := func(in, out string) PolicyConfig {
		return PolicyConfig{
			Filters: []*api.BGPFilter{filter("in", reject(in)), filter("out", reject(out))},
			Neighbors: map[netip.Addr][]string{
				netip.MustParseAddr(cliA): {"in"},  // import applies (A's routes)
				netip.MustParseAddr(cliB): {"out"}, // export applies (what B gets)
			},
		}
	}
	cfg := testConfig(cliA, cliB, cliC)
	cfg.Policy = pc("10.6.0.0/16", "10.7.0.0/16")
	r, addr := startReflector(t, cfg)
	a := connect(t, addr, cliA, opts("10.0.0.2"))
	b := connect(t, addr, cliB, opts("10.0.0.3"))
	c := connect(t, addr, cliC, opts("10.0.0.4"))
	readView(t, a, view{}, eors)
	vb := readView(t, b, view{}, eors)
	vc := readView(t, c, view{}, eors)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.6.1.0/24", "10.7.1.0/24", "10.8.1.0/24")))
	settle(t, a, b, vb, "192.0.2.2", "10.9.1.0/24", "10.9.2.0/24")
	readView(t, c, vc, has("10.9.2.0/24"))
	for name, v := range map[string]view{"B": vb, "C": vc} {
		if _, ok := v["10.6.1.0/24"]; ok {
			t.Errorf("%s got 10.6.1.0/24, which A's import filter rejects", name)
		}
	}
	if _, ok := vb["10.7.1.0/24"]; ok {
		t.Error("B got 10.7.1.0/24, which its export filter rejects")
	}
	if !has("10.7.1.0/24", "10.8.1.0/24")(vc) || !has("10.8.1.0/24")(vb) {
		t.Fatalf("accepted routes missing: B %v, C %v", vb, vc)
	}
	since := map[string]time.Time{}
	for _, n := range []string{cliA, cliB, cliC} {
		since[n] = neighborStatus(t, r, n).Since
	}

	// Import: A's filter now rejects 10.8/16 instead of 10.6/16.
	if err := r.SetPolicy(pc("10.8.0.0/16", "10.7.0.0/16")); err != nil {
		t.Fatal(err)
	}
	readView(t, c, vc, func(v view) bool { return has("10.6.1.0/24")(v) && hasNot("10.8.1.0/24")(v) })
	readView(t, b, vb, func(v view) bool { return has("10.6.1.0/24")(v) && hasNot("10.8.1.0/24")(v) })
	// Export: B's filter now rejects 10.6/16 instead of 10.7/16.
	if err := r.SetPolicy(pc("10.8.0.0/16", "10.6.0.0/16")); err != nil {
		t.Fatal(err)
	}
	readView(t, b, vb, func(v view) bool { return has("10.7.1.0/24")(v) && hasNot("10.6.1.0/24")(v) })
	checkOut(t, r, cliB, vb)
	// Nothing else changed for C: a probe arrives with nothing before it.
	before := len(vc)
	settle(t, a, c, vc, "192.0.2.2", "10.9.3.0/24", "10.9.4.0/24")
	if len(vc) != before+2 {
		t.Errorf("C's view changed beyond the probes: %v", vc)
	}
	for _, n := range []string{cliA, cliB, cliC} {
		st := neighborStatus(t, r, n)
		if st.State != StateEstablished || !st.Since.Equal(since[n]) {
			t.Errorf("%s: %v since %v, want Established since %v (no reset)", n, st.State, st.Since, since[n])
		}
	}
}

// TestRFC8212: an eBGP neighbour without filters exchanges nothing (its
// status says why); a filter applied live lets exactly what it accepts
// through, both ways, without a reset; ebgpDefaultPolicy Accept lets
// everything through.
func TestRFC8212(t *testing.T) {
	cfg := testConfig(cliA, cliC)
	cfg.Neighbors = append(cfg.Neighbors, NeighborConfig{Address: netip.MustParseAddr(ext), ASN: 65100, Passive: true})
	r, addr := startReflector(t, cfg)
	a := connect(t, addr, cliA, opts("10.0.0.2"))
	c := connect(t, addr, cliC, opts("10.0.0.4"))
	e := connect(t, addr, ext, speakerOpts{asn: 65100, id: "10.0.0.5", hold: 90})
	va := readView(t, a, view{}, eors)
	readView(t, c, view{}, eors)
	ve := readView(t, e, view{}, eors)
	e.send(t, ebgpUpdate("192.0.2.5", []uint32{65100}, "10.10.1.0/24", "10.12.1.0/24"))
	waitFor(t, t.Context(), "E's routes received", func() bool { return neighborStatus(t, r, ext).PrefixesReceived == 2 })
	a.send(t, ipv4Update("192.0.2.2", pfx("10.11.1.0/24", "10.13.1.0/24")))
	settle(t, c, a, va, "192.0.2.4", "10.99.1.0/24", "10.99.2.0/24")
	if hasKey(va, "10.10.1.0/24") || hasKey(va, "10.12.1.0/24") {
		t.Errorf("A got E's routes under RFC 8212: %v", va)
	}
	st := neighborStatus(t, r, ext)
	if st.PrefixesOut != 0 || st.PrefixesIn != 0 || st.Policy != RFC8212Note {
		t.Errorf("E under RFC 8212: %d in, %d out, policy %q; want 0, 0, %q", st.PrefixesIn, st.PrefixesOut, st.Policy, RFC8212Note)
	}
	since := st.Since

	err := r.SetPolicy(PolicyConfig{
		Filters: []*api.BGPFilter{filter("e", api.BGPFilterSpec{
			ImportV4: []api.BGPFilterRule{{CIDR: "10.10.0.0/16", MatchOperator: api.MatchIn, Action: api.FilterAccept}},
			ExportV4: []api.BGPFilterRule{{CIDR: "10.11.0.0/16", MatchOperator: api.MatchIn, Action: api.FilterAccept}},
		})},
		Neighbors: map[netip.Addr][]string{netip.MustParseAddr(ext): {"e"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	readView(t, a, va, has("10.10.1.0/24"))
	readView(t, e, ve, has("10.11.1.0/24"))
	if hasKey(ve, "10.13.1.0/24") || hasKey(ve, "10.99.1.0/24") {
		t.Errorf("E got routes its filter rejects: %v", ve)
	}
	if got := ve["10.11.1.0/24"]; got != "lp=- med=- comm=[] large=[] path=[65000]" {
		t.Errorf("E's route: %s", got)
	}

	if err := r.SetPolicy(PolicyConfig{EBGPDefaultAccept: true}); err != nil {
		t.Fatal(err)
	}
	readView(t, a, va, has("10.12.1.0/24"))
	readView(t, e, ve, has("10.13.1.0/24", "10.99.1.0/24"))
	st = neighborStatus(t, r, ext)
	if st.State != StateEstablished || !st.Since.Equal(since) || st.Policy != "" {
		t.Errorf("E: %v since %v policy %q, want Established since %v, no note", st.State, st.Since, st.Policy, since)
	}
}

func hasKey(v view, k string) bool { _, ok := v[k]; return ok }

// syncBuffer collects log output from several goroutines.
type syncBuffer = testlog.Buffer

// TestDeletedFilterFallback: a filter deleted while in use leaves its
// neighbours with the documented default alone (eBGP: RFC 8212, nothing
// in or out; iBGP: everything), logged once per neighbour, shown in the
// status; creating it again restores it.
func TestDeletedFilterFallback(t *testing.T) {
	var logs syncBuffer
	cfg := testConfig(cliA, cliB)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.Neighbors = append(cfg.Neighbors, NeighborConfig{Address: netip.MustParseAddr(ext), ASN: 65100, Passive: true})
	eFilter := filter("e", api.BGPFilterSpec{
		ImportV4: []api.BGPFilterRule{{Action: api.FilterAccept}},
		ExportV4: []api.BGPFilterRule{{Action: api.FilterAccept}},
	})
	bFilter := filter("b", api.BGPFilterSpec{ExportV4: []api.BGPFilterRule{{CIDR: "10.10.0.0/16", MatchOperator: api.MatchIn, Action: api.FilterReject}}})
	names := map[netip.Addr][]string{netip.MustParseAddr(ext): {"e"}, netip.MustParseAddr(cliB): {"b"}}
	cfg.Policy = PolicyConfig{Filters: []*api.BGPFilter{eFilter, bFilter}, Neighbors: names}
	r, addr := startReflector(t, cfg)
	a := connect(t, addr, cliA, opts("10.0.0.2"))
	b := connect(t, addr, cliB, opts("10.0.0.3"))
	e := connect(t, addr, ext, speakerOpts{asn: 65100, id: "10.0.0.5", hold: 90})
	va := readView(t, a, view{}, eors)
	vb := readView(t, b, view{}, eors)
	ve := readView(t, e, view{}, eors)
	e.send(t, ebgpUpdate("192.0.2.5", []uint32{65100}, "10.10.1.0/24"))
	a.send(t, ipv4Update("192.0.2.2", pfx("10.11.1.0/24", "10.10.2.0/24")))
	readView(t, a, va, has("10.10.1.0/24"))
	readView(t, e, ve, has("10.11.1.0/24"))
	settle(t, a, b, vb, "192.0.2.2", "10.99.1.0/24", "10.99.2.0/24")
	if hasKey(vb, "10.10.1.0/24") || hasKey(vb, "10.10.2.0/24") {
		t.Fatalf("B got routes in 10.10.0.0/16, which its export filter rejects: %v", vb)
	}

	deleted := PolicyConfig{Neighbors: names} // both filters gone, still named
	for range 2 {
		if err := r.SetPolicy(deleted); err != nil {
			t.Fatal(err)
		}
	}
	readView(t, a, va, hasNot("10.10.1.0/24")) // eBGP: RFC 8212, E's route withdrawn
	readView(t, e, ve, hasNot("10.11.1.0/24")) // and ours from E
	// iBGP: accept, B gets A's route in 10.10/16 now (E's is gone).
	readView(t, b, vb, func(v view) bool { return has("10.10.2.0/24")(v) && hasNot("10.10.1.0/24")(v) })
	checkOut(t, r, cliB, vb)
	if got := strings.Count(logs.String(), "missing BGPFilter"); got != 2 {
		t.Errorf("%d log lines about missing filters, want 2 (one per neighbour):\n%s", got, logs.String())
	}
	if st := neighborStatus(t, r, ext); !strings.Contains(st.Policy, "BGPFilter e not found") {
		t.Errorf("E's policy note %q", st.Policy)
	}
	cfg.Policy.Neighbors = names
	if err := r.SetPolicy(cfg.Policy); err != nil { // created again
		t.Fatal(err)
	}
	readView(t, a, va, has("10.10.1.0/24"))
	readView(t, b, vb, hasNot("10.10.2.0/24"))
	checkOut(t, r, cliB, vb)
	if st := neighborStatus(t, r, ext); st.Policy != "" {
		t.Errorf("E's policy note %q after the filter is back", st.Policy)
	}
}

// TestRangePolicy: a dynamic neighbour gets its range's filters; a
// configured neighbour whose address is inside the range keeps its own
// (none here), as it keeps its own session settings.
func TestRangePolicy(t *testing.T) {
	cfg := testConfig("127.0.3.1", cliB)
	cfg.DynamicNeighbors = []DynamicNeighbor{{Prefix: netip.MustParsePrefix("127.0.3.0/29"), ASN: testASN, Client: true}}
	cfg.Policy = PolicyConfig{
		Filters: []*api.BGPFilter{filter("in", api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{
			{CIDR: "10.66.0.0/16", MatchOperator: api.MatchIn, Action: api.FilterReject}}})},
		Ranges: map[netip.Prefix][]string{netip.MustParsePrefix("127.0.3.0/29"): {"in"}},
	}
	_, addr := startReflector(t, cfg)
	conf := connect(t, addr, "127.0.3.1", opts("10.0.3.1"))
	dyn := connect(t, addr, "127.0.3.2", opts("10.0.3.2"))
	b := connect(t, addr, cliB, opts("10.0.0.3"))
	readView(t, conf, view{}, eors)
	readView(t, dyn, view{}, eors)
	vb := readView(t, b, view{}, eors)
	conf.send(t, ipv4Update("192.0.2.1", pfx("10.66.1.0/24")))
	readView(t, b, vb, has("10.66.1.0/24"))
	dyn.send(t, ipv4Update("192.0.2.2", pfx("10.66.2.0/24")))
	settle(t, dyn, b, vb, "192.0.2.2", "10.99.1.0/24", "10.99.2.0/24")
	if hasKey(vb, "10.66.2.0/24") {
		t.Errorf("the dynamic neighbour's 10.66.2.0/24 passed its range's filter: %v", vb)
	}
}

// TestImportPolicyIPv6: the IPv6 lists apply to IPv6 routes (and the IPv4
// ones do not).
func TestImportPolicyIPv6(t *testing.T) {
	cfg := testConfig(cliA, cliB)
	cfg.Policy = PolicyConfig{
		Filters: []*api.BGPFilter{filter("in6", api.BGPFilterSpec{
			ImportV4: []api.BGPFilterRule{{Action: api.FilterReject}},
			ImportV6: []api.BGPFilterRule{
				{CIDR: "fd00:9::/32", MatchOperator: api.MatchIn, Action: api.FilterReject},
				{CIDR: "::/0", MatchOperator: api.MatchEqual, Action: api.FilterAccept, LocalPref: ptrTo(uint32(300))},
			}})},
		Neighbors: map[netip.Addr][]string{netip.MustParseAddr(cliA): {"in6"}},
	}
	_, addr := startReflector(t, cfg)
	a := connect(t, addr, cliA, opts("10.0.0.2"))
	b := connect(t, addr, cliB, opts("10.0.0.3"))
	readView(t, a, view{}, eors)
	vb := readView(t, b, view{}, eors)
	a.send(t, ipv6Update("fd00::2", "fd00:9:1::/48"), ipv6Update("fd00::2", "::/0"), ipv6Update("fd00::2", "fd00:1::/48"),
		ipv4Update("192.0.2.2", pfx("10.1.0.0/24")), ipv6Update("fd00::2", "fd00:2::/48"))
	readView(t, b, vb, has("fd00:2::/48"))
	a.send(t, ipv6Update("fd00::2", "fd00:3::/48")) // after the first batch's flush
	readView(t, b, vb, has("fd00:3::/48"))
	if hasKey(vb, "fd00:9:1::/48") || hasKey(vb, "10.1.0.0/24") {
		t.Errorf("rejected routes reflected: %v", vb)
	}
	if got := vb["::/0"]; got != "lp=300 med=- comm=[] large=[] path=" {
		t.Errorf("::/0: %q, want LOCAL_PREF 300", got)
	}
	if got := vb["fd00:1::/48"]; got != "lp=100 med=- comm=[] large=[] path=" {
		t.Errorf("fd00:1::/48: %q", got)
	}
}

// TestExportPolicyAddPath: with add-path, the export policy decides path
// by path (here by community: A's path is rejected, B's sent); a live
// change sends the difference under each path's identifier.
func TestExportPolicyAddPath(t *testing.T) {
	cfg := testConfig(cliA, cliB, cliC)
	cfg.Neighbors[2].AddPath = true
	noBlackhole := filter("out", api.BGPFilterSpec{ExportV4: []api.BGPFilterRule{{Communities: []string{"65000:666"}, Action: api.FilterReject}}})
	cfg.Policy = PolicyConfig{Filters: []*api.BGPFilter{noBlackhole}, Neighbors: map[netip.Addr][]string{netip.MustParseAddr(cliC): {"out"}}}
	r, addr := startReflector(t, cfg)
	a := connect(t, addr, cliA, opts("10.0.0.2"))
	b := connect(t, addr, cliB, opts("10.0.0.3"))
	c := connect(t, addr, cliC, speakerOpts{asn: testASN, id: "10.0.0.4", hold: 90, addPath: true})
	collect(t, a, false, hasEORs)
	collect(t, b, false, hasEORs)
	view := collect(t, c, true, hasEORs)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.8.0.0/24"), stdComm(65000, 666), bgp.NewPathAttributeLocalPref(50))) // not the best: the second path
	b.send(t, ipv4Update("192.0.2.3", pfx("10.8.0.0/24")))
	nextHops := func(m map[string]route) map[string]bool {
		out := map[string]bool{}
		for k, rt := range m {
			if strings.HasPrefix(k, "10.8.0.0/24") {
				out[rt.NextHop] = true
			}
		}
		return out
	}
	collectInto(t, c, true, view, func(m map[string]route) bool { return nextHops(m)["192.0.2.3"] })
	// A probe from B after both: A's path, had it been sent, is before it.
	b.send(t, ipv4Update("192.0.2.3", pfx("10.99.1.0/24")))
	collectInto(t, c, true, view, hasKeys("10.99.1.0/24#"+fmt.Sprint(view[firstKey(view, "10.8.0.0/24")].PathID)))
	if got := nextHops(view); got["192.0.2.2"] || !got["192.0.2.3"] {
		t.Fatalf("add-path client's paths of 10.8.0.0/24 by next hop %v: want B's (192.0.2.3) only", got)
	}
	since := neighborStatus(t, r, cliC).Since
	if err := r.SetPolicy(PolicyConfig{}); err != nil { // the filter no longer applies to C
		t.Fatal(err)
	}
	collectInto(t, c, true, view, func(m map[string]route) bool { h := nextHops(m); return h["192.0.2.2"] && h["192.0.2.3"] })
	if st := neighborStatus(t, r, cliC); !st.Since.Equal(since) || st.State != StateEstablished {
		t.Errorf("C reset: %v since %v", st.State, st.Since)
	}
	if err := r.SetPolicy(cfg.Policy); err != nil { // and again: A's path withdrawn
		t.Fatal(err)
	}
	collectInto(t, c, true, view, func(m map[string]route) bool { h := nextHops(m); return !h["192.0.2.2"] && h["192.0.2.3"] })
}

// firstKey returns the key of view that starts with prefix ("" if none).
func firstKey(view map[string]route, prefix string) string {
	for k := range view {
		if strings.HasPrefix(k, prefix) {
			return k
		}
	}
	return ""
}

// checkOut checks that a neighbour's advertised-prefix counter matches
// what it holds (no withdrawal of what it never had, no duplicate).
func checkOut(t *testing.T, r *Reflector, addr string, v view) {
	t.Helper()
	n := 0
	for k := range v {
		if !strings.HasPrefix(k, "EOR ") {
			n++
		}
	}
	if got := neighborStatus(t, r, addr).PrefixesOut; got != int64(n) {
		t.Errorf("%s: %d prefixes advertised by the counter, %d received", addr, got, n)
	}
}

// TestGracefulShutdownHonoured: a path carrying GRACEFUL_SHUTDOWN
// (65535:0, RFC 8326) gets LOCAL_PREF 0 on import, so another client's
// path for the prefix wins (without it, A's path would win on its lower
// router ID); alone, it is reflected with LOCAL_PREF 0.
func TestGracefulShutdownHonoured(t *testing.T) {
	_, addr := startReflector(t, testConfig(cliA, cliB, cliC))
	a := connect(t, addr, cliA, opts("10.0.0.2"))
	b := connect(t, addr, cliB, opts("10.0.0.3"))
	c := connect(t, addr, cliC, opts("10.0.0.4"))
	readView(t, a, view{}, eors)
	readView(t, b, view{}, eors)
	got := readView(t, c, view{}, eors)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.7.0.0/24", "10.7.1.0/24"), stdComm(65535, 0)))
	got = readView(t, c, got, has("10.7.0.0/24", "10.7.1.0/24"))
	if want := "lp=0 med=- comm=[65535:0] large=[] path="; got["10.7.1.0/24"] != want {
		t.Errorf("a draining client's path at C: %q, want %q", got["10.7.1.0/24"], want)
	}
	b.send(t, ipv4Update("192.0.2.3", pfx("10.7.0.0/24")))
	got = readView(t, c, got, func(v view) bool { return v["10.7.0.0/24"] == "lp=100 med=- comm=[] large=[] path=" })
	if want := "lp=0 med=- comm=[65535:0] large=[] path="; got["10.7.1.0/24"] != want {
		t.Errorf("10.7.1.0/24 at C: %q, want %q", got["10.7.1.0/24"], want)
	}
}
