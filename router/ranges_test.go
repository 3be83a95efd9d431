package router

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
)

func rangePeer(name string, f func(*api.BGPPeerSpec)) *api.BGPPeer {
	p := &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: name}}
	f(&p.Spec)
	return p
}

// rangeList renders the fake speaker's ranges as "prefix as N[ max M][ pw P]".
func rangeList(f *FakeSpeaker) string {
	var s []string
	for _, r := range f.PeerRanges() {
		l := fmt.Sprintf("%s as %d", r.Prefix, r.PeerAS)
		if r.MaxPrefixes > 0 {
			l += fmt.Sprintf(" max %d", r.MaxPrefixes)
		}
		if r.RouteReflectorClient {
			l += " rr-client " + r.ClusterID.String()
		}
		if r.Password != "" {
			l += " pw " + r.Password
		}
		s = append(s, l)
	}
	return strings.Join(s, ", ")
}

// statusPeers renders the last status's peers as "ip type state as N".
func statusPeers(h *harness) []string {
	st := h.status.get()
	if st == nil {
		return nil
	}
	var out []string
	for _, p := range st.Status.Peers {
		out = append(out, fmt.Sprintf("%s %s %s as %d", p.PeerIP, p.Type, p.State, p.ASNumber))
	}
	return out
}

// TestPeerRangesApplied: a compute node's peerPrefix BGPPeers reach the
// speaker as ranges, and each change touches only its range: added,
// changed (settings: the range is configured again; description only:
// nothing), removed. Dynamic neighbours appear in the status with their
// range's type while their session lasts, and their routes are installed.
//
// The status is also refreshed from the speaker's listing every 10ms
// (refreshCounters), which must agree with the events.
func TestPeerRangesApplied(t *testing.T) {
	h := start(t, func(c *Config) { c.StatusInterval = 10 * time.Millisecond })
	lan := rangePeer("lan", func(s *api.BGPPeerSpec) { s.PeerPrefix = "10.1.0.0/16" })
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), meshConfig("90s"), lan)
	waitUntil(t, "range added", func() bool { return rangeList(h.sp) == "10.1.0.0/16 as 64512" })
	if diff := cmp.Diff([]string{"Start as 64512 id 10.0.0.1 port 179", "AddPeer 10.0.0.2", "AddPeerRange 10.1.0.0/16"}, h.sp.Calls()); diff != "" {
		t.Errorf("first reconcile (-want +got):\n%s", diff)
	}

	// Another range: only it is added.
	edge := rangePeer("edge", func(s *api.BGPPeerSpec) {
		s.Node, s.PeerPrefix, s.ASNumber = "n1", "192.0.2.0/24", ptr(uint32(65100))
	})
	h.res.put(t, edge)
	waitUntil(t, "second range", func() bool { return rangeList(h.sp) == "10.1.0.0/16 as 64512, 192.0.2.0/24 as 65100" })
	if diff := cmp.Diff([]string{"AddPeerRange 192.0.2.0/24"}, h.sp.Calls()); diff != "" {
		t.Errorf("adding a range (-want +got):\n%s", diff)
	}

	// A router connects from the range: it is in the status, with the
	// BGPPeer's type; one from outside every range is refused.
	dyn := addr("10.1.2.3")
	if err := h.sp.Accept(dyn, 64512); err != nil {
		t.Fatal(err)
	}
	if err := h.sp.Accept(addr("10.2.0.1"), 64512); err == nil {
		t.Error("the fake speaker accepted a router outside the ranges")
	}
	h.sp.SetPeerState(PeerEvent{Address: addr("10.0.0.2"), State: api.BGPEstablished})
	want := []string{"10.0.0.2 mesh Established as 64512", "10.1.2.3 global Established as 64512"}
	waitUntil(t, "dynamic neighbour in the status", func() bool { return cmp.Equal(want, statusPeers(h)) })
	if err := h.status.get().Validate(); err != nil {
		t.Errorf("status does not validate: %v", err)
	}
	// Its routes are installed like any peer's.
	h.sp.Learn(Destination{Prefix: pfx("10.65.7.0/26"), Paths: []Path{{NextHop: dyn, Peer: dyn, PeerAS: 64512}}})
	waitUntil(t, "route from the dynamic neighbour installed", func() bool {
		return cmp.Equal([]string{"10.65.7.0/26 via 10.1.2.3 proto 81"}, renderKernel(h.dp, 81))
	})
	// Its session ends: it leaves the status (the speaker forgets it).
	h.sp.SetPeerState(PeerEvent{Address: dyn, State: api.BGPIdle})
	waitUntil(t, "dynamic neighbour gone", func() bool { return cmp.Equal(want[:1], statusPeers(h)) })
	if err := h.sp.Accept(dyn, 64512); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "dynamic neighbour back", func() bool { return cmp.Equal(want, statusPeers(h)) })
	h.sp.Calls()

	// A setting changes: the range alone is configured again, ending
	// its sessions.
	lan.Spec.MaxPrefixes = 50
	h.res.put(t, lan)
	waitUntil(t, "range updated", func() bool { return rangeList(h.sp) == "10.1.0.0/16 as 64512 max 50, 192.0.2.0/24 as 65100" })
	if diff := cmp.Diff([]string{"UpdatePeerRange 10.1.0.0/16"}, h.sp.Calls()); diff != "" {
		t.Errorf("changing a range (-want +got):\n%s", diff)
	}
	waitUntil(t, "the range's sessions ended", func() bool { return cmp.Equal(want[:1], statusPeers(h)) })

	// Only the type changes (global to node): nothing to configure, but
	// the next router that connects shows the new type.
	lan.Spec.NodeSelector = "all()"
	h.res.put(t, lan)
	if err := h.sp.Accept(dyn, 64512); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "new type in the status", func() bool {
		return cmp.Equal([]string{want[0], "10.1.2.3 node Established as 64512"}, statusPeers(h))
	})
	// The type change made no speaker call at all.
	if calls := h.sp.Calls(); len(calls) != 0 {
		t.Errorf("changing a range's type: calls %v, want none", calls)
	}

	// Removing a range removes it alone.
	h.res.del(t, api.KindBGPPeer, "edge")
	waitUntil(t, "range removed", func() bool { return rangeList(h.sp) == "10.1.0.0/16 as 64512 max 50" })
	if diff := cmp.Diff([]string{"DeletePeerRange 192.0.2.0/24"}, h.sp.Calls()); diff != "" {
		t.Errorf("removing a range (-want +got):\n%s", diff)
	}
	h.res.del(t, api.KindBGPPeer, "lan")
	waitUntil(t, "last range removed", func() bool { return rangeList(h.sp) == "" })
	if diff := cmp.Diff([]string{"DeletePeerRange 10.1.0.0/16"}, h.sp.Calls()); diff != "" {
		t.Errorf("removing the last range (-want +got):\n%s", diff)
	}
	waitUntil(t, "its dynamic neighbour gone from the status", func() bool { return cmp.Equal(want[:1], statusPeers(h)) })
	if got := peerAddrs(h.sp); got != "10.0.0.2/90" {
		t.Errorf("configured peers = %s, want the mesh session untouched", got)
	}
}

