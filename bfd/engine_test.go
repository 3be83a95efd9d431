package bfd

import (
	"net/netip"
	"testing"
	"time"
)

// simNet is a fake transport and a fake clock for two engines, A and B,
// joined by a link that delivers instantly while up. Time moves from one
// timer deadline to the next, so every timer fires exactly when due.
type simNet struct {
	t      *testing.T
	now    time.Time
	a, b   *engine
	linkUp bool
	// loss drops this share of packets at random while the link is up.
	loss float64
	ttl  int
	// log is every packet sent, in order.
	log []simPacket
	// changes is every state change, in order.
	changes []simChange
}

type simPacket struct {
	at        time.Time
	fromA     bool
	delivered bool
	p         ControlPacket
}

type simChange struct {
	onA bool
	StateChange
}

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
)

func newSimNet(t *testing.T, cfgA, cfgB Config) (*simNet, *session, *session) {
	t.Helper()
	n := &simNet{t: t, now: time.Unix(1_000_000, 0), a: newEngine(1, 0), b: newEngine(2, 0), linkUp: true, ttl: 255}
	cfgA.Peer, cfgA.Local = addrB, addrA
	cfgB.Peer, cfgB.Local = addrA, addrB
	var err error
	if cfgA, err = cfgA.normalize(); err != nil {
		t.Fatal(err)
	}
	if cfgB, err = cfgB.normalize(); err != nil {
		t.Fatal(err)
	}
	sa, err := n.a.add(cfgA, 0, n.now)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := n.b.add(cfgB, 0, n.now)
	if err != nil {
		t.Fatal(err)
	}
	return n, sa, sb
}

// settle delivers what the engines queued, as the Server does: receive,
// then fire what became due, until nothing is queued.
func (n *simNet) settle() {
	for i := 0; len(n.a.out)+len(n.b.out)+len(n.a.changes)+len(n.b.changes) > 0; i++ {
		if i > 100 {
			n.t.Fatal("packets ping-pong without end")
		}
		for _, c := range n.a.changes {
			n.changes = append(n.changes, simChange{true, c})
		}
		for _, c := range n.b.changes {
			n.changes = append(n.changes, simChange{false, c})
		}
		n.a.changes, n.b.changes = nil, nil
		outA, outB := n.a.out, n.b.out
		n.a.out, n.b.out = nil, nil
		n.deliver(outA, n.b, true)
		n.deliver(outB, n.a, false)
	}
}

func (n *simNet) deliver(out []outPacket, to *engine, fromA bool) {
	for _, o := range out {
		p, err := Parse(o.payload[:])
		if err != nil {
			n.t.Fatalf("engine sent an invalid packet %x: %v", o.payload[:], err)
		}
		delivered := n.linkUp && (n.loss == 0 || n.a.rng.Float64() >= n.loss)
		n.log = append(n.log, simPacket{at: n.now, fromA: fromA, delivered: delivered, p: p})
		if !delivered {
			continue
		}
		to.receive(o.payload[:], rxMeta{src: o.local, dst: o.peer, ttl: n.ttl, multihop: o.multihop}, n.now)
		to.fire(n.now)
	}
}

