package speakerproc

import (
	"context"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// TestResetPeerThroughChild: ResetPeer crosses to the child speaker, which
// sends the peer a NOTIFICATION Cease, Administrative Reset (6/4).
func TestResetPeerThroughChild(t *testing.T) {
	h, err := newHarness()
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	s, err := h.dial(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.c.ResetPeer(ctx, peerAddr); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				t.Fatal("session closed without a NOTIFICATION")
			}
			if m.Header.Type != bgp.BGP_MSG_NOTIFICATION {
				continue
			}
			n := m.Body.(*bgp.BGPNotification)
			if n.ErrorCode != bgp.BGP_ERROR_CEASE || n.ErrorSubcode != bgp.BGP_ERROR_SUB_ADMINISTRATIVE_RESET {
				t.Fatalf("NOTIFICATION %d/%d, want Cease, Administrative Reset (6/4)", n.ErrorCode, n.ErrorSubcode)
			}
			return
		case <-timeout:
			t.Fatal("no NOTIFICATION within 10s")
		}
	}
}
