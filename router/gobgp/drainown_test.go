package gobgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	bfapi "github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/router"
)

// ribOf renders s's paths to p, best first: "local" or the peer's
// address, "+gshut" with 65535:0, "*" on the best.
func ribOf(t *testing.T, s *Speaker, p netip.Prefix) []string {
	t.Helper()
	ds, err := s.RIB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		if d.Prefix != p {
			continue
		}
		for _, path := range d.Paths {
			w := "local"
			if !path.Local {
				w = path.Peer.String()
			}
			if slices.Contains(path.Communities, bfapi.GracefulShutdownCommunity) {
				w += "+gshut"
			}
			if path.Best {
				w += "*"
			}
			out = append(out, w)
		}
	}
	return out
}

// TestDrainKeepsOwnPathBest: a and b both announce a's prefix to their
// iBGP peer c, and to each other. While a drains (its own path at
// LOCAL_PREF 0), a's best path to the prefix stays its own the moment the
// drain's announcement returns (b's path, LOCAL_PREF 100, is kept out),
// so c keeps a's path, now with 65535:0. Undrained with its sessions up,
// or withdrawn while draining, a has b's path again at once.
func TestDrainKeepsOwnPathBest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a, _ := startSpeaker(t, ctx, "127.0.0.1", port)
	b, _ := startSpeaker(t, ctx, "127.0.0.2", port)
	c, cc := startSpeaker(t, ctx, "127.0.0.3", port)
	for _, p := range []struct {
		s           *Speaker
		local, peer string
		passive     bool
	}{
		{a, "127.0.0.1", "127.0.0.2", true}, {b, "127.0.0.2", "127.0.0.1", false},
		{a, "127.0.0.1", "127.0.0.3", true}, {c, "127.0.0.3", "127.0.0.1", false},
		{b, "127.0.0.2", "127.0.0.3", true}, {c, "127.0.0.3", "127.0.0.2", false},
	} {
		must(t, p.s.AddPeer(ctx, loopPeer(p.local, p.peer, port, 64512, 64512, p.passive)))
	}
	own := netip.MustParsePrefix("10.65.1.0/26")
	plain := router.LocalRoute{Prefix: own}
	drained := router.LocalRoute{Prefix: own, Communities: []bfapi.Community{bfapi.GracefulShutdownCommunity}, GracefulShutdown: true}
	must(t, a.Announce(ctx, []router.LocalRoute{plain}))
	must(t, b.Announce(ctx, []router.LocalRoute{plain}))
	poll := func(what string, s *Speaker, want []string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := ribOf(t, s, own)
			slices.Sort(got)
			if slices.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v, want %v", what, got, want)
			}
			select {
			case <-cc.ch: // any change at c
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	poll("c has both paths, a's best (lower router ID)", c, []string{"127.0.0.1*", "127.0.0.2"})
	poll("a has its own best and b's", a, []string{"127.0.0.2", "local*"})

	must(t, a.Announce(ctx, []router.LocalRoute{drained}))
	if got := ribOf(t, a, own); !slices.Equal(got, []string{"local+gshut*"}) {
		t.Fatalf("draining, a's paths to its own prefix: %v, want only its own, best", got)
	}
	poll("c has a's path with 65535:0 (LOCAL_PREF 0) and b's, best", c, []string{"127.0.0.1+gshut", "127.0.0.2*"})

	must(t, a.Announce(ctx, []router.LocalRoute{plain}))
	if got := ribOf(t, a, own); !slices.Equal(got, []string{"local*", "127.0.0.2"}) {
		t.Fatalf("undrained, a's paths: %v, want its own best and b's again", got)
	}
	poll("c has a's path without 65535:0 again", c, []string{"127.0.0.1*", "127.0.0.2"})

	must(t, a.Announce(ctx, []router.LocalRoute{drained}))
	must(t, a.Withdraw(ctx, []netip.Prefix{own}))
	if got := ribOf(t, a, own); !slices.Equal(got, []string{"127.0.0.2*"}) {
		t.Fatalf("withdrawn while draining, a's paths: %v, want b's", got)
	}
	a.drainOwn.mu.Lock()
	defer a.drainOwn.mu.Unlock()
	if n := len(a.drainOwn.prefixes); n != 0 {
		t.Errorf("%d prefixes left in the drain sets: %v", n, fmt.Sprint(a.drainOwn.prefixes))
	}
}