// step advances the clock to the next deadline of either engine and fires.
func (n *simNet) step() {
	n.a.fire(n.now)
	n.b.fire(n.now)
	n.settle()
	next := time.Time{}
	for _, e := range []*engine{n.a, n.b} {
		if d := e.fire(n.now); !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	if next.IsZero() {
		n.t.Fatal("no timer left")
	}
	n.now = next
	n.a.fire(n.now)
	n.b.fire(n.now)
	n.settle()
	checkHeap(n.t, n.a)
	checkHeap(n.t, n.b)
}

// checkHeap fails when the timer heap's order or indexes are broken.
func checkHeap(t *testing.T, e *engine) {
	t.Helper()
	for i, s := range e.timers {
		if s.index != i {
			t.Fatalf("timer %d has index %d", i, s.index)
		}
		if s.due != e.dueOf(s.deadline()) {
			t.Fatalf("timer %d: cached deadline %v, real %v", i, s.due, s.deadline())
		}
		if i > 0 && e.timers.Less(i, (i-1)/2) {
			t.Fatalf("timer %d due before its parent", i)
		}
	}
}

// runUntil steps until cond holds, failing after limit of simulated time.
func (n *simNet) runUntil(limit time.Duration, what string, cond func() bool) {
	n.t.Helper()
	end := n.now.Add(limit)
	for !cond() {
		if n.now.After(end) {
			n.t.Fatalf("%s: not within %v of simulated time", what, limit)
		}
		n.step()
	}
}

// run steps for d of simulated time.
func (n *simNet) run(d time.Duration) {
	end := n.now.Add(d)
	for n.now.Before(end) {
		n.step()
	}
}

func bothUp(sa, sb *session) func() bool {
	return func() bool { return sa.state == StateUp && sb.state == StateUp }
}

func TestBringUp(t *testing.T) {
	n, sa, sb := newSimNet(t, Config{}, Config{})
	n.runUntil(5*time.Second, "both Up", bothUp(sa, sb))

	// Both start at the same instant and send Down at once: each goes
	// Down→Init on the other's Down, and Init→Up on the other's Init.
	var got []string
	for _, c := range n.changes {
		who := "B"
		if c.onA {
			who = "A"
		}
		got = append(got, who+":"+c.Old.String()+">"+c.New.String())
	}
	want := []string{"A:Down>Init", "B:Down>Init", "A:Init>Up", "B:Init>Up"}
	if len(got) != len(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("changes %v, want %v", got, want)
		}
	}
	// While not Up, every packet advertises at least 1 s (RFC 5880 §6.8.3).
	for _, p := range n.log {
		if p.p.State != StateUp && micros(p.p.DesiredMinTxInterval) < time.Second {
			t.Fatalf("packet in state %v advertises DesiredMinTx %v", p.p.State, micros(p.p.DesiredMinTxInterval))
		}
	}
	// Once Up, the poll sequence to the fast rate completes on both sides
	// and the agreed interval is the configured 300 ms.
	n.runUntil(5*time.Second, "polls done", func() bool { return !sa.poll && !sb.poll })
	if sa.counters.Polls == 0 || sb.counters.Polls == 0 {
		t.Fatalf("no poll sequence completed: A %d, B %d", sa.counters.Polls, sb.counters.Polls)
	}
	if sa.txInterval() != DefaultMinTx || sb.detectTime() != 3*DefaultMinTx {
		t.Fatalf("A tx %v, B detect %v; want %v, %v", sa.txInterval(), sb.detectTime(), DefaultMinTx, 3*DefaultMinTx)
	}
}

func TestSlowTxWhileDown(t *testing.T) {
	n, sa, _ := newSimNet(t, Config{MinTx: 50 * time.Millisecond}, Config{})
	n.linkUp = false
	n.run(20 * time.Second)
	var last time.Time
	count := 0
	for _, p := range n.log {
		if !p.fromA {
			continue
		}
		if p.p.State != StateDown || micros(p.p.DesiredMinTxInterval) != time.Second {
			t.Fatalf("A sent %+v while no peer answers", p.p)
		}
		if !last.IsZero() {
			if gap := p.at.Sub(last); gap < 750*time.Millisecond || gap > time.Second {
				t.Fatalf("gap %v between packets while Down, want 0.75–1 s", gap)
			}
		}
		last = p.at
		count++
	}
	if count < 20 || sa.state != StateDown {
		t.Fatalf("A sent %d packets in 20 s, state %v", count, sa.state)
	}
}

