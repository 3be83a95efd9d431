// Package ratelog keeps a failing retry loop from flooding the log: each
// kind of message (a fixed string chosen by the code, never peer input, so
// the set is bounded) is logged at once the first time, then at most once
// per interval, with the number of repeats it stands for.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is the shortest time between two lines of one kind.
const DefaultInterval = time.Minute

// LogKeyRepeats is the log key of the number of messages a line stands
// for (itself included).
const LogKeyRepeats = "repeats"

// Limiter logs through lg at most one line per message per interval. It is
// safe for concurrent use.
type Limiter struct {
	lg    *slog.Logger
	every time.Duration

	mu   sync.Mutex
	last map[string]*entry
}

type entry struct {
	at      time.Time // when the last line was logged
	pending int       // messages since then not logged
}

// New returns a Limiter; interval ≤ 0 means DefaultInterval, a nil lg
// discards.
func New(lg *slog.Logger, interval time.Duration) *Limiter {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Limiter{lg: lg, every: interval, last: map[string]*entry{}}
}

// Warn logs msg at warning level unless a line of msg was logged less
// than an interval ago; then it only counts it, and the next line logged
// carries the count (LogKeyRepeats).
func (l *Limiter) Warn(msg string, args ...any) { l.log(slog.LevelWarn, msg, args...) }

// Info is Warn at info level.
func (l *Limiter) Info(msg string, args ...any) { l.log(slog.LevelInfo, msg, args...) }

func (l *Limiter) log(level slog.Level, msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	e := l.last[msg]
	if e == nil {
		e = &entry{}
		l.last[msg] = e
	}
	e.pending++
	if !e.at.IsZero() && now.Sub(e.at) < l.every {
		l.mu.Unlock()
		return
	}
	n := e.pending
	e.at, e.pending = now, 0
	l.mu.Unlock()
	if n > 1 {
		args = append(args, LogKeyRepeats, n)
	}
	l.lg.Log(context.Background(), level, msg, args...)
}

// Reset forgets msg, so that its next occurrence is logged at once (after
// the failure it reports has ended).
func (l *Limiter) Reset(msg string) {
	l.mu.Lock()
	delete(l.last, msg)
	l.mu.Unlock()
}
