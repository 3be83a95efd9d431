package reflector

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestTTLFor(t *testing.T) {
	const local = 65000
	for _, tc := range []struct {
		name string
		n    NeighborConfig
		want ttlPolicy
	}{
		{"iBGP: kernel default", NeighborConfig{ASN: local}, ttlPolicy{}},
		{"iBGP ignores multihop", NeighborConfig{ASN: local, EBGPMultihop: 5}, ttlPolicy{}},
		{"eBGP: directly connected", NeighborConfig{ASN: 65100}, ttlPolicy{ttl: 1}},
		{"eBGP multihop", NeighborConfig{ASN: 65100, EBGPMultihop: 4}, ttlPolicy{ttl: 4}},
		{"GTSM one hop", NeighborConfig{ASN: 65100, TTLSecurity: 1}, ttlPolicy{ttl: 255, minTTL: 255}},
		{"GTSM iBGP three hops", NeighborConfig{ASN: local, TTLSecurity: 3}, ttlPolicy{ttl: 255, minTTL: 253}},
		{"GTSM 255 hops", NeighborConfig{ASN: local, TTLSecurity: 255}, ttlPolicy{ttl: 255, minTTL: 1}},
	} {
		if got := ttlFor(tc.n, local); got != tc.want {
			t.Errorf("%s: ttlFor = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// getsockopt reads an integer socket option of c.
func getsockopt(t *testing.T, c any, level, opt int) int {
	t.Helper()
	var v int
	err := control(c, func(fd int) error {
		var err error
		v, err = unix.GetsockoptInt(fd, level, opt)
		return err
	})
	if err != nil {
		t.Fatalf("getsockopt(%d, %d): %v", level, opt, err)
	}
	return v
}

// defaultTTL is the TTL of a socket nobody set one on.
func defaultTTL(t *testing.T, v6 bool) int {
	t.Helper()
	domain, level, opt := unix.AF_INET, unix.IPPROTO_IP, unix.IP_TTL
	if v6 {
		domain, level, opt = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS
	}
	fd, err := unix.Socket(domain, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	v, err := unix.GetsockoptInt(fd, level, opt)
	if err != nil {
		t.Fatal(err)
	}
	if v6 && v == -1 {
		v = 64 // the route's default: what IPV6_UNICAST_HOPS reads after a reset
	}
	return v
}

// sessionConn waits for addr's session on the reflector and returns its
// connection, the reflector's end.
func sessionConn(t *testing.T, r *Reflector, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var c net.Conn
	waitFor(t, ctx, "a session with "+addr, func() bool {
		r.mu.Lock()
		p := r.peers[netip.MustParseAddr(addr)]
		r.mu.Unlock()
		if p == nil {
			return false
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.sessions) > 0 {
			c = p.sessions[0].conn
		}
		return c != nil
	})
	return c
}

// ttlDialer dials from local with the given outgoing TTL (0: default).
func ttlDialer(local string, ttl int) *net.Dialer {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	if ttl > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL, ttl)
				if serr == nil && net.ParseIP(local).To4() == nil {
					serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, ttl)
				}
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	return d
}

func dialTTL(t *testing.T, addr netip.AddrPort, local string, ttl int, o speakerOpts) *rawSpeaker {
	t.Helper()
	c, err := ttlDialer(local, ttl).Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := handshake(c, o)
	if err != nil {
		t.Fatalf("handshake from %s: %v", local, err)
	}
	return s
}

// TestTTLSocketOptions: the reflector's end of each session carries the
// TTL options its neighbour's configuration calls for, read back with
// getsockopt: GTSM (TTL 255 and a minimum TTL), eBGP multihop, the eBGP
// default of 1 and the iBGP kernel default, on accepted and on dialled
// connections.
func TestTTLSocketOptions(t *testing.T) {
	const ebgpAS = 65100
	cfg := testConfig()
	nb := func(addr string, asn uint32, f func(*NeighborConfig)) NeighborConfig {
		n := NeighborConfig{Address: netip.MustParseAddr(addr), ASN: asn, Passive: true}
		if f != nil {
			f(&n)
		}
		return n
	}
	// The dialled neighbour: a listener that answers with TTL 255, as a
	// GTSM peer does (the reflector drops a SYN-ACK below its minimum).
	lc := net.ListenConfig{Control: ttlDialer("127.0.0.6", 255).Control}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.6:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lport := uint16(ln.Addr().(*net.TCPAddr).Port)
	cfg.Neighbors = []NeighborConfig{
		nb("127.0.0.2", ebgpAS, func(n *NeighborConfig) { n.TTLSecurity = 2 }),
		nb("127.0.0.3", ebgpAS, func(n *NeighborConfig) { n.EBGPMultihop = 4 }),
		nb("127.0.0.4", ebgpAS, nil),
		nb("127.0.0.5", testASN, func(n *NeighborConfig) { n.Client = true }),
		nb("127.0.0.6", ebgpAS+1, func(n *NeighborConfig) { n.Passive, n.Port, n.TTLSecurity = false, lport, 1 }),
	}
	r, addr := startReflector(t, cfg)

	// The listener answers with TTL 255 (SYN-ACKs to GTSM peers).
	r.mu.Lock()
	l := r.listeners[0]
	r.mu.Unlock()
	if got := getsockopt(t, l, unix.IPPROTO_IP, unix.IP_TTL); got != 255 {
		t.Errorf("listener IP_TTL %d, want 255", got)
	}

	dialTTL(t, addr, "127.0.0.2", 255, speakerOpts{asn: ebgpAS, id: "10.0.0.2", hold: 90})
	dialTTL(t, addr, "127.0.0.3", 0, speakerOpts{asn: ebgpAS, id: "10.0.0.3", hold: 90})
	dialTTL(t, addr, "127.0.0.4", 0, speakerOpts{asn: ebgpAS, id: "10.0.0.4", hold: 90})
	dialTTL(t, addr, "127.0.0.5", 0, opts("10.0.0.5"))
	acceptDone := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			acceptDone <- err
			return
		}
		t.Cleanup(func() { c.Close() })
		_, err = handshake(c, speakerOpts{asn: ebgpAS + 1, id: "10.0.0.6", hold: 90})
		acceptDone <- err
	}()
	select {
	case err := <-acceptDone:
		if err != nil {
			t.Fatalf("dialled GTSM neighbour: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reflector did not dial its GTSM neighbour")
	}

	def := defaultTTL(t, false)
	for _, tc := range []struct {
		addr        string
		ttl, minTTL int
	}{
		{"127.0.0.2", 255, 254},
		{"127.0.0.3", 4, 0},
		{"127.0.0.4", 1, 0},
		{"127.0.0.5", def, 0}, // accepted: reset from the listener's 255
		{"127.0.0.6", 255, 255},
	} {
		c := sessionConn(t, r, tc.addr)
		ttl := getsockopt(t, c, unix.IPPROTO_IP, unix.IP_TTL)
		minTTL := getsockopt(t, c, unix.IPPROTO_IP, unix.IP_MINTTL)
		if ttl != tc.ttl || minTTL != tc.minTTL {
			t.Errorf("%s: IP_TTL %d, IP_MINTTL %d; want %d, %d", tc.addr, ttl, minTTL, tc.ttl, tc.minTTL)
		}
	}
	for _, a := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"} {
		waitState(t, r, a, StateEstablished, false)
	}
}

// TestTTLSocketOptionsIPv6: the IPv6 options on an IPv6 session, and
// both families' on an IPv6 socket whose peer is IPv4 (dual stack).
func TestTTLSocketOptionsIPv6(t *testing.T) {
	cfg := testConfig()
	cfg.ListenAddrs = []string{"[::1]:0"}
	cfg.Neighbors = []NeighborConfig{{Address: netip.MustParseAddr("::1"), ASN: 65100, Passive: true, TTLSecurity: 1}}
	r, addr := startReflector(t, cfg)
	dialTTL(t, addr, "::1", 255, speakerOpts{asn: 65100, id: "10.0.0.2", hold: 90})
	c := sessionConn(t, r, "::1")
	hops := getsockopt(t, c, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS)
	minHops := getsockopt(t, c, unix.IPPROTO_IPV6, unix.IPV6_MINHOPCOUNT)
	if hops != 255 || minHops != 255 {
		t.Errorf("IPV6_UNICAST_HOPS %d, IPV6_MINHOPCOUNT %d; want 255, 255", hops, minHops)
	}
	waitState(t, r, "::1", StateEstablished, false)

	// A dual-stack socket with an IPv4 peer gets the IPv4 options too.
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := (ttlPolicy{ttl: 255, minTTL: 250}).apply(fd, true, false); err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		level, opt, want int
		name             string
	}{
		{unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 255, "IPV6_UNICAST_HOPS"},
		{unix.IPPROTO_IPV6, unix.IPV6_MINHOPCOUNT, 250, "IPV6_MINHOPCOUNT"},
		{unix.IPPROTO_IP, unix.IP_TTL, 255, "IP_TTL"},
		{unix.IPPROTO_IP, unix.IP_MINTTL, 250, "IP_MINTTL"},
	} {
		if v, err := unix.GetsockoptInt(fd, o.level, o.opt); err != nil || v != o.want {
			t.Errorf("dual-stack %s = %d, %v; want %d", o.name, v, err, o.want)
		}
	}
}

