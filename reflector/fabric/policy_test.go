package fabric

import (
	"context"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/peering"
	"github.com/bgpfabric/bgpfabric/reflector"
)

// TestPolicyFor: the sessions and ranges of BGPPeers with filters whose
// node side is the reflector get their filter names; the reverse sessions
// and the mesh none; a missing filter is passed on (the engine falls back
// to the default); a filter with interface refuses its sessions and
// ranges, naming the field; ebgpDefaultPolicy is read.
func TestPolicyFor(t *testing.T) {
	var pi policyInput
	pi.in.Add(node("rr1", "10.0.0.1/24", map[string]string{"rr": "true"}, "10.0.0.1"))
	pi.in.Add(&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "tor"}, Spec: api.BGPPeerSpec{PeerIP: "10.0.0.254", Filters: []string{"f", "gone"}}})
	pi.in.Add(&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "plain"}, Spec: api.BGPPeerSpec{PeerIP: "10.0.0.253"}})
	pi.in.Add(&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "to-rr"}, Spec: api.BGPPeerSpec{NodeSelector: "!has(rr)", PeerSelector: "has(rr)", Filters: []string{"f"}}})
	pi.in.Add(&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "racks"}, Spec: api.BGPPeerSpec{PeerPrefix: "10.1.0.0/16", Filters: []string{"f"}}})
	pi.in.Add(&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "bad"}, Spec: api.BGPPeerSpec{PeerIP: "10.0.0.252", Filters: []string{"ifc"}}})
	pi.in.Add(&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "badrange"}, Spec: api.BGPPeerSpec{PeerPrefix: "10.2.0.0/16", Filters: []string{"ifc"}}})
	pi.in.Add(&api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: "default"}, Spec: api.BGPConfigurationSpec{EBGPDefaultPolicy: api.FilterAccept}})
	f := &api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: "f"}, Spec: api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{{Action: api.FilterAccept}}}}
	ifc := &api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: "ifc"}, Spec: api.BGPFilterSpec{ExportV4: []api.BGPFilterRule{{Interface: "eth0", Action: api.FilterAccept}}}}
	pi.filters = []*api.BGPFilter{ifc, f}
	sessions := []peering.Session{
		{PeerAddress: netip.MustParseAddr("10.0.0.254"), Source: "tor", PeerAS: 65000, Type: api.PeerTypeGlobal},
		{PeerAddress: netip.MustParseAddr("10.0.0.253"), Source: "plain", PeerAS: 65001, Type: api.PeerTypeGlobal},
		{PeerAddress: netip.MustParseAddr("10.0.0.252"), Source: "bad", PeerAS: 65002, Type: api.PeerTypeGlobal},
		{PeerAddress: netip.MustParseAddr("10.0.0.2"), Source: "to-rr", PeerAS: 64512, Type: api.PeerTypeReflectorClient},
	}
	ranges := []peering.PeerRange{{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Source: "racks"}, {Prefix: netip.MustParsePrefix("10.2.0.0/16"), Source: "badrange"}}
	res := policyFor(pi, "rr1", sessions, ranges)
	want := map[netip.Addr][]string{netip.MustParseAddr("10.0.0.254"): {"f", "gone"}}
	if !reflect.DeepEqual(res.policy.Neighbors, want) {
		t.Errorf("neighbour filters %v, want %v", res.policy.Neighbors, want)
	}
	if got := res.policy.Ranges; len(got) != 1 || !slices.Equal(got[netip.MustParsePrefix("10.1.0.0/16")], []string{"f"}) {
		t.Errorf("range filters %v", got)
	}
	if len(res.policy.Filters) != 1 || res.policy.Filters[0].Name != "f" || !res.policy.EBGPDefaultAccept {
		t.Errorf("policy %+v", res.policy)
	}
	if len(res.sessions) != 3 || len(res.ranges) != 1 {
		t.Errorf("kept %v, %v", res.sessions, res.ranges)
	}
	if len(res.refused) != 1 || res.refused[0].session.Source != "bad" ||
		!strings.Contains(res.refused[0].reason, "spec.exportV4[0].interface") || len(res.refusedRanges) != 1 {
		t.Errorf("refused %+v, ranges %+v", res.refused, res.refusedRanges)
	}
	st := withRefused(Status("rr1", Identity{RouterID: netip.MustParseAddr("10.0.0.1"), AS: 64512}, res.sessions, res.ranges, nil, time.Now()), res.refused)
	if len(st.Status.Peers) != 1 || st.Status.Peers[0].State != api.BGPIdle || st.Status.Peers[0].LastError != res.refused[0].reason {
		t.Errorf("status %+v", st.Status.Peers)
	}
	if err := st.Validate(); err != nil {
		t.Errorf("status does not validate: %v", err)
	}
}

// rawClient is a BGP client of the tests on a loopback address.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	view map[string]bool
}

