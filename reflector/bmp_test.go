package reflector

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/packet/bmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bgpfabric/bgpfabric/api"
)

// startPrepared runs an already created reflector until the test ends
// (runReflector with a New that the test could adjust).
func startPrepared(t *testing.T, r *Reflector) netip.AddrPort {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { stopOnce(t, cancel, done) }) })
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return r.ListenAddrs()[0]
}

// bmpStream parses what a collector connection receives, message by
// message, until the connection ends.
func bmpStream(conn net.Conn) <-chan *bmp.BMPMessage {
	ch := make(chan *bmp.BMPMessage, 1024)
	go func() {
		defer close(ch)
		br := bufio.NewReaderSize(conn, 1<<16)
		for {
			head, err := br.Peek(bmpCommonHeaderLen)
			if err != nil {
				return
			}
			buf := make([]byte, binary.BigEndian.Uint32(head[1:5]))
			if _, err := io.ReadFull(br, buf); err != nil {
				return
			}
			m, err := bmp.ParseBMPMessage(buf)
			if err != nil {
				panic(fmt.Sprintf("unparseable BMP message: %v", err))
			}
			ch <- m
		}
	}()
	return ch
}

// bmpView is what a collector learnt from a stream.
type bmpView struct {
	initiations int
	up          map[string]bool            // peer address → up
	downReason  map[string]uint8           // peer address → last peer-down reason
	downNotify  map[string]string          // peer address → its NOTIFICATION, "code/subcode"
	routes      map[string]map[string]bool // peer → prefixes announced and not withdrawn
	eors        map[string]int             // peer → End-of-RIBs seen
	localPref   map[string]uint32          // "peer prefix" → LOCAL_PREF
	stats       map[string]map[uint16]uint64
	order       []string // "up PEER", "down PEER", "rm PEER" in order
}

func newBMPView() *bmpView {
	return &bmpView{up: map[string]bool{}, downReason: map[string]uint8{}, routes: map[string]map[string]bool{}, eors: map[string]int{},
		localPref: map[string]uint32{}, stats: map[string]map[uint16]uint64{}, downNotify: map[string]string{}}
}

func (v *bmpView) apply(t *testing.T, m *bmp.BMPMessage) {
	peer := m.PeerHeader.PeerAddress.String()
	switch b := m.Body.(type) {
	case *bmp.BMPInitiation:
		v.initiations++
	case *bmp.BMPStatisticsReport:
		st := map[uint16]uint64{}
		for _, s := range b.Stats {
			switch s := s.(type) {
			case *bmp.BMPStatsTLV32:
				st[s.Type] = uint64(s.Value)
			case *bmp.BMPStatsTLV64:
				st[s.Type] = s.Value
			}
		}
		v.stats[peer] = st
	case *bmp.BMPPeerUpNotification:
		v.up[peer] = true
		v.order = append(v.order, "up "+peer)
	case *bmp.BMPPeerDownNotification:
		v.up[peer] = false
		v.downReason[peer] = b.Reason
		if b.BGPNotification != nil {
			n := b.BGPNotification.Body.(*bgp.BGPNotification)
			v.downNotify[peer] = fmt.Sprintf("%d/%d", n.ErrorCode, n.ErrorSubcode)
		}
		v.order = append(v.order, "down "+peer)
	case *bmp.BMPRouteMonitoring:
		if !v.up[peer] {
			t.Errorf("route monitoring of %s before its peer up", peer)
		}
		v.order = append(v.order, "rm "+peer)
		u := b.BGPUpdate.Body.(*bgp.BGPUpdate)
		if eor, _ := u.IsEndOfRib(); eor {
			v.eors[peer]++
			return
		}
		if v.routes[peer] == nil {
			v.routes[peer] = map[string]bool{}
		}
		for _, n := range u.WithdrawnRoutes {
			delete(v.routes[peer], n.String())
		}
		for _, n := range u.NLRI {
			v.routes[peer][n.String()] = true
		}
		for _, a := range u.PathAttributes {
			switch a := a.(type) {
			case *bgp.PathAttributeLocalPref:
				for _, n := range u.NLRI {
					v.localPref[peer+" "+n.String()] = a.Value
				}
			case *bgp.PathAttributeMpReachNLRI:
				for _, n := range a.Value {
					v.routes[peer][n.String()] = true
				}
			case *bgp.PathAttributeMpUnreachNLRI:
				for _, n := range a.Value {
					delete(v.routes[peer], n.String())
				}
			}
		}
	}
}