func TestDetectionTimeout(t *testing.T) {
	n, sa, sb := newSimNet(t, Config{MinTx: 100 * time.Millisecond, MinRx: 100 * time.Millisecond, Multiplier: 3},
		Config{MinTx: 250 * time.Millisecond, MinRx: 200 * time.Millisecond, Multiplier: 5})
	n.runUntil(5*time.Second, "both Up", bothUp(sa, sb))
	n.runUntil(5*time.Second, "polls done", func() bool { return !sa.poll && !sb.poll })
	n.run(time.Second)
	n.changes = nil
	n.linkUp = false
	cut := n.now
	n.runUntil(5*time.Second, "A and B Down", func() bool { return sa.state == StateDown && sb.state == StateDown })

	lastRx := func(toA bool) time.Time {
		var at time.Time
		for _, p := range n.log {
			if p.fromA != toA && p.delivered {
				at = p.at
			}
		}
		return at
	}
	for _, c := range n.changes {
		if c.New != StateDown || c.Diag != DiagControlDetectExpired {
			t.Fatalf("change %+v, want Down with diag 1", c.StateChange)
		}
		// A's detection time: B's multiplier 5 × max(A's rx 100 ms, B's
		// tx 250 ms) = 1250 ms. B's: 3 × max(B's rx 200, A's tx 100) =
		// 600 ms.
		want := 1250 * time.Millisecond
		if !c.onA {
			want = 600 * time.Millisecond
		}
		if got := c.At.Sub(lastRx(c.onA)); got != want {
			t.Fatalf("onA=%v: Down %v after the last packet, want %v", c.onA, got, want)
		}
		if c.At.Before(cut) {
			t.Fatalf("Down before the cut")
		}
	}
	if len(n.changes) != 2 {
		t.Fatalf("changes %+v, want one Down each", n.changes)
	}
	if sa.remoteDiscr != 0 {
		t.Fatal("remote discriminator kept after detection timeout")
	}
	// The link comes back: both come back Up.
	n.linkUp = true
	n.runUntil(5*time.Second, "both Up again", bothUp(sa, sb))
}

func TestRemoteAdminDown(t *testing.T) {
	n, sa, sb := newSimNet(t, Config{}, Config{})
	n.runUntil(5*time.Second, "both Up", bothUp(sa, sb))
	n.changes = nil
	if !n.b.remove(sb.key, n.now) {
		t.Fatal("remove failed")
	}
	n.settle()
	var onA []StateChange
	for _, c := range n.changes {
		if c.onA {
			onA = append(onA, c.StateChange)
		}
	}
	if len(onA) != 1 || onA[0].New != StateDown || onA[0].Diag != DiagNeighborSignaledDown ||
		onA[0].RemoteState != StateAdminDown || onA[0].RemoteDiag != DiagAdministrativelyDown {
		t.Fatalf("A's changes %+v, want Down diag 3 with remote AdminDown diag 7", onA)
	}
	// A stays Down: nothing answers, and an AdminDown peer does not bring
	// it to Init.
	removed := n.now
	n.run(5 * time.Second)
	if sa.state != StateDown {
		t.Fatalf("A is %v", sa.state)
	}
	// B told A AdminDown at the fast rate for a detection time (3 × 300
	// ms, at least 1 s), in case the first packet was lost, and then
	// forgot the session.
	var adminDowns int
	var last time.Time
	for _, p := range n.log {
		if !p.fromA && p.p.State == StateAdminDown {
			adminDowns++
			last = p.at
		}
	}
	if adminDowns < 3 || last.Sub(removed) > time.Second {
		t.Fatalf("B sent %d AdminDown packets, the last %v after the removal", adminDowns, last.Sub(removed))
	}
	if len(n.b.byDiscr) != 0 || len(n.b.timers) != 0 || len(n.b.byKey) != 0 || len(n.b.byPeer) != 0 || len(n.b.lingering) != 0 {
		t.Fatal("B kept the removed session")
	}
}

