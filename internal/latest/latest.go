// Package latest writes values, such as status records, from a goroutine
// of its own, so that the loop that produces them never waits for a slow
// store: only the latest value is kept, and a failed write is retried
// until a newer value replaces it.
package latest

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults of Writer.
const (
	DefaultTimeout = 5 * time.Second // bounds one write
	DefaultRetry   = time.Second     // pause after a failed write
)

// Writer writes the latest value Put gave it, while Run runs.
type Writer[T any] struct {
	write func(context.Context, T) error
	lg    *slog.Logger
	what  string

	Timeout, Retry time.Duration

	mu     sync.Mutex
	next   T
	has    bool
	signal chan struct{}
}

// New returns a Writer that writes with write, logging failures to lg as
// "writing <what>".
func New[T any](write func(context.Context, T) error, lg *slog.Logger, what string) *Writer[T] {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Writer[T]{write: write, lg: lg, what: what, Timeout: DefaultTimeout, Retry: DefaultRetry, signal: make(chan struct{}, 1)}
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

// take returns the pending value, if any, and clears it.
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
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.signal:
		case <-retry:
		}
		retry = nil
		v, ok := w.take()
		if !ok {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, w.Timeout)
		err := w.write(wctx, v)
		cancel()
		if err == nil || ctx.Err() != nil {
			continue
		}
		w.lg.Warn("writing "+w.what, "error", err)
		w.mu.Lock()
		if !w.has {
			w.next, w.has = v, true
		}
		w.mu.Unlock()
		retry = time.After(w.Retry)
	}
}
