package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
)

// The control socket's POST /sessions/reset?peer=ADDR resets one BGP
// session: the speaker sends the peer a NOTIFICATION Cease, Administrative
// Reset (subcode 4, RFC 4486), and the session comes back by itself. It is
// how `bgpfabric node reset-session` and the simulator's session-reset
// fault end a session of a node. A peer the node has no session with is
// 404.

// ErrNoSession is what ResetSession returns for a peer without a session.
var ErrNoSession = errors.New("no BGP session with that peer")

// resetSession resets the session with peer, if the node has one: a
// configured peer (running in the speaker) or a dynamic neighbour that a
// range accepted.
func (l *loop) resetSession(ctx context.Context, peer netip.Addr) error {
	known := make(chan bool, 1)
	q := func() {
		_, running := l.running[peer]
		_, dynamic := l.dynamic[peer]
		known <- running || dynamic
	}
	select {
	case l.queryCh <- q:
	case <-ctx.Done():
		return ctx.Err()
	}
	if !<-known {
		return fmt.Errorf("%s: %w", peer, ErrNoSession)
	}
	if err := l.r.cfg.Speaker.ResetPeer(ctx, peer); err != nil {
		return fmt.Errorf("resetting the session with %s: %w", peer, err)
	}
	l.lg.Info("BGP session reset on request", logKeyPeer, peer)
	return nil
}

func (s *controlServer) serveReset(w http.ResponseWriter, r *http.Request) {
	peer, err := netip.ParseAddr(r.URL.Query().Get("peer"))
	if err != nil {
		http.Error(w, fmt.Sprintf("peer: want the peer's IP address: %v", err), http.StatusBadRequest)
		return
	}
	switch err := s.l.resetSession(r.Context(), peer.Unmap()); {
	case errors.Is(err, ErrNoSession):
		http.Error(w, err.Error(), http.StatusNotFound)
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// ResetSession asks the router behind a control socket to reset its
// session with peer; a peer it has no session with is ErrNoSession.
func ResetSession(ctx context.Context, socket string, peer netip.Addr) error {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://router/sessions/reset?peer="+peer.String(), nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		if _, serr := os.Stat(socket); errors.Is(serr, os.ErrNotExist) {
			return fmt.Errorf("no router is running there: no control socket %s", socket)
		}
		return fmt.Errorf("asking the router at %s: %w", socket, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(body))
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusOK:
		return nil
	case http.StatusNotFound:
		return fmt.Errorf("router at %s: %s: %w", socket, peer, ErrNoSession)
	}
	return fmt.Errorf("router at %s: %s: %s", socket, resp.Status, msg)
}
