package reflector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// fibWriter converges the kernel to the routes the RIB loop wants (see
// fib.go). Run opens it, runs it in a goroutine of its own and closes it
// once the RIB loop has stopped.
type fibWriter struct {
	cfg  FIBConfig
	log  *slog.Logger
	feed *fibFeed

	dp    routetable.Dataplane
	close func() error
	rt    *routetable.RouteTable
}

func newFIBWriter(cfg FIBConfig, log *slog.Logger) *fibWriter {
	return &fibWriter{cfg: cfg, log: log.With(logKeyFIB, true), feed: newFIBFeed(!cfg.SinglePath)}
}

// fibRetryMin and fibRetryMax bound the wait before a failed pass is
// tried again (doubling in between).
const (
	fibRetryMin = 250 * time.Millisecond
	fibRetryMax = 30 * time.Second
)

// open connects to the kernel (or the configured Dataplane).
func (w *fibWriter) open() error {
	w.dp, w.close = w.cfg.Dataplane, func() error { return nil }
	if w.dp == nil {
		ns := w.cfg.Netns
		if ns == 0 {
			ns = netns.None() // ours
		}
		ndp, err := routetable.NewNetlinkDataplane(ns)
		if err != nil {
			return fmt.Errorf("kernel FIB: %w", err)
		}
		w.dp, w.close = ndp, ndp.Close
	}
	rt, err := routetable.New(routetable.Config{Protocol: w.cfg.Protocol, Table: w.cfg.Table, Logger: w.log}, w.dp)
	if err != nil {
		w.close()
		return fmt.Errorf("kernel FIB: %w", err)
	}
	w.rt = rt
	return nil
}

// run applies the feed until ctx ends. Its first pass (unless the feed
// is held for a restart) lists our protocol's routes and deletes those
// that an earlier run left and nothing wants any more.
func (w *fibWriter) run(ctx context.Context) {
	retry := time.NewTimer(0) // the first pass runs at once
	defer retry.Stop()
	resync := time.NewTicker(w.cfg.ResyncInterval)
	defer resync.Stop()
	backoff := fibRetryMin
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.feed.signal:
		case <-retry.C:
		case <-resync.C:
			w.rt.Resync()
		}
		if w.pass(ctx) {
			backoff = fibRetryMin
			continue
		}
		if ctx.Err() != nil {
			return
		}
		retry.Reset(backoff)
		backoff = min(2*backoff, fibRetryMax)
	}
}

// pass takes the feed's changes and, unless held, applies them. It
// reports false when routes failed and the pass must be tried again.
func (w *fibWriter) pass(ctx context.Context) bool {
	changes, held := w.feed.take()
	for dst, c := range changes {
		if c.deleted {
			w.rt.DeleteRoute(dst)
		} else if err := w.rt.SetRoute(c.route); err != nil {
			w.log.Warn("route not installable", logKeyPrefix, dst.String(), logKeyErr, err)
		}
	}
	if held {
		return true
	}
	err := w.rt.Apply(ctx)
	if err == nil {
		return true
	}
	if onlyConflicts(err) {
		w.log.Info("routes left to other protocols' routes on their prefixes", logKeyConflicts, len(w.rt.Conflicts()), logKeyErr, err)
		return true
	}
	w.log.Warn("installing routes; retrying", logKeyErr, err)
	return false
}

// onlyConflicts reports whether err consists of ConflictErrors only: a
// foreign route on a prefix we want is left alone, and tried again after
// a resync or a change of the wanted route, not retried.
func onlyConflicts(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !onlyConflicts(e) {
				return false
			}
		}
		return true
	}
	var c *routetable.ConflictError
	return errors.As(err, &c)
}

// finish ends the writer once nothing feeds it any more: with keep (a
// graceful restart) the kernel keeps our routes, for the next run to take
// over; otherwise every route of ours is removed.
func (w *fibWriter) finish(keep bool) error {
	defer w.close()
	if keep {
		w.log.Info("graceful restart: leaving the installed routes to the next run")
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w.rt.Set(nil)
	w.rt.Resync() // whatever the kernel holds of ours, not only what we think it does
	if err := w.rt.Apply(ctx); err != nil {
		return fmt.Errorf("kernel FIB: removing our routes: %w", err)
	}
	return nil
}