func TestPollFinalOnIntervalChange(t *testing.T) {
	n, sa, sb := newSimNet(t, Config{}, Config{})
	n.runUntil(5*time.Second, "both Up", bothUp(sa, sb))
	n.runUntil(5*time.Second, "polls done", func() bool { return !sa.poll && !sb.poll })
	polls := sa.counters.Polls
	n.log = nil

	// A slows down from 300 ms to 900 ms.
	cfg := sa.cfg
	cfg.MinTx = 900 * time.Millisecond
	n.a.update(sa, cfg, n.now)
	if !sa.poll || sa.activeTx != 300*time.Millisecond {
		t.Fatalf("after update: poll %v, activeTx %v; want a poll with the old 300 ms in force", sa.poll, sa.activeTx)
	}
	n.runUntil(5*time.Second, "poll done", func() bool { return !sa.poll })
	if sa.counters.Polls != polls+1 {
		t.Fatalf("polls %d, want %d", sa.counters.Polls, polls+1)
	}
	// The first packet of A has P and the new interval; B answers at once
	// with F (and not P); A's P stops after it.
	var sawPoll, sawFinal bool
	for _, p := range n.log {
		switch {
		case p.fromA && p.p.Poll:
			if sawFinal {
				t.Fatal("A still polls after the Final")
			}
			sawPoll = true
			if micros(p.p.DesiredMinTxInterval) != 900*time.Millisecond {
				t.Fatalf("poll advertises %v", micros(p.p.DesiredMinTxInterval))
			}
		case !p.fromA && p.p.Final:
			if !sawPoll || p.p.Poll {
				t.Fatalf("Final %+v without a Poll before it", p.p)
			}
			sawFinal = true
		}
	}
	if !sawPoll || !sawFinal {
		t.Fatalf("poll %v final %v", sawPoll, sawFinal)
	}
	if sa.txInterval() != 900*time.Millisecond || sb.detectTime() != 3*900*time.Millisecond {
		t.Fatalf("A tx %v, B detect %v", sa.txInterval(), sb.detectTime())
	}
	if sa.state != StateUp || sb.state != StateUp {
		t.Fatal("session flapped during the poll")
	}
}

func TestJitterBounds(t *testing.T) {
	n, sa, sb := newSimNet(t, Config{MinTx: 100 * time.Millisecond, MinRx: 100 * time.Millisecond, Multiplier: 1},
		Config{MinTx: 100 * time.Millisecond, MinRx: 100 * time.Millisecond, Multiplier: 3})
	n.runUntil(5*time.Second, "both Up", bothUp(sa, sb))
	n.runUntil(5*time.Second, "polls done", func() bool { return !sa.poll && !sb.poll })
	n.log = nil
	// Keep B from answering polls so that gaps are periodic only.
	n.run(60 * time.Second)
	for _, fromA := range []bool{true, false} {
		lo, hi := 75*time.Millisecond, 100*time.Millisecond // mult 3: 75–100%
		if fromA {
			hi = 90 * time.Millisecond // mult 1: 75–90%
		}
		var last time.Time
		minGap, maxGap := time.Hour, time.Duration(0)
		for _, p := range n.log {
			if p.fromA != fromA || p.p.Final {
				continue
			}
			if !last.IsZero() {
				gap := p.at.Sub(last)
				minGap, maxGap = min(minGap, gap), max(maxGap, gap)
			}
			last = p.at
		}
		if minGap < lo || maxGap > hi {
			t.Fatalf("fromA=%v: gaps in [%v, %v], want within [%v, %v]", fromA, minGap, maxGap, lo, hi)
		}
		// And the spread is used, not a constant.
		if maxGap-minGap < (hi-lo)/2 {
			t.Fatalf("fromA=%v: gaps only in [%v, %v]", fromA, minGap, maxGap)
		}
	}
}