// minTTLDrops is the kernel's count of TCP segments dropped for a TTL
// below the socket's IP_MINTTL (TcpExt TCPMinTTLDrop).
func minTTLDrops(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		t.Fatalf("reading the kernel's TCP counters: %v", err)
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != "TcpExt:" || len(values) != len(names) {
			continue
		}
		for j, n := range names {
			if n == "TCPMinTTLDrop" {
				v, _ := strconv.Atoi(values[j])
				return v
			}
		}
	}
	t.Fatal("/proc/net/netstat has no TcpExt TCPMinTTLDrop (Linux counts it since 4.9)")
	return 0
}

// TestGTSMDropsLowTTL: with ttlSecurity 1 the reflector's kernel drops
// what a neighbour sends with a TTL below 255 (as if it came from further
// away): its OPEN never arrives, while the same neighbour sending with
// 255 establishes.
func TestGTSMDropsLowTTL(t *testing.T) {
	cfg := testConfig()
	cfg.Neighbors = []NeighborConfig{{Address: netip.MustParseAddr("127.0.0.2"), ASN: testASN, Client: true, Passive: true, TTLSecurity: 1}}
	r, addr := startReflector(t, cfg)

	c, err := ttlDialer("127.0.0.2", 254).Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Send the OPEN only once the reflector has the connection (and its
	// minimum TTL): before, it would be queued unchecked.
	waitState(t, r, "127.0.0.2", StateOpenSent, false)
	before := minTTLDrops(t)
	if _, err := c.Write(speakerOpen(opts("10.0.0.2"))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waitFor(t, ctx, "the kernel to drop the OPEN sent with TTL 254", func() bool { return minTTLDrops(t) > before })
	for _, n := range r.Neighbors() {
		if n.State != StateOpenSent {
			t.Errorf("neighbour %s in %v: the OPEN sent with TTL 254 got through", n.Address, n.State)
		}
	}
	// Its FIN would be dropped too: the connection with TTL 255 replaces
	// it (the newer of two incoming connections wins).
	dialTTL(t, addr, "127.0.0.2", 255, opts("10.0.0.2"))
	waitState(t, r, "127.0.0.2", StateEstablished, false)
}
