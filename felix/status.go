package felix

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

// statusReporter writes the agent's FelixStatus record under a lease, from
// a goroutine of its own, so that the agent's loop never waits for etcd.
// The loop hands it the latest report (set); it writes the report when it
// differs from the last one written, at most once per interval, and keeps
// trying while etcd is away. Only the latest report matters: the ones in
// between are skipped.
type statusReporter struct {
	c        *datastore.Client
	node     string
	ttl      time.Duration
	interval time.Duration
	retryMin time.Duration
	retryMax time.Duration
	log      *slog.Logger

	kick chan struct{}
	mu   sync.Mutex
	next *api.FelixStatusReport
}

func newStatusReporter(cfg Config) *statusReporter {
	return &statusReporter{
		c: cfg.Client, node: cfg.NodeName, ttl: cfg.StatusTTL, interval: cfg.StatusInterval,
		retryMin: cfg.RetryMin, retryMax: cfg.RetryMax, log: cfg.Logger,
		kick: make(chan struct{}, 1),
	}
}

// set hands the reporter the latest report.
func (s *statusReporter) set(r api.FelixStatusReport) {
	s.mu.Lock()
	s.next = &r
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *statusReporter) take() *api.FelixStatusReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.next
	s.next = nil
	return r
}

// run writes reports until ctx ends, then revokes the lease (a clean stop:
// the record disappears at once).
func (s *statusReporter) run(ctx context.Context) {
	w := s.openWriter(ctx)
	if w == nil {
		return
	}
	defer func() {
		if err := w.Close(); err != nil {
			s.log.Warn("closing status writer", logKeyError, err)
		}
	}()
	var (
		written   *api.FelixStatusReport // last written, LastUpdate cleared
		pending   *api.FelixStatusReport
		lastWrite time.Time
		wait      = s.retryMin
		timer     = time.NewTimer(0)
	)
	<-timer.C
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-s.kick:
			if r := s.take(); r != nil {
				pending = r
			}
		case <-timer.C:
		}
		if pending == nil || written != nil && *pending == *written {
			pending = nil
			continue
		}
		if d := s.interval - time.Since(lastWrite); d > 0 {
			timer.Reset(d) // rate limit: the latest report goes out then
			continue
		}
		rec := &api.FelixStatus{ObjectMeta: api.ObjectMeta{Name: s.node}, Status: *pending}
		rec.Status.LastUpdate = time.Now().UTC().Format(time.RFC3339)
		lastWrite = time.Now()
		if _, err := w.Put(ctx, rec); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("writing felix status; will retry", logKeyError, err, logKeyRetryIn, wait)
			timer.Reset(wait)
			wait = min(2*wait, s.retryMax)
			continue
		}
		wait = s.retryMin
		written, pending = pending, nil
	}
}

// openWriter grants the status lease, retrying with backoff until it
// succeeds or ctx ends (nil).
func (s *statusReporter) openWriter(ctx context.Context) *datastore.StatusWriter {
	wait := s.retryMin
	for {
		w, err := s.c.NewStatusWriter(ctx, datastore.StatusWriterConfig{TTL: s.ttl, Logger: s.log})
		if err == nil {
			return w
		}
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("opening felix status writer; will retry", logKeyError, err, logKeyRetryIn, wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, s.retryMax)
	}
}
