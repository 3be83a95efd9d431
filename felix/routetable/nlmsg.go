package routetable

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// The wire format of the rtnetlink route messages that NetlinkDataplane
// writes and reads, kept apart from the socket so that it is tested
// without root.

const (
	nlmsgHdrLen = unix.SizeofNlMsghdr // 16
	rtmsgLen    = unix.SizeofRtMsg    // 12
	nlaHdrLen   = 4
	nlaTypeMask = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
)

var ne = binary.NativeEndian

func align4(n int) int { return (n + 3) &^ 3 }

// appendRouteMsg appends the RTM_NEWROUTE or RTM_DELROUTE message for op
// with sequence number seq to b. It asks for no ACK: the kernel answers
// only failures, unless the caller sets NLM_F_ACK (see setAck).
func appendRouteMsg(b []byte, op RouteOp, seq uint32) []byte {
	r := op.Route
	msgType, flags := uint16(unix.RTM_NEWROUTE), uint16(unix.NLM_F_REQUEST|unix.NLM_F_CREATE)
	switch op.Kind {
	case OpAdd:
		flags |= unix.NLM_F_EXCL
	case OpReplace:
		flags |= unix.NLM_F_REPLACE
	case OpDelete:
		msgType, flags = unix.RTM_DELROUTE, unix.NLM_F_REQUEST
	}
	start := len(b)
	b = appendNlHdr(b, msgType, flags, seq)
	b = appendRtmsg(b, r.Dst.Addr().Is4(), uint8(r.Dst.Bits()), r.Table, r.Protocol, uint8(r.Scope), uint8(r.Type))
	b = appendU32Attr(b, unix.RTA_TABLE, r.Table)
	b = appendAddrAttr(b, unix.RTA_DST, r.Dst.Addr())
	if r.LinkIndex != 0 {
		b = appendU32Attr(b, unix.RTA_OIF, uint32(r.LinkIndex))
	}
	if r.Gateway.IsValid() {
		b = appendAddrAttr(b, unix.RTA_GATEWAY, r.Gateway)
	}
	if len(r.NextHops) > 0 && op.Kind != OpDelete {
		b = appendMultipathAttr(b, r.NextHops)
	}
	if r.Src.IsValid() {
		b = appendAddrAttr(b, unix.RTA_PREFSRC, r.Src)
	}
	if r.Priority != 0 {
		b = appendU32Attr(b, unix.RTA_PRIORITY, r.Priority)
	}
	ne.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

// appendDumpRequest appends an RTM_GETROUTE dump request for one family
// that asks the kernel (with NETLINK_GET_STRICT_CHK) to send only the
// routes of table and, if not 0, protocol.
func appendDumpRequest(b []byte, ipv4 bool, table uint32, protocol uint8, seq uint32) []byte {
	start := len(b)
	b = appendNlHdr(b, unix.RTM_GETROUTE, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq)
	b = appendRtmsg(b, ipv4, 0, table, protocol, 0, 0)
	b = appendU32Attr(b, unix.RTA_TABLE, table)
	ne.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

// setAck sets NLM_F_ACK on the message that starts at b[off:].
func setAck(b []byte, off int) {
	ne.PutUint16(b[off+6:], ne.Uint16(b[off+6:])|unix.NLM_F_ACK)
}

func appendNlHdr(b []byte, typ, flags uint16, seq uint32) []byte {
	b = ne.AppendUint32(b, 0) // length, set by the caller
	b = ne.AppendUint16(b, typ)
	b = ne.AppendUint16(b, flags)
	b = ne.AppendUint32(b, seq)
	return ne.AppendUint32(b, 0) // port id: the kernel fills it in
}

func appendRtmsg(b []byte, ipv4 bool, dstLen uint8, table uint32, protocol, scope, typ uint8) []byte {
	family := uint8(unix.AF_INET6)
	if ipv4 {
		family = unix.AF_INET
	}
	rtmTable := uint8(unix.RT_TABLE_UNSPEC) // RTA_TABLE carries it
	if table < 256 {
		rtmTable = uint8(table)
	}
	b = append(b, family, dstLen, 0, 0, rtmTable, protocol, scope, typ)
	return ne.AppendUint32(b, 0) // rtm_flags
}

// rtnhLen is the size of struct rtnexthop: length, flags, hops (weight-1)
// and interface index.
const rtnhLen = 8

// appendMultipathAttr appends RTA_MULTIPATH: one struct rtnexthop per next
// hop, each followed by its RTA_GATEWAY, all with weight 1.
func appendMultipathAttr(b []byte, nhs []KernelNextHop) []byte {
	start := len(b)
	b = ne.AppendUint16(b, 0) // length, set below
	b = ne.AppendUint16(b, unix.RTA_MULTIPATH)
	for _, nh := range nhs {
		hop := len(b)
		b = ne.AppendUint16(b, 0)
		b = append(b, 0, 0) // flags; hops: weight 1
		b = ne.AppendUint32(b, uint32(int32(nh.LinkIndex)))
		if nh.Gateway.IsValid() {
			b = appendAddrAttr(b, unix.RTA_GATEWAY, nh.Gateway)
		}
		ne.PutUint16(b[hop:], uint16(len(b)-hop))
	}
	ne.PutUint16(b[start:], uint16(len(b)-start))
	return b
}

// parseMultipath decodes an RTA_MULTIPATH payload. ok is false when a
// next hop is malformed or has attributes we cannot represent (RTA_VIA).
func parseMultipath(v []byte, addr func([]byte) netip.Addr) (nhs []KernelNextHop, ok bool) {
	for len(v) >= rtnhLen {
		l := int(ne.Uint16(v))
		if l < rtnhLen || l > len(v) {
			return nil, false
		}
		nh := KernelNextHop{LinkIndex: int(int32(ne.Uint32(v[4:])))}
		ok := true
		attrs(v[rtnhLen:l], func(typ uint16, a []byte) {
			switch typ {
			case unix.RTA_GATEWAY:
				nh.Gateway = addr(a)
			case unix.RTA_VIA:
				ok = false
			}
		})
		if !ok {
			return nil, false
		}
		nhs = append(nhs, nh)
		v = v[min(align4(l), len(v)):]
	}
	slices.SortFunc(nhs, compareKernelNextHop)
	return nhs, true
}

func appendU32Attr(b []byte, typ uint16, v uint32) []byte {
	b = ne.AppendUint16(b, nlaHdrLen+4)
	b = ne.AppendUint16(b, typ)
	return ne.AppendUint32(b, v)
}

func appendAddrAttr(b []byte, typ uint16, a netip.Addr) []byte {
	if a.Is4() {
		a4 := a.As4()
		b = ne.AppendUint16(b, nlaHdrLen+4)
		b = ne.AppendUint16(b, typ)
		return append(b, a4[:]...)
	}
	a16 := a.As16()
	b = ne.AppendUint16(b, nlaHdrLen+16)
	b = ne.AppendUint16(b, typ)
	return append(b, a16[:]...)
}

// nlMsg is one message of a datagram the kernel sent.
type nlMsg struct {
	typ, flags uint16
	seq        uint32
	data       []byte // after the header
}

// splitMsgs splits a datagram into its messages.
func splitMsgs(b []byte, yield func(nlMsg) error) error {
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b))
		if l < nlmsgHdrLen || l > len(b) {
			return fmt.Errorf("netlink: malformed message of length %d in %d bytes", l, len(b))
		}
		m := nlMsg{typ: ne.Uint16(b[4:]), flags: ne.Uint16(b[6:]), seq: ne.Uint32(b[8:]), data: b[nlmsgHdrLen:l]}
		if err := yield(m); err != nil {
			return err
		}
		b = b[min(align4(l), len(b)):]
	}
	return nil
}

