package gobgp

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"

	"github.com/bgpfabric/bgpfabric/internal/testlog"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer = testlog.Buffer

// TestMalformedUpdateFloodLogsBounded: GoBGP logs one warning per
// malformed UPDATE. 20,000 of them from one peer make a handful of log
// lines (the limit per peer and message), while the router still hears
// of every one (onPeerErr: it counts them) and another peer's lines pass.
func TestMalformedUpdateFloodLogsBounded(t *testing.T) {
	var out syncBuffer
	var errs int
	l := newSlogLogger(slog.New(slog.NewTextHandler(&out, nil)), func(netip.Addr, string) { errs++ })
	defer l.limit.Close()
	for range 20000 {
		l.Warn("the received Update message was treated as withdraw", gobgplog.Fields{"Topic": "Peer", "Key": "10.0.0.9", "Error": "bad origin"})
	}
	l.Warn("the received Update message was treated as withdraw", gobgplog.Fields{"Topic": "Peer", "Key": "10.0.0.10", "Error": "bad origin"})
	if errs != 20001 {
		t.Errorf("onPeerErr called %d times, want 20001", errs)
	}
	lines := strings.Count(out.String(), "\n")
	if lines > 10 {
		t.Errorf("%d log lines for 20,001 malformed UPDATEs, want at most 10", lines)
	}
	if !strings.Contains(out.String(), "key=10.0.0.10") {
		t.Errorf("the other peer's line was suppressed:\n%s", out.String())
	}
}
