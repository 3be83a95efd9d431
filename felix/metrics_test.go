package felix

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestHealthAndMetrics: the agent is not live before Run nor ready before
// it has programmed the dataplane; once it has, /readyz's check passes and
// the metrics count what it programmed and how long the applies took.
func TestHealthAndMetrics(t *testing.T) {
	env := startEtcd(t)
	k := newFakeKernel()
	k.addLink("wla")
	env.create(t, wep("a", nodeName, "wla", "10.65.0.1/32"), block("10.65.0.0/26", nodeName))

	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := k.config(t, env.client)
	cfg.Metrics = m
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.Live() == nil || a.Ready() == nil {
		t.Fatalf("live/ready before Run: %v / %v", a.Live(), a.Ready())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if a.Live() == nil {
			t.Error("live after Run returned")
		}
	}()

	env.waitStatus(t, "programmed", inSyncWith(2))
	if err := a.Ready(); err != nil {
		t.Errorf("Ready once in sync: %v", err)
	}
	if got := testutil.ToFloat64(m.routes); got != 2 {
		t.Errorf("bgpfabric_felix_routes = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.endpoints); got != 1 {
		t.Errorf("bgpfabric_felix_endpoints = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.inSync); got != 1 {
		t.Errorf("bgpfabric_felix_in_sync = %v, want 1", got)
	}
	n, err := testutil.GatherAndCount(reg, "bgpfabric_felix_apply_seconds")
	if err != nil || n < 2 { // one series per part: interfaces and routes
		t.Errorf("apply_seconds series = %d (%v), want interfaces and routes", n, err)
	}
}