// TestPeerRangeOnReflector: on a node with a cluster ID, an iBGP range's
// routers are route-reflector clients.
func TestPeerRangeOnReflector(t *testing.T) {
	h := start(t, nil)
	rr := node("n1", "10.0.0.1/24")
	rr.Spec.BGP.RouteReflectorClusterID = "10.0.0.1"
	h.res.snapshot(t, rr, meshConfig("90s"), rangePeer("clients", func(s *api.BGPPeerSpec) { s.PeerPrefix = "10.1.0.0/16" }))
	waitUntil(t, "client range", func() bool { return rangeList(h.sp) == "10.1.0.0/16 as 64512 rr-client 10.0.0.1" })
	if err := h.sp.Accept(addr("10.1.0.9"), 64512); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "client in the status", func() bool {
		return cmp.Equal([]string{"10.1.0.9 reflectorClient Established as 64512"}, statusPeers(h))
	})
}

// TestPeerRangeSecrets: a range whose password secret is missing is not
// configured (logged, retried); once the secret is there it is, and a
// changed secret configures it again.
func TestPeerRangeSecrets(t *testing.T) {
	dir := t.TempDir()
	h := start(t, func(c *Config) { c.Secrets = Secrets{Dir: dir, Getenv: func(string) string { return "" }} })
	lan := rangePeer("lan", func(s *api.BGPPeerSpec) {
		s.PeerPrefix = "10.1.0.0/16"
		s.Password = &api.BGPPassword{SecretKeyRef: &api.SecretKeySelector{Name: "bgp", Key: "lan"}}
	})
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), meshConfig("90s"), lan)
	waitUntil(t, "speaker started", func() bool { _, ok := h.sp.Started(); return ok })
	if got := rangeList(h.sp); got != "" {
		t.Errorf("a range without its secret configured: %s", got)
	}
	write := func(pw string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, "bgp"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "bgp", "lan"), []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("s3cret")
	waitUntil(t, "range configured on the retry", func() bool { return rangeList(h.sp) == "10.1.0.0/16 as 64512 pw s3cret" })
	h.sp.Calls()
	write("n3w")
	h.res.put(t, node("n2", "10.0.0.2/24")) // any change reconciles
	waitUntil(t, "new password", func() bool { return rangeList(h.sp) == "10.1.0.0/16 as 64512 pw n3w" })
	calls := h.sp.Calls()
	slices.Sort(calls)
	if diff := cmp.Diff([]string{"AddPeer 10.0.0.2", "UpdatePeerRange 10.1.0.0/16"}, calls); diff != "" {
		t.Errorf("a changed secret (-want +got):\n%s", diff)
	}
}
