// Package ratelog bounds a log stream per key, so that neither a failing
// retry loop nor a peer that sends 20,000 malformed messages floods the
// log: a few lines per key and interval pass (Burst), the rest are
// counted, and one summary line per key says how many were suppressed
// (LogKeyRepeats) when the key's interval ends, when Flush is called and
// at Close. A key is either a message of ours (Warn, Info, Log: the
// limiter writes the line) or any string the caller picks, such as a
// peer's address (Allow: the caller writes the line). Keys may come from
// peer input: at most MaxKeys are tracked, and the lines of further keys
// share one entry (OverflowKey).
//
// It is the one log limiter of bgpfabric: internal/logcap (per key, with
// burst and summary) and the reflector's own limiter (per message, with a
// summary at a neighbour's end) were merged into it. It kept ratelog's
// name because most callers already imported it and the name says what
// it does (rate-limits log lines); logcap's bounded key set, burst and
// timed summary are its Config.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults of Config's zero fields: one line per key and minute, for the
// failures of our own retry loops.
const (
	DefaultInterval = time.Minute
	DefaultBurst    = 1
	DefaultMaxKeys  = 1024
)

// The settings for lines caused by peer input (malformed UPDATEs, session
// errors): a peer's trouble shows quickly, and a flood is summarised
// every 10 s.
const (
	PeerInterval = 10 * time.Second
	PeerBurst    = 5
)

// OverflowKey is the entry that the keys beyond Config.MaxKeys share.
const OverflowKey = "(other)"

// Log keys of the lines the limiter writes itself.
const (
	// LogKeyRepeats is the number of suppressed lines a summary stands
	// for.
	LogKeyRepeats = "repeats"
	// LogKeyKey is the key of a summary of lines the limiter did not
	// write itself (Allow), or OverflowKey.
	LogKeyKey = "key"
	// LogKeyInterval is the limiter's interval.
	LogKeyInterval = "interval"
)

// MsgSuppressed is the message of a summary of lines the limiter did not
// write itself (Allow) or of the overflow entry.
const MsgSuppressed = "log lines suppressed"

// Config configures a Limiter; zero fields take the defaults.
type Config struct {
	// Logger gets the lines of Warn, Info and Log and the summaries; nil
	// discards.
	Logger *slog.Logger
	// Interval is the period over which Burst lines per key pass.
	Interval time.Duration
	Burst    int
	// MaxKeys bounds the keys tracked at once; lines of further keys
	// share one entry (OverflowKey). At least 2.
	MaxKeys int
	// Summary, if set, replaces the summary line: it is called with the
	// key and the number of lines suppressed, from a timer's goroutine at
	// the end of an interval or from Flush, Reset and Close.
	Summary func(key string, suppressed int)
}

// Limiter decides which lines pass. Safe for concurrent use. Its timers
// (one per key with suppressed lines) are stopped by Close.
type Limiter struct {
	cfg Config

	mu     sync.Mutex
	keys   map[string]*entry
	closed bool
	// writing counts the timers' summaries being written, for Close.
	writing sync.WaitGroup
}

type entry struct {
	start      time.Time // of the key's current interval
	passed     int       // lines passed in it
	suppressed int       // lines suppressed since the last summary
	timer      *time.Timer
	gen        uint64 // of timer, so that a stale timer's callback does nothing

	// The last suppressed line, when the limiter writes the key's lines
	// (Log): the summary repeats it with its count.
	own   bool
	level slog.Level
	args  []any
}

// New returns a Limiter.
func New(cfg Config) *Limiter {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.MaxKeys < 2 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	return &Limiter{cfg: cfg, keys: map[string]*entry{}}
}

// summary is a summary to write once the lock is released.
type summary struct {
	key   string
	n     int
	own   bool
	level slog.Level
	args  []any
}

// Allow reports whether a line for key may be written now; a line that
// may not is counted for the key's summary.
func (l *Limiter) Allow(key string) bool {
	return l.decide(key, false, 0, nil)
}

// Log writes msg at level unless Burst lines of msg were written in the
// current interval; then it only counts it, and the summary repeats the
// last such line's args with LogKeyRepeats.
func (l *Limiter) Log(level slog.Level, msg string, args ...any) {
	if l.decide(msg, true, level, args) {
		l.cfg.Logger.Log(context.Background(), level, msg, args...)
	}
}

