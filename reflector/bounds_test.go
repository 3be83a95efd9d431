package reflector

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// failingListener fails every Accept with EMFILE until ok is closed, then
// returns one connection and waits to be closed.
type failingListener struct {
	calls atomic.Int64
	ok    chan struct{}
	conn  net.Conn
	done  chan struct{}
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.calls.Add(1)
	select {
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.ok:
		if c := l.conn; c != nil {
			l.conn = nil
			return c, nil
		}
		<-l.done
		return nil, net.ErrClosed
	default:
	}
	return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
}

// countingHandler counts log records.
type countingHandler struct{ n atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h *countingHandler) Handle(context.Context, slog.Record) error { h.n.Add(1); return nil }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h *countingHandler) WithGroup(string) slog.Handler             { return h }

// TestAcceptBackoff: a listener out of descriptors is retried with a
// growing delay, not in a spin, and logged once; accepting resumes when it
// recovers. The bound counts Accept calls while a window passes: with the
// 5 ms..1 s backoff about 10 fit in 1.5 s (fewer on a loaded machine),
// a spinning loop makes hundreds of thousands.
func TestAcceptBackoff(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	l := &failingListener{ok: make(chan struct{}), conn: c1, done: make(chan struct{})}
	h := &countingHandler{}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan net.Conn, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		acceptLoop(ctx, l, slog.New(h), func(c net.Conn) { got <- c })
	}()
	defer func() { cancel(); close(l.done); <-finished }()
	window := time.NewTimer(1500 * time.Millisecond)
	<-window.C
	if n := l.calls.Load(); n > 20 {
		t.Errorf("%d Accept calls in 1.5 s of EMFILE, want at most 20 (backoff)", n)
	}
	if n := h.n.Load(); n != 1 {
		t.Errorf("%d log lines for a run of accept failures, want 1", n)
	}
	close(l.ok)
	select {
	case c := <-got:
		if c != c1 {
			t.Errorf("handled %v, want the accepted connection", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no connection handled after the listener recovered")
	}
	if n := h.n.Load(); n != 2 {
		t.Errorf("%d log lines after recovery, want 2 (failing, works again)", n)
	}
}

// recordingHandler keeps the messages of the records it handles.
type recordingHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// TestMalformedUpdateLogsLimited: a peer sending thousands of malformed
// (treat-as-withdraw) UPDATEs makes one log line per interval, not one per
// UPDATE; a received NOTIFICATION's code outside the defined ones is
// counted under "other".
func TestMalformedUpdateLogsLimited(t *testing.T) {
	h := &recordingHandler{}
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	cfg.Logger = slog.New(h)
	r, addr := startReflector(t, cfg)
	bad := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	mon := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	for _, s := range []*rawSpeaker{bad, mon} {
		collect(t, s, false, hasEORs)
	}
	m := ipv4Update("192.0.2.2", pfx("10.50.0.0/24"))
	m.Body.(*bgp.BGPUpdate).PathAttributes[0] = bgp.NewPathAttributeOrigin(7)
	b, err := m.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	if _, err := bad.conn.Write(bytes.Repeat(b, n)); err != nil {
		t.Fatal(err)
	}
	// A valid UPDATE after them: once mon has it, all were handled.
	bad.send(t, ipv4Update("192.0.2.2", pfx("10.51.0.0/24")))
	collect(t, mon, false, hasKeys("10.51.0.0/24"))
	if got := testutil.ToFloat64(r.met.treatAsWithdraw); got != n {
		t.Errorf("treat-as-withdraw counted %v, want %d", got, n)
	}
	if got := h.count("malformed UPDATE treated as withdraw"); got != 1 {
		t.Errorf("%d log lines for %d malformed UPDATEs, want 1 in the interval", got, n)
	}
	// A NOTIFICATION with an invented code.
	if _, err := bad.conn.Write(encodeNotification(newNotify(200, 1, ""))); err != nil {
		t.Fatal(err)
	}
	waitChange(t, r, func() bool {
		return testutil.ToFloat64(r.met.notifications.WithLabelValues("received", "other")) == 1
	})
	if got := testutil.CollectAndCount(r.met.notifications); got != 1 {
		t.Errorf("%d notification label sets, want 1", got)
	}
}

// smallRecvBuf makes a dialled socket's receive buffer small, so that a
// client that does not read stops the reflector's writes early.
func smallRecvBuf(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
	})
	return errors.Join(err, serr)
}

