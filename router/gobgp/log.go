package gobgp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"

	"github.com/bgpfabric/bgpfabric/internal/ratelog"
)

// slogLogger adapts GoBGP's pkg/log.Logger to slog. Besides logging, it
// turns the session problems GoBGP only logs (notifications, RFC 7606
// treat-as-withdraw, prefix limits, "Peer Down" reasons) into peer errors
// for the router's status, through onPeerErr.
type slogLogger struct {
	lg        *slog.Logger
	level     atomic.Uint32
	onPeerErr func(addr netip.Addr, msg string)
	// onRangeErr, if set, gets the problems logged about a prefix (a
	// dynamic-neighbour range): a TCP MD5 key that could not be set.
	onRangeErr func(prefix netip.Prefix, msg string)
	// limit bounds the lines about one peer and message (GoBGP logs a
	// warning per malformed UPDATE: 20,000 lines in 2 s from one peer):
	// a few per interval, then one summary with the count.
	limit *ratelog.Limiter
}

var _ gobgplog.Logger = (*slogLogger)(nil)

func newSlogLogger(lg *slog.Logger, onPeerErr func(netip.Addr, string)) *slogLogger {
	l := &slogLogger{lg: lg, onPeerErr: onPeerErr}
	l.limit = ratelog.New(ratelog.Config{Interval: ratelog.PeerInterval, Burst: ratelog.PeerBurst, Summary: func(key string, n int) {
		peer, msg, _ := strings.Cut(key, "|")
		lg.Warn("log lines suppressed (rate limit per peer and message)", "key", peer, "msg_suppressed", msg,
			"count", n, "interval", ratelog.PeerInterval)
	}})
	lvl := gobgplog.InfoLevel
	if lg.Enabled(context.Background(), slog.LevelDebug) {
		lvl = gobgplog.DebugLevel
	}
	l.level.Store(uint32(lvl))
	return l
}

// attrs renders fields as sorted slog attributes.
func attrs(fields gobgplog.Fields) []any {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		out = append(out, strings.ToLower(k), fmt.Sprint(fields[k]))
	}
	return out
}

func (l *slogLogger) log(level slog.Level, msg string, fields gobgplog.Fields) {
	if l.lg.Enabled(context.Background(), level) && l.allow(level, msg, fields) {
		l.lg.Log(context.Background(), level, msg, attrs(fields)...)
	}
	if l.onPeerErr != nil && level >= slog.LevelInfo && fields["Topic"] == "Peer" {
		if addr, ok := peerKey(fields); ok {
			if e := peerError(msg, fields); e != "" {
				l.onPeerErr(addr, e)
			}
		} else if p, ok := rangeKey(fields); ok && l.onRangeErr != nil {
			if e := peerError(msg, fields); e != "" {
				l.onRangeErr(p, e)
			}
		}
	}
}

// allow applies the per-peer limit to the lines about a peer (Key).
func (l *slogLogger) allow(level slog.Level, msg string, fields gobgplog.Fields) bool {
	// Session ups and downs are bounded by the FSM's own timers, and a
	// "Peer Up" line is the evidence router/speakerproc blames a crash
	// on: never suppressed.
	if level < slog.LevelInfo || l.limit == nil || msg == "Peer Up" || msg == "Peer Down" {
		return true
	}
	k, ok := fields["Key"].(string)
	if !ok {
		return true
	}
	return l.limit.Allow(k + "|" + msg)
}

func peerKey(fields gobgplog.Fields) (netip.Addr, bool) {
	s, ok := fields["Key"].(string)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	return a, err == nil
}

// rangeKey is the prefix GoBGP logs as the key of a dynamic-neighbour
// range.
func rangeKey(fields gobgplog.Fields) (netip.Prefix, bool) {
	s, ok := fields["Key"].(string)
	if !ok {
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(s)
	return p, err == nil
}

// peerError picks the messages that explain why a session is not well.
func peerError(msg string, fields gobgplog.Fields) string {
	detail := func(keys ...string) string {
		var parts []string
		for _, k := range keys {
			if v, ok := fields[k]; ok && fmt.Sprint(v) != "" {
				parts = append(parts, strings.ToLower(k)+" "+fmt.Sprint(v))
			}
		}
		if len(parts) == 0 {
			return msg
		}
		return msg + ": " + strings.Join(parts, ", ")
	}
	switch {
	case msg == "Peer Down":
		return detail("Reason")
	case msg == "received notification", msg == "sent notification":
		return detail("Code", "Subcode", "Communicated-Reason")
	case strings.HasPrefix(msg, "prefix limit reached"),
		strings.HasPrefix(msg, "Administrative shutdown(Prefix limit reached)"):
		return "prefix limit reached" + func() string {
			if f, ok := fields["Family"]; ok {
				return " for " + fmt.Sprint(f)
			}
			return ""
		}()
	case strings.HasPrefix(msg, "Session will be reset"),
		msg == "the received Update message was treated as withdraw",
		msg == "Some attributes were discarded",
		msg == "hold timer expired",
		msg == "failed to set md5":
		return detail("Error", "Err") // GoBGP logs md5 failures with Err
	}
	return ""
}

func (l *slogLogger) Panic(msg string, fields gobgplog.Fields) {
	l.log(slog.LevelError, msg, fields)
	panic(msg)
}

// Fatal logs at error level and does not exit: a library must not end the
// process. GoBGP only calls it when its gRPC listener fails, which we
// never start.
func (l *slogLogger) Fatal(msg string, fields gobgplog.Fields) { l.log(slog.LevelError, msg, fields) }
func (l *slogLogger) Error(msg string, fields gobgplog.Fields) { l.log(slog.LevelError, msg, fields) }
func (l *slogLogger) Warn(msg string, fields gobgplog.Fields)  { l.log(slog.LevelWarn, msg, fields) }
func (l *slogLogger) Info(msg string, fields gobgplog.Fields)  { l.log(slog.LevelInfo, msg, fields) }

// Debug is dropped unless the slog handler wants debug: GoBGP's debug
// logging is very chatty, and building its fields costs.
func (l *slogLogger) Debug(msg string, fields gobgplog.Fields) { l.log(slog.LevelDebug, msg, fields) }

// SetLevel and GetLevel keep GoBGP's notion of the level; slog's handler
// decides what is written.
func (l *slogLogger) SetLevel(level gobgplog.LogLevel) { l.level.Store(uint32(level)) }
func (l *slogLogger) GetLevel() gobgplog.LogLevel      { return gobgplog.LogLevel(l.level.Load()) }
