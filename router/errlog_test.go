package router

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bgpfabric/bgpfabric/api"
)

// TestMalformedUpdateFloodBounded: 20,000 errors from one peer (a
// malformed UPDATE each) make a few log lines, a few status writes and
// one metric series (kind label, no peer address); the last error is in
// the status.
func TestMalformedUpdateFloodBounded(t *testing.T) {
	var logs lockedBuffer
	st := &countingStatus{}
	reg := prometheus.NewRegistry()
	h := start(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.Status = st
		c.Metrics = reg
	})
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), meshConfig("90s"))
	waitUntil(t, "one peer", func() bool { return len(h.sp.PeerConfigs()) == 1 })
	h.sp.SetPeerState(PeerEvent{Address: addr("10.0.0.2"), State: api.BGPEstablished})
	waitUntil(t, "n2 established in the status", func() bool {
		s := st.get()
		return s != nil && len(s.Status.Peers) == 1 && s.Status.Peers[0].State == api.BGPEstablished
	})
	before := st.puts.Load()
	const n = 20000
	for i := range n {
		msg := "the received Update message was treated as withdraw: error malformed origin"
		if i == n-1 {
			msg += " (last)"
		}
		h.sp.SetPeerState(PeerEvent{Address: addr("10.0.0.2"), Err: msg})
	}
	// A state change after the flood: once it is in the status, the
	// loop has taken every error.
	h.sp.SetPeerState(PeerEvent{Address: addr("10.0.0.2"), State: api.BGPIdle})
	waitUntil(t, "n2 idle in the status", func() bool {
		s := st.get()
		return s != nil && len(s.Status.Peers) == 1 && s.Status.Peers[0].State == api.BGPIdle
	})
	if got := st.get().Status.Peers[0].LastError; !strings.HasSuffix(got, "(last)") {
		t.Errorf("status lastError %q, want the last error", got)
	}
	if lines := strings.Count(logs.String(), `msg="peer error"`); lines > 10 {
		t.Errorf("%d peer error lines for %d errors, want at most 10", lines, n)
	}
	if puts := st.puts.Load() - before; puts > 20 {
		t.Errorf("%d status writes for %d errors and one state change, want at most 20", puts, n)
	}
	if got := counterValue(t, reg, "bgpfabric_router_peer_errors_total", "kind", "malformed_update"); got != n {
		t.Errorf("malformed_update errors counted %v, want %d", got, n)
	}
	if c := testutil.CollectAndCount(reg, "bgpfabric_router_peer_errors_total"); c != len(errorKinds) {
		t.Errorf("%d peer error series, want %d (one per kind, none per peer)", c, len(errorKinds))
	}
}

// counterValue reads a counter's value by one label.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" {
				return m.GetCounter().GetValue()
			}
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