// readUntil applies messages of ch to v until cond holds.
func (v *bmpView) readUntil(t *testing.T, ch <-chan *bmp.BMPMessage, what string, cond func(*bmpView) bool) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for !cond(v) {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("collector stream ended while waiting for %s", what)
			}
			v.apply(t, m)
		case <-timeout:
			t.Fatalf("timed out waiting for %s; seen %v", what, v.order)
		}
	}
}

func acceptOne(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Cleanup(func() { r.c.Close() })
		return r.c
	case <-time.After(30 * time.Second):
		ln.Close()
		t.Fatal("the reflector did not connect to the collector")
	}
	return nil
}

func listenCollector(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// TestBMPCollectorStream: a collector gets initiation, peer up, every
// received UPDATE as route monitoring, peer down; and after it
// reconnects, a dump of the current state (peer up of the established
// sessions only, their routes, End-of-RIB).
func TestBMPCollectorStream(t *testing.T) {
	ln := listenCollector(t)
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	cfg.BMP = BMPConfig{Collectors: []BMPCollector{{Address: ln.Addr().String()}}, SysName: "rr-test"}
	cfg.ListenAddrs = []string{"127.0.0.1:0"}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := r.env.rib.mon.collectors[0]
	c.retryMin, c.retryMax = 10*time.Millisecond, 50*time.Millisecond
	addr := startPrepared(t, r)
	conn := acceptOne(t, ln)
	stream := bmpStream(conn)
	v := newBMPView()
	v.readUntil(t, stream, "initiation", func(v *bmpView) bool { return v.initiations == 1 })

	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	b := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	a.send(t, ipv4Update("192.0.2.2", pfx("10.1.0.0/24", "10.1.1.0/24")), ipv4Withdraw(pfx("10.1.1.0/24")))
	b.send(t, ipv4Update("192.0.2.3", pfx("10.3.0.0/24")))
	v.readUntil(t, stream, "both peers' routes", func(v *bmpView) bool {
		return len(v.routes["127.0.0.2"]) == 1 && v.routes["127.0.0.2"]["10.1.0.0/24"] && v.routes["127.0.0.3"]["10.3.0.0/24"]
	})
	a.conn.Close()
	v.readUntil(t, stream, "peer down of 127.0.0.2", func(v *bmpView) bool { return !v.up["127.0.0.2"] && v.downReason["127.0.0.2"] != 0 })
	if got := v.downReason["127.0.0.2"]; got != bmpDownRemoteNoData {
		t.Errorf("peer-down reason %d, want %d (remote closed without a NOTIFICATION)", got, bmpDownRemoteNoData)
	}

	// The collector goes away and comes back: a fresh dump.
	conn.Close()
	conn2 := acceptOne(t, ln)
	v2 := newBMPView()
	v2.readUntil(t, bmpStream(conn2), "the dump's End-of-RIBs", func(v *bmpView) bool { return v.eors["127.0.0.3"] == 2 })
	if v2.initiations != 1 || !v2.up["127.0.0.3"] || v2.up["127.0.0.2"] {
		t.Errorf("after reconnecting: %d initiations, up %v; want one, and only 127.0.0.3", v2.initiations, v2.up)
	}
	if len(v2.routes["127.0.0.3"]) != 1 || !v2.routes["127.0.0.3"]["10.3.0.0/24"] || len(v2.routes["127.0.0.2"]) != 0 {
		t.Errorf("dumped routes %v, want only 127.0.0.3's 10.3.0.0/24", v2.routes)
	}
	if n := testutil.ToFloat64(r.bmpMet.connects.WithLabelValues(ln.Addr().String())); n != 2 {
		t.Errorf("bmp_connects_total = %v, want 2", n)
	}
}

// sendMany announces ps in UPDATEs of 500 prefixes.
func sendMany(t *testing.T, s *rawSpeaker, nh string, ps []netip.Prefix) {
	t.Helper()
	for len(ps) > 0 {
		n := min(500, len(ps))
		s.send(t, ipv4Update(nh, ps[:n]))
		ps = ps[n:]
	}
}

// TestBMPSlowCollectorNeverBlocks: a collector that stops reading costs
// the reflector nothing: routes keep being reflected, the messages that
// do not fit its buffer are dropped and counted, and the collector is
// resynchronised with a full dump once it reads again.
func TestBMPSlowCollectorNeverBlocks(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	colAddr := ln.Addr().String()
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	cfg.BMP = BMPConfig{Collectors: []BMPCollector{{Address: colAddr, BufferBytes: 64 << 10}}}
	cfg.ListenAddrs = []string{"127.0.0.1:0"}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := r.env.rib.mon.collectors[0]
	c.retryMin, c.retryMax = 10*time.Millisecond, 50*time.Millisecond
	dial := c.dial
	c.dial = func(ctx context.Context, addr string) (net.Conn, error) {
		conn, err := dial(ctx, addr)
		if err == nil {
			conn.(*net.TCPConn).SetWriteBuffer(4096)
		}
		return conn, err
	}
	addr := startPrepared(t, r)
	stalled := acceptOne(t, ln) // never read
	_ = stalled

	ctx := context.Background()
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	b := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	const n = 50000
	ps := manyPrefixes("20.0.0.0", n)
	go func() { // the reflector's EoRs to a; a reads nothing else
		io.Copy(io.Discard, a.conn)
	}()
	sendMany(t, a, "192.0.2.2", ps)
	// The RIB converges and reflects everything while the collector is stuck.
	got := collect(t, b, false, func(m map[string]route) bool { return len(m) >= n+2 })
	for _, p := range ps {
		if _, ok := got[p.String()]; !ok {
			t.Fatalf("client did not receive %v", p)
		}
	}
	label := colAddr
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	waitFor(t, wctx, "drops counted", func() bool { return testutil.ToFloat64(r.bmpMet.dropped.WithLabelValues(label)) > 0 })
	waitFor(t, wctx, "a resync", func() bool { return testutil.ToFloat64(r.bmpMet.resyncs.WithLabelValues(label)) > 0 })
	if q := c.q.maxQueued; q > 64<<10 {
		t.Errorf("live bytes queued reached %d, over the 64 KiB buffer", q)
	}

	// The collector reads again: a connection carries everything. The
	// kernel may hold connections that the reflector made (and dumped a
	// part of the table to) while the routes were arriving and that it
	// has since closed after an overflow: those end short, and the next
	// one is taken.
	stalled.Close()
	timeout := time.After(60 * time.Second)
	for {
		conn := acceptOne(t, ln)
		v := newBMPView()
		stream := bmpStream(conn)
		full := func() bool {
			for len(v.routes["127.0.0.2"]) < n {
				select {
				case m, ok := <-stream:
					if !ok {
						return false
					}
					v.apply(t, m)
				case <-timeout:
					t.Fatalf("no connection carried the whole table; the last had %d routes", len(v.routes["127.0.0.2"]))
				}
			}
			return true
		}()
		if full {
			// Dumped routes are packed: prefixes sharing attributes
			// share UPDATEs (one message per prefix would be 50,000).
			rms := 0
			for _, o := range v.order {
				if o == "rm 127.0.0.2" {
					rms++
				}
			}
			if rms > n/100 {
				t.Errorf("%d route monitoring messages for %d prefixes sharing attributes, want at most %d", rms, n, n/100)
			}
			return
		}
	}
}

// TestBMPBackoff: the waits double from the minimum to the maximum, each
// drawn in the upper half of its step; a failing collector is retried
// with them, and a connection that succeeds at last is served.
func TestBMPBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, 800*time.Millisecond
	for _, r := range []func(int64) int64{func(int64) int64 { return 0 }, func(n int64) int64 { return n - 1 }} {
		var prevTop time.Duration
		for n := range 8 {
			step := min(lo<<n, hi)
			d := backoff(n, lo, hi, r)
			if d < step/2 || d > step {
				t.Errorf("backoff(%d) = %v, want within [%v, %v]", n, d, step/2, step)
			}
			if step < prevTop {
				t.Errorf("backoff step shrank at %d", n)
			}
			prevTop = step
		}
	}

	ln := listenCollector(t)
	cfg := testConfig()
	cfg.BMP = BMPConfig{Collectors: []BMPCollector{{Address: ln.Addr().String()}}}
	cfg.ListenAddrs = []string{"127.0.0.1:0"}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := r.env.rib.mon.collectors[0]
	c.retryMin, c.retryMax = 20*time.Millisecond, 160*time.Millisecond
	dial := c.dial
	var mu sync.Mutex
	var attempts []time.Time
	const failures = 6
	c.dial = func(ctx context.Context, addr string) (net.Conn, error) {
		mu.Lock()
		attempts = append(attempts, time.Now())
		n := len(attempts)
		mu.Unlock()
		if n <= failures {
			return nil, fmt.Errorf("refused (test, attempt %d)", n)
		}
		return dial(ctx, addr)
	}
	startPrepared(t, r)
	conn := acceptOne(t, ln)
	v := newBMPView()
	v.readUntil(t, bmpStream(conn), "initiation", func(v *bmpView) bool { return v.initiations == 1 })
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != failures+1 {
		t.Fatalf("%d attempts, want %d", len(attempts), failures+1)
	}
	// Timers never fire early: each gap is at least its step's lower half.
	for i := 1; i < len(attempts); i++ {
		step := min(c.retryMin<<(i-1), c.retryMax)
		if gap := attempts[i].Sub(attempts[i-1]); gap < step/2 {
			t.Errorf("retry %d after %v, want at least %v", i, gap, step/2)
		}
	}
}