func TestReceiveChecks(t *testing.T) {
	n, sa, sb := newSimNet(t, Config{}, Config{})
	n.runUntil(5*time.Second, "both Up", bothUp(sa, sb))
	good := sb.packet()
	good.Poll = false
	payload := good.Append(nil)
	meta := rxMeta{src: addrB, dst: addrA, ttl: 255}

	before := sa.counters.RxPackets
	n.a.receive(payload, meta, n.now)
	if sa.counters.RxPackets != before+1 {
		t.Fatal("a good packet was not taken")
	}
	for _, tc := range []struct {
		name  string
		mod   func(m *rxMeta, b []byte) []byte
		count func() uint64
	}{
		{"ttl 254 on single hop", func(m *rxMeta, b []byte) []byte { m.ttl = 254; return b }, func() uint64 { return n.a.counters.RxBadTTL }},
		{"ttl unknown", func(m *rxMeta, b []byte) []byte { m.ttl = -1; return b }, func() uint64 { return n.a.counters.RxBadTTL }},
		{"other source", func(m *rxMeta, b []byte) []byte { m.src = netip.MustParseAddr("192.0.2.9"); return b }, func() uint64 { return n.a.counters.RxUnknown }},
		{"unknown discriminator", func(m *rxMeta, b []byte) []byte { b[8]++; return b }, func() uint64 { return n.a.counters.RxUnknown }},
		{"multihop port", func(m *rxMeta, b []byte) []byte { m.multihop = true; return b }, func() uint64 { return n.a.counters.RxUnknown }},
		{"malformed", func(m *rxMeta, b []byte) []byte { return b[:20] }, func() uint64 { return n.a.counters.RxMalformed }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := meta
			b := tc.mod(&m, append([]byte(nil), payload...))
			c0, rx0 := tc.count(), sa.counters.RxPackets
			n.a.receive(b, m, n.now)
			if tc.count() != c0+1 || sa.counters.RxPackets != rx0 {
				t.Fatalf("counter %d→%d, session rx %d→%d: want the drop counted and the packet not taken",
					c0, tc.count(), rx0, sa.counters.RxPackets)
			}
		})
	}
}

func TestMultihopTTL(t *testing.T) {
	n, sa, sb := newSimNet(t, Config{Multihop: true, MinTTL: 250}, Config{Multihop: true})
	n.ttl = 250
	// A (min TTL 250) takes B's packets and goes Init; B (min TTL 254)
	// drops A's, so neither comes Up.
	n.runUntil(5*time.Second, "A Init", func() bool { return sa.state == StateInit })
	n.run(5 * time.Second)
	if sa.state != StateInit || sb.state != StateDown {
		t.Fatalf("A %v, B %v; want Init, Down", sa.state, sb.state)
	}
	if sb.counters.RxDropped == 0 || n.b.counters.RxBadTTL == 0 {
		t.Fatal("B's TTL drops not counted")
	}
}

// TestUnknownPeersBounded: packets from any number of unknown peers and
// discriminators leave the engine's maps as they were, and are counted.
func TestUnknownPeersBounded(t *testing.T) {
	n, _, _ := newSimNet(t, Config{}, Config{})
	p := ControlPacket{State: StateDown, DetectMult: 3, MyDiscriminator: 7, DesiredMinTxInterval: 1e6, RequiredMinRxInterval: 1e6}
	for i := range 10000 {
		p.MyDiscriminator = uint32(i + 1)
		p.YourDiscriminator = uint32(i % 3)
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		n.a.receive(p.Append(nil), rxMeta{src: src, ttl: 255}, n.now)
	}
	if len(n.a.byPeer) != 1 || len(n.a.byDiscr) != 1 || len(n.a.byKey) != 1 || len(n.a.timers) != 1 {
		t.Fatalf("maps grew: byPeer %d byDiscr %d byKey %d timers %d", len(n.a.byPeer), len(n.a.byDiscr), len(n.a.byKey), len(n.a.timers))
	}
	if n.a.counters.RxUnknown < 9990 {
		t.Fatalf("unknown counted %d", n.a.counters.RxUnknown)
	}
}

func TestJitterFunction(t *testing.T) {
	n := newEngine(3, 0)
	for _, mult := range []uint8{1, 3} {
		hi := 1.0
		if mult == 1 {
			hi = 0.9
		}
		for range 10000 {
			j := jitter(n.rng, time.Second, mult)
			if j < 750*time.Millisecond || float64(j) > hi*float64(time.Second) {
				t.Fatalf("mult %d: jitter %v outside [0.75 s, %v s]", mult, j, hi)
			}
		}
	}
}

