package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/sim/netbuild"
)

// ListenEcho opens a TCP listener on port inside ns that echoes what every
// connection sends, until ctx ends.
func ListenEcho(ctx context.Context, ns netns.NsHandle, port int) error {
	ln, err := listenIn(ns, port)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var conns []net.Conn
	context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return nil
}

// StreamStats is what a stream saw.
type StreamStats struct {
	// Sent and Echoed count messages.
	Sent, Echoed int
	// MaxGap is the longest time between two echoes (or between the start
	// and the first echo): how long the path was broken at worst.
	MaxGap time.Duration
	// Err is why the stream ended before it was stopped (a reset, a
	// timeout), or nil if it lived until Stop.
	Err error
}

// Stream is one long-lived TCP connection that sends a small message at a
// fixed interval and reads the echoes: the kind of established flow that
// must survive an agent restart.
type Stream struct {
	conn   net.Conn
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	stats StreamStats
	last  time.Time
}

// StartStream connects from ns to an echo listener at dst:port and starts
// sending every interval. The write side gives up when a message has not
// been acknowledged within the kernel's retransmission limits; Stop ends it.
// It returns once the first echo is back, so the stream is known live.
func StartStream(ctx context.Context, ns netns.NsHandle, dst netip.Addr, port int, interval time.Duration) (*Stream, error) {
	var conn net.Conn
	err := netbuild.Do(ns, func() error {
		var err error
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err = d.DialContext(ctx, "tcp", net.JoinHostPort(dst.String(), strconv.Itoa(port)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s:%d: %w", dst, port, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Stream{conn: conn, cancel: cancel, done: make(chan struct{}), last: time.Now()}
	context.AfterFunc(ctx, func() { conn.Close() })
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 8)
		for {
			if _, err := io.ReadFull(conn, buf); err != nil {
				s.fail(ctx, fmt.Errorf("reading echo: %w", err))
				return
			}
			now := time.Now()
			s.mu.Lock()
			s.stats.Echoed++
			s.stats.MaxGap = max(s.stats.MaxGap, now.Sub(s.last))
			s.last = now
			s.mu.Unlock()
		}
	}()
	go func() {
		defer close(s.done)
		defer func() { <-readDone }()
		t := time.NewTicker(interval)
		defer t.Stop()
		var seq uint64
		msg := make([]byte, 8)
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			seq++
			binary.BigEndian.PutUint64(msg, seq)
			if _, err := conn.Write(msg); err != nil {
				s.fail(ctx, fmt.Errorf("sending: %w", err))
				cancel()
				return
			}
			s.mu.Lock()
			s.stats.Sent++
			s.mu.Unlock()
		}
	}()
	// A stream that has not echoed once is not yet a flow a fault can
	// stall: wait for the first echo, so that a fault applied right after
	// this returns measures a gap in a live stream.
	first := time.NewTicker(5 * time.Millisecond)
	defer first.Stop()
	deadline := time.Now().Add(firstEchoTimeout)
	for {
		st := s.Stats()
		if st.Err != nil {
			s.Stop(0)
			return nil, fmt.Errorf("stream to %s:%d: %w", dst, port, st.Err)
		}
		if st.Echoed > 0 {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop(0)
			return nil, fmt.Errorf("stream to %s:%d: no echo within %s", dst, port, firstEchoTimeout)
		}
		select {
		case <-ctx.Done():
			s.Stop(0)
			return nil, ctx.Err()
		case <-first.C:
		}
	}
}

// firstEchoTimeout bounds how long StartStream waits for the first echo
// (a variable for the tests).
var firstEchoTimeout = 5 * time.Second

func (s *Stream) fail(ctx context.Context, err error) {
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) && ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stats.Err == nil {
		s.stats.Err = err
	}
}

// Stats returns what the stream saw so far.
func (s *Stream) Stats() StreamStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	if st.Err == nil {
		st.MaxGap = max(st.MaxGap, time.Since(s.last))
	}
	return st
}

// Stop ends the stream, after waiting up to drain for the echoes of what
// was sent, and returns its statistics.
func (s *Stream) Stop(drain time.Duration) StreamStats {
	deadline := time.Now().Add(drain)
	for time.Now().Before(deadline) {
		st := s.Stats()
		if st.Err != nil || st.Echoed >= st.Sent {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	st := s.stats
	if st.Err == nil && st.Echoed < st.Sent {
		// Still waiting for an echo: the stall is going on now.
		st.MaxGap = max(st.MaxGap, time.Since(s.last))
	}
	s.mu.Unlock()
	s.cancel()
	<-s.done
	return st
}
