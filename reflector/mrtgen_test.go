package reflector

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/packet/mrt"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// genRIBPaths lists the RIB's paths of every family as "peer family NLRI
// next-hop", sorted: generic routes with the NLRI as GoBGP renders it
// (labels included) and the next hop decoded from the raw field.
func genRIBPaths(t *testing.T, r *Reflector) []string {
	t.Helper()
	var out []string
	ok := r.env.rib.call(context.Background(), func(rl *ribLoop) {
		rl.flush()
		for _, tb := range rl.tables {
			tb.each(func(k pfxKey, n uint32) {
				for _, pa := range tb.paths(n) {
					if !tb.fam.generic() {
						out = append(out, fmt.Sprintf("%s %s %s %s", pa.src.addr, tb.fam.routeFamily(), k.prefix(tb.fam), pa.a.nextHop))
						continue
					}
					nh := []byte(pa.a.rawNH)
					if len(nh) == 12 || len(nh) == 24 { // VPN: RD, then the address
						nh = nh[8:]
					}
					a, _ := netip.AddrFromSlice(nh)
					out = append(out, fmt.Sprintf("%s %s %s %s", pa.src.addr, tb.fam.routeFamily(), genString(tb.fam, tb.keys[k.hi], pa.a.extra), a))
				}
			})
		}
	})
	if !ok {
		t.Fatal("the RIB loop is not running")
	}
	slices.Sort(out)
	return out
}

// genMRTFixture runs a reflector whose two clients hold IPv4 unicast,
// EVPN (types 2 and 5), VPNv4 and flowspec routes: one VPN route from
// both with different labels (two RIB_GENERIC records), one EVPN route
// from both with the same NLRI (one record of two entries).
func genMRTFixture(t *testing.T) *Reflector {
	t.Helper()
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	fams, err := ParseFamilies([]string{"ipv4-unicast", "l2vpn-evpn", "ipv4-vpn", "ipv4-flowspec"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Neighbors[0].Families, cfg.Neighbors[1].Families = fams, fams
	r, addr := startReflector(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var sp [2]*rawSpeaker
	for i := range sp {
		s, err := dialSpeaker(ctx, addr, fmt.Sprintf("127.0.0.%d", i+2), speakerOpts{asn: testASN, id: fmt.Sprintf("10.0.0.%d", i+2), hold: 90, fams: evpnVPNFams})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.conn.Close() })
		go io.Copy(io.Discard, s.conn)
		sp[i] = s
	}
	t2 := bgp.NewEVPNMacIPAdvertisementRoute(rd(1), esi1, 0, "aa:bb:cc:00:00:01", "10.0.0.1", []uint32{100, 5000})
	t5 := bgp.NewEVPNIPPrefixRoute(rd(1), bgp.EthernetSegmentIdentifier{}, 0, 24, "10.1.0.0", "0.0.0.0", 5000)
	vpn := func(label uint32) bgp.AddrPrefixInterface {
		return bgp.NewLabeledVPNIPAddrPrefix(24, "10.2.0.0", *bgp.NewMPLSLabelStack(label), rd(1))
	}
	fs := bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil),
		bgp.NewPathAttributeLocalPref(100), bgp.NewPathAttributeMpReachNLRI("0.0.0.0", []bgp.AddrPrefixInterface{fsDst("10.4.0.0/24")})}, nil)
	sp[0].send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{t2, t5}, rtAttr(1)),
		mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{vpn(300)}, rtAttr(2)), fs)
	sp[1].send(t, mpUpdate("192.0.2.3", []bgp.AddrPrefixInterface{t5}, rtAttr(1)),
		mpUpdate("192.0.2.3", []bgp.AddrPrefixInterface{vpn(301)}, rtAttr(2)))
	sendMany(t, sp[0], "192.0.2.2", manyPrefixes("40.0.0.0", 3))
	waitFor(t, ctx, "the RIB to hold every path", func() bool { return len(genRIBPaths(t, r)) == 3+1+2+2+1 })
	return r
}