// TestManySessionsLossy: 50 sessions over a link that loses 30% of the
// packets for a minute, then none: the timer heap stays in order
// throughout (step checks it), and every session ends Up with the agreed
// intervals.
func TestManySessionsLossy(t *testing.T) {
	n, _, _ := newSimNet(t, Config{}, Config{})
	var as, bs []*session
	for i := range 50 {
		peer := netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)})
		cfg, err := Config{Peer: peer, Local: addrA, MinTx: 100 * time.Millisecond, MinRx: 100 * time.Millisecond}.normalize()
		if err != nil {
			t.Fatal(err)
		}
		sa, err := n.a.add(cfg, 0, n.now)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Peer, cfg.Local = addrA, peer
		sb, err := n.b.add(cfg, 0, n.now)
		if err != nil {
			t.Fatal(err)
		}
		as, bs = append(as, sa), append(bs, sb)
	}
	n.loss = 0.3
	n.run(time.Minute)
	var downs uint64
	for _, s := range as {
		downs += s.counters.Downs
	}
	if downs == 0 {
		t.Fatal("no session went down at 30% loss with multiplier 3: the lossy link is not lossy")
	}
	n.loss = 0
	n.runUntil(30*time.Second, "all Up at 100 ms", func() bool {
		for i := range as {
			if as[i].state != StateUp || bs[i].state != StateUp || as[i].txInterval() != 100*time.Millisecond || as[i].poll {
				return false
			}
		}
		return true
	})
	// And they stay Up.
	n.run(10 * time.Second)
	for i := range as {
		if as[i].state != StateUp || bs[i].state != StateUp {
			t.Fatalf("session %d: %v/%v after 10 s without loss", i, as[i].state, bs[i].state)
		}
	}
}

// TestReAddWhileLingering: a session removed and added again at once
// comes back Up; the removed one's AdminDown stops and does not take the
// new one down.
func TestReAddWhileLingering(t *testing.T) {
	n, sa, sb := newSimNet(t, Config{}, Config{})
	n.runUntil(5*time.Second, "both Up", bothUp(sa, sb))
	cfg := sb.cfg
	n.b.remove(sb.key, n.now)
	sb2, err := n.b.add(cfg, 0, n.now)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.b.byDiscr) != 1 || len(n.b.timers) != 1 || len(n.b.lingering) != 0 {
		t.Fatal("the removed session lingers beside the new one")
	}
	n.runUntil(10*time.Second, "both Up again", bothUp(sa, sb2))
	downs := sa.counters.Downs
	n.run(5 * time.Second)
	if sa.counters.Downs != downs || sa.state != StateUp || sb2.state != StateUp {
		t.Fatalf("flapped after the re-add: A %v, B %v", sa.state, sb2.state)
	}
}

// TestTransmitGrid: with a quantum, every periodic transmission is
// scheduled on the grid (a multiple of the quantum from the origin) and
// the interval stays within the jitter's bounds (75–100 %, 75–90 % with
// multiplier 1); intervals too short for the grid keep plain jitter.
func TestTransmitGrid(t *testing.T) {
	rng := newEngine(4, 0).rng
	origin := time.Unix(1_000_000, 0)
	const q = 5 * time.Millisecond
	for _, c := range []struct {
		iv   time.Duration
		mult uint8
		grid bool
	}{{100 * time.Millisecond, 3, true}, {300 * time.Millisecond, 1, true}, {10 * time.Millisecond, 3, false}} {
		s := &session{cfg: Config{Multiplier: c.mult}, remoteMinRx: c.iv, activeTx: c.iv}
		lo, hi := jitterBounds(c.iv, c.mult)
		now := origin.Add(1234567 * time.Nanosecond)
		for range 10000 {
			s.transmitted(now, rng, origin, q)
			d := s.nextTx.Sub(now)
			if d < lo || d > hi {
				t.Fatalf("interval %v × %d: next packet after %v, outside [%v, %v]", c.iv, c.mult, d, lo, hi)
			}
			if onGrid := s.nextTx.Sub(origin)%q == 0; c.grid && !onGrid {
				t.Fatalf("interval %v: next packet at %v, not on the %v grid", c.iv, s.nextTx.Sub(origin), q)
			}
			now = s.nextTx
		}
	}
}
