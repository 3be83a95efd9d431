package bfd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UDP ports of RFC 5881 §4 and RFC 5883 §3, and the source port range both
// require.
const (
	PortSingleHop = 3784
	PortMultihop  = 4784
	srcPortMin    = 49152
	srcPortMax    = 65535
)

// udpTransport is the Server's sockets: per address family, one receiving
// socket on the single-hop port and one on the multihop port, and one
// sending socket bound to a port in 49152–65535 that sets the source
// address and interface of each packet with IP_PKTINFO/IPV6_PKTINFO.
type udpTransport struct {
	rx       []*rxSocket
	tx4, tx6 *net.UDPConn
	err4     error     // why there are no IPv4 sockets
	err6     error     // why there are no IPv6 sockets
	peerPort [2]uint16 // [single hop, multihop]
}

type rxSocket struct {
	conn     *net.UDPConn
	multihop bool
}

func openUDP(singlePort, multiPort, peerSingle, peerMulti int) *udpTransport {
	t := &udpTransport{peerPort: [2]uint16{uint16(peerSingle), uint16(peerMulti)}}
	t.err4 = t.openFamily(false, singlePort, multiPort)
	t.err6 = t.openFamily(true, singlePort, multiPort)
	return t
}

func (t *udpTransport) openFamily(v6 bool, singlePort, multiPort int) error {
	var rx []*rxSocket
	fail := func(err error) error {
		for _, r := range rx {
			r.conn.Close()
		}
		return err
	}
	for i, port := range []int{singlePort, multiPort} {
		c, err := listenRx(v6, port)
		if err != nil {
			return fail(err)
		}
		rx = append(rx, &rxSocket{conn: c, multihop: i == 1})
	}
	tx, err := listenTx(v6)
	if err != nil {
		return fail(err)
	}
	t.rx = append(t.rx, rx...)
	if v6 {
		t.tx6 = tx
	} else {
		t.tx4 = tx
	}
	return nil
}

func family(v6 bool) (network, wildcard string) {
	if v6 {
		return "udp6", "[::]"
	}
	return "udp4", "0.0.0.0"
}

// listenRx opens a receiving socket that reports each packet's TTL (hop
// limit), destination address and interface.
func listenRx(v6 bool, port int) (*net.UDPConn, error) {
	network, wildcard := family(v6)
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return setsockopts(rc, v6, [][3]int{
			{unix.SOL_IP, unix.IP_RECVTTL, 1}, {unix.SOL_IP, unix.IP_PKTINFO, 1},
		}, [][3]int{
			{unix.SOL_IPV6, unix.IPV6_RECVHOPLIMIT, 1}, {unix.SOL_IPV6, unix.IPV6_RECVPKTINFO, 1},
		})
	}}
	pc, err := lc.ListenPacket(context.Background(), network, fmt.Sprintf("%s:%d", wildcard, port))
	if err != nil {
		return nil, fmt.Errorf("bfd: listening on %s port %d: %w", network, port, err)
	}
	c := pc.(*net.UDPConn)
	// One socket takes the packets of every session: a short stall of the
	// reader must not overflow it. Best effort: the kernel caps the size
	// at net.core.rmem_max.
	_ = c.SetReadBuffer(rxBuffer)
	return c, nil
}

// rxBuffer is the receive buffer asked for each receiving socket: room
// for about 5,000 packets, 0.5 s of 1,000 sessions at 100 ms.
const rxBuffer = 4 << 20

// listenTx opens the sending socket: TTL (hop limit) 255 (RFC 5881 §5),
// source port in 49152–65535 (RFC 5881 §4), tried at random.
func listenTx(v6 bool) (*net.UDPConn, error) {
	network, wildcard := family(v6)
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return setsockopts(rc, v6, [][3]int{
			{unix.SOL_IP, unix.IP_TTL, 255},
		}, [][3]int{
			{unix.SOL_IPV6, unix.IPV6_UNICAST_HOPS, 255},
		})
	}}
	var err error
	for range 64 {
		port := srcPortMin + rand.IntN(srcPortMax-srcPortMin+1)
		var pc net.PacketConn
		pc, err = lc.ListenPacket(context.Background(), network, fmt.Sprintf("%s:%d", wildcard, port))
		if err == nil {
			return pc.(*net.UDPConn), nil
		}
	}
	return nil, fmt.Errorf("bfd: binding a %s source port in %d-%d: %w", network, srcPortMin, srcPortMax, err)
}