// TestMRTSnapshotGeneric: a snapshot carries the EVPN, VPN and flowspec
// routes as RIB_GENERIC records (RFC 6396 4.3.3) that GoBGP's MRT parser
// reads back as exactly the RIB's routes (NLRIs with their labels, next
// hops, peers); paths whose NLRIs differ only in their label are records
// of their own.
func TestMRTSnapshotGeneric(t *testing.T) {
	r := genMRTFixture(t)
	var buf bytes.Buffer
	sum, err := r.WriteMRT(context.Background(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	msgs := splitMRT(t, buf.Bytes())
	pit, ok := msgs[0].Body.(*mrt.PeerIndexTable)
	if !ok {
		t.Fatalf("first record %T, want the PEER_INDEX_TABLE", msgs[0].Body)
	}
	var got []string
	generic := 0
	for _, m := range msgs[1:] {
		rib, ok := m.Body.(*mrt.Rib)
		if !ok {
			t.Fatalf("record %T, want a RIB record", m.Body)
		}
		if mrt.MRTSubTypeTableDumpv2(m.Header.SubType) == mrt.RIB_GENERIC {
			generic++
		}
		for _, e := range rib.Entries {
			peer := pit.Peers[e.PeerIndex].IpAddress.String()
			nh := "invalid IP" // flowspec: no next hop, no MP_REACH_NLRI
			for _, pa := range e.PathAttributes {
				switch v := pa.(type) {
				case *bgp.PathAttributeNextHop:
					nh = v.Value.String()
				case *bgp.PathAttributeMpReachNLRI:
					a, _ := netip.AddrFromSlice(v.Nexthop)
					nh = a.Unmap().String()
				}
			}
			rf := bgp.AfiSafiToRouteFamily(rib.Prefix.AFI(), rib.Prefix.SAFI())
			got = append(got, fmt.Sprintf("%s %s %s %s", peer, rf, rib.Prefix, nh))
		}
	}
	slices.Sort(got)
	want := genRIBPaths(t, r)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("GoBGP's reading of the snapshot differs from the RIB (-rib +mrt):\n%s", d)
	}
	// EVPN type 2, type 5 (two entries), VPN with label 300 and 301,
	// flowspec.
	if generic != 5 || sum.Prefixes != 3+5 || sum.Paths != 9 {
		t.Errorf("%d RIB_GENERIC records, summary %+v; want 5, 8 prefixes, 9 paths", generic, sum)
	}
	for _, w := range []string{"l2vpn-evpn [type:macadv]", "l3vpn-ipv4-unicast 65000:1:10.2.0.0/24"} {
		if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, w) }) {
			t.Errorf("no %q route in %q", w, got)
		}
	}
}

// TestMRTGenericBgpdump: bgpdump (1.6) reads a snapshot with RIB_GENERIC
// records: it lists the unicast paths exactly, and the generic records
// do not stop it.
func TestMRTGenericBgpdump(t *testing.T) {
	bin := nstest.RequireCommand(t, "bgpdump")
	r := genMRTFixture(t)
	file := filepath.Join(t.TempDir(), "rib.mrt")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.WriteMRT(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-m", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bgpdump: %v\n%s", err, stderr.String())
	}
	t.Logf("bgpdump stderr:\n%s", stderr.String())
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) < 9 || f[0] != "TABLE_DUMP2" {
			t.Fatalf("bgpdump line %q", line)
		}
		got = append(got, fmt.Sprintf("%s %s %s %s", f[3], bgp.RF_IPv4_UC, f[5], f[8]))
	}
	slices.Sort(got)
	var want []string
	for _, p := range genRIBPaths(t, r) {
		if strings.Contains(p, " "+bgp.RF_IPv4_UC.String()+" ") {
			want = append(want, p)
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("bgpdump's paths differ from the RIB's unicast paths (-rib +bgpdump):\n%s", d)
	}
}
