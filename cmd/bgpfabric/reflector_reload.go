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

// configReloader reloads a configuration file into a running reflector.
// Its reload is called from one goroutine (watchConfig's).
type configReloader struct {
	path   string
	r      *reflector.Reflector
	engine func(*reflector.Config) // the command's settings, as at start
	log    *slog.Logger
	// last is the hash of the content last tried (applied or refused):
	// the watcher reloads, and logs, only a new content.
	last [sha256.Size]byte
}

// reload reads, validates and applies the file. A file that fails is
// refused whole: logged once, the running configuration kept.
func (c *configReloader) reload(why string) {
	b, err := os.ReadFile(c.path)
	if err != nil {
		c.log.Error("configuration reload failed; keeping the running configuration", logKeyFile, c.path, "trigger", why, "err", err)
		return
	}
	c.last = sha256.Sum256(b)
	cfg, err := reflector.ParseConfigFile(b)
	if err != nil {
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
	if err != nil {
		c.log.Error("configuration reload", logKeyFile, c.path, "trigger", why, "err", err)
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
// returned stop is called, which waits for it. In datastore mode the
// configuration follows the datastore: SIGHUP is logged and ignored
// (rather than ending the process, its default).
func startReload(ctx context.Context, o *reflectorOptions, eng engine, engineCfg func(*reflector.Config), log *slog.Logger) func() {
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
		return stop
	}
	c := &configReloader{path: o.configFile, r: eng.Reflector(), engine: engineCfg, log: log}
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
	return stop
}
