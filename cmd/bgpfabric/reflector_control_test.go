package main

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/reflector"
	"github.com/bgpfabric/bgpfabric/router"
)

// TestReflectorControlSocket: the reflector's control socket answers the
// router's ResetSession client: an unconfigured reflector is an error, a
// neighbour is reset (204), an address that is no neighbour is
// ErrNoSession (404). The Cease itself is reflector.TestResetSession's.
func TestReflectorControlSocket(t *testing.T) {
	ctx, eng, sock := startTestControl(t)
	neighbour := netip.MustParseAddr("127.0.0.2")
	if err := router.ResetSession(ctx, sock, neighbour); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("before the reflector exists: %v", err)
	}
	r, err := reflector.New(reflector.Config{RouterID: netip.MustParseAddr("10.255.0.1"), ASN: 64512, ListenAddrs: []string{"127.0.0.1:0"},
		Neighbors: []reflector.NeighborConfig{{Address: neighbour, ASN: 64512, Client: true, Passive: true}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	defer func() { stop(); <-done }()
	select {
	case <-r.Ready():
	case <-ctx.Done():
		t.Fatal("reflector not ready")
	}
	eng.p.Store(r)
	if err := router.ResetSession(ctx, sock, neighbour); err != nil {
		t.Errorf("reset of a neighbour: %v", err)
	}
	if err := router.ResetSession(ctx, sock, netip.MustParseAddr("127.0.0.9")); !errors.Is(err, router.ErrNoSession) {
		t.Errorf("reset of an address that is no neighbour: %v, want ErrNoSession", err)
	}
}

// testEngine is an engine whose reflector appears while it is served.
type testEngine struct {
	p atomic.Pointer[reflector.Reflector]
}

func (e *testEngine) Reflector() *reflector.Reflector { return e.p.Load() }

// startTestControl serves the reflector's control socket over a
// testEngine (no reflector yet) until the test ends.
func startTestControl(t *testing.T) (context.Context, *testEngine, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	eng := &testEngine{}
	sock := filepath.Join(t.TempDir(), "reflector.sock")
	if err := serveReflectorControl(ctx, sock, eng, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	return ctx, eng, sock
}
