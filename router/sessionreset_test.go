package router

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
)

// TestControlResetSession: POST /sessions/reset on the control socket
// makes the speaker reset that peer's session (ResetPeer: the Cease is
// the speaker's, router/gobgp's TestResetPeer); a peer the node has no
// session with is refused with ErrNoSession (404) and reaches no speaker.
func TestControlResetSession(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "router.sock")
	h := start(t, func(c *Config) { c.ControlSocket = sock })
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), &api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: "default"}})
	waitUntil(t, "peer configured", func() bool { return len(h.sp.PeerConfigs()) == 1 })
	h.sp.Calls()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ResetSession(ctx, sock, addr("10.0.0.2")); err != nil {
		t.Fatalf("reset of n2's session: %v", err)
	}
	if calls := h.sp.Calls(); !slices.Contains(calls, "ResetPeer 10.0.0.2") {
		t.Errorf("speaker calls = %q, want ResetPeer 10.0.0.2", calls)
	}
	err := ResetSession(ctx, sock, addr("10.0.0.9"))
	if !errors.Is(err, ErrNoSession) || !strings.Contains(err.Error(), "10.0.0.9") {
		t.Errorf("reset of a peer without a session: %v, want ErrNoSession naming it", err)
	}
	if calls := h.sp.Calls(); slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "ResetPeer") }) {
		t.Errorf("speaker asked to reset a session the node does not have: %q", calls)
	}
	h.stop(t)
}
