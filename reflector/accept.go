package reflector

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"
)

// Accept failures (EMFILE, ENFILE, ENOBUFS: the process or the host is out
// of something) are retried with a backoff like net/http's Server: 5 ms,
// doubling, at most 1 s; a success resets it. They are logged once when
// they start, then at most once per acceptLogInterval as a summary with
// the count, and once when accepting works again.
const (
	acceptBackoffMin  = 5 * time.Millisecond
	acceptBackoffMax  = time.Second
	acceptLogInterval = 30 * time.Second
)

// acceptor is the part of a listener the accept loop uses.
type acceptor interface {
	Accept() (net.Conn, error)
}

// acceptLoop accepts connections from l and hands each to handle until
// ctx ends or l is closed.
func acceptLoop(ctx context.Context, l acceptor, log *slog.Logger, handle func(net.Conn)) {
	var (
		delay    time.Duration
		failures int // since the last log line
		total    int // in this run of failures
		loggedAt time.Time
	)
	timer := stoppedTimer()
	defer timer.Stop()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			total++
			failures++
			now := time.Now()
			switch {
			case total == 1:
				log.Warn("accepting connections fails; retrying with backoff", logKeyErr, err)
				failures, loggedAt = 0, now
			case now.Sub(loggedAt) >= acceptLogInterval:
				log.Warn("accepting connections still fails", logKeyErr, err, logKeyCount, failures, logKeyInterval, now.Sub(loggedAt).Round(time.Second))
				failures, loggedAt = 0, now
			}
			delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
			timer.Reset(delay)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			continue
		}
		if total > 0 {
			log.Info("accepting connections works again", logKeyCount, total)
			delay, failures, total = 0, 0, 0
		}
		handle(c)
	}
}