// attrs calls fn for each attribute in b.
func attrs(b []byte, fn func(typ uint16, v []byte)) {
	for len(b) >= nlaHdrLen {
		l := int(ne.Uint16(b))
		if l < nlaHdrLen || l > len(b) {
			return
		}
		fn(ne.Uint16(b[2:])&nlaTypeMask, b[nlaHdrLen:l])
		b = b[min(align4(l), len(b)):]
	}
}

// parseRoute decodes the payload of an RTM_NEWROUTE message. It returns
// false for families other than IPv4 and IPv6.
func parseRoute(data []byte) (KernelRoute, bool, error) {
	if len(data) < rtmsgLen {
		return KernelRoute{}, false, fmt.Errorf("netlink: route message of %d bytes", len(data))
	}
	family, dstLen := data[0], int(data[1])
	var size int
	switch family {
	case unix.AF_INET:
		size = 4
	case unix.AF_INET6:
		size = 16
	default:
		return KernelRoute{}, false, nil
	}
	r := KernelRoute{
		Table:    uint32(data[4]),
		Protocol: data[5],
		Scope:    Scope(data[6]),
		Type:     RouteType(data[7]),
	}
	var dst netip.Addr
	var err error
	via := false
	addr := func(v []byte) netip.Addr {
		a, ok := netip.AddrFromSlice(v)
		if !ok || len(v) != size {
			err = fmt.Errorf("netlink: address of %d bytes in a family %d route", len(v), family)
		}
		return a
	}
	attrs(data[rtmsgLen:], func(typ uint16, v []byte) {
		switch {
		case typ == unix.RTA_DST:
			dst = addr(v)
		case typ == unix.RTA_GATEWAY:
			r.Gateway = addr(v)
		case typ == unix.RTA_PREFSRC:
			r.Src = addr(v)
		case typ == unix.RTA_OIF && len(v) == 4:
			r.LinkIndex = int(ne.Uint32(v))
		case typ == unix.RTA_TABLE && len(v) == 4:
			r.Table = ne.Uint32(v)
		case typ == unix.RTA_PRIORITY && len(v) == 4:
			r.Priority = ne.Uint32(v)
		case typ == unix.RTA_MULTIPATH:
			r.Multipath = true
			if nhs, ok := parseMultipath(v, addr); ok {
				r.NextHops = nhs
			}
		case typ == unix.RTA_VIA:
			r.Multipath, via = true, true
		}
	})
	if via {
		r.NextHops = nil // a gateway of another family: not ours to match
	}
	if err != nil {
		return KernelRoute{}, false, err
	}
	if !dst.IsValid() { // default route
		dst = netip.IPv4Unspecified()
		if size == 16 {
			dst = netip.IPv6Unspecified()
		}
	}
	if r.Dst, err = dst.Prefix(dstLen); err != nil {
		return KernelRoute{}, false, fmt.Errorf("netlink: route to %s/%d: %w", dst, dstLen, err)
	}
	if r.Type != TypeUnicast {
		r.LinkIndex = 0 // IPv6 puts lo on blackholes
	}
	return r, true, nil
}