// locRIBView follows the Loc-RIB instance's route monitoring: prefix →
// next hop of its best path.
type locRIBView struct {
	up     bool
	table  map[string]string
	eors   int
	others int // messages of other peers
}

func (v *locRIBView) apply(t *testing.T, m *bmp.BMPMessage) {
	if m.Header.Type == bmp.BMP_MSG_INITIATION || m.Header.Type == bmp.BMP_MSG_TERMINATION {
		return
	}
	if m.PeerHeader.PeerType != bmpPeerLocRIB {
		v.others++
		return
	}
	switch b := m.Body.(type) {
	case *bmp.BMPPeerUpNotification:
		v.up = true
	case *bmp.BMPRouteMonitoring:
		if !v.up {
			t.Error("Loc-RIB route monitoring before its peer up")
		}
		u := b.BGPUpdate.Body.(*bgp.BGPUpdate)
		if eor, _ := u.IsEndOfRib(); eor {
			v.eors++
			return
		}
		for _, n := range u.WithdrawnRoutes {
			delete(v.table, n.String())
		}
		var nh string
		for _, a := range u.PathAttributes {
			if a, ok := a.(*bgp.PathAttributeNextHop); ok {
				nh = a.Value.String()
			}
		}
		for _, n := range u.NLRI {
			v.table[n.String()] = nh
		}
	}
}

