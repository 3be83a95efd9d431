//go:build !nodeonly

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/bgpfabric/bgpfabric/reflector"
)

// serveReflectorControl serves the reflector's control socket (a unix
// socket, --control-socket) until ctx ends: POST /sessions/reset?peer=ADDR
// resets that neighbour's sessions with a Cease, Administrative Reset, as
// a node router's control socket does (router/sessionreset.go, whose
// ResetSession is the client of both). A peer that is no neighbour is 404.
func serveReflectorControl(ctx context.Context, path string, eng engine, log *slog.Logger) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("--control-socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("--control-socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("--control-socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sessions/reset", func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddr(r.URL.Query().Get("peer"))
		if err != nil {
			http.Error(w, fmt.Sprintf("peer: want the peer's IP address: %v", err), http.StatusBadRequest)
			return
		}
		rr := eng.Reflector()
		if rr == nil {
			http.Error(w, "the reflector is not configured yet", http.StatusServiceUnavailable)
			return
		}
		n, err := rr.ResetSession(peer.Unmap())
		switch {
		case errors.Is(err, reflector.ErrNoNeighbor):
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		log.Info("BGP session reset on request", "peer", peer, "sessions", n)
		w.WriteHeader(http.StatusNoContent)
	})
	registerShowHandlers(mux, eng, log) // reflector_show.go
	mux.HandleFunc("GET /mrt/dump", serveMRTDump(eng))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		_ = srv.Serve(ln)
		_ = os.Remove(path)
	}()
	return nil
}