// TestSlowReaderCutOff: a client that reads nothing is closed once its
// queued live UPDATEs pass the queue's limit, and its queue never holds
// much more than that; the other clients get every route meanwhile.
func TestSlowReaderCutOff(t *testing.T) {
	cfg := testConfig("127.0.0.2", "127.0.0.3", "127.0.0.4")
	// A round of 1,000 routes reflects about 60 KiB; mon is paced by
	// rounds, so only the client that reads nothing passes the limit.
	cfg.outQueueLimit = 512 << 10
	r, addr := startReflector(t, cfg)
	src := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	mon := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.4")}, Control: smallRecvBuf}
	conn, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	slow, err := handshake(conn, opts("10.0.0.4"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*rawSpeaker{src, mon, slow} {
		collect(t, s, false, hasEORs)
	}
	// From now on slow reads nothing. Rounds of 1,000 routes, each with
	// its own MED (one UPDATE each, about 60 bytes reflected), until slow
	// is cut off; mon must have every route of every round.
	view := map[string]route{}
	var peak int64
	rounds := 0
	for ; testutil.ToFloat64(r.met.slowReaderCloses) == 0; rounds++ {
		if rounds == 300 {
			t.Fatalf("slow reader not cut off after %d routes", rounds*1000)
		}
		var last string
		for i := range 1000 {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(11 + rounds/200), byte(rounds % 200), byte(i / 4), byte(i%4) * 64}), 26)
			src.send(t, ipv4Update("192.0.2.2", []netip.Prefix{p}, bgp.NewPathAttributeMultiExitDisc(uint32(rounds*1000+i))))
			last = p.String()
		}
		readUntil(t, mon, view, last)
		for _, n := range r.Neighbors() {
			if n.Address == "127.0.0.4" {
				peak = max(peak, n.OutQueuePeak)
			}
		}
	}
	if len(view) < rounds*1000 {
		t.Errorf("mon has %d routes, want %d", len(view), rounds*1000)
	}
	// The queue's limit plus one flush's UPDATEs (one push: a round).
	if bound := int64(cfg.outQueueLimit + 128<<10); peak > bound {
		t.Errorf("slow reader's queue peaked at %d bytes, want at most %d", peak, bound)
	}
	waitChange(t, r, func() bool {
		for _, n := range r.Neighbors() {
			if n.Address == "127.0.0.4" {
				return n.State < StateOpenSent && strings.Contains(n.LastError, "output queue overflow")
			}
		}
		return false
	})
	t.Logf("slow reader cut off after %d routes; its queue peaked at %d bytes", rounds*1000, peak)
}

// TestRouteRefreshCoalesced: a client that sends 1,000 ROUTE-REFRESHes and
// reads nothing gets at most one table dump waiting in its queue at a
// time: the queue's peak stays within two dumps.
func TestRouteRefreshCoalesced(t *testing.T) {
	r, addr := startReflector(t, testConfig("127.0.0.2", "127.0.0.3", "127.0.0.4"))
	src := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	mon := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	rr := connect(t, addr, "127.0.0.4", opts("10.0.0.4"))
	for _, s := range []*rawSpeaker{src, mon} {
		collect(t, s, false, hasEORs)
	}
	collect(t, rr, false, hasEORs)
	all := manyPrefixes("10.0.0.0", 20000)
	for i := 0; i < len(all); i += 500 {
		src.send(t, ipv4Update("192.0.2.2", all[i:i+500]))
	}
	// rr reads the 20,000 routes once, measuring them: that is one dump.
	rr.conn.SetReadDeadline(deadline())
	dump := 0
	view := map[string]route{}
	for len(view) < len(all) {
		b, err := rr.rawMessage()
		if err != nil {
			t.Fatal(err)
		}
		dump += len(b)
		m, err := bgp.ParseBGPMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		if u, ok := m.Body.(*bgp.BGPUpdate); ok {
			applyUpdate(view, u)
		}
	}
	refresh, err := bgp.NewBGPRouteRefreshMessage(bgp.AFI_IP, 0, bgp.SAFI_UNICAST).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rr.conn.Write(bytes.Repeat(refresh, 1000)); err != nil {
		t.Fatal(err)
	}
	// A route from rr after its requests: once mon has it, every request
	// has been handled (the reader takes them in order, the RIB loop too).
	rr.send(t, ipv4Update("192.0.2.4", pfx("10.99.0.0/24")))
	collect(t, mon, false, hasKeys("10.99.0.0/24"))
	var peak int64
	for _, n := range r.Neighbors() {
		if n.Address == "127.0.0.4" {
			peak = n.OutQueuePeak
		}
	}
	coalesced := testutil.ToFloat64(r.met.refreshCoalesced)
	t.Logf("dump %d bytes; queue peak %d bytes; %v of 1000 requests coalesced", dump, peak, coalesced)
	if peak > int64(2*dump) {
		t.Errorf("queue peaked at %d bytes for 1000 ROUTE-REFRESHes, want at most two dumps (%d)", peak, 2*dump)
	}
	if coalesced == 0 {
		t.Error("no ROUTE-REFRESH coalesced")
	}
}

// TestSendHoldTime: a session without a hold time still has a write
// deadline, and the writer gives up on a peer that takes nothing.
func TestSendHoldTime(t *testing.T) {
	if d := sendHoldTime(0); d <= 0 {
		t.Errorf("send hold time with hold time 0 is %v, want a deadline", d)
	}
	if d := sendHoldTime(9 * time.Second); d != 9*time.Second {
		t.Errorf("send hold time with hold time 9s is %v, want 9s", d)
	}
	c1, c2 := net.Pipe() // c2 is never read: writes block
	defer c2.Close()
	q := newOutQueue(0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		writeLoop(c1, q, make(chan time.Duration), 100*time.Millisecond)
	}()
	q.push(make([]byte, 100))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		q.close(nil)
		<-done
		t.Fatal("writer still blocked on a peer that reads nothing")
	}
}

// readUntil applies UPDATEs from s to view until it holds key; unlike
// collectInto it does not print the view when it fails.
func readUntil(t *testing.T, s *rawSpeaker, view map[string]route, key string) {
	t.Helper()
	s.conn.SetReadDeadline(deadline())
	for {
		if _, ok := view[key]; ok {
			return
		}
		u, err := s.nextUpdate(false)
		if err != nil {
			t.Fatalf("reading with %d routes, waiting for %s: %v", len(view), key, err)
		}
		applyUpdate(view, u)
	}
}