// Warn is Log at warning level.
func (l *Limiter) Warn(msg string, args ...any) { l.Log(slog.LevelWarn, msg, args...) }

// Info is Log at info level.
func (l *Limiter) Info(msg string, args ...any) { l.Log(slog.LevelInfo, msg, args...) }

func (l *Limiter) decide(key string, own bool, level slog.Level, args []any) bool {
	now := time.Now()
	var s *summary
	defer func() { l.write(s) }() // after the unlock below
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.keys[key]
	if !ok {
		l.pruneLocked(now)
		if len(l.keys) >= l.cfg.MaxKeys-1 { // one entry is the overflow's
			key, own = OverflowKey, false
			e = l.keys[key]
		}
		if e == nil {
			e = &entry{start: now}
			l.keys[key] = e
		}
	}
	if now.Sub(e.start) >= l.cfg.Interval && e.timer == nil {
		// Without a timer (after Close) the summary comes with the
		// key's next interval.
		s = takeLocked(key, e)
		e.start, e.passed = now, 0
	}
	if e.passed < l.cfg.Burst {
		e.passed++
		return true
	}
	e.suppressed++
	if own {
		e.own, e.level, e.args = true, level, append(e.args[:0], args...)
	}
	if e.timer == nil && !l.closed {
		e.gen++
		gen := e.gen
		e.timer = time.AfterFunc(max(e.start.Add(l.cfg.Interval).Sub(now), 0), func() { l.expire(key, gen) })
	}
	return false
}

// expire ends a key's interval: its summary, and a fresh interval.
func (l *Limiter) expire(key string, gen uint64) {
	var s *summary
	l.mu.Lock()
	if e := l.keys[key]; e != nil && e.timer != nil && e.gen == gen {
		e.timer = nil
		s = takeLocked(key, e)
		e.start, e.passed = time.Now(), 0
	}
	if s != nil {
		l.writing.Add(1)
		defer l.writing.Done()
	}
	l.mu.Unlock()
	l.write(s)
}

// takeLocked returns the summary of e's suppressed lines, if any, and
// clears them.
func takeLocked(key string, e *entry) *summary {
	if e.suppressed == 0 {
		return nil
	}
	s := &summary{key: key, n: e.suppressed, own: e.own, level: e.level, args: e.args}
	e.suppressed, e.own, e.args = 0, false, nil
	return s
}

func (l *Limiter) write(s *summary) {
	if s == nil {
		return
	}
	switch {
	case l.cfg.Summary != nil:
		l.cfg.Summary(s.key, s.n)
	case s.own:
		l.cfg.Logger.Log(context.Background(), s.level, s.key,
			append(s.args, LogKeyRepeats, s.n, LogKeyInterval, l.cfg.Interval)...)
	default:
		l.cfg.Logger.Warn(MsgSuppressed, LogKeyKey, s.key, LogKeyRepeats, s.n, LogKeyInterval, l.cfg.Interval)
	}
}

// pruneLocked forgets, when the key set is full, the keys that had no
// line for two intervals and nothing to summarise.
func (l *Limiter) pruneLocked(now time.Time) {
	if len(l.keys) < l.cfg.MaxKeys-1 {
		return
	}
	for k, e := range l.keys {
		if e.timer == nil && e.suppressed == 0 && now.Sub(e.start) >= 2*l.cfg.Interval {
			delete(l.keys, k)
		}
	}
}

// Reset summarises and forgets key, so that its next line passes at once
// (after the failure it reports has ended).
func (l *Limiter) Reset(key string) {
	var s *summary
	l.mu.Lock()
	if e := l.keys[key]; e != nil {
		stopLocked(e)
		s = takeLocked(key, e)
		delete(l.keys, key)
	}
	l.mu.Unlock()
	l.write(s)
}

// Flush writes the summaries of the lines suppressed so far, without
// waiting for their intervals to end.
func (l *Limiter) Flush() {
	l.mu.Lock()
	var ss []*summary
	for k, e := range l.keys {
		stopLocked(e)
		if s := takeLocked(k, e); s != nil {
			ss = append(ss, s)
		}
	}
	l.mu.Unlock()
	for _, s := range ss {
		l.write(s)
	}
}

// Close flushes and stops the timers for good: its owner is ending. When
// it returns, no timer writes any more. Lines still pass as before; their
// summaries come with a key's next interval or Flush.
func (l *Limiter) Close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.Flush()
	l.writing.Wait()
}

func stopLocked(e *entry) {
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
}
