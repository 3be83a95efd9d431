package reflector

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// TestGracefulShutdownCommunity: GracefulShutdown re-advertises every
// route with 65535:0 and LOCAL_PREF 0 to iBGP peers.
func TestGracefulShutdownCommunity(t *testing.T) {
	r, addr := startReflector(t, testConfig("127.0.0.2", "127.0.0.3"))
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	b := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	collect(t, a, false, hasEORs)
	collect(t, b, false, hasEORs)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.80.0.0/24"), bgp.NewPathAttributeCommunities([]uint32{65000<<16 | 7})))
	collect(t, b, false, hasKeys("10.80.0.0/24"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := r.GracefulShutdown(ctx); err != nil || n != 2 {
		t.Fatalf("GracefulShutdown = %d, %v; want 2 sessions", n, err)
	}
	b.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	u, err := b.nextUpdate(false)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		NLRI        string
		LocalPref   uint32
		Communities string
	}
	var g got
	for _, n := range u.NLRI {
		g.NLRI = n.String()
	}
	for _, pa := range u.PathAttributes {
		switch v := pa.(type) {
		case *bgp.PathAttributeLocalPref:
			g.LocalPref = v.Value
		case *bgp.PathAttributeCommunities:
			g.Communities = v.String()
		}
	}
	want := got{NLRI: "10.80.0.0/24", LocalPref: 0, Communities: "{Communities: 65000:7, planned-shut}"} // 65535:0
	if d := cmp.Diff(want, g); d != "" {
		t.Errorf("re-advertised route (-want +got):\n%s", d)
	}
}

// TestAttributeDiscard: a malformed attribute that RFC 7606 says to
// discard (AGGREGATOR of the wrong length) is dropped; the route stays.
func TestAttributeDiscard(t *testing.T) {
	_, addr := startReflector(t, testConfig("127.0.0.2", "127.0.0.3"))
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	b := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	collect(t, a, false, hasEORs)
	collect(t, b, false, hasEORs)
	raw, err := ipv4Update("192.0.2.2", pfx("10.81.0.0/24")).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	// Insert AGGREGATOR (optional transitive, type 7) with 3 bytes of value
	// right after the attribute-length field, and fix the lengths.
	bad := []byte{0xc0, 7, 3, 1, 2, 3}
	wl := int(raw[19])<<8 | int(raw[20])
	at := headerLen + 2 + wl
	al := int(raw[at])<<8 | int(raw[at+1])
	msg := append(append(append([]byte{}, raw[:at+2]...), bad...), raw[at+2:]...)
	al += len(bad)
	msg[at], msg[at+1] = byte(al>>8), byte(al)
	msg[16], msg[17] = byte(len(msg)>>8), byte(len(msg))
	if _, err := a.conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := collect(t, b, false, hasKeys("10.81.0.0/24"))
	if got["10.81.0.0/24"].NextHop != "192.0.2.2" {
		t.Errorf("route after attribute discard: %+v", got)
	}
}

func TestParseConfigFile(t *testing.T) {
	cfg, err := ParseConfigFile([]byte(`
routerID: 10.255.0.1
asNumber: 65000
listen: ["127.0.0.1:1790"]
neighbors:
  - address: 10.0.0.2
    holdTime: 9s
  - address: 192.0.2.1
    asNumber: 65100
    gracefulRestart: false
dynamicNeighbors:
  - prefix: 10.1.0.0/16
    maxPrefixes: 100
`))
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Neighbors
	if len(n) != 2 || !n[0].Client || !n[0].GracefulRestart || n[0].HoldTime != 9*time.Second ||
		n[1].Client || n[1].GracefulRestart || n[1].ASN != 65100 {
		t.Errorf("neighbours %+v", n)
	}
	if d := cfg.DynamicNeighbors; len(d) != 1 || !d[0].Client || d[0].ASN != 65000 || d[0].MaxPrefixes != 100 {
		t.Errorf("dynamic neighbours %+v", d)
	}
	_, err = ParseConfigFile([]byte("routerID: 10.255.0.1\nasNumber: 65000\nneighbors:\n  - address: 10.0.0.300\n    holdTime: 1s\n"))
	for _, want := range []string{"neighbors[0].address", "neighbors[0].holdTime"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to name %s", err, want)
		}
	}
	if _, err := ParseConfigFile([]byte("routerID: 10.255.0.1\nasNumber: 65000\nbogus: 1\n")); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown field: error %v", err)
	}
}
