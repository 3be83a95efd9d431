// Package latest writes values, such as status records, from a goroutine
// of its own, so that the loop that produces them never waits for a slow
// store. Only the latest value is kept (a burst coalesces into one
// write), a value that says nothing new is not written at all, writes are
// spaced at least MinInterval apart (changes of counters only:
// SlowInterval, jittered), and a failed write is retried with jittered
// exponential backoff until it succeeds or a newer value replaces it.
// Failures are logged at most once per LogInterval.
//
// This is what keeps the datastore's load flat: an agent that changes
// nothing writes nothing, and one that changes constantly writes at most
// once per MinInterval.
package latest

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/bgpfabric/bgpfabric/internal/backoff"
	"github.com/bgpfabric/bgpfabric/internal/ratelog"
)

// Defaults of Writer.
const (
	DefaultTimeout      = 5 * time.Second  // bounds one write
	DefaultMinInterval  = time.Second      // between two writes
	DefaultSlowInterval = time.Minute      // between writes of counters only
	DefaultRetryMin     = time.Second      // first pause after a failed write
	DefaultRetryMax     = 30 * time.Second // longest pause
	// DefaultLogInterval is the shortest time between two failure lines.
	DefaultLogInterval = time.Minute
)

// slowJitter is the part of SlowInterval that is random, so that agents
// started together do not write their counters together.
const slowJitter = 0.25

// Change is what a new value changes compared with the last one written.
type Change int

// Changes, from least to most urgent.
const (
	// Same: nothing worth writing (at most a timestamp differs).
	Same Change = iota
	// Counters: only figures that move all the time (prefix counts);
	// written at most once per SlowInterval.
	Counters
	// State: something a reader acts on; written within MinInterval.
	State
)

// Writer writes the latest value Put gave it, while Run runs. Its
// exported fields are read when Run starts.
type Writer[T any] struct {
	write func(context.Context, T) error
	what  string
	lim   *ratelog.Limiter

	// Compare says what next changes compared with written, the last
	// value written; nil means every value is a State change.
	Compare func(written, next T) Change
	// MinInterval is the shortest time between two write attempts.
	MinInterval time.Duration
	// SlowInterval is the time between two writes when only counters
	// changed (up to a quarter less, at random).
	SlowInterval time.Duration
	// Timeout bounds one write.
	Timeout time.Duration
	// RetryMin and RetryMax bound the backoff after failed writes.
	RetryMin, RetryMax time.Duration

	mu     sync.Mutex
	next   T
	has    bool
	signal chan struct{}
}

// New returns a Writer that writes with write, logging failures to lg as
// "writing <what> failed" (at most once per DefaultLogInterval).
func New[T any](write func(context.Context, T) error, lg *slog.Logger, what string) *Writer[T] {
	return &Writer[T]{
		write: write, what: what, lim: ratelog.New(ratelog.Config{Logger: lg, Interval: DefaultLogInterval}),
		MinInterval: DefaultMinInterval, SlowInterval: DefaultSlowInterval, Timeout: DefaultTimeout,
		RetryMin: DefaultRetryMin, RetryMax: DefaultRetryMax,
		signal: make(chan struct{}, 1),
	}
}

// Put replaces the value to write; it never blocks.
func (w *Writer[T]) Put(v T) {
	w.mu.Lock()
	w.next, w.has = v, true
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// take returns the value Put last, if it was not taken, and clears it.
func (w *Writer[T]) take() (T, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, ok := w.next, w.has
	var zero T
	w.next, w.has = zero, false
	return v, ok
}

// Run writes until ctx ends.
func (w *Writer[T]) Run(ctx context.Context) {
	var (
		pending     T
		hasPending  bool
		written     T
		hasWritten  bool
		lastAttempt time.Time // of any write
		lastWrite   time.Time // of the last successful one
		slowGap     time.Duration
		retryAt     time.Time // set while the pending value failed
		bo          = backoff.New(w.RetryMin, w.RetryMax)
		timer       = time.NewTimer(time.Hour)
		failMsg     = "writing " + w.what + " failed; will retry"
	)
	timer.Stop()
	defer timer.Stop()
	defer w.lim.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.signal:
		case <-timer.C:
		}
		if v, ok := w.take(); ok {
			pending, hasPending = v, true
		}
		if !hasPending {
			continue
		}
		change := State
		if hasWritten && w.Compare != nil {
			change = w.Compare(written, pending)
		}
		if change == Same {
			var zero T
			pending, hasPending, retryAt = zero, false, time.Time{}
			continue
		}
		due := lastAttempt.Add(w.MinInterval)
		if change == Counters {
			due = later(due, lastWrite.Add(slowGap))
		}
		if !retryAt.IsZero() {
			due = later(due, retryAt)
		}
		now := time.Now()
		if now.Before(due) {
			timer.Reset(due.Sub(now))
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, w.Timeout)
		err := w.write(wctx, pending)
		cancel()
		lastAttempt = time.Now()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			wait := bo.Next()
			retryAt = lastAttempt.Add(wait)
			w.lim.Warn(failMsg, logKeyError, err, logKeyRetryIn, wait)
			timer.Reset(wait)
			continue
		}
		bo.Reset()
		w.lim.Reset(failMsg)
		written, hasWritten, lastWrite, retryAt = pending, true, lastAttempt, time.Time{}
		slowGap = backoff.Jitter(w.SlowInterval, slowJitter, nil)
		var zero T
		pending, hasPending = zero, false
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Log keys.
const (
	logKeyError   = "error"
	logKeyRetryIn = "retryIn"
)
