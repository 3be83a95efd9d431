package router_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/router"
)

// crasherUpdate is issue 11's UPDATE: an MP_REACH_NLRI of 3 bytes (AFI 1,
// SAFI 1, nothing else), on which GoBGP v3.37.0's decoder reads the
// next-hop length from an empty slice and panics in its receive
// goroutine, where nothing recovers.
var crasherUpdate = []byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0x00, 0x24, 0x02, 0x00, 0x00, 0x00, 0x0d,
	0x40, 0x01, 0x01, 0x00, // ORIGIN IGP
	0x40, 0x02, 0x00, // AS_PATH empty
	0x80, 0x0e, 0x03, 0x00, 0x01, 0x01, // MP_REACH_NLRI: AFI 1, SAFI 1, no next-hop length
}

// watchDeletes records every removal of dst from ns's main table until
// the test ends; the returned func lists them.
func watchDeletes(t *testing.T, ns *nstest.NS, dst netip.Prefix) func() []string {
	t.Helper()
	ch := make(chan netlink.RouteUpdate, 4096)
	done := make(chan struct{})
	h := ns.Handle
	if err := netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{Namespace: &h}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for u := range ch {
			if u.Type == unix.RTM_DELROUTE && u.Dst != nil && u.Dst.String() == dst.String() {
				mu.Lock()
				seen = append(seen, fmt.Sprintf("%s: route to %s via %s proto %d removed", time.Now().Format(time.StampMilli), dst, u.Gw, u.Protocol))
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		<-finished
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// quarantinedUntil reads the node's BGPStatus: the peer's
// QuarantinedUntil ("" when not held).
func (f *fabric) quarantinedUntil(node, peer string) string {
	r, err := f.client.Get(context.Background(), api.KindBGPStatus, "", node)
	if err != nil {
		return ""
	}
	for _, p := range r.(*api.BGPStatus).Status.Peers {
		if p.PeerIP == peer {
			return p.QuarantinedUntil
		}
	}
	return ""
}

// TestHostilePeerCrashesOnlyTheSpeaker: n1 runs its speaker as
// `bgpfabric node` does, in a supervised child process. A raw peer of n1
// sends issue 11's crasher every time its session comes up. Each time
// the speaker dies and n1's router (the parent) lives on, starts a new
// speaker and, with graceful restart, keeps forwarding: n1's kernel
// never loses the route to n2's block, and n2 never loses n1's. After
// the second crash the raw peer is quarantined (BGPStatus shows it) and
// n1's session with n2 is up; when the hold-down is over, n1 connects to
// the raw peer again, which behaves now and gets its route installed.
//
// With the speaker in n1's own process (BF_SPEAKER_PROC unset, main's
// design) the first crasher kills n1 and the test fails at once.
func TestHostilePeerCrashesOnlyTheSpeaker(t *testing.T) {
	f := newFabric(t)
	cfg := &api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: "default"}}
	cfg.Spec.HoldTime, cfg.Spec.KeepaliveTime = "9s", "3s"
	on := true
	cfg.Spec.GracefulRestart = &api.GracefulRestart{Enabled: &on, RestartTime: "60s"}
	cfg.Spec.EBGPDefaultPolicy = api.FilterAccept // the raw peer's route, without a filter
	f.apply(cfg, &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "raw"}, Spec: api.BGPPeerSpec{
		Node: "n1", PeerIP: "10.99.0.50", ASNumber: ptrTo(uint32(65050))}})
	n1 := f.addNode("n1", "10.99.0.1/24")
	n2 := f.addNode("n2", "10.99.0.2/24")
	rawNS := f.addHost("raw", "10.99.0.50/24")
	block1, block2 := netip.MustParsePrefix("10.65.1.0/26"), netip.MustParsePrefix("10.65.2.0/26")
	addBlackhole(t, n1.ns, block1.String())
	addBlackhole(t, n2.ns, block2.String())
	const hold = 20 * time.Second
	speakerEnv := os.Getenv("BF_TEST_IN_PROCESS_SPEAKER") == "" // main's design when set: shows the failure
	var env []string
	if speakerEnv {
		env = []string{"BF_SPEAKER_PROC=1", "BF_QUARANTINE_HOLD=" + hold.String()}
	}
	f.start(n1, env...)
	f.start(n2)
	// The raw peer listens once n1 and n2 are up, so that its session is
	// the last to come up before its crasher: the one the policy blames.
	f.waitStatus("n1", "n2 established", 30*time.Second, func(m map[string]api.BGPState) bool { return m["10.99.0.2"] == api.BGPEstablished })
	var ln net.Listener
	if err := rawNS.Do(func() (err error) { ln, err = net.Listen("tcp4", "10.99.0.50:179"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := acceptRawPeer(t, ln, 65050, "10.99.0.50")
	f.waitStatus("n1", "n2 and the raw peer established", 30*time.Second, allEstablished(2))
	via1 := fmt.Sprintf("via 10.99.0.1 proto %d", router.ProtoRouter)
	via2 := fmt.Sprintf("via 10.99.0.2 proto %d", router.ProtoRouter)
	waitRoute(t, n1.ns, block2, via2, 30*time.Second)
	waitRoute(t, n2.ns, block1, via1, 30*time.Second)
	lost1 := watchDeletes(t, n1.ns, block2)
	lost2 := watchDeletes(t, n2.ns, block1)

	alive := func(when string) {
		t.Helper()
		select {
		case err := <-n1.wait:
			n1.proc = nil
			t.Fatalf("%s: n1's router process exited: %v", when, err)
		default:
		}
	}
	// Two crashes: the strikes that quarantine the raw peer.
	for i := 1; i <= 2; i++ {
		if err := p.write(crasherUpdate); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.done: // the speaker died and took the connection along
		case <-time.After(20 * time.Second):
			t.Fatalf("crash %d: the raw peer's session survived the crasher", i)
		}
		// The process's death is seen after the connection's.
		select {
		case err := <-n1.wait:
			n1.proc = nil
			t.Fatalf("crash %d: n1's router process exited: %v", i, err)
		case <-time.After(2 * time.Second):
		}
		if i < 2 {
			p = acceptRawPeer(t, ln, 65050, "10.99.0.50") // the new speaker connects
		}
	}
	var until string
	f.waitStatus("n1", "raw peer quarantined and n2 back", 60*time.Second, func(m map[string]api.BGPState) bool {
		until = f.quarantinedUntil("n1", "10.99.0.50")
		return until != "" && m["10.99.0.2"] == api.BGPEstablished && m["10.99.0.50"] == api.BGPIdle
	})
	t.Logf("raw peer quarantined until %s", until)
	if u := f.quarantinedUntil("n1", "10.99.0.2"); u != "" {
		t.Errorf("n2 quarantined too (until %s)", u)
	}
	alive("quarantined")
	// The speaker's new session with n2 carries routes both ways.
	addBlackhole(t, n2.ns, "10.65.22.0/26")
	waitRoute(t, n1.ns, netip.MustParsePrefix("10.65.22.0/26"), via2, 30*time.Second)
	addBlackhole(t, n1.ns, "10.65.11.0/26")
	waitRoute(t, n2.ns, netip.MustParsePrefix("10.65.11.0/26"), via1, 30*time.Second)
	if got := routeState(n1.ns, block2); got != via2 {
		t.Errorf("n1's route to %s is %q, want %q", block2, got, via2)
	}
	// Released after the hold-down: n1 connects again; the peer behaves.
	p = acceptRawPeer(t, ln, 65050, "10.99.0.50")
	p.sendUpdate([][]byte{attr(1, 1, 0), attr(2, 6, 2, 1, 0, 0, 0xfe, 0x1a), attr(3, 4, 10, 99, 0, 50)}, nlri("10.77.1.0/24"))
	waitRoute(t, n1.ns, netip.MustParsePrefix("10.77.1.0/24"), fmt.Sprintf("via 10.99.0.50 proto %d", router.ProtoRouter), 30*time.Second)
	if u := f.quarantinedUntil("n1", "10.99.0.50"); u != "" {
		t.Errorf("raw peer still shown quarantined (until %s) with its session up", u)
	}
	alive("released")
	for _, d := range append(lost1(), lost2()...) {
		t.Errorf("a route was lost through the speaker's crashes: %s", d)
	}
	log, _ := os.ReadFile(n1.log)
	if n := strings.Count(string(log), "BGP speaker died"); n < 2 {
		t.Errorf("n1's log reports %d speaker deaths, want 2 or more", n)
	}
}
