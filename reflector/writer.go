package reflector

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// Slow readers. A session's output queue holds what the RIB loop has
// encoded for the peer and the writer has not yet taken. Producers never
// block; instead:
//
//   - live UPDATEs (the stream of changes) may queue up to the queue's
//     limit (defaultOutQueueLimit, 32 MiB); beyond it the session is
//     closed with a Cease, Out of Resources, and counted in
//     slow_reader_closes_total. The peer may reconnect and gets a fresh
//     table dump;
//   - table dumps (at Established, on ROUTE-REFRESH, for graceful
//     shutdown) do not count against the limit, but at most one dump per
//     family waits in the queue: a ROUTE-REFRESH that arrives while one
//     is waiting is answered by it (route_refresh_coalesced_total), since
//     the peer receives that dump, and every change after it, after its
//     request. So dumps cost at most the table's size per family;
//   - every write has a deadline, the negotiated hold time, or 90 s when
//     the hold time is zero: a peer that takes nothing for that long is
//     closed as well.
//
// Between taking and writing, the writer holds what it took, so a
// session's output memory is bounded by twice the limit plus two dumps
// per family, and the kernel's socket buffer.
const defaultOutQueueLimit = 32 << 20

// defaultSendHold is the write deadline of sessions without a hold time.
const defaultSendHold = defaultHoldTime

const notifyGrace = time.Second

// refreshState tracks one family's table dump through the queue.
type refreshState uint8

const (
	refreshIdle      refreshState = iota
	refreshRequested              // asked of the RIB loop, not yet queued
	refreshQueued                 // in the queue, not yet taken
)

// outQueue is a session's outbound queue: producers never block.
type outQueue struct {
	mu        sync.Mutex
	chunks    [][]byte
	bytes     int // queued, dumps included
	dumpBytes int // queued bytes of table dumps
	peak      int // the most bytes ever queued
	limit     int // on bytes-dumpBytes; 0: none
	refresh   [numFamilies]refreshState
	closing   bool
	final     []byte // NOTIFICATION to send before closing, if any
	notify    chan struct{}
}

func newOutQueue(limit int) *outQueue {
	return &outQueue{notify: make(chan struct{}, 1), limit: limit}
}

// requestRefresh records a ROUTE-REFRESH for family f. It returns false
// when a dump of f is already asked for or waiting, which answers it.
func (q *outQueue) requestRefresh(f family) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing || q.refresh[f] != refreshIdle {
		return false
	}
	q.refresh[f] = refreshRequested
	return true
}

// pushDump queues a table dump of family f; see push.
func (q *outQueue) pushDump(f family, b []byte) (over bool) {
	q.mu.Lock()
	if q.closing {
		q.mu.Unlock()
		return false
	}
	q.refresh[f] = refreshQueued
	q.dumpBytes += len(b)
	q.mu.Unlock()
	return q.push(b)
}

// sizes returns the queued bytes and their peak.
func (q *outQueue) sizes() (queued, peak int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes, q.peak
}

func (q *outQueue) signal() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// push queues chunks and reports whether the queue is over its limit.
func (q *outQueue) push(chunks ...[]byte) (over bool) {
	q.mu.Lock()
	if q.closing {
		q.mu.Unlock()
		return false
	}
	for _, c := range chunks {
		if len(c) > 0 {
			q.chunks = append(q.chunks, c)
			q.bytes += len(c)
		}
	}
	q.peak = max(q.peak, q.bytes)
	over = q.limit > 0 && q.bytes-q.dumpBytes > q.limit
	q.mu.Unlock()
	q.signal()
	return over
}

// close drops what is queued and asks the writer to send final (if any)
// and close. It reports whether this call was the first.
func (q *outQueue) close(final []byte) bool {
	q.mu.Lock()
	first := !q.closing
	if first {
		q.closing, q.final, q.chunks, q.bytes, q.dumpBytes = true, final, nil, 0, 0
	}
	q.mu.Unlock()
	q.signal()
	return first
}

// take returns what is queued and keeps buf (emptied) as the queue's next
// backing array, so that the two swap without copying.
func (q *outQueue) take(buf [][]byte) ([][]byte, bool, []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing {
		return nil, true, q.final
	}
	out := q.chunks
	q.chunks, q.bytes, q.dumpBytes = buf[:0], 0, 0
	for f, st := range q.refresh {
		if st == refreshQueued {
			q.refresh[f] = refreshIdle
		}
	}
	return out, false, nil
}

// maxKeptChunks bounds the chunk slices a writer keeps between bursts, so
// that one large burst does not pin memory in each of thousands of
// sessions.
const maxKeptChunks = 256

// writeLoop owns the write side of conn: it coalesces every queued chunk
// into one buffered write per wake-up, sends KEEPALIVEs, and on close sends
// the final NOTIFICATION and closes conn. Every write must make progress
// within writeTimeout (see sendHoldTime), or the loop closes conn.
func writeLoop(conn net.Conn, q *outQueue, keepalive <-chan time.Duration, writeTimeout time.Duration) {
	defer conn.Close()
	bw := bufio.NewWriterSize(conn, sessionBufSize)
	var tick *time.Ticker
	var tickC <-chan time.Time
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	var buf [][]byte
	write := func(b []byte) bool {
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := bw.Write(b)
		return err == nil
	}
	for {
		select {
		case <-q.notify:
		case d := <-keepalive:
			if d > 0 {
				tick = time.NewTicker(d)
				tickC = tick.C
			}
			continue
		case <-tickC:
			if !write(keepaliveMsg) || bw.Flush() != nil {
				return
			}
			continue
		}
		var closing bool
		var final []byte
		buf, closing, final = q.take(buf)
		if closing {
			if final != nil {
				conn.SetWriteDeadline(time.Now().Add(notifyGrace))
				bw.Reset(conn)
				bw.Write(final)
				bw.Flush()
			}
			return
		}
		for _, c := range buf {
			if !write(c) {
				return
			}
		}
		clear(buf)
		if cap(buf) > maxKeptChunks {
			buf = nil
		}
		if bw.Flush() != nil {
			return
		}
	}
}

// sessionBufSize is the read and the write buffer of a session: four
// maximum-size messages, so that a reflector with thousands of clients
// keeps its buffers small (5,000 sessions: 160 MiB).
const sessionBufSize = 4 * maxMsgLen

// sendHoldTime is the write deadline of a session whose configured hold
// time is hold: the hold time itself, or defaultSendHold when it is zero
// (no hold timer must not mean a writer blocked for ever).
func sendHoldTime(hold time.Duration) time.Duration {
	if hold <= 0 {
		return defaultSendHold
	}
	return hold
}