func setsockopts(rc syscall.RawConn, v6 bool, opts4, opts6 [][3]int) error {
	opts := opts4
	if v6 {
		opts = opts6
	}
	var serr error
	err := rc.Control(func(fd uintptr) {
		for _, o := range opts {
			if serr = unix.SetsockoptInt(int(fd), o[0], o[1], o[2]); serr != nil {
				serr = fmt.Errorf("setsockopt(%d, %d): %w", o[0], o[1], serr)
				return
			}
		}
	})
	return errors.Join(err, serr)
}

// familyErr says whether sessions to addr can be served.
func (t *udpTransport) familyErr(addr netip.Addr) error {
	if addr.Is4() {
		return t.err4
	}
	return t.err6
}

// send sends one packet from the sending socket of its family.
func (t *udpTransport) send(o *outPacket, oob []byte) error {
	port := t.peerPort[0]
	if o.multihop {
		port = t.peerPort[1]
	}
	dst := netip.AddrPortFrom(o.peer, port)
	conn := t.tx4
	if o.peer.Is4() {
		if o.local.IsValid() || o.ifindex != 0 {
			oob = appendPktinfo4(oob, o.local, o.ifindex)
		}
	} else {
		conn = t.tx6
		if o.local.IsValid() || o.ifindex != 0 {
			oob = appendPktinfo6(oob, o.local, o.ifindex)
		}
		if o.peer.IsLinkLocalUnicast() && o.ifindex != 0 {
			dst = netip.AddrPortFrom(o.peer.WithZone(fmt.Sprint(o.ifindex)), port)
		}
	}
	if conn == nil {
		return fmt.Errorf("no socket for %s", o.peer)
	}
	_, _, err := conn.WriteMsgUDPAddrPort(o.payload, oob, dst)
	return err
}

func appendCmsg(b []byte, level, typ int32, data []byte) []byte {
	h := unix.Cmsghdr{Level: level, Type: typ}
	h.SetLen(unix.CmsgLen(len(data)))
	start := len(b)
	b = append(b, make([]byte, unix.CmsgSpace(len(data)))...)
	copy(b[start:], unsafe.Slice((*byte)(unsafe.Pointer(&h)), unix.SizeofCmsghdr))
	copy(b[start+unix.CmsgLen(0):], data)
	return b
}

func appendPktinfo4(b []byte, src netip.Addr, ifindex int) []byte {
	pi := unix.Inet4Pktinfo{Ifindex: int32(ifindex)}
	if src.IsValid() {
		pi.Spec_dst = src.As4()
	}
	return appendCmsg(b, unix.SOL_IP, unix.IP_PKTINFO, unsafe.Slice((*byte)(unsafe.Pointer(&pi)), unix.SizeofInet4Pktinfo))
}

func appendPktinfo6(b []byte, src netip.Addr, ifindex int) []byte {
	pi := unix.Inet6Pktinfo{Ifindex: uint32(ifindex)}
	if src.IsValid() {
		pi.Addr = src.As16()
	}
	return appendCmsg(b, unix.SOL_IPV6, unix.IPV6_PKTINFO, unsafe.Slice((*byte)(unsafe.Pointer(&pi)), unix.SizeofInet6Pktinfo))
}

// parseControl reads TTL, destination and interface from a received
// packet's control messages.
func parseControl(oob []byte, m *rxMeta) {
	m.ttl = -1
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, c := range msgs {
		switch {
		case c.Header.Level == unix.SOL_IP && c.Header.Type == unix.IP_TTL && len(c.Data) >= 4,
			c.Header.Level == unix.SOL_IPV6 && c.Header.Type == unix.IPV6_HOPLIMIT && len(c.Data) >= 4:
			m.ttl = int(*(*int32)(unsafe.Pointer(&c.Data[0])))
		case c.Header.Level == unix.SOL_IP && c.Header.Type == unix.IP_PKTINFO && len(c.Data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&c.Data[0]))
			m.dst = netip.AddrFrom4(pi.Addr)
			m.ifindex = int(pi.Ifindex)
		case c.Header.Level == unix.SOL_IPV6 && c.Header.Type == unix.IPV6_PKTINFO && len(c.Data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&c.Data[0]))
			m.dst = netip.AddrFrom16(pi.Addr)
			m.ifindex = int(pi.Ifindex)
		}
	}
}

func (t *udpTransport) close() error {
	var errs []error
	for _, r := range t.rx {
		errs = append(errs, r.conn.Close())
	}
	for _, c := range []*net.UDPConn{t.tx4, t.tx6} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
