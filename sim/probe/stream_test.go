package probe

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// gatedEcho listens on 127.0.0.1 inside ns and echoes while its gate is
// open; closing the gate holds the echoes back, as a lossy link would.
type gatedEcho struct {
	mu   sync.Mutex
	open bool
	port int
}

func startGatedEcho(t *testing.T, ns *nstest.NS, open bool) *gatedEcho {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	g := &gatedEcho{open: open, port: ln.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go func() {
				buf := make([]byte, 8)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					for !g.isOpen() {
						time.Sleep(5 * time.Millisecond)
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	return g
}

func (g *gatedEcho) isOpen() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

func (g *gatedEcho) set(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = open
}

var loopback = netip.MustParseAddr("127.0.0.1")

// TestStreamStopCountsAnOngoingStall: a stream whose echoes stop and are
// still missing when it is stopped reports the stall up to the stop, not
// the last gap between two echoes (a fault measured while the path was
// still broken once reported 0 s).
func TestStreamStopCountsAnOngoingStall(t *testing.T) {
	ns := nstest.New(t)
	g := startGatedEcho(t, ns, true)
	s, err := StartStream(context.Background(), ns.Handle, loopback, g.port, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Echoed == 0 {
		t.Fatalf("StartStream returned before the first echo: %+v", st)
	}
	g.set(false)
	const stall = 400 * time.Millisecond
	time.Sleep(stall)
	st := s.Stop(0)
	if st.Err != nil {
		t.Fatalf("stream broke: %v", st.Err)
	}
	if st.MaxGap < stall {
		t.Errorf("MaxGap %s with echoes missing for %s: want at least the stall", st.MaxGap, stall)
	}
}

// TestStreamStopAfterRecovery: a stall that ended before Stop is measured
// between the echoes around it, and a drained stream adds nothing after.
func TestStreamStopAfterRecovery(t *testing.T) {
	ns := nstest.New(t)
	g := startGatedEcho(t, ns, true)
	s, err := StartStream(context.Background(), ns.Handle, loopback, g.port, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	g.set(false)
	time.Sleep(300 * time.Millisecond)
	g.set(true)
	time.Sleep(300 * time.Millisecond)
	st := s.Stop(2 * time.Second)
	if st.MaxGap < 300*time.Millisecond || st.MaxGap > 550*time.Millisecond {
		t.Errorf("MaxGap %s, want the 300 ms stall (and not the time after it)", st.MaxGap)
	}
	if st.Echoed < st.Sent {
		t.Errorf("echoed %d of %d after draining", st.Echoed, st.Sent)
	}
}

// TestStartStreamNeedsAnEcho: a listener that accepts but never echoes is
// refused at start, with the reason, instead of yielding a stream whose
// stall cannot be measured.
func TestStartStreamNeedsAnEcho(t *testing.T) {
	ns := nstest.New(t)
	g := startGatedEcho(t, ns, false)
	defer func(d time.Duration) { firstEchoTimeout = d }(firstEchoTimeout)
	firstEchoTimeout = 200 * time.Millisecond
	s, err := StartStream(context.Background(), ns.Handle, loopback, g.port, 10*time.Millisecond)
	if err == nil {
		s.Stop(0)
		t.Fatal("StartStream succeeded against a listener that never echoes")
	}
	if !strings.Contains(err.Error(), "no echo within") {
		t.Errorf("error %q, want it to say no echo came", err)
	}
}
