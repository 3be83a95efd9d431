package speakerproc

import (
	"testing"
	"time"
)

// TestCrasherCostsOnlyTheChild: issue 11's UPDATE from an established
// peer kills the speaker child (GoBGP's decoder panics); the Client, in
// this process, reports the loss with the panic and the peer that came up
// last, a new child starts, and the peer's session comes back and
// carries routes.
func TestCrasherCostsOnlyTheChild(t *testing.T) {
	h, err := newHarness()
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	s, err := h.dial(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.sendUpdate(crasherBody); err != nil {
		t.Fatal(err)
	}
	var lossPeer string
	select {
	case loss := <-h.losses:
		if loss.Panic == "" {
			t.Errorf("loss %v without the panic", loss.Err)
		}
		if loss.LastUp != peerAddr {
			t.Errorf("loss names %v as the last peer up, want %v", loss.LastUp, peerAddr)
		}
		lossPeer = loss.LastUp.String()
		t.Logf("loss: %v; last peer up %s; panic: %.80s", loss.Err, lossPeer, loss.Panic)
	case <-time.After(30 * time.Second):
		t.Fatal("no loss reported for the crasher")
	}
	// Calls fail while no child runs, and the next Start runs one.
	if _, err := h.c.Peers(t.Context()); err == nil {
		t.Error("Peers succeeded with the child dead")
	}
	if err := h.start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	s2, err := h.dial(30 * time.Second)
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	defer s2.conn.Close()
	// A good UPDATE is taken (the speaker answers the refresh after it).
	out, _, err := h.try(s2, goodBodies()[0])
	if err != nil || out != handled {
		t.Fatalf("a valid UPDATE after the restart: %v, %v", out, err)
	}
	ps, err := h.c.Peers(t.Context())
	if err != nil || len(ps) != 1 || ps[0].PrefixesReceived == 0 {
		t.Errorf("peers after the restart: %+v, %v; want one with the prefixes received", ps, err)
	}
}
