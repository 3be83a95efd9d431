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
// Packets are read and sent in batches (recvmmsg, sendmmsg).
type udpTransport struct {
	rx             []*rxSocket
	tx4, tx6       *net.UDPConn
	txRaw4, txRaw6 syscall.RawConn // the same sockets, for sendmmsg
	err4           error           // why there are no IPv4 sockets
	err6           error           // why there are no IPv6 sockets
	peerPort       [2]uint16       // [single hop, multihop]
}

type rxSocket struct {
	conn     *net.UDPConn
	raw      syscall.RawConn // for recvmmsg and the drain
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
		raw, err := c.SyscallConn()
		if err != nil {
			c.Close()
			return fail(err)
		}
		rx = append(rx, &rxSocket{conn: c, raw: raw, multihop: i == 1})
	}
	tx, err := listenTx(v6)
	if err != nil {
		return fail(err)
	}
	raw, err := tx.SyscallConn()
	if err != nil {
		tx.Close()
		return fail(err)
	}
	t.rx = append(t.rx, rx...)
	if v6 {
		t.tx6, t.txRaw6 = tx, raw
	} else {
		t.tx4, t.txRaw4 = tx, raw
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

// txCache is what the transport derives once from a session's addresses
// for sending: owned by the sending path (the Server's sendMu).
type txCache struct {
	ready   bool
	name    [unix.SizeofSockaddrInet6]byte // struct sockaddr_in or sockaddr_in6
	namelen uint32
	oob     []byte // IP_PKTINFO / IPV6_PKTINFO, or none
	v6      bool
	err     error
}

func (t *udpTransport) prepare(o *outPacket) *txCache {
	c := o.tx
	if c == nil {
		c = &txCache{}
	}
	if c.ready {
		return c
	}
	c.ready = true
	port := t.peerPort[0]
	if o.multihop {
		port = t.peerPort[1]
	}
	if o.peer.Is4() {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&c.name[0]))
		sa.Family = unix.AF_INET
		sa.Addr = o.peer.As4()
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		c.namelen = unix.SizeofSockaddrInet4
		if o.local.IsValid() || o.ifindex != 0 {
			c.oob = appendPktinfo4(nil, o.local, o.ifindex)
		}
		if t.tx4 == nil {
			c.err = fmt.Errorf("no socket for %s", o.peer)
		}
		return c
	}
	c.v6 = true
	sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&c.name[0]))
	sa.Family = unix.AF_INET6
	sa.Addr = o.peer.As16()
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	if o.peer.IsLinkLocalUnicast() && o.ifindex != 0 {
		sa.Scope_id = uint32(o.ifindex)
	}
	c.namelen = unix.SizeofSockaddrInet6
	if o.local.IsValid() || o.ifindex != 0 {
		c.oob = appendPktinfo6(nil, o.local, o.ifindex)
	}
	if t.tx6 == nil {
		c.err = fmt.Errorf("no socket for %s", o.peer)
	}
	return c
}

// mmsghdr is struct mmsghdr of sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// txBatch is the sending path's scratch: the messages of one sendmmsg
// per family, reused from batch to batch.
type txBatch struct {
	hdrs [2][]mmsghdr // [IPv4, IPv6]
	iovs [2][]unix.Iovec
}

// maxBatch bounds the messages of one sendmmsg or recvmmsg.
const maxBatch = 64

// sendBatch sends out, at most maxBatch packets per system call per
// family, and returns how many packets could not be sent.
//
// sendmmsg is called raw (no entersyscall): on a UDP socket it does not
// block (a full send buffer gives EAGAIN, and we wait for room through
// the poller), it only works, for a while on loopback, where it also
// delivers to the receiver. Through syscall.Syscall the runtime took the
// P away during each call and woke another thread to run it, which cost
// more than the call (measured: docs/bfd.md).
func (t *udpTransport) sendBatch(out []outPacket, b *txBatch) (failed uint64) {
	for f := range b.hdrs {
		b.hdrs[f], b.iovs[f] = b.hdrs[f][:0], b.iovs[f][:0]
	}
	flush := func(f int) {
		if len(b.hdrs[f]) == 0 {
			return
		}
		rc := t.txRaw4
		if f == 1 {
			rc = t.txRaw6
		}
		// The iovecs are final now: point the headers at them.
		for i := range b.hdrs[f] {
			b.hdrs[f][i].hdr.Iov = &b.iovs[f][i]
		}
		failed += sendmmsg(rc, b.hdrs[f])
		b.hdrs[f], b.iovs[f] = b.hdrs[f][:0], b.iovs[f][:0]
	}
	for i := range out {
		o := &out[i]
		c := t.prepare(o)
		if c.err != nil {
			failed++
			continue
		}
		f := 0
		if c.v6 {
			f = 1
		}
		iov := unix.Iovec{Base: &o.payload[0]}
		iov.SetLen(packetLen)
		b.iovs[f] = append(b.iovs[f], iov)
		h := mmsghdr{}
		h.hdr.Name = &c.name[0]
		h.hdr.Namelen = c.namelen
		h.hdr.SetIovlen(1)
		if len(c.oob) > 0 {
			h.hdr.Control = &c.oob[0]
			h.hdr.SetControllen(len(c.oob))
		}
		b.hdrs[f] = append(b.hdrs[f], h)
		if len(b.hdrs[f]) == maxBatch {
			flush(f)
		}
	}
	flush(0)
	flush(1)
	return failed
}

