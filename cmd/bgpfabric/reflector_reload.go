//go:build !nodeonly

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/bgpfabric/bgpfabric/reflector"
)

// Live reload of the reflector's configuration file: on SIGHUP, and with
// --watch-config when the file's content changes (polled: its size and
// modification time every --watch-config-interval, then its SHA-256, so
// that a touch without a change does nothing). The new file goes through
// reflector.Reconfigure, the datastore mode's reconcile (docs/reflector.md,
// Operations).

const (
	logKeyFile  = "file"
	logKeyField = "field"
)

// addReloadFlags adds the reload flags to the reflector's flag set.
func addReloadFlags(f *pflag.FlagSet, o *reflectorOptions) {
	f.BoolVar(&o.watchConfig, "watch-config", false, "reload --config when its content changes (SIGHUP always reloads)")
	f.DurationVar(&o.watchInterval, "watch-config-interval", 2*time.Second, "how often --watch-config looks at the file")
}

// checkReload refuses reload flags that cannot apply.
func (o *reflectorOptions) checkReload() error {
	switch {
	case o.watchConfig && o.configFile == "":
		return errors.New("--watch-config: needs --config (in datastore mode the reflector follows the datastore)")
	case o.watchConfig && o.watchInterval <= 0:
		return fmt.Errorf("--watch-config-interval: %v is not a positive duration", o.watchInterval)
	}
	return nil
}

// reloadMetrics count reloads, as Prometheus counts its own.
type reloadMetrics struct {
	reloads    *prometheus.CounterVec // result: applied, refused
	lastOK     prometheus.Gauge
	lastOKTime prometheus.Gauge
}

func newReloadMetrics() *reloadMetrics {
	const ns = "bgpfabric_reflector"
	m := &reloadMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "config_reloads_total",
			Help: "Reloads of the configuration file by result: applied (settings that need a restart excepted, see the log), refused (invalid: nothing applied) or error (applied, a part failed)."},
			[]string{"result"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "config_last_reload_successful",
			Help: "1 when the last reload of the configuration file was applied (or none was tried), 0 when it was refused."}),
		lastOKTime: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "config_last_reload_success_timestamp_seconds",
			Help: "When the running configuration file was last loaded or applied, in Unix seconds."}),
	}
	for _, r := range []string{resultApplied, resultRefused, resultError} {
		m.reloads.WithLabelValues(r)
	}
	m.lastOK.Set(1)
	m.lastOKTime.SetToCurrentTime()
	return m
}

// Reload results (the result label).
const (
	resultApplied = "applied" // settings that need a restart excepted (logged)
	resultRefused = "refused" // invalid: nothing applied
	resultError   = "error"   // applied, but a part failed (e.g. a TCP MD5 key)
)

func (m *reloadMetrics) note(result string) {
	m.reloads.WithLabelValues(result).Inc()
	if result != resultApplied {
		m.lastOK.Set(0)
		return
	}
	m.lastOK.Set(1)
	m.lastOKTime.SetToCurrentTime()
}

// reloadingEngine is the file mode's engine with the reload metrics,
// which lazyCollector collects beside the engine's.
type reloadingEngine struct {
	engine
	m *reloadMetrics
}

func (e reloadingEngine) Describe(ch chan<- *prometheus.Desc) {
	e.m.reloads.Describe(ch)
	e.m.lastOK.Describe(ch)
	e.m.lastOKTime.Describe(ch)
}

func (e reloadingEngine) Collect(ch chan<- prometheus.Metric) {
	e.m.reloads.Collect(ch)
	e.m.lastOK.Collect(ch)
	e.m.lastOKTime.Collect(ch)
}

// configReloader reloads a configuration file into a running reflector.
// Its reload is called from one goroutine (watchConfig's).
type configReloader struct {
	path   string
	r      *reflector.Reflector
	engine func(*reflector.Config) // the command's settings, as at start
	log    *slog.Logger
	m      *reloadMetrics
	// last is the hash of the content last tried (applied or refused):
	// the watcher reloads, and logs, only a new content.
	last [sha256.Size]byte
}

