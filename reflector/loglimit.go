package reflector

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// logInterval is the period of rate-limited log lines: per neighbour (and
// for connections from unknown addresses) each message is logged at most
// once per interval; the repeats are counted and summarised in one line
// when the next interval's first message comes, or when flushed.
const logInterval = 10 * time.Second

// logLimiter rate-limits log lines whose cause is peer input. Its
// messages are constant strings of our code, so its map stays small.
type logLimiter struct {
	mu         sync.Mutex
	start      time.Time
	seen       map[string]int // this interval's messages: how often each came
	suppressed int
}

// log logs msg at level unless msg was already logged in this interval.
func (l *logLimiter) log(log *slog.Logger, level slog.Level, msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.start) >= logInterval {
		l.flushLocked(log)
		l.start = now
	}
	if l.seen == nil {
		l.seen = map[string]int{}
	}
	l.seen[msg]++
	first := l.seen[msg] == 1
	if !first {
		l.suppressed++
	}
	l.mu.Unlock()
	if first {
		log.Log(context.Background(), level, msg, args...)
	}
}

// flush logs the summary of what this interval suppressed, if anything.
func (l *logLimiter) flush(log *slog.Logger) {
	l.mu.Lock()
	l.flushLocked(log)
	l.mu.Unlock()
}

func (l *logLimiter) flushLocked(log *slog.Logger) {
	if l.suppressed > 0 {
		var parts []string
		for m, n := range l.seen {
			if n > 1 {
				parts = append(parts, fmt.Sprintf("%q: %d", m, n-1))
			}
		}
		sort.Strings(parts)
		log.Warn("repeated log lines suppressed", logKeyCount, l.suppressed,
			logKeyInterval, time.Since(l.start).Round(time.Millisecond), logKeySuppressed, strings.Join(parts, ", "))
	}
	clear(l.seen)
	l.suppressed = 0
}
