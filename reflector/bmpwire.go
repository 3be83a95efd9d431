package reflector

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// BMP (RFC 7854) wire encoding: pure functions that append one message
// each. Messages are built from bytes we hold (the UPDATE PDUs as received,
// the OPENs as exchanged), never parsed and serialised again.

const (
	bmpVersion = 3

	bmpRouteMonitoring = 0
	bmpStatsReport     = 1
	bmpPeerDown        = 2
	bmpPeerUp          = 3
	bmpInitiation      = 4
	bmpTermination     = 5

	bmpCommonHeaderLen = 6
	bmpPeerHeaderLen   = 42

	// Per-peer header flags (RFC 7854 4.2).
	bmpFlagV6 = 0x80

	// Peer types: a global-instance peer (RFC 7854), the Loc-RIB
	// instance (RFC 9069).
	bmpPeerGlobal = 0
	bmpPeerLocRIB = 3

	// bmpInfoTableName is the Loc-RIB's VRF/Table Name TLV (RFC 9069 5.3).
	bmpInfoTableName = 3

	// Initiation information TLVs (RFC 7854 4.3).
	bmpInfoString   = 0
	bmpInfoSysDescr = 1
	bmpInfoSysName  = 2

	// Peer-down reasons (RFC 7854 4.9).
	bmpDownLocalNotify   = 1
	bmpDownLocalNoNotify = 2
	bmpDownRemoteNotify  = 3
	bmpDownRemoteNoData  = 4
	bmpDownDeconfigured  = 5

	// Statistics types (RFC 7854 4.8).
	bmpStatRejected   = 0 // prefixes rejected by the inbound policy (32-bit)
	bmpStatAdjRIBIn   = 7 // routes in the Adj-RIB-In (64-bit gauge)
	bmpStatAdjRIBInAF = 9 // per-AFI/SAFI Adj-RIB-In routes (64-bit gauge)
)

// bmpPeer is what a BMP per-peer header says about one peer.
type bmpPeer struct {
	typ      uint8 // bmpPeerGlobal or bmpPeerLocRIB
	addr     netip.Addr
	asn      uint32
	routerID uint32
}

// appendBMPHeader appends the common header of a message of n bytes
// after the header.
func appendBMPHeader(dst []byte, typ uint8, n int) []byte {
	dst = append(dst, bmpVersion)
	dst = binary.BigEndian.AppendUint32(dst, uint32(bmpCommonHeaderLen+n))
	return append(dst, typ)
}

// appendPeerHeader appends the per-peer header: for a global-instance
// peer, its pre-policy Adj-RIB-In with 4-octet AS paths; for the Loc-RIB
// instance, no flags (RFC 9069 4.2: the F flag unset, the table is whole).
func appendPeerHeader(dst []byte, p bmpPeer, ts time.Time) []byte {
	var flags byte
	if p.addr.Is6() {
		flags |= bmpFlagV6
	}
	dst = append(dst, p.typ, flags)
	dst = append(dst, make([]byte, 8)...) // peer distinguisher
	a := p.addr.As16()
	if p.addr.Is4() {
		a = [16]byte{}
		b := p.addr.As4()
		copy(a[12:], b[:])
	}
	dst = append(dst, a[:]...)
	dst = binary.BigEndian.AppendUint32(dst, p.asn)
	dst = binary.BigEndian.AppendUint32(dst, p.routerID)
	dst = binary.BigEndian.AppendUint32(dst, uint32(ts.Unix()))
	return binary.BigEndian.AppendUint32(dst, uint32(ts.Nanosecond()/1000))
}

// bmpAddr16 is an address as BMP's 16-byte fields carry it.
func bmpAddr16(a netip.Addr) [16]byte {
	if a.Is4() {
		var b [16]byte
		v := a.As4()
		copy(b[12:], v[:])
		return b
	}
	return a.As16()
}

func appendTLV(dst []byte, typ uint16, v []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, typ)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(v)))
	return append(dst, v...)
}

// appendInitiation appends an Initiation message with sysName and
// sysDescr (both required by RFC 7854 4.3).
func appendInitiation(dst []byte, sysName, sysDescr string) []byte {
	var body []byte
	body = appendTLV(body, bmpInfoSysDescr, []byte(sysDescr))
	body = appendTLV(body, bmpInfoSysName, []byte(sysName))
	dst = appendBMPHeader(dst, bmpInitiation, len(body))
	return append(dst, body...)
}

// appendTermination appends a Termination message, reason 0
// (administratively closed).
func appendTermination(dst []byte) []byte {
	body := appendTLV(nil, 1, []byte{0, 0})
	dst = appendBMPHeader(dst, bmpTermination, len(body))
	return append(dst, body...)
}

