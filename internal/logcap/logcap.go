// Package logcap bounds a log stream per key (a peer, a peer and a
// message): a few lines per key and interval pass, the rest are counted,
// and when the interval ends one summary line per key says how many were
// suppressed. A peer that sends 20,000 malformed UPDATEs in two seconds
// makes a handful of lines and one summary, not 20,000 lines.
package logcap

import (
	"sync"
	"time"
)

// Defaults.
const (
	DefaultInterval = 10 * time.Second
	DefaultBurst    = 5
	DefaultMaxKeys  = 1024
)

// overflowKey collects the keys beyond MaxKeys in one entry.
const overflowKey = "(other)"

// Config configures a Limiter; zero fields take the defaults.
type Config struct {
	// Interval is the period over which Burst lines per key pass.
	Interval time.Duration
	Burst    int
	// MaxKeys bounds the keys tracked at once (keys may come from peer
	// input); lines of further keys share one entry.
	MaxKeys int
	// Summary is called, from a timer's goroutine, at the end of an
	// interval in which lines of key were suppressed, with their number.
	Summary func(key string, suppressed int)
}

// Limiter decides which lines pass. Safe for concurrent use.
type Limiter struct {
	cfg Config

	mu     sync.Mutex
	keys   map[string]*entry
	closed bool
}

type entry struct {
	start      time.Time
	passed     int
	suppressed int
	timer      *time.Timer // pending summary
}

// New returns a Limiter.
func New(cfg Config) *Limiter {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.MaxKeys <= 1 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	return &Limiter{cfg: cfg, keys: map[string]*entry{}}
}

// Allow reports whether a line for key may be written now; a line that
// may not is counted for the key's summary.
func (l *Limiter) Allow(key string) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.keys[key]
	if !ok {
		l.pruneLocked(now)
		if len(l.keys) >= l.cfg.MaxKeys-1 { // one entry is the overflow's
			key = overflowKey
			e = l.keys[key]
		}
		if e == nil {
			e = &entry{start: now}
			l.keys[key] = e
		}
	}
	if now.Sub(e.start) >= l.cfg.Interval && e.timer == nil {
		e.start, e.passed = now, 0
	}
	if e.passed < l.cfg.Burst {
		e.passed++
		return true
	}
	e.suppressed++
	if e.timer == nil && !l.closed {
		k := key
		e.timer = time.AfterFunc(max(e.start.Add(l.cfg.Interval).Sub(now), 0), func() { l.summarise(k) })
	}
	return false
}

// summarise reports a key's suppressed lines and starts its next
// interval.
func (l *Limiter) summarise(key string) {
	l.mu.Lock()
	e := l.keys[key]
	if e == nil {
		l.mu.Unlock()
		return
	}
	n := e.suppressed
	e.suppressed, e.passed, e.start, e.timer = 0, 0, time.Now(), nil
	closed := l.closed
	l.mu.Unlock()
	if n > 0 && !closed && l.cfg.Summary != nil {
		l.cfg.Summary(key, n)
	}
}

// pruneLocked forgets the keys that had no line for two intervals and no
// summary pending.
func (l *Limiter) pruneLocked(now time.Time) {
	if len(l.keys) < l.cfg.MaxKeys-1 {
		return
	}
	for k, e := range l.keys {
		if e.timer == nil && now.Sub(e.start) >= 2*l.cfg.Interval {
			delete(l.keys, k)
		}
	}
}

// Close stops the pending summaries; Allow keeps working without them.
func (l *Limiter) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, e := range l.keys {
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
	}
}
