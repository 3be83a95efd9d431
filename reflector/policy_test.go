package reflector

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/routepolicy"
)

func ptrTo[T any](v T) *T { return &v }

// randomRule returns a valid rule of family v6 built from a few CIDRs
// near the routes randomPrefix makes, so that all outcomes occur.
func randomRule(rng *rand.Rand, v6, inHeavy bool) api.BGPFilterRule {
	cidrs4 := []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "0.0.0.0/0", "10.1.2.128/25", "192.168.0.0/16", "8.0.0.0/5", "9.0.0.0/8"}
	cidrs6 := []string{"fd00::/8", "fd00:1::/32", "fd00:1:2::/48", "::/0", "fd00:1:2:3::/64", "fc00::/7"}
	cidrs, maxBits := cidrs4, 32
	if v6 {
		cidrs, maxBits = cidrs6, 128
	}
	r := api.BGPFilterRule{Action: api.FilterAccept}
	if rng.IntN(2) == 0 {
		r.Action = api.FilterReject
	}
	minBits := 0
	if rng.IntN(4) != 0 {
		r.CIDR = cidrs[rng.IntN(len(cidrs))]
		minBits = netip.MustParsePrefix(r.CIDR).Bits()
		r.MatchOperator = []string{api.MatchIn, api.MatchNotIn, api.MatchEqual, api.MatchNotEqual}[rng.IntN(4)]
		if inHeavy && rng.IntN(10) != 0 {
			r.MatchOperator = api.MatchIn // long runs of In rules: the indexed segments
		}
	}
	if r.MatchOperator != api.MatchEqual && r.MatchOperator != api.MatchNotEqual && rng.IntN(2) == 0 {
		lo := minBits + rng.IntN(maxBits-minBits+1)
		hi := lo + rng.IntN(maxBits-lo+1)
		r.PrefixLength = &api.BGPFilterPrefixLength{Min: ptrTo(lo), Max: ptrTo(hi)}
	}
	if rng.IntN(3) == 0 {
		r.Communities = []string{[]string{"65000:1", "65000:2", "65000:1:1"}[rng.IntN(3)]}
	}
	if rng.IntN(3) == 0 {
		r.Source = api.FilterSourceRemotePeers
	}
	return r
}

func randomPrefix(rng *rand.Rand, v6 bool) netip.Prefix {
	if v6 {
		b := [16]byte{0xfd, 0, 0, byte(rng.IntN(2)), 0, byte(rng.IntN(3)), 0, byte(rng.IntN(4)), byte(rng.IntN(256))}
		if rng.IntN(10) == 0 {
			b[0] = 0x20
		}
		return netip.PrefixFrom(netip.AddrFrom16(b), rng.IntN(129)).Masked()
	}
	b := [4]byte{10, byte(rng.IntN(3)), byte(rng.IntN(4)), byte(rng.IntN(256))}
	switch rng.IntN(10) {
	case 0:
		b[0], b[1] = 192, 168
	case 1:
		b[0] = byte(8 + rng.IntN(8))
	}
	return netip.PrefixFrom(netip.AddrFrom4(b), rng.IntN(33)).Masked()
}

// TestXChainMatchesReference: the compiled chains decide every route as
// routepolicy's reference evaluator does (accept or reject, and which
// rule), over random rules, chains of filters and routes of both
// families, with communities.
func TestXChainMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	indexed := 0
	defer func() {
		if indexed < 100 {
			t.Errorf("only %d indexed segments: the index is not exercised", indexed)
		}
	}()
	comms := []string{"65000:1", "65000:2", "65000:1:1", "65000:3"}
	for iter := range 600 {
		var fs []*api.BGPFilter
		var names []string
		inHeavy := iter%2 == 1
		n := 6
		if inHeavy {
			n = 16
		}
		for i := range 1 + rng.IntN(3) {
			f := &api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("f%d", i)}}
			for range rng.IntN(n) {
				f.Spec.ImportV4 = append(f.Spec.ImportV4, randomRule(rng, false, inHeavy))
			}
			for range rng.IntN(n) {
				f.Spec.ImportV6 = append(f.Spec.ImportV6, randomRule(rng, true, inHeavy))
			}
			fs = append(fs, f)
			names = append(names, f.Name)
		}
		reject := rng.IntN(2) == 0
		var ps policyState
		if err := ps.setConfig(PolicyConfig{Filters: fs, EBGPDefaultAccept: !reject}); err != nil {
			t.Fatal(err)
		}
		ref, _ := routepolicy.Resolve(names, ps.filters, !reject)
		x, _ := ps.chain(routepolicy.Import, ref.Import, []string{fmt.Sprint(iter)})
		for _, segs := range x.segsOrNil() {
			for _, s := range segs {
				if s.idx != nil {
					indexed++
				}
			}
		}
		for range 50 {
			v6 := rng.IntN(2) == 0
			p := randomPrefix(rng, v6)
			var rc []api.Community
			var list []bgp.PathAttributeInterface
			var std []uint32
			var large []*bgp.LargeCommunity
			for _, c := range comms {
				if rng.IntN(3) == 0 {
					ac, _ := api.ParseCommunity(c)
					rc = append(rc, ac)
					if ac.Large {
						large = append(large, &bgp.LargeCommunity{ASN: ac.Global, LocalData1: ac.Local1, LocalData2: ac.Local2})
					} else {
						std = append(std, ac.Global<<16|ac.Local1)
					}
				}
			}
			if std != nil {
				list = append(list, bgp.NewPathAttributeCommunities(std))
			}
			if large != nil {
				list = append(list, bgp.NewPathAttributeLargeCommunities(large))
			}
			_, want := ref.Import.Evaluate(routepolicy.Import, routepolicy.Route{Prefix: p, FromPeer: true, Communities: rc})
			f := famV4
			if v6 {
				f = famV6
			}
			_, got := x.eval(f, keyOf(p), &attrs{list: list})
			if got != want {
				t.Fatalf("iteration %d: %s with %v: compiled chain accepts=%v, reference %v\nfilters: %+v", iter, p, rc, got, want, fs)
			}
		}
	}
}

