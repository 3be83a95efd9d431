package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bgpfabric/bgpfabric/reflector"
)

// logLines sends every log line to a channel.
type logLines chan string

func (w logLines) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

// TestWatchConfig: with --watch-config, a changed file is reloaded; an
// invalid one is refused whole (logged once, the running configuration
// kept) and a later valid one applies.
func TestWatchConfig(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "reflector.yaml")
	write := func(s string) {
		// Through a rename, as editors and config managers replace files.
		tmp := conf + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, conf); err != nil {
			t.Fatal(err)
		}
	}
	write(reflectorConfig("- {address: 127.0.0.2, passive: true}\n"))
	lines := make(logLines, 64)
	log := slog.New(slog.NewTextHandler(lines, nil))
	cfg, err := reflector.LoadConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	engineCfg := func(c *reflector.Config) { c.Logger = log }
	engineCfg(&cfg)
	r, err := reflector.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	defer func() { stopRun(); <-done }()
	<-r.Ready()
	o := &reflectorOptions{configFile: conf, watchConfig: true, watchInterval: 5 * time.Millisecond}
	eng, stop := startReload(ctx, o, fileEngine{r}, engineCfg, log)
	defer stop()
	m := eng.(reloadingEngine).m
	reloads := func(result string) float64 { return testutil.ToFloat64(m.reloads.WithLabelValues(result)) }

	waitLine := func(substr string) []string {
		t.Helper()
		var seen []string
		for {
			select {
			case l := <-lines:
				seen = append(seen, l)
				if strings.Contains(l, substr) {
					return seen
				}
			case <-ctx.Done():
				t.Fatalf("no log line with %q; saw %q", substr, seen)
			}
		}
	}
	write(reflectorConfig("- {address: 127.0.0.2, passive: true, holdTime: 1s}\n"))
	if l := waitLine("configuration reload refused"); !strings.Contains(l[len(l)-1], "neighbors[0].holdTime") {
		t.Errorf("refusal %q does not name neighbors[0].holdTime", l[len(l)-1])
	}
	if ns := r.Neighbors(); len(ns) != 1 || ns[0].Address != "127.0.0.2" {
		t.Errorf("neighbours after a refused reload: %+v", ns)
	}
	if reloads(resultRefused) != 1 || testutil.ToFloat64(m.lastOK) != 0 {
		t.Errorf("after a refused reload: %v refused, last successful %v; want 1, 0", reloads(resultRefused), testutil.ToFloat64(m.lastOK))
	}
	write(reflectorConfig("- {address: 127.0.0.2, passive: true}\n- {address: 127.0.0.3, passive: true, description: new}\n"))
	seen := waitLine("configuration reloaded")
	for _, l := range seen {
		if strings.Contains(l, "refused") {
			t.Errorf("the invalid file was refused more than once: %q", l)
		}
	}
	if reloads(resultApplied) != 1 || testutil.ToFloat64(m.lastOK) != 1 {
		t.Errorf("after an applied reload: %v applied, last successful %v; want 1, 1", reloads(resultApplied), testutil.ToFloat64(m.lastOK))
	}
	// lazyCollector serves them beside the engine's metrics.
	if n, err := testutil.GatherAndCount(registryOf(lazyCollector{eng}), "bgpfabric_reflector_config_reloads_total"); err != nil || n != 3 {
		t.Errorf("config_reloads_total through lazyCollector: %d series, %v; want 3", n, err)
	}
	ns := r.Neighbors()
	if len(ns) != 2 || ns[1].Address != "127.0.0.3" || ns[1].Description != "new" {
		t.Errorf("neighbours after the reload: %+v, want 127.0.0.2 and 127.0.0.3 (new)", ns)
	}

	// A new router ID is refused in a line naming the field; the
	// neighbour removed in the same file goes.
	write(strings.Replace(reflectorConfig("- {address: 127.0.0.2, passive: true}\n"), "routerID: 10.255.0.1", "routerID: 10.255.0.9", 1))
	if l := waitLine("setting not applied"); !strings.Contains(l[len(l)-1], "field=routerID") {
		t.Errorf("refusal line %q does not name field=routerID", l[len(l)-1])
	}
	waitLine("configuration reloaded")
	if ns := r.Neighbors(); len(ns) != 1 || ns[0].Address != "127.0.0.2" {
		t.Errorf("neighbours after a reload with a refused router ID: %+v, want 127.0.0.2 alone", ns)
	}
}

// TestWatchConfigFlags: --watch-config without --config, or with an
// interval that is not positive, is refused naming the flag.
func TestWatchConfigFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--watch-config"}, "--watch-config:"},
		{[]string{"--config", "x.yaml", "--watch-config", "--watch-config-interval", "0s"}, "--watch-config-interval"},
	} {
		cmd, o := reflectorCommand(&globalOptions{})
		if err := cmd.Flags().Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := o.checkReload(); err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.flag)
		}
	}
	cmd, o := reflectorCommand(&globalOptions{})
	if err := cmd.Flags().Parse([]string{"--config", "x.yaml", "--watch-config"}); err != nil {
		t.Fatal(err)
	}
	if err := o.checkReload(); err != nil {
		t.Errorf("--config --watch-config: %v", err)
	}
}

func registryOf(c prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	return reg
}
