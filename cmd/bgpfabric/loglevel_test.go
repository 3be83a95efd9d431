package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
	"github.com/bgpfabric/bgpfabric/internal/testlog"
)

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct{ testlog.Buffer }

func (l *lockedBuffer) has(s string) bool { return strings.Contains(l.String(), s) }

// TestLogSeverityFollowsBGPConfiguration: the process logger of node and
// reflector shows Debug lines only while the BGPConfiguration says Debug,
// the node's own configuration wins over the global one, and deleting it
// goes back to the global one; all live.
func TestLogSeverityFollowsBGPConfiguration(t *testing.T) {
	e := etcdtest.Start(t)
	c := e.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	out := &lockedBuffer{}
	g := &globalOptions{logLevel: "info", stderr: out}
	changes := make(chan slog.Level, 16)
	g.onLevelChange = func(l slog.Level) { changes <- l }
	log, err := g.logger()
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- followLogSeverity(runCtx, g, c, "n1", log) }()
	defer func() {
		stop()
		if err := <-done; err != nil && runCtx.Err() == nil {
			t.Errorf("followLogSeverity: %v", err)
		}
	}()
	waitLevel := func(want slog.Level) {
		t.Helper()
		for {
			select {
			case l := <-changes:
				if l == want {
					return
				}
			case <-ctx.Done():
				t.Fatalf("level never became %s (it is %s)", want, g.level.Level())
			}
		}
	}
	put := func(name, sev string) {
		t.Helper()
		if _, err := c.Apply(ctx, &api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.BGPConfigurationSpec{LogSeverity: sev}}); err != nil {
			t.Fatal(err)
		}
	}

	log.Debug("probe-1")
	if out.has("probe-1") {
		t.Error("a Debug line at the default level (info)")
	}
	put("default", "Debug")
	waitLevel(slog.LevelDebug)
	log.Debug("probe-2")
	if !out.has("probe-2") {
		t.Error("no Debug line with logSeverity Debug")
	}
	put("node.n1", "Warning")
	waitLevel(slog.LevelWarn)
	log.Debug("probe-3")
	log.Info("probe-4")
	log.Warn("probe-5")
	if out.has("probe-3") || out.has("probe-4") || !out.has("probe-5") {
		t.Errorf("with the node's logSeverity Warning: output\n%s", out)
	}
	put("node.n2", "Error") // another node's: no effect
	if err := c.Delete(ctx, api.KindBGPConfiguration, "", "node.n1", ""); err != nil {
		t.Fatal(err)
	}
	waitLevel(slog.LevelDebug)
	log.Debug("probe-6")
	if !out.has("probe-6") {
		t.Error("no Debug line after the node's configuration went (the global one says Debug)")
	}
	put("default", "Fatal")
	waitLevel(slog.LevelError)
	log.Warn("probe-7")
	log.Error("probe-8")
	if out.has("probe-7") || !out.has("probe-8") {
		t.Error("logSeverity Fatal: want Error lines only")
	}
}

func TestSeverityLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"Debug": slog.LevelDebug, "Info": slog.LevelInfo, "Warning": slog.LevelWarn, "Error": slog.LevelError, "Fatal": slog.LevelError} {
		if got, err := severityLevel(in); err != nil || got != want {
			t.Errorf("severityLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := severityLevel("debug"); err == nil {
		t.Error(`severityLevel("debug"): no error`)
	}
}