// TestPolicyModify: an Accept rule's changes, on import (no prepend) and
// on export to eBGP (prepend).
func TestPolicyModify(t *testing.T) {
	f := &api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: "m"}, Spec: api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{{
		Action: api.FilterAccept, AddCommunities: []string{"65000:7", "65000:1:2"}, LocalPref: ptrTo(uint32(250)),
		MED: ptrTo(uint32(33)), PrependASPath: &api.BGPFilterASPathPrepend{ASNumber: 65009, Repeat: 2},
	}}}}
	var ps policyState
	if err := ps.setConfig(PolicyConfig{Filters: []*api.BGPFilter{f}}); err != nil {
		t.Fatal(err)
	}
	pol, _ := routepolicy.Resolve([]string{"m"}, ps.filters, true)
	x, _ := ps.chain(routepolicy.Import, pol.Import, []string{"1"})
	a := newAttrs(attrsInput{list: []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{65100})}),
		bgp.NewPathAttributeCommunities([]uint32{65000<<16 | 7}),
	}, nextHop: netip.MustParseAddr("192.0.2.1"), fromEBGP: true})
	rule, ok := x.eval(famV4, keyOf(netip.MustParsePrefix("10.0.0.0/24")), a)
	if !ok || rule == nil {
		t.Fatalf("eval = %v, %v", rule, ok)
	}
	render := func(a *attrs) string {
		s := fmt.Sprintf("lp=%d med=%d", a.localPref, a.med)
		for _, p := range a.list {
			switch v := p.(type) {
			case *bgp.PathAttributeCommunities:
				s += fmt.Sprintf(" comm=%v", v.Value)
			case *bgp.PathAttributeLargeCommunities:
				s += fmt.Sprintf(" large=%s", v.String())
			case *bgp.PathAttributeAsPath:
				s += fmt.Sprintf(" path=%s", v.String())
			}
		}
		return s
	}
	imp := rule.modify(a, true, false)
	if got, want := render(imp), "lp=250 med=33 path={AsPath: 65100} comm=[4259840007] large={LargeCommunity: [ 65000:1:2]}"; got != want {
		t.Errorf("import:\n got %s\nwant %s", got, want)
	}
	if imp.key == a.key {
		t.Error("changed attrs share the original's key")
	}
	exp := rule.modify(a, true, true)
	if got, want := render(exp), "lp=250 med=33 path={AsPath: 65009 65009 65100} comm=[4259840007] large={LargeCommunity: [ 65000:1:2]}"; got != want {
		t.Errorf("export to eBGP:\n got %s\nwant %s", got, want)
	}
}

// TestCheckFilter: interface is refused with its field path.
func TestCheckFilter(t *testing.T) {
	f := &api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: "ifc"}, Spec: api.BGPFilterSpec{ExportV6: []api.BGPFilterRule{
		{Action: api.FilterAccept}, {Interface: "eth0", Action: api.FilterAccept}}}}
	err := CheckFilter(f)
	if err == nil || !containsAll(err.Error(), "BGPFilter ifc", "spec.exportV6[1].interface") {
		t.Errorf("CheckFilter = %v, want the field path", err)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// segsOrNil returns the chain's segments per family (none for nil).
func (c *xchain) segsOrNil() [][]segment {
	if c == nil {
		return nil
	}
	return [][]segment{c.segs[famV4], c.segs[famV6]}
}
