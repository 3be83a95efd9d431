package reflector

import (
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/api"
)

// discardConn is a member connection that drops what it is sent.
type discardConn struct{ n int }

func (c *discardConn) send(chunks ...[]byte) {
	for _, ch := range chunks {
		c.n += len(ch)
	}
}
func (c *discardConn) sendDump(_ family, b []byte)    { c.n += len(b) }
func (c *discardConn) closeWith(uint8, uint8, string) {}

// benchPolicyFilter is a filter of n rules in each direction, as
// reflector/bench's: prefix rules that match nothing, a community rule and
// an accept (that adds a community on export; with importSet on import
// too).
func benchPolicyFilter(n int, importSet bool) *api.BGPFilter {
	var rules []api.BGPFilterRule
	for i := range n - 2 {
		rules = append(rules, api.BGPFilterRule{CIDR: fmt.Sprintf("100.%d.0.0/16", i%256), MatchOperator: api.MatchIn, Action: api.FilterReject})
	}
	rules = append(rules, api.BGPFilterRule{Communities: []string{"65535:666"}, Action: api.FilterReject})
	accept := api.BGPFilterRule{CIDR: "0.0.0.0/0", MatchOperator: api.MatchIn, PrefixLength: &api.BGPFilterPrefixLength{Max: ptrTo(24)},
		Action: api.FilterAccept}
	tag := accept
	tag.AddCommunities = []string{"64512:1"}
	in := append(slices.Clone(rules), accept)
	if importSet {
		in = append(slices.Clone(rules), tag)
	}
	return &api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: "bench"}, Spec: api.BGPFilterSpec{ImportV4: in, ExportV4: append(rules, tag)}}
}

// BenchmarkRIBPolicy feeds 10 clients' 100,000 /24s each through the RIB
// loop to 2 more clients (no sockets: the RIB, best path, update groups
// and encoding), with no policy and with a 100-rule filter in both
// directions on every client, whose import accepts unchanged or (importset)
// adds a community, which keeps every path in the Adj-RIB-In. ns/path is
// the cost per path.
func BenchmarkRIBPolicy(b *testing.B) {
	for _, c := range []struct {
		rules     int
		importSet bool
	}{{0, false}, {100, false}, {100, true}} {
		rules := c.rules
		b.Run(fmt.Sprintf("rules-%d-importset-%v", rules, c.importSet), func(b *testing.B) {
			const n, p = 10, 100_000
			var batches [n][]*ribBatch
			for i := range n {
				for j := 0; j < p; j += 500 {
					a := newAttrs(attrsInput{list: []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil),
						bgp.NewPathAttributeLocalPref(100)}, nextHop: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})})
					u := routeUpdate{fam: famV4, a: a}
					for k := j; k < min(j+500, p); k++ {
						v := uint32(0x0B000000 + (i*p+k)<<8)
						u.nlri = append(u.nlri, pfxKey{hi: uint64(v) << 32, bits: 24})
					}
					batches[i] = append(batches[i], &ribBatch{updates: []routeUpdate{u}})
				}
			}
			b.ResetTimer()
			for range b.N {
				rl := newRIBLoop(slog.New(slog.DiscardHandler), testASN, 1, newEngineMetrics())
				pc := PolicyConfig{}
				if rules > 0 {
					pc.Filters = []*api.BGPFilter{benchPolicyFilter(rules, c.importSet)}
					pc.Ranges = map[netip.Prefix][]string{netip.MustParsePrefix("127.0.0.0/8"): {"bench"}}
				}
				if err := rl.setPolicy(pc); err != nil {
					b.Fatal(err)
				}
				var ms []*member
				for i := range n + 2 {
					ms = append(ms, rl.peerUp(sessionInfo{addr: netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)}), routerID: uint32(i + 1),
						asn: testASN, client: true, fams: families(0).with(famV4), stats: &peerStats{}, conn: &discardConn{}, dynamic: true}))
				}
				for j := range batches[0] {
					for i := range n {
						rl.update(ms[i], batches[i][j])
					}
					rl.flush()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n*p), "ns/path")
		})
	}
}