func (v *locRIBView) readUntil(t *testing.T, ch <-chan *bmp.BMPMessage, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for !cond() {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("collector stream ended while waiting for %s", what)
			}
			v.apply(t, m)
		case <-timeout:
			t.Fatalf("timed out waiting for %s; Loc-RIB %v", what, v.table)
		}
	}
}

// TestBMPLocRIB: with LocRIB, a collector follows the best path of every
// prefix (RFC 9069): the dump on connect, then each change of best path,
// and the withdrawal when no path is left.
func TestBMPLocRIB(t *testing.T) {
	ln := listenCollector(t)
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	cfg.ListenAddrs = []string{"127.0.0.1:0"}
	cfg.BMP = BMPConfig{Collectors: []BMPCollector{{Address: ln.Addr().String()}}, LocRIB: true}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := r.env.rib.mon.collectors[0]
	c.retryMin, c.retryMax = 10*time.Millisecond, 50*time.Millisecond
	addr := startPrepared(t, r)
	first := acceptOne(t, ln) // connected at start, before any route
	ctx := context.Background()
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	b := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	go io.Copy(io.Discard, a.conn)
	go io.Copy(io.Discard, b.conn)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.1.0.0/24", "10.2.0.0/24")))
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	waitFor(t, wctx, "a's routes in the RIB", func() bool { s, ok := r.RIBStats(wctx); return ok && s.Paths == 2 })

	first.Close() // the reconnection's dump carries the routes
	conn := acceptOne(t, ln)
	stream := bmpStream(conn)
	v := &locRIBView{table: map[string]string{}}
	v.readUntil(t, stream, "the Loc-RIB dump", func() bool { return v.eors == 2 })
	if want := map[string]string{"10.1.0.0/24": "192.0.2.2", "10.2.0.0/24": "192.0.2.2"}; !maps.Equal(v.table, want) {
		t.Errorf("Loc-RIB dump %v, want %v", v.table, want)
	}
	// b's path wins on LOCAL_PREF: the best path changes.
	b.send(t, ipv4Update("192.0.2.3", pfx("10.1.0.0/24"), bgp.NewPathAttributeLocalPref(200)))
	v.readUntil(t, stream, "b's path as best", func() bool { return v.table["10.1.0.0/24"] == "192.0.2.3" })
	// Withdrawing a prefix's only path withdraws it; withdrawing the best
	// path falls back to the other.
	a.send(t, ipv4Withdraw(pfx("10.2.0.0/24")))
	v.readUntil(t, stream, "the withdrawal", func() bool { _, ok := v.table["10.2.0.0/24"]; return !ok })
	b.send(t, ipv4Withdraw(pfx("10.1.0.0/24")))
	v.readUntil(t, stream, "a's path back as best", func() bool { return v.table["10.1.0.0/24"] == "192.0.2.2" })
	if len(v.table) != 1 {
		t.Errorf("Loc-RIB %v, want only 10.1.0.0/24", v.table)
	}
}

