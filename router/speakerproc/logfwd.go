package speakerproc

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Bounds of the child's log stream in the parent.
const (
	// maxLine is the longest line forwarded; longer ones are cut.
	maxLine = 4096
	// logBurst lines pass at once, then logRate per second; the rest is
	// counted and summarised in one line per logSummary.
	logBurst   = 200
	logRate    = 20
	logSummary = 10 * time.Second
	// panicLines is how much of a panic's trace the loss report keeps.
	panicLines = 12
)

// logForwarder reads the child's stderr: JSON lines (its slog) go to the
// parent's logger at their level with their attributes; other lines (a
// panic's trace, the runtime's messages) at error level. A token bucket
// bounds the stream, and the start of a panic is kept for the loss.
type logForwarder struct {
	lg   *slog.Logger // for the child's raw output
	base *slog.Logger // for its JSON records, which name their component
	r    io.Reader
	done chan struct{}

	mu     sync.Mutex
	panicL []string // the panic's first lines, once one started
	// lastUp is the peer of the child's last "Peer Up" log line and
	// when the parent read it: GoBGP logs it from the session's
	// goroutine before that goroutine starts reading UPDATEs, so it is
	// on the pipe before a panic that the peer's first UPDATE causes.
	lastUp   netip.Addr
	lastUpAt time.Time
}

func newLogForwarder(base *slog.Logger, r io.Reader) *logForwarder {
	return &logForwarder{lg: base.With(logKeyComponent, "speaker"), base: base, r: r, done: make(chan struct{})}
}

func (f *logForwarder) run() {
	defer close(f.done)
	br := bufio.NewReaderSize(f.r, maxLine)
	tokens, last := float64(logBurst), time.Now()
	dropped, summaryAt := 0, time.Now().Add(logSummary)
	for {
		line, err := readLine(br)
		if line != "" {
			f.notePanic(line)
			f.noteUp(line)
			now := time.Now()
			tokens = min(float64(logBurst), tokens+now.Sub(last).Seconds()*logRate)
			last = now
			if tokens >= 1 {
				tokens--
				f.forward(line)
			} else {
				dropped++
			}
			if dropped > 0 && now.After(summaryAt) {
				f.lg.Warn("speaker process: log lines dropped (rate limit)", logKeyDropped, dropped)
				dropped, summaryAt = 0, now.Add(logSummary)
			}
		}
		if err != nil {
			if dropped > 0 {
				f.lg.Warn("speaker process: log lines dropped (rate limit)", logKeyDropped, dropped)
			}
			return
		}
	}
}

// readLine reads one line, cutting it at maxLine and skipping the rest.
func readLine(br *bufio.Reader) (string, error) {
	b, isPrefix, err := br.ReadLine()
	line := string(b)
	for isPrefix && err == nil {
		_, isPrefix, err = br.ReadLine()
	}
	return line, err
}

func (f *logForwarder) notePanic(line string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicL == nil {
		if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
			f.panicL = []string{line}
		}
		return
	}
	if len(f.panicL) < panicLines {
		f.panicL = append(f.panicL, line)
	}
}

// noteUp records the peer of a GoBGP "Peer Up" line (JSON, key "key").
func (f *logForwarder) noteUp(line string) {
	if !strings.Contains(line, `"msg":"Peer Up"`) {
		return
	}
	var rec struct {
		Msg string `json:"msg"`
		Key string `json:"key"`
	}
	if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "Peer Up" {
		return
	}
	if a, err := netip.ParseAddr(rec.Key); err == nil {
		f.mu.Lock()
		f.lastUp, f.lastUpAt = a, time.Now()
		f.mu.Unlock()
	}
}

// lastPeerUp is the peer that came up last in the child, and when.
func (f *logForwarder) lastPeerUp() (netip.Addr, time.Time) {
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastUp, f.lastUpAt
}

// panicText is the start of the child's panic, "" if it printed none.
func (f *logForwarder) panicText() string {
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.panicL, "\n")
}

// forward logs one line of the child in the parent.
func (f *logForwarder) forward(line string) {
	if !strings.HasPrefix(line, "{") {
		f.lg.Error("speaker process output", logKeyLine, line)
		return
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		f.lg.Error("speaker process output", logKeyLine, line)
		return
	}
	level := slog.LevelInfo
	if s, ok := rec[slog.LevelKey].(string); ok {
		_ = level.UnmarshalText([]byte(s))
	}
	msg, _ := rec[slog.MessageKey].(string)
	delete(rec, slog.LevelKey)
	delete(rec, slog.MessageKey)
	delete(rec, slog.TimeKey)
	// The child's records name their component (gobgp); say that it is
	// the speaker process's.
	if c, ok := rec[logKeyComponent].(string); ok {
		rec[logKeyComponent] = "speaker/" + c
	} else {
		rec[logKeyComponent] = "speaker"
	}
	args := make([]any, 0, 2*len(rec))
	for k, v := range rec {
		args = append(args, k, v)
	}
	f.base.Log(context.Background(), level, msg, args...)
}
