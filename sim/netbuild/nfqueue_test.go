package netbuild_test

import (
	"context"
	"encoding/binary"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/sim/netbuild"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// datagram is what a UDP probe of the queue tests carries: a sequence
// number, the send time, and a known pattern.
const datagramLen = 100

func datagram(seq int, sent time.Time) []byte {
	b := make([]byte, datagramLen)
	binary.BigEndian.PutUint32(b, uint32(seq))
	binary.BigEndian.PutUint64(b[4:], uint64(sent.UnixNano()))
	for i := 12; i < len(b); i++ {
		b[i] = byte(i * 7)
	}
	return b
}

// intact reports whether a datagram's pattern is untouched.
func intact(b []byte) bool {
	if len(b) != datagramLen {
		return false
	}
	for i := 12; i < len(b); i++ {
		if b[i] != byte(i*7) {
			return false
		}
	}
	return true
}

// arrival is one datagram received.
type arrival struct {
	seq     int
	latency time.Duration
}

// udpProbe sends count datagrams from one namespace to an address of
// another and returns what arrived, in arrival order, once nothing more
// came for quiet.
func udpProbe(t *testing.T, from, to netnsHandle, dst netipAddr, port, count int, quiet time.Duration) []arrival {
	t.Helper()
	var rx *net.UDPConn
	if err := netbuild.Do(to, func() error {
		var err error
		rx, err = net.ListenUDP("udp", &net.UDPAddr{Port: port})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if sc, err := rx.SyscallConn(); err == nil {
		_ = sc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) })
	}
	var tx net.Conn
	if err := netbuild.Do(from, func() error {
		var err error
		tx, err = net.Dial("udp", net.JoinHostPort(dst.String(), strconv.Itoa(port)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	// Held packets count against the sender's buffer (the kernel keeps
	// them until their verdict): a large one, so that a burst is sent
	// whole.
	if sc, err := tx.(*net.UDPConn).SyscallConn(); err == nil {
		_ = sc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 16<<20) })
	}
	got := make(chan []arrival, 1)
	go func() {
		var out []arrival
		buf := make([]byte, 2048)
		for {
			rx.SetReadDeadline(time.Now().Add(quiet))
			n, err := rx.Read(buf)
			if err != nil {
				got <- out
				return
			}
			if n < 12 || !intact(buf[:n]) {
				t.Errorf("a datagram of %d bytes arrived altered: the UDP checksum must drop those", n)
				continue
			}
			sent := time.Unix(0, int64(binary.BigEndian.Uint64(buf[4:])))
			out = append(out, arrival{seq: int(binary.BigEndian.Uint32(buf)), latency: time.Since(sent)})
		}
	}()
	for i := range count {
		if _, err := tx.Write(datagram(i, time.Now())); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			time.Sleep(time.Millisecond) // pace: the impairment, not a socket buffer, must decide
		}
	}
	return <-got
}

// outOfOrder counts arrivals with a lower sequence number than one
// before them.
func outOfOrder(as []arrival) int {
	n, top := 0, -1
	for _, a := range as {
		if a.seq < top {
			n++
		}
		top = max(top, a.seq)
	}
	return n
}