// kernelError is an errno from a netlink error message, with the kernel's
// extended ACK message when it gave one.
type kernelError struct {
	errno syscall.Errno
	msg   string
}

func (e *kernelError) Error() string {
	if e.msg == "" {
		return e.errno.Error()
	}
	return e.errno.Error() + " (" + e.msg + ")"
}

func (e *kernelError) Unwrap() error { return e.errno }

// parseAck decodes an NLMSG_ERROR payload into the request's result: nil
// for a success ACK. valid is false for a message too short to be one.
func parseAck(m nlMsg) (valid bool, result error) {
	if len(m.data) < 4+nlmsgHdrLen {
		return false, nil
	}
	code := int32(ne.Uint32(m.data))
	if code == 0 {
		return true, nil
	}
	e := &kernelError{errno: syscall.Errno(-code)}
	if m.flags&unix.NLM_F_ACK_TLVS != 0 {
		off := 4 + nlmsgHdrLen // the request's header, with NETLINK_CAP_ACK only that
		if m.flags&unix.NLM_F_CAPPED == 0 {
			off = 4 + int(ne.Uint32(m.data[4:]))
		}
		if off <= len(m.data) {
			attrs(m.data[off:], func(typ uint16, v []byte) {
				if typ == unix.NLMSGERR_ATTR_MSG {
					e.msg = string(trimNul(v))
				}
			})
		}
	}
	return true, e
}

func trimNul(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}
