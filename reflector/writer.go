package reflector

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// maxQueuedBytes closes a session whose peer reads too slowly to keep up.
const maxQueuedBytes = 1 << 30

const notifyGrace = time.Second

// outQueue is a session's outbound queue: producers never block.
type outQueue struct {
	mu      sync.Mutex
	chunks  [][]byte
	bytes   int
	closing bool
	final   []byte // NOTIFICATION to send before closing, if any
	notify  chan struct{}
}

func newOutQueue() *outQueue { return &outQueue{notify: make(chan struct{}, 1)} }

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
	over = q.bytes > maxQueuedBytes
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
		q.closing, q.final, q.chunks, q.bytes = true, final, nil, 0
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
	q.chunks, q.bytes = buf[:0], 0
	return out, false, nil
}

// maxKeptChunks bounds the chunk slices a writer keeps between bursts, so
// that one large burst does not pin memory in each of thousands of
// sessions.
const maxKeptChunks = 256

// writeLoop owns the write side of conn: it coalesces every queued chunk
// into one buffered write per wake-up, sends KEEPALIVEs, and on close sends
// the final NOTIFICATION and closes conn.
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
		if writeTimeout > 0 {
			conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		}
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