// reload reads, validates and applies the file. A file that fails is
// refused whole: logged once, the running configuration kept.
func (c *configReloader) reload(why string) {
	b, err := os.ReadFile(c.path)
	if err != nil {
		c.m.note(resultRefused) // counted before the line is logged, which readers may wait for
		c.log.Error("configuration reload failed; keeping the running configuration", logKeyFile, c.path, "trigger", why, "err", err)
		return
	}
	c.last = sha256.Sum256(b)
	cfg, err := reflector.ParseConfigFile(b)
	if err != nil {
		c.m.note(resultRefused)
		c.log.Error("configuration reload refused; keeping the running configuration", logKeyFile, c.path, "trigger", why,
			"err", fmt.Errorf("%s: %w", c.path, err))
		return
	}
	c.engine(&cfg)
	res, err := c.r.Reconfigure(cfg)
	for _, s := range res.Refused {
		field, _, _ := strings.Cut(s, ":")
		c.log.Warn("configuration reload: setting not applied, it needs a restart", logKeyField, field, "detail", s)
	}
	switch {
	case err == nil:
		c.m.note(resultApplied)
	case res.Applied:
		c.m.note(resultError)
		c.log.Error("configuration reload applied, but a part of it failed", logKeyFile, c.path, "trigger", why, "err", err)
		return
	default:
		c.m.note(resultRefused)
		c.log.Error("configuration reload refused; keeping the running configuration", logKeyFile, c.path, "trigger", why, "err", err)
		return
	}
	c.log.Info("configuration reloaded", logKeyFile, c.path, "trigger", why, "added", len(res.Added),
		"removed", len(res.Removed), "reset", len(res.Reset), "changedLive", len(res.Live))
}

// changed reports whether the file's content differs from the last one
// tried; st is the last stat, updated.
func (c *configReloader) changed(st *os.FileInfo) bool {
	fi, err := os.Stat(c.path)
	if err != nil {
		return false // a file being replaced; the next look sees the new one
	}
	if *st != nil && fi.Size() == (*st).Size() && fi.ModTime().Equal((*st).ModTime()) {
		return false
	}
	*st = fi
	b, err := os.ReadFile(c.path)
	if err != nil {
		return false
	}
	h := sha256.Sum256(b)
	return !bytes.Equal(h[:], c.last[:])
}

// startReload handles SIGHUP (and --watch-config) until ctx ends or the
// returned stop is called, which waits for it. In file mode it returns
// eng with the reload metrics (reloadingEngine). In datastore mode the
// configuration follows the datastore: SIGHUP is logged and ignored
// (rather than ending the process, its default), and eng is returned as
// it is.
func startReload(ctx context.Context, o *reflectorOptions, eng engine, engineCfg func(*reflector.Config), log *slog.Logger) (engine, func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop := func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
	if o.configFile == "" {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					log.Info("SIGHUP ignored: in datastore mode the reflector follows the datastore's changes by itself")
				}
			}
		})
		return eng, stop
	}
	c := &configReloader{path: o.configFile, r: eng.Reflector(), engine: engineCfg, log: log, m: newReloadMetrics()}
	// What the reflector started with, near enough (read again): a change
	// from here on is seen.
	st, _ := os.Stat(c.path)
	if b, err := os.ReadFile(c.path); err == nil {
		c.last = sha256.Sum256(b)
	}
	wg.Go(func() {
		var tick <-chan time.Time
		if o.watchConfig {
			t := time.NewTicker(o.watchInterval)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				c.reload("SIGHUP")
			case <-tick:
				if c.changed(&st) {
					c.reload("file changed")
				}
			}
		}
	})
	return reloadingEngine{engine: eng, m: c.m}, stop
}