// sendmmsg sends every message of hs and returns how many failed.
func sendmmsg(rc syscall.RawConn, hs []mmsghdr) (failed uint64) {
	for len(hs) > 0 {
		var n int
		var errno syscall.Errno
		err := rc.Write(func(fd uintptr) bool {
			r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&hs[0])), uintptr(len(hs)), 0, 0, 0)
			if e == unix.EAGAIN {
				return false // wait for room
			}
			n, errno = int(r), e
			return true
		})
		switch {
		case err != nil: // closed
			return failed + uint64(len(hs))
		case errno != 0 || n <= 0:
			// The first message failed: skip it, send the rest.
			failed++
			hs = hs[1:]
		default:
			hs = hs[n:]
		}
	}
	return failed
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
// packet's control messages, without allocating.
func parseControl(oob []byte, m *rxMeta) {
	m.ttl = -1
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return
		}
		data := oob[unix.CmsgLen(0):l]
		switch {
		case h.Level == unix.SOL_IP && h.Type == unix.IP_TTL && len(data) >= 4,
			h.Level == unix.SOL_IPV6 && h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
			m.ttl = int(*(*int32)(unsafe.Pointer(&data[0])))
		case h.Level == unix.SOL_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			m.dst = netip.AddrFrom4(pi.Addr)
			m.ifindex = int(pi.Ifindex)
		case h.Level == unix.SOL_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			m.dst = netip.AddrFrom16(pi.Addr)
			m.ifindex = int(pi.Ifindex)
		}
		next := unix.CmsgSpace(l - unix.CmsgLen(0))
		if next > len(oob) {
			return
		}
		oob = oob[next:]
	}
}

// rxBatch is one reader's scratch: the messages of one recvmmsg and
// their buffers, allocated once.
type rxBatch struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	bufs  [][rxBufLen]byte
	oobs  [][rxOOBLen]byte
	names []unix.RawSockaddrInet6
}

// rxBufLen is the room for one datagram: a control packet is 24 bytes
// (more with authentication, which we refuse); the rest of a longer
// datagram is cut off (a length field beyond what was read is refused).
const rxBufLen = 512

// rxOOBLen holds a TTL and a PKTINFO control message of either family.
const rxOOBLen = 128

func newRxBatch(n int) *rxBatch {
	b := &rxBatch{
		hdrs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n),
		bufs: make([][rxBufLen]byte, n), oobs: make([][rxOOBLen]byte, n), names: make([]unix.RawSockaddrInet6, n),
	}
	for i := range b.hdrs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(rxBufLen)
		h := &b.hdrs[i].hdr
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Control = &b.oobs[i][0]
	}
	return b
}

// read waits for datagrams and reads as many as are there, up to the
// batch's size, with one recvmmsg. Like sendmmsg it is called raw: with
// MSG_DONTWAIT it does not block, and an empty socket waits through the
// poller. It returns the number read.
func (r *rxSocket) read(b *rxBatch) (int, error) {
	for i := range b.hdrs {
		h := &b.hdrs[i].hdr
		h.Namelen = unix.SizeofSockaddrInet6
		h.SetControllen(rxOOBLen)
		h.Flags = 0
	}
	var n int
	var errno syscall.Errno
	err := r.raw.Read(func(fd uintptr) bool {
		res, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			return false
		}
		n, errno = int(res), e
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, errno
	}
	return n, nil
}

// message returns the i-th datagram of the last read: payload, control
// messages and source address.
func (b *rxBatch) message(i int) (payload, oob []byte, src netip.Addr) {
	h := &b.hdrs[i]
	n := min(int(h.n), rxBufLen)
	oobn := min(int(h.hdr.Controllen), rxOOBLen)
	sa := &b.names[i]
	switch sa.Family {
	case unix.AF_INET:
		src = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(sa)).Addr)
	case unix.AF_INET6:
		src = netip.AddrFrom16(sa.Addr)
	}
	return b.bufs[i][:n], b.oobs[i][:oobn], src
}

// drain reads, without waiting, what r's socket holds, and calls fn with
// each datagram; it returns when the socket is empty.
func (r *rxSocket) drain(buf, oob []byte, fn func(b []byte, oob []byte, src netip.Addr)) {
	for {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		// Control, not Read: the reader goroutine holds the descriptor's
		// read lock while it waits in recvmmsg. MSG_DONTWAIT: an empty
		// socket ends the drain.
		err := r.raw.Control(func(fd uintptr) {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_DONTWAIT)
		})
		if err != nil || rerr != nil {
			return
		}
		var src netip.Addr
		switch sa := from.(type) {
		case *unix.SockaddrInet4:
			src = netip.AddrFrom4(sa.Addr)
		case *unix.SockaddrInet6:
			src = netip.AddrFrom16(sa.Addr)
		}
		fn(buf[:n], oob[:oobn], src)
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
