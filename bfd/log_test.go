package bfd

import (
	"context"
	"log/slog"
	"sync"
	"testing"
)

// recorder is a slog.Handler that keeps the records.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) take() []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.records
	r.records = nil
	return out
}

// TestLogBounded: a burst of state changes logs at most logBudget lines
// per interval and the rest as one count; discarded packets are one
// summary line, however many.
func TestLogBounded(t *testing.T) {
	rec := &recorder{}
	s, err := NewServer(ServerConfig{Logger: slog.New(rec), SingleHopPort: freePort(t), MultihopPort: freePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	changes := make([]StateChange, 250)
	for i := range changes {
		changes[i] = StateChange{LocalDiscriminator: uint32(i), Old: StateUp, New: StateDown}
	}
	s.mu.Lock()
	s.eng.changes = changes
	s.unlockAndFlush()
	if got := len(rec.take()); got != logBudget {
		t.Fatalf("%d lines for 250 changes, want %d", got, logBudget)
	}
	s.mu.Lock()
	s.eng.counters.RxUnknown += 100000
	s.eng.counters.RxBadTTL += 7
	s.summaryLocked()
	s.summaryLocked() // nothing new: no line
	s.mu.Unlock()
	recs := rec.take()
	if len(recs) != 2 {
		t.Fatalf("%d summary lines, want 2 (unlogged changes, drops)", len(recs))
	}
	var unlogged uint64
	counts := map[string]uint64{}
	recs[0].Attrs(func(a slog.Attr) bool { unlogged = a.Value.Uint64(); return true })
	recs[1].Attrs(func(a slog.Attr) bool {
		for _, g := range a.Value.Group() {
			counts[g.Key] = g.Value.Uint64()
		}
		return true
	})
	if unlogged != 150 || counts[logKeyUnknown] != 100000 || counts[logKeyBadTTL] != 7 {
		t.Fatalf("summaries: unlogged %d, counts %v", unlogged, counts)
	}
	// The budget is back after a summary.
	s.mu.Lock()
	s.eng.changes = changes[:10]
	s.unlockAndFlush()
	if got := len(rec.take()); got != 10 {
		t.Fatalf("%d lines after the summary, want 10", got)
	}
}

// TestSubscriberCollapse: a subscriber that falls behind gets, per
// session, the latest change, and its backlog stays bounded.
func TestSubscriberCollapse(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var got []StateChange
	sub := newSubscriber(func(c StateChange) {
		<-release
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
	})
	defer sub.close()
	// The first change blocks fn; then 3 sessions change 3000 times each.
	sub.push([]StateChange{{LocalDiscriminator: 99, New: StateUp}})
	for i := range 3000 {
		for d := range uint32(3) {
			st := StateDown
			if i == 2999 {
				st = StateUp
			}
			sub.push([]StateChange{{LocalDiscriminator: d, New: st}})
		}
		sub.mu.Lock()
		n := len(sub.queue)
		sub.mu.Unlock()
		if n > maxQueued {
			t.Fatalf("backlog %d > %d", n, maxQueued)
		}
	}
	close(release)
	last := map[uint32]State{}
	for d := range uint32(3) {
		last[d] = StateDown
	}
	waitCond(t, "the last change of every session", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range got {
			last[c.LocalDiscriminator] = c.New
		}
		got = got[:0]
		return last[0] == StateUp && last[1] == StateUp && last[2] == StateUp
	})
}
