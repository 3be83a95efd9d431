package reflector

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// TestSetDynamicNeighbors: ranges set on a running reflector accept
// clients from inside them, with the most specific range's settings, and
// refuse the others; a client that a new set of ranges no longer covers
// is closed (Cease, de-configured), and one whose range is unchanged keeps
// its session.
func TestSetDynamicNeighbors(t *testing.T) {
	cfg := testConfig()
	cfg.Policy.EBGPDefaultAccept = true // eBGP without filters (RFC 8212 would send nothing)
	r, addr := startReflector(t, cfg)
	if _, err := dialSpeaker(context.Background(), addr, "127.0.0.2", opts("10.0.0.2")); err == nil {
		t.Fatal("a client established with no range configured")
	}
	wide := DynamicNeighbor{Prefix: netip.MustParsePrefix("127.0.0.0/29"), ASN: testASN, Client: true}
	ebgp := DynamicNeighbor{Prefix: netip.MustParsePrefix("127.0.0.4/30"), ASN: 65100}
	if err := r.SetDynamicNeighbors([]DynamicNeighbor{wide, ebgp}); err != nil {
		t.Fatal(err)
	}
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	e := connect(t, addr, "127.0.0.5", speakerOpts{asn: 65100, id: "10.0.0.5", hold: 90})
	collect(t, a, false, hasEORs)
	collect(t, e, false, hasEORs)
	if _, err := dialSpeaker(context.Background(), addr, "127.0.0.9", opts("10.0.0.9")); err == nil {
		t.Error("a client from outside every range established")
	}
	got := map[string]NeighborStatus{}
	for _, n := range r.Neighbors() {
		got[n.Address] = n
	}
	if n := got["127.0.0.2"]; !n.Dynamic || !n.Client || n.ASN != testASN || n.State != StateEstablished {
		t.Errorf("127.0.0.2: %+v, want a dynamic iBGP client, Established", n)
	}
	if n := got["127.0.0.5"]; !n.Dynamic || n.Client || n.ASN != 65100 || n.State != StateEstablished {
		t.Errorf("127.0.0.5: %+v, want a dynamic eBGP neighbour of the more specific range", n)
	}
	if _, ok := got["127.0.0.9"]; ok || len(got) != 2 {
		t.Errorf("neighbours %v, want exactly 127.0.0.2 and 127.0.0.5", got)
	}

	// Drop the eBGP range: its neighbour now falls in the iBGP range with
	// another AS, so it goes; the iBGP client stays.
	if err := r.SetDynamicNeighbors([]DynamicNeighbor{wide}); err != nil {
		t.Fatal(err)
	}
	expectNotification(t, e, bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_PEER_DECONFIGURED)
	e.conn.Close()
	a.send(t, ipv4Update("192.0.2.2", pfx("10.60.0.0/24")))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waitFor(t, ctx, "only 127.0.0.2 left, Established", func() bool {
		ns := r.Neighbors()
		return len(ns) == 1 && ns[0].Address == "127.0.0.2" && ns[0].State == StateEstablished && ns[0].PrefixesIn == 1
	})
}

// TestDynamicNeighborMD5: a range's password is a prefix key on the
// listener: clients from the range need it.
func TestDynamicNeighborMD5(t *testing.T) {
	requireListenerMD5(t, func(l *net.TCPListener) error {
		return setListenerMD5Prefix(l, netip.MustParsePrefix("127.0.0.0/29"), "probe")
	})
	cfg := testConfig()
	cfg.DynamicNeighbors = []DynamicNeighbor{{Prefix: netip.MustParsePrefix("127.0.0.0/29"), ASN: testASN, Client: true, Password: "r4nge"}}
	r, addr := startReflector(t, cfg)
	// dial reports whether TCP connected and whether BGP then came up.
	dial := func(local, key string) (tcp bool, err error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		if key != "" {
			d.Control = md5Control(addr.Addr(), key)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", addr.String())
		if err != nil {
			return false, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		_, err = handshake(c, opts("10.0.0.2"))
		return true, err
	}
	if _, err := dial("127.0.0.2", "r4nge"); err != nil {
		t.Fatalf("right key: %v", err)
	}
	if tcp, err := dial("127.0.0.3", ""); tcp || err == nil {
		t.Errorf("without the key: TCP connected %v, err %v; want the SYN dropped", tcp, err)
	}
	// Removing the range removes its key: a client without one connects
	// (TCP), and the reflector refuses it (no range any more).
	if err := r.SetDynamicNeighbors(nil); err != nil {
		t.Fatal(err)
	}
	if tcp, err := dial("127.0.0.4", ""); !tcp || err == nil {
		t.Errorf("after the range was removed: TCP connected %v, err %v; want connected, then refused", tcp, err)
	}
}

// TestChanges: Changes signals sessions going up and down and neighbours
// being added or removed, dynamic ones included.
func TestChanges(t *testing.T) {
	cfg := testConfig("127.0.0.2")
	cfg.DynamicNeighbors = []DynamicNeighbor{{Prefix: netip.MustParsePrefix("127.0.1.0/24"), ASN: testASN, Client: true}}
	r, addr := startReflector(t, cfg)
	wait := func(what string) {
		t.Helper()
		select {
		case <-r.Changes():
		case <-time.After(5 * time.Second):
			t.Fatalf("no change signalled for %s", what)
		}
	}
	select { // Run may have signalled nothing yet; start from none pending
	case <-r.Changes():
	default:
	}
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	wait("a session up")
	a.conn.Close()
	wait("a session down")
	d := connect(t, addr, "127.0.1.9", opts("10.0.1.9"))
	wait("a dynamic neighbour")
	waitState(t, r, "127.0.1.9", StateEstablished, false)
	select {
	case <-r.Changes():
	default:
	}
	d.conn.Close()
	wait("a dynamic neighbour gone")
	if err := r.SetNeighbors(nil); err != nil {
		t.Fatal(err)
	}
	wait("neighbours removed")
}
