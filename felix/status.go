package felix

import (
	"context"
	"log/slog"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/latest"
)

// statusReporter writes the agent's FelixStatus record under a lease, from
// a goroutine of its own, so that the agent's loop never waits for etcd.
// The loop hands it the latest report (set); through a latest.Writer it
// writes the report only when it differs from the last one written (the
// timestamp aside), at most once per StatusInterval, and retries with
// jittered backoff while etcd is away. Only the latest report matters:
// the ones in between are skipped. A converged, idle agent writes
// nothing.
type statusReporter struct {
	c      *datastore.Client
	shared *datastore.StatusWriter // Config.Status; nil: open one
	node   string
	ttl    time.Duration
	log    *slog.Logger
	out    *latest.Writer[api.FelixStatusReport]
	w      *datastore.StatusWriter // what out writes to, once run opened it
}

func newStatusReporter(cfg Config) *statusReporter {
	s := &statusReporter{c: cfg.Client, shared: cfg.Status, node: cfg.NodeName, ttl: cfg.StatusTTL, log: cfg.Logger}
	s.out = latest.New(s.write, cfg.Logger, "felix status")
	s.out.Compare = compareReports
	s.out.MinInterval = cfg.StatusInterval
	s.out.RetryMin, s.out.RetryMax = cfg.RetryMin, cfg.RetryMax
	return s
}

// compareReports: every field but the timestamp is state (the counts
// change only when endpoints, blocks or policies do).
func compareReports(written, next api.FelixStatusReport) latest.Change {
	written.LastUpdate, next.LastUpdate = "", ""
	if written == next {
		return latest.Same
	}
	return latest.State
}

// set hands the reporter the latest report.
func (s *statusReporter) set(r api.FelixStatusReport) { s.out.Put(r) }

func (s *statusReporter) write(ctx context.Context, r api.FelixStatusReport) error {
	rec := &api.FelixStatus{ObjectMeta: api.ObjectMeta{Name: s.node}, Status: r}
	rec.Status.LastUpdate = time.Now().UTC().Format(time.RFC3339)
	_, err := s.w.Put(ctx, rec)
	return err
}

// run writes reports until ctx ends. A writer of its own (no
// Config.Status) is then closed, which revokes its lease: the record
// disappears at once. A shared writer is its owner's to close.
func (s *statusReporter) run(ctx context.Context) {
	s.w = s.shared
	if s.w == nil {
		w, err := s.c.NewStatusWriter(ctx, datastore.StatusWriterConfig{TTL: s.ttl, Logger: s.log})
		if err != nil {
			s.log.Error("no felix status will be written", logKeyError, err)
			return
		}
		defer func() {
			if err := w.Close(); err != nil {
				s.log.Warn("closing status writer", logKeyError, err)
			}
		}()
		s.w = w
	}
	s.out.Run(ctx)
}
