package router

import (
	"log/slog"
	"strings"

	"github.com/bgpfabric/bgpfabric/internal/ratelog"
)

// newErrLog bounds the router's "peer error" lines: ratelog's burst per
// peer and interval for peer input, then one summary line per peer with
// the count.
func newErrLog(lg *slog.Logger) *ratelog.Limiter {
	return ratelog.New(ratelog.Config{Interval: ratelog.PeerInterval, Burst: ratelog.PeerBurst, Summary: func(peer string, n int) {
		lg.Warn("peer errors suppressed (rate limit per peer)", logKeyPeer, peer, logKeyCount, n,
			logKeyDuration, ratelog.PeerInterval)
	}})
}

// errorKinds are the values of the peer error metric's kind label: a
// fixed set, never taken from what a peer sent.
var errorKinds = []string{"notification_sent", "notification_received", "malformed_update", "prefix_limit", "hold_timer", "peer_down", "other"}

// errorKind sorts a speaker's peer error (router/gobgp's texts) into one
// of errorKinds.
func errorKind(err string) string {
	switch {
	case strings.HasPrefix(err, "sent notification"):
		return "notification_sent"
	case strings.HasPrefix(err, "received notification"):
		return "notification_received"
	case strings.HasPrefix(err, "the received Update message was treated as withdraw"),
		strings.HasPrefix(err, "Some attributes were discarded"),
		strings.HasPrefix(err, "Session will be reset"):
		return "malformed_update"
	case strings.HasPrefix(err, "prefix limit"):
		return "prefix_limit"
	case strings.HasPrefix(err, "hold timer expired"):
		return "hold_timer"
	case strings.HasPrefix(err, "Peer Down"):
		return "peer_down"
	}
	return "other"
}