// appendRouteMonitoring appends a Route Monitoring message carrying the
// BGP UPDATE whose body (the message after its header) is body.
func appendRouteMonitoring(dst []byte, p bmpPeer, ts time.Time, body []byte) []byte {
	dst = appendBMPHeader(dst, bmpRouteMonitoring, bmpPeerHeaderLen+headerLen+len(body))
	dst = appendPeerHeader(dst, p, ts)
	dst = appendBGPHeader(dst, bgp.BGP_MSG_UPDATE, len(body))
	return append(dst, body...)
}

// appendRouteMonitoringMsgs appends one Route Monitoring message per BGP
// message of msgs, a run of whole UPDATEs as encode.go builds them.
func appendRouteMonitoringMsgs(dst []byte, p bmpPeer, ts time.Time, msgs []byte) []byte {
	for len(msgs) >= headerLen {
		l := int(binary.BigEndian.Uint16(msgs[16:18]))
		if l < headerLen || l > len(msgs) {
			break
		}
		dst = appendRouteMonitoring(dst, p, ts, msgs[headerLen:l])
		msgs = msgs[l:]
	}
	return dst
}

// appendBGPHeader appends a BGP message header for a body of n bytes.
func appendBGPHeader(dst []byte, typ uint8, n int) []byte {
	dst = appendHeader(dst, typ)
	binary.BigEndian.PutUint16(dst[len(dst)-3:], uint16(headerLen+n))
	return dst
}

// appendPeerUp appends a Peer Up Notification: the local address and
// ports, and the OPENs sent and received (whole messages).
func appendPeerUp(dst []byte, p bmpPeer, ts time.Time, local netip.Addr, localPort, remotePort uint16, sent, recv []byte) []byte {
	n := bmpPeerHeaderLen + 16 + 2 + 2 + len(sent) + len(recv)
	dst = appendBMPHeader(dst, bmpPeerUp, n)
	dst = appendPeerHeader(dst, p, ts)
	la := bmpAddr16(local)
	dst = append(dst, la[:]...)
	dst = binary.BigEndian.AppendUint16(dst, localPort)
	dst = binary.BigEndian.AppendUint16(dst, remotePort)
	dst = append(dst, sent...)
	return append(dst, recv...)
}

// appendLocRIBPeerUp appends the Loc-RIB instance's Peer Up (RFC 9069
// 5.3): no addresses or ports, our OPEN as both OPENs, and the table's
// name.
func appendLocRIBPeerUp(dst []byte, p bmpPeer, ts time.Time, open []byte, table string) []byte {
	tlv := appendTLV(nil, bmpInfoTableName, []byte(table))
	n := bmpPeerHeaderLen + 16 + 2 + 2 + 2*len(open) + len(tlv)
	dst = appendBMPHeader(dst, bmpPeerUp, n)
	dst = appendPeerHeader(dst, p, ts)
	dst = append(dst, make([]byte, 20)...)
	dst = append(dst, open...)
	dst = append(dst, open...)
	return append(dst, tlv...)
}

// appendPeerDown appends a Peer Down Notification with its reason and
// data: a whole NOTIFICATION for reasons 1 and 3, a 2-byte FSM event
// code for reason 2, nothing otherwise.
func appendPeerDown(dst []byte, p bmpPeer, ts time.Time, reason uint8, data []byte) []byte {
	dst = appendBMPHeader(dst, bmpPeerDown, bmpPeerHeaderLen+1+len(data))
	dst = appendPeerHeader(dst, p, ts)
	dst = append(dst, reason)
	return append(dst, data...)
}

// bmpStat is one statistics counter or gauge.
type bmpStat struct {
	typ   uint16
	fam   family // for bmpStatAdjRIBInAF
	value uint64
}

// appendStatsReport appends a Statistics Report.
func appendStatsReport(dst []byte, p bmpPeer, ts time.Time, stats []bmpStat) []byte {
	var body []byte
	body = binary.BigEndian.AppendUint32(body, uint32(len(stats)))
	for _, s := range stats {
		switch s.typ {
		case bmpStatRejected:
			body = appendTLV(body, s.typ, binary.BigEndian.AppendUint32(nil, uint32(s.value)))
		case bmpStatAdjRIBInAF:
			afi, safi := bgp.RouteFamilyToAfiSafi(s.fam.routeFamily())
			v := binary.BigEndian.AppendUint16(nil, afi)
			v = append(v, safi)
			body = appendTLV(body, s.typ, binary.BigEndian.AppendUint64(v, s.value))
		default:
			body = appendTLV(body, s.typ, binary.BigEndian.AppendUint64(nil, s.value))
		}
	}
	dst = appendBMPHeader(dst, bmpStatsReport, bmpPeerHeaderLen+len(body))
	dst = appendPeerHeader(dst, p, ts)
	return append(dst, body...)
}

// countBMP returns how many BMP messages b holds (whole messages that we
// encoded).
func countBMP(b []byte) int {
	n := 0
	for len(b) >= bmpCommonHeaderLen {
		l := int(binary.BigEndian.Uint32(b[1:5]))
		if l < bmpCommonHeaderLen || l > len(b) {
			break
		}
		b = b[l:]
		n++
	}
	return n
}