// TestImpairQueue runs each of netem's impairments on n-1's segment port
// and measures it with UDP datagrams to n-2: on this kernel (no netem)
// through the NFQUEUE reader, with netem through the qdisc. Jitter
// spreads the latencies and reorders; reordering sends a share at once
// and out of order; duplication delivers copies; corruption alters the
// payloads that a raw socket sees and the UDP checksum drops them;
// correlated loss loses a share; more than the limit of held packets are
// dropped. Removing the impairment leaves nothing.
func TestImpairQueue(t *testing.T) {
	haveNetem := kernelHasNetem(t)
	run, plan := newRun(t, 14)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nb, err := netbuild.Build(ctx, plan, run, netbuild.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	n1ns := plan.Node("n-1").Netns
	n1, _ := nb.Handle(n1ns)
	n2, _ := nb.Handle(plan.Node("n-2").Netns)
	dst := plan.Node("n-2").IPv4.Addr()
	minRTT(t, n1, dst, 1) // neighbours resolved before any impairment
	impair := func(ip *topology.ImpairPlan) {
		t.Helper()
		if err := nb.SetImpairment(n1ns, "eth0", ip); err != nil {
			t.Fatal(err)
		}
		checkImpairedBy(t, nb, n1ns, "eth0", haveNetem)
	}
	stats := func() netbuild.QueueStats {
		st, _ := nb.QueueStats(n1ns, "eth0")
		t.Logf("reader: %+v", st)
		return st
	}

	t.Run("jitter", func(t *testing.T) {
		impair(&topology.ImpairPlan{Delay: 50 * time.Millisecond, Jitter: 40 * time.Millisecond, Distribution: topology.DistUniform})
		as := udpProbe(t, n1, n2, dst, 7101, 200, time.Second)
		lat := make([]time.Duration, len(as))
		for i, a := range as {
			lat[i] = a.latency
		}
		slices.Sort(lat)
		if len(lat) < 190 {
			t.Fatalf("%d of 200 datagrams arrived", len(lat))
		}
		lo, hi := lat[len(lat)/20], lat[len(lat)*19/20]
		t.Logf("50 ms ± 40 ms: latencies min %s, 5%% %s, 95%% %s, max %s, %d out of order", lat[0], lo, hi, lat[len(lat)-1], outOfOrder(as))
		// Uniform over 10..90 ms: none early, and a spread of tens of
		// ms between the 5th and 95th percentiles (72 ms expected).
		if lat[0] < 10*time.Millisecond {
			t.Errorf("a datagram arrived after %s, before the least delay of 10 ms", lat[0])
		}
		if hi-lo < 40*time.Millisecond {
			t.Errorf("5th to 95th percentile of latency: %s to %s, want a spread of ~70 ms", lo, hi)
		}
		if outOfOrder(as) == 0 {
			t.Error("jitter of 40 ms on datagrams 0.1 ms apart reordered none")
		}
	})

	t.Run("reorder", func(t *testing.T) {
		impair(&topology.ImpairPlan{Delay: 50 * time.Millisecond, Reorder: 25})
		as := udpProbe(t, n1, n2, dst, 7102, 400, time.Second)
		fast := 0
		for _, a := range as {
			if a.latency < 25*time.Millisecond {
				fast++
			}
		}
		t.Logf("50 ms, reorder 25%%: %d of %d arrived at once, %d out of order", fast, len(as), outOfOrder(as))
		// Binomial(400, 0.25): 100 ± 9.
		if len(as) < 390 || fast < 50 || fast > 160 {
			t.Errorf("reorder 25%%: %d of %d datagrams (400 sent) arrived at once, want ~100", fast, len(as))
		}
		if outOfOrder(as) == 0 {
			t.Error("reorder 25% reordered none")
		}
	})

	t.Run("duplicate", func(t *testing.T) {
		impair(&topology.ImpairPlan{Duplicate: 10})
		as := udpProbe(t, n1, n2, dst, 7103, 400, time.Second)
		seen := map[int]int{}
		for _, a := range as {
			seen[a.seq]++
		}
		dups := len(as) - len(seen)
		t.Logf("duplicate 10%%: %d datagrams arrived for %d sent, %d distinct", len(as), 400, len(seen))
		// Binomial(400, 0.1): 40 ± 6.
		if len(seen) < 390 || dups < 15 || dups > 80 {
			t.Errorf("duplicate 10%%: %d duplicates of %d distinct datagrams (400 sent), want ~40", dups, len(seen))
		}
		if st := stats(); !haveNetem && st.Duplicated < uint64(dups) {
			t.Errorf("reader counts %d duplicated, %d arrived", st.Duplicated, dups)
		}
	})

	t.Run("duplicate-ipv6", func(t *testing.T) {
		// The copies of IPv6 packets go through a raw IPv6 socket.
		impair(&topology.ImpairPlan{Duplicate: 10})
		dst6 := plan.Node("n-2").IPv6.Addr()
		if !dst6.Is6() {
			t.Fatalf("n-2 has no IPv6 address: %s", dst6)
		}
		before := stats()
		as := udpProbe(t, n1, n2, dst6, 7108, 400, time.Second)
		seen := map[int]int{}
		for _, a := range as {
			seen[a.seq]++
		}
		dups := len(as) - len(seen)
		t.Logf("duplicate 10%% over IPv6: %d datagrams arrived for 400 sent, %d distinct", len(as), len(seen))
		if len(seen) < 390 || dups < 15 || dups > 80 {
			t.Errorf("duplicate 10%% over IPv6: %d duplicates of %d distinct datagrams (400 sent), want ~40", dups, len(seen))
		}
		if st := stats(); !haveNetem && st.DupFailed != before.DupFailed {
			t.Errorf("reader failed to send %d copies", st.DupFailed-before.DupFailed)
		}
	})

	t.Run("corrupt", func(t *testing.T) {
		impair(&topology.ImpairPlan{Corrupt: 20})
		// A raw socket in n-2 sees every UDP packet before its checksum
		// is checked.
		var raw int
		if err := netbuild.Do(n2, func() error {
			var err error
			raw, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_UDP)
			if err == nil {
				tv := unix.NsecToTimeval(int64(300 * time.Millisecond))
				err = unix.SetsockoptTimeval(raw, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(raw)
		// Read after the burst: the buffer must hold all of it.
		_ = unix.SetsockoptInt(raw, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
		const port = 7104
		as := udpProbe(t, n1, n2, dst, port, 400, time.Second)
		altered, seen := 0, 0
		buf := make([]byte, 2048)
		for {
			n, _, err := unix.Recvfrom(raw, buf, 0)
			if err != nil {
				break
			}
			p := buf[:n]
			hl := int(p[0]&0x0f) * 4
			if n < hl+8 {
				continue
			}
			udp := p[hl:]
			// Ours by destination port and size (a flipped bit there
			// alters the packet too; then it is not counted at all).
			if binary.BigEndian.Uint16(udp[2:]) != port || len(udp) != 8+datagramLen {
				continue
			}
			seen++
			if !intact(udp[8:]) || binary.BigEndian.Uint16(udp[4:]) != 8+datagramLen {
				altered++
			}
		}
		t.Logf("corrupt 20%%: the raw socket saw %d, %d altered; the UDP socket got %d intact", seen, altered, len(as))
		// Of 400, ~80 corrupted, most of them where this looks (source
		// port and checksum excepted); some flips hide in fields we skip.
		if seen < 350 || altered < 30 || altered > 130 {
			t.Errorf("corrupt 20%%: %d of %d datagrams seen altered, want ~70", altered, seen)
		}
		if len(as) > 400-altered {
			t.Errorf("the UDP socket got %d datagrams, but %d of 400 were altered", len(as), altered)
		}
	})

	t.Run("loss", func(t *testing.T) {
		impair(&topology.ImpairPlan{Loss: 30, LossCorrelation: 25})
		as := udpProbe(t, n1, n2, dst, 7105, 400, time.Second)
		lost := 400 - len(as)
		t.Logf("loss 30%% correlated 25%%: %d of 400 lost", lost)
		// netem's correlation narrows the mixed random number towards
		// 0.5, so fewer than 30% are lost; a wide window.
		if lost < 40 || lost > 200 {
			t.Errorf("loss 30%%: %d of 400 lost", lost)
		}
		if st := stats(); !haveNetem && st.Lost < uint64(lost) {
			t.Errorf("reader counts %d lost, %d did not arrive", st.Lost, lost)
		}
	})

	if !haveNetem {
		t.Run("limit", func(t *testing.T) {
			// Two seconds of delay on a burst of 1500: the reader holds
			// 1000 and drops the rest, as netem's limit does.
			impair(&topology.ImpairPlan{Delay: 2 * time.Second})
			as := udpProbe(t, n1, n2, dst, 7106, 1500, 3*time.Second)
			st := stats()
			t.Logf("2 s delay, 1500 sent: %d arrived, %d over the limit", len(as), st.OverLimit)
			if st.OverLimit < 400 || len(as) > 1100 {
				t.Errorf("2 s delay on 1500 datagrams: %d arrived, %d dropped over the limit; want at most ~1000 held", len(as), st.OverLimit)
			}
		})
	}

	if err := nb.SetImpairment(n1ns, "eth0", nil); err != nil {
		t.Fatal(err)
	}
	checkNotImpaired(t, nb, n1ns, "eth0")
	as := udpProbe(t, n1, n2, dst, 7107, 100, 500*time.Millisecond)
	if len(as) != 100 || outOfOrder(as) != 0 {
		t.Errorf("after removal: %d of 100 arrived, %d out of order", len(as), outOfOrder(as))
	}
}