// TestPolicyRIBConsistency: announcements, withdrawals, graceful and
// hard session ends and policy changes in random order keep the RIB
// equal to the policy applied to what the peer last sent, the counts
// right, and leak no attributes: once every peer is gone, none is left.
func TestPolicyRIBConsistency(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	policies := []PolicyConfig{
		{},
		{Filters: []*api.BGPFilter{filter("f", api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{
			{CIDR: "10.0.0.0/30", MatchOperator: api.MatchIn, Action: api.FilterReject},
			{CIDR: "10.0.0.4/30", MatchOperator: api.MatchIn, Action: api.FilterAccept, MED: ptrTo(uint32(5))},
		}})}, Neighbors: map[netip.Addr][]string{netip.MustParseAddr("127.0.0.2"): {"f"}}},
		{Filters: []*api.BGPFilter{filter("f", api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{
			{CIDR: "10.0.0.2/31", MatchOperator: api.MatchIn, Action: api.FilterAccept, LocalPref: ptrTo(uint32(7))},
			{Action: api.FilterReject},
		}})}, Neighbors: map[netip.Addr][]string{netip.MustParseAddr("127.0.0.2"): {"f"}}},
	}
	for round := range 50 {
		rl := newRIBLoop(slog.New(slog.DiscardHandler), testASN, 1, newEngineMetrics())
		pol := rng.IntN(len(policies))
		if err := rl.setPolicy(policies[pol]); err != nil {
			t.Fatal(err)
		}
		up := func(addr string) *member {
			return rl.peerUp(sessionInfo{addr: netip.MustParseAddr(addr), routerID: 9, asn: testASN, client: true,
				fams: families(0).with(famV4), stats: &peerStats{}, conn: &discardConn{}})
		}
		src, _ := up("127.0.0.2"), up("127.0.0.3")
		sent := map[pfxKey]uint32{} // what the source last sent: prefix -> MED
		for range 60 {
			k := keyOf(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(rng.IntN(8))}), 32))
			switch op := rng.IntN(10); {
			case op < 5:
				med := uint32(rng.IntN(3))
				a := newAttrs(attrsInput{list: []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil),
					bgp.NewPathAttributeMultiExitDisc(med)}, nextHop: netip.MustParseAddr("192.0.2.1")})
				rl.update(src, &ribBatch{updates: []routeUpdate{{fam: famV4, a: a, nlri: []pfxKey{k}}}})
				sent[k] = med
			case op < 7:
				rl.update(src, &ribBatch{updates: []routeUpdate{{fam: famV4, nlri: []pfxKey{k}}}})
				delete(sent, k)
			case op < 8:
				pol = rng.IntN(len(policies))
				if err := rl.setPolicy(policies[pol]); err != nil {
					t.Fatal(err)
				}
			default: // a graceful restart: down, up, everything sent again, End-of-RIB
				rl.peerDown(src, true)
				src = up("127.0.0.2")
				for k := range sent {
					if rng.IntN(3) == 0 {
						delete(sent, k) // lost in the restart: swept as stale at End-of-RIB
					}
				}
				var b ribBatch
				for k, med := range sent {
					a := newAttrs(attrsInput{list: []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil),
						bgp.NewPathAttributeMultiExitDisc(med)}, nextHop: netip.MustParseAddr("192.0.2.1")})
					b.updates = append(b.updates, routeUpdate{fam: famV4, a: a, nlri: []pfxKey{k}})
				}
				b.eor = families(0).with(famV4)
				rl.update(src, &b)
			}
			rl.flush()
			// The RIB holds the policy applied to what was sent.
			rp := rl.peers[netip.MustParseAddr("127.0.0.2")]
			var ps policyState
			if err := ps.setConfig(policies[pol]); err != nil {
				t.Fatal(err)
			}
			chain := ps.resolve(rp.addr, false, false).imp
			want := map[pfxKey]string{}
			for k, med := range sent {
				a := newAttrs(attrsInput{list: []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil),
					bgp.NewPathAttributeMultiExitDisc(med)}, nextHop: netip.MustParseAddr("192.0.2.1")})
				if rule, ok := chain.eval(famV4, k, a); ok {
					if rule != nil {
						a = rule.modify(a, false, false)
					}
					want[k] = a.key
				}
			}
			got := map[pfxKey]string{}
			rl.tables[famV4].each(func(k pfxKey, n uint32) {
				for _, p := range rl.tables[famV4].paths(n) {
					if p.src == rp {
						got[k] = p.a.key
					}
				}
			})
			if !maps.Equal(got, want) {
				t.Fatalf("round %d, policy %d: RIB has %d paths of the source, want %d (%v vs %v)", round, pol, len(got), len(want), got, want)
			}
			if rp.received() != len(sent) || rp.prefixes != len(want) {
				t.Fatalf("round %d: received %d (want %d), accepted %d (want %d)", round, rp.received(), len(sent), rp.prefixes, len(want))
			}
		}
		for _, rp := range rl.peers {
			rl.peerDown(rp.member, false)
		}
		rl.flush()
		if len(rl.peers) != 0 || len(rl.attrs.byKey) != 0 {
			t.Fatalf("round %d: %d peers and %d attribute sets left after every session ended", round, len(rl.peers), len(rl.attrs.byKey))
		}
	}
}