// TestBMPPrePolicyDumpAndStats: for a neighbour with an import policy,
// the dump carries its routes as it sent them (rejected ones included,
// changed ones unchanged), and the Statistics Reports count what it sent
// and what the policy rejected.
func TestBMPPrePolicyDumpAndStats(t *testing.T) {
	ln := listenCollector(t)
	cfg := testConfig(cliA, cliB)
	cfg.ListenAddrs = []string{"127.0.0.1:0"}
	cfg.Policy = PolicyConfig{
		Filters: []*api.BGPFilter{filter("in", api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{
			{CIDR: "10.9.0.0/16", MatchOperator: api.MatchIn, Action: api.FilterReject},
			{CIDR: "10.2.0.0/24", MatchOperator: api.MatchEqual, Action: api.FilterAccept, LocalPref: ptrTo(uint32(250))},
		}})},
		Neighbors: map[netip.Addr][]string{netip.MustParseAddr(cliA): {"in"}},
	}
	cfg.BMP = BMPConfig{Collectors: []BMPCollector{{Address: ln.Addr().String()}}, StatsInterval: 20 * time.Millisecond}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := r.env.rib.mon.collectors[0]
	c.retryMin, c.retryMax = 10*time.Millisecond, 50*time.Millisecond
	addr := startPrepared(t, r)
	first := acceptOne(t, ln)
	go io.Copy(io.Discard, first)
	ctx := context.Background()
	a, err := dialSpeaker(ctx, addr, cliA, speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90})
	if err != nil {
		t.Fatal(err)
	}
	defer a.conn.Close()
	go io.Copy(io.Discard, a.conn)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.9.1.0/24", "10.2.0.0/24", "10.3.0.0/24")))
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	waitFor(t, wctx, "the accepted routes in the RIB", func() bool { s, ok := r.RIBStats(wctx); return ok && s.Paths == 2 })

	first.Close()
	v := newBMPView()
	v.readUntil(t, bmpStream(acceptOne(t, ln)), "the dump and a statistics report", func(v *bmpView) bool {
		return v.eors[cliA] == 2 && v.stats[cliA] != nil
	})
	if want := map[string]bool{"10.9.1.0/24": true, "10.2.0.0/24": true, "10.3.0.0/24": true}; !maps.Equal(v.routes[cliA], want) {
		t.Errorf("pre-policy dump %v, want %v", v.routes[cliA], want)
	}
	if lp := v.localPref[cliA+" 10.2.0.0/24"]; lp != 100 {
		t.Errorf("dumped LOCAL_PREF of the changed route %d, want 100 as received (the policy's 250 is post-policy)", lp)
	}
	if st := v.stats[cliA]; st[bmpStatAdjRIBIn] != 3 || st[bmpStatRejected] != 1 {
		t.Errorf("statistics %v, want %d: 3 and %d: 1", st, bmpStatAdjRIBIn, bmpStatRejected)
	}
}

// TestBMPPeerDownMaxPrefixes: a session that the reflector closes for
// too many prefixes is reported down with the Cease it sent.
func TestBMPPeerDownMaxPrefixes(t *testing.T) {
	ln := listenCollector(t)
	cfg := testConfig(cliA)
	cfg.ListenAddrs = []string{"127.0.0.1:0"}
	cfg.Neighbors[0].MaxPrefixes = 1
	cfg.BMP = BMPConfig{Collectors: []BMPCollector{{Address: ln.Addr().String()}}}
	_, addr := startReflector(t, cfg)
	stream := bmpStream(acceptOne(t, ln))
	v := newBMPView()
	v.readUntil(t, stream, "initiation", func(v *bmpView) bool { return v.initiations == 1 }) // attached: the session's life is streamed
	a, err := dialSpeaker(context.Background(), addr, cliA, speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90})
	if err != nil {
		t.Fatal(err)
	}
	defer a.conn.Close()
	go io.Copy(io.Discard, a.conn)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.1.0.0/24", "10.2.0.0/24")))
	v.readUntil(t, stream, "the peer down", func(v *bmpView) bool { return v.downReason[cliA] != 0 })
	want := fmt.Sprintf("%d/%d", bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_MAXIMUM_NUMBER_OF_PREFIXES_REACHED)
	if v.downReason[cliA] != bmpDownLocalNotify || v.downNotify[cliA] != want {
		t.Errorf("peer down: reason %d, NOTIFICATION %q; want %d, %s", v.downReason[cliA], v.downNotify[cliA], bmpDownLocalNotify, want)
	}
}
