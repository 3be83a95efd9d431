package memtrim

import (
	"context"
	"time"
)

// clearChanged forgets a pending change signal: Trim deals with it.
func clearChanged() {
	select {
	case <-changes:
	default:
	}
}

// changes is the process's change signal: a size-1 channel, so that a
// burst of changes is one signal and Changed never blocks.
var changes = make(chan struct{}, 1)

// Changed tells the process's quiet trimmer (WhenQuiet) that its state
// changed. It never blocks, and costs a channel send that is dropped
// when one is pending: callers call it for each batch of changes they
// apply. Without a WhenQuiet running it does nothing.
func Changed() {
	select {
	case changes <- struct{}{}:
	default:
	}
}

// QuietConfig configures WhenQuiet.
type QuietConfig struct {
	// Settle is how long the process must go without a change before it
	// trims.
	Settle time.Duration
	// MinGap is the least time between two trims.
	MinGap time.Duration
	// LastTrim is when the process last trimmed (its start-up trim); the
	// zero time means never.
	LastTrim time.Time
	// Trim is called to trim; nil means Trim. It runs on WhenQuiet's
	// goroutine, and WhenQuiet goes on whatever it returns.
	Trim func()
	// Now and After are the clock, for tests; nil means time.Now and a
	// time.Timer.
	Now   func() time.Time
	After func(time.Duration) (<-chan time.Time, func())
}

// WhenQuiet trims (cfg.Trim) each time the process has been quiet for
// cfg.Settle after a change marked by Changed, but never within
// cfg.MinGap of the last trim and never without a change since it. It
// runs until ctx ends. (A change marked before the last Trim is dealt
// with by it: Trim clears the signal.)
func WhenQuiet(ctx context.Context, cfg QuietConfig) {
	cfg.defaults()
	q := quiet{settle: cfg.Settle, minGap: cfg.MinGap, lastTrim: cfg.LastTrim}
	var (
		timer <-chan time.Time
		stop  = func() {}
	)
	defer func() { stop() }()
	arm := func() {
		stop()
		timer, stop = nil, func() {}
		if at, ok := q.due(); ok {
			timer, stop = cfg.After(max(at.Sub(cfg.Now()), 0))
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
			q.changed(cfg.Now())
		case <-timer:
			if now := cfg.Now(); q.trimNow(now) {
				cfg.Trim()
				q.trimmed(cfg.Now())
			}
		}
		arm()
	}
}

func (c *QuietConfig) defaults() {
	if c.Trim == nil {
		c.Trim = func() { _, _ = Trim() }
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.After == nil {
		c.After = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTimer(d)
			return t.C, func() { t.Stop() }
		}
	}
}

// quiet is WhenQuiet's decision, without a clock of its own.
type quiet struct {
	settle, minGap time.Duration
	// lastTrim is when the last trim was (zero: never); lastChange the
	// last change since then (zero: none).
	lastTrim, lastChange time.Time
}

// changed records a change at now.
func (q *quiet) changed(now time.Time) { q.lastChange = now }

// due returns when the next trim is due, if one is pending: settle after
// the last change, and not before minGap after the last trim.
func (q *quiet) due() (time.Time, bool) {
	if q.lastChange.IsZero() {
		return time.Time{}, false
	}
	at := q.lastChange.Add(q.settle)
	if !q.lastTrim.IsZero() {
		at = later(at, q.lastTrim.Add(q.minGap))
	}
	return at, true
}

// trimNow reports whether a trim is due at now.
func (q *quiet) trimNow(now time.Time) bool {
	at, ok := q.due()
	return ok && !now.Before(at)
}

// trimmed records a trim at now: the changes before it are dealt with.
func (q *quiet) trimmed(now time.Time) {
	q.lastTrim, q.lastChange = now, time.Time{}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
