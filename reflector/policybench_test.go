package reflector

import (
	"fmt"
	"log/slog"
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