func (c *rawClient) announce(prefixes ...string) {
	c.t.Helper()
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil),
		bgp.NewPathAttributeNextHop("192.0.2.1"), bgp.NewPathAttributeLocalPref(100)}
	var nlri []*bgp.IPAddrPrefix
	for _, p := range prefixes {
		pp := netip.MustParsePrefix(p)
		nlri = append(nlri, bgp.NewIPAddrPrefix(uint8(pp.Bits()), pp.Addr().String()))
	}
	b, err := bgp.NewBGPUpdateMessage(nil, attrs, nlri).Serialize()
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// until reads UPDATEs into the view until cond holds.
func (c *rawClient) until(what string, cond func(map[string]bool) bool) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !cond(c.view) {
		m, err := readMsg(c.conn)
		if err != nil {
			c.t.Fatalf("waiting for %s: %v (have %v)", what, err, c.view)
		}
		u, ok := m.Body.(*bgp.BGPUpdate)
		if !ok {
			if n, isN := m.Body.(*bgp.BGPNotification); isN {
				c.t.Fatalf("waiting for %s: notification %d/%d", what, n.ErrorCode, n.ErrorSubcode)
			}
			continue
		}
		for _, w := range u.WithdrawnRoutes {
			delete(c.view, w.String())
		}
		for _, n := range u.NLRI {
			c.view[n.String()] = true
		}
	}
}

func with(ps ...string) func(map[string]bool) bool {
	return func(v map[string]bool) bool {
		for _, p := range ps {
			if !v[p] {
				return false
			}
		}
		return true
	}
}

// TestControllerPolicyLive: through the datastore, a BGPPeer's filters
// apply on the reflector's sessions; changing the BGPFilter re-evaluates
// the routes without a session reset, deleting it falls back to the
// default (iBGP: accept), shown in BGPStatus.
func TestControllerPolicyLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := testStore(t, ctx)
	racks := rangePeer("127.0.1.0/29")
	racks.Spec.Filters = []string{"in"}
	in := &api.BGPFilter{TypeMeta: api.TypeMeta{Kind: api.KindBGPFilter}, ObjectMeta: api.ObjectMeta{Name: "in"},
		Spec: api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{{CIDR: "10.66.0.0/16", MatchOperator: api.MatchIn, Action: api.FilterReject}}}}
	for _, r := range []api.Resource{node("rr1", "10.0.0.1/24", map[string]string{"rr": "true"}, "10.0.0.1"), racks, in} {
		if _, err := c.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	r := runController(t, ctx, c, Config{StatusInterval: 100 * time.Millisecond, StatusDebounce: 10 * time.Millisecond})
	addr := r.ListenAddrs()[0]
	dial := func(local, id string) *rawClient {
		conn, err := bgpClient(ctx, addr, local, 64512, id)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return &rawClient{t: t, conn: conn, view: map[string]bool{}}
	}
	src, mon := dial("127.0.1.1", "10.0.1.1"), dial("127.0.1.2", "10.0.1.2")
	src.announce("10.66.1.0/24", "10.67.1.0/24")
	mon.until("10.67.1.0/24", with("10.67.1.0/24"))
	src.announce("10.99.1.0/24") // after the first, in the same stream: nothing rejected is before it
	mon.until("probe", with("10.99.1.0/24"))
	if mon.view["10.66.1.0/24"] {
		t.Fatalf("monitor got 10.66.1.0/24, which the import filter rejects: %v", mon.view)
	}
	var since time.Time
	for _, n := range r.Neighbors() {
		if n.Address == "127.0.1.1" {
			since = n.Since
		}
	}

	// Change the filter: 10.67/16 rejected instead.
	got, err := c.Get(ctx, api.KindBGPFilter, "", "in")
	if err != nil {
		t.Fatal(err)
	}
	f := got.(*api.BGPFilter)
	f.Spec.ImportV4[0].CIDR = "10.67.0.0/16"
	if _, err := c.Update(ctx, f); err != nil {
		t.Fatal(err)
	}
	mon.until("re-evaluation", func(v map[string]bool) bool { return v["10.66.1.0/24"] && !v["10.67.1.0/24"] })

	// Delete it: the default alone (iBGP: accept), in the status.
	if err := c.Delete(ctx, api.KindBGPFilter, "", "in", ""); err != nil {
		t.Fatal(err)
	}
	mon.until("fallback", with("10.66.1.0/24", "10.67.1.0/24"))
	w := watchStatus(ctx, c)
	w.until(t, 10*time.Second, "policy note", func(st *api.BGPStatus) bool {
		p, ok := peerState(st, "127.0.1.1")
		return ok && strings.Contains(p.Policy, "BGPFilter in not found")
	})
	for _, n := range r.Neighbors() {
		if n.Address == "127.0.1.1" && (n.State != reflector.StateEstablished || !n.Since.Equal(since)) {
			t.Errorf("source %v since %v, want Established since %v (no reset)", n.State, n.Since, since)
		}
	}

}
func ptrU32(v uint32) *uint32 { return &v }
