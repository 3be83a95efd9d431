package router_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/router"
)

// ownPathsAt renders what the router at socket has for prefix in its BGP
// table: one word per path, best first ("local", or the peer's address),
// with "+gshut" when it carries GRACEFUL_SHUTDOWN and "*" on the best.
// An error (no router there yet) renders as one word "error: ...".
func ownPathsAt(t *testing.T, socket string, prefix netip.Prefix) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := router.FetchRoutes(ctx, socket)
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	var out []string
	for _, d := range rep.BGP {
		if d.Prefix != prefix {
			continue
		}
		for _, p := range d.Paths {
			w := "local"
			if !p.Local {
				w = p.Peer.String()
			}
			if slices.Contains(p.Communities, api.GracefulShutdownCommunity) {
				w += "+gshut"
			}
			if p.Best {
				w += "*"
			}
			out = append(out, w)
		}
	}
	return out
}

// TestDrainKeepsOwnPrefixOverPeersPath: n1 drains while another node
// (n2) announces n1's block too, so that n1 receives a path for its own
// block from a peer, with a higher LOCAL_PREF than its own draining one
// (0). Throughout the drain, n1 keeps its own path as the best (its
// speaker never prefers the peer's), never installs the learned path
// (felix's blackhole stays the kernel's route), and n3 keeps receiving
// n1's own path with 65535:0 until n1 closes its sessions after
// drainTime; then n3 has only n2's. Undrained, n1 announces its block
// without the community again and still prefers its own path. n1's
// speaker runs in a child process (as bgpfabric node runs it) and in
// the node's process.
func TestDrainKeepsOwnPrefixOverPeersPath(t *testing.T) {
	t.Run("speaker process", func(t *testing.T) { testDrainKeepsOwnPrefix(t, "BF_SPEAKER_PROC=1") })
	t.Run("speaker in the node", func(t *testing.T) { testDrainKeepsOwnPrefix(t) })
}

func testDrainKeepsOwnPrefix(t *testing.T, n1Env ...string) {
	f := newFabric(t)
	cfg := fastTimers()
	cfg.Spec.DrainTime = "6s"
	f.apply(cfg)
	n1 := f.addNode("n1", "10.99.0.1/24")
	n2 := f.addNode("n2", "10.99.0.2/24")
	n3 := f.addNode("n3", "10.99.0.3/24")
	block := netip.MustParsePrefix("10.65.1.0/26")
	addBlackhole(t, n1.ns, block.String())
	addBlackhole(t, n2.ns, block.String()) // n2 announces n1's block too
	f.start(n1, n1Env...)
	f.start(n2)
	f.start(n3)
	s1, s3 := router.ControlSocketPath(f.dir, "n1"), router.ControlSocketPath(f.dir, "n3")
	waitUntilT(t, 30*time.Second, "n3 has the block from n1 and n2, n1 its own first and n2's", func() string {
		got1, got3 := ownPathsAt(t, s1, block), unmarked(ownPathsAt(t, s3, block))
		slices.Sort(got3)
		if slices.Equal(got3, []string{"10.99.0.1", "10.99.0.2"}) && slices.Equal(got1, []string{"local*", "10.99.0.2"}) {
			return ""
		}
		return fmt.Sprintf("n1 %v, n3 %v", got1, got3)
	})
	ownRoute := "via <nil> proto 80" // felix's blackhole

	closed := func() bool {
		b, _ := os.ReadFile(n1.log)
		return strings.Contains(string(b), "draining: closing every session")
	}
	f.setDrain("n1", true)
	// Sampled until n1 closes its sessions: each sample must hold.
	sawGShut := false
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(60 * time.Second)
	for !closed() {
		got1 := ownPathsAt(t, s1, block)
		got3 := unmarked(ownPathsAt(t, s3, block))
		wasClosed := closed() // the samples were taken before this
		if got := routeState(n1.ns, block); got != ownRoute {
			t.Fatalf("while draining, n1's kernel route to its block is %q, want felix's (%s)", got, ownRoute)
		}
		if !slices.ContainsFunc(got1, func(w string) bool { return strings.HasPrefix(w, "local") && strings.HasSuffix(w, "*") }) {
			t.Fatalf("while draining, n1's best path to its own block is not its own: %v", got1)
		}
		fromN1 := ""
		for _, w := range got3 {
			if strings.HasPrefix(w, "10.99.0.1") {
				fromN1 = w
			}
		}
		switch {
		case fromN1 == "10.99.0.1+gshut":
			sawGShut = true
		case fromN1 == "" && !wasClosed:
			t.Fatalf("n3 lost n1's path to n1's block before n1 closed its sessions (n3 has %v, n1 %v, then %v)", got3, got1, ownPathsAt(t, s1, block))
		case fromN1 != "" && sawGShut:
			t.Fatalf("n3 has n1's path %q after one with GRACEFUL_SHUTDOWN", fromN1)
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("n1 did not close its sessions within 60 s of the drain")
		}
	}
	if !sawGShut {
		// The window is drainTime (6 s), sampled every 50 ms: the
		// re-announcement was never seen.
		t.Fatal("n3 never had n1's path with GRACEFUL_SHUTDOWN while n1 drained")
	}
	waitUntilT(t, 30*time.Second, "n3 has only n2's path once n1's sessions closed", func() string {
		if got := unmarked(ownPathsAt(t, s3, block)); !slices.Equal(got, []string{"10.99.0.2"}) {
			return fmt.Sprint(got)
		}
		return ""
	})
	if got := routeState(n1.ns, block); got != ownRoute {
		t.Errorf("drained, n1's kernel route to its block is %q, want felix's", got)
	}

	f.setDrain("n1", false)
	waitUntilT(t, 30*time.Second, "undrained: n3 has n1's path without the community, n1 prefers its own", func() string {
		got1, got3 := ownPathsAt(t, s1, block), unmarked(ownPathsAt(t, s3, block))
		slices.Sort(got3)
		if slices.Equal(got3, []string{"10.99.0.1", "10.99.0.2"}) && slices.Equal(got1, []string{"local*", "10.99.0.2"}) {
			return ""
		}
		return fmt.Sprintf("n1 %v, n3 %v", got1, got3)
	})
	if got := routeState(n1.ns, block); got != ownRoute {
		t.Errorf("undrained, n1's kernel route to its block is %q, want felix's", got)
	}
}

// unmarked drops the best path's mark.
func unmarked(ws []string) []string {
	for i, w := range ws {
		ws[i] = strings.TrimSuffix(w, "*")
	}
	return ws
}

// waitUntilT samples cond (which says what is still missing, "" when
// done) until it holds or timeout passes.
func waitUntilT(t *testing.T, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		miss := cond()
		if miss == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %s", what, timeout, miss)
		}
		<-tick.C
	}
}
