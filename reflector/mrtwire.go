package reflector

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// MRT (RFC 6396) wire encoding: pure functions that append one record
// each.

const (
	mrtTableDumpV2 = 13
	mrtBGP4MP      = 16

	mrtPeerIndexTable = 1
	mrtRIBIPv4Unicast = 2
	mrtRIBIPv6Unicast = 4
	mrtRIBGeneric     = 6

	mrtBGP4MPMessageAS4 = 4

	mrtHeaderLen = 12
)

// appendMRTHeader appends a record header for a body of n bytes.
func appendMRTHeader(dst []byte, ts time.Time, typ, subtype uint16, n int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(ts.Unix()))
	dst = binary.BigEndian.AppendUint16(dst, typ)
	dst = binary.BigEndian.AppendUint16(dst, subtype)
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// mrtPeer is one entry of the PEER_INDEX_TABLE.
type mrtPeer struct {
	routerID uint32
	addr     netip.Addr
	asn      uint32
}

// appendPeerIndexTable appends the PEER_INDEX_TABLE record: every peer
// with 4-octet AS numbers.
func appendPeerIndexTable(dst []byte, ts time.Time, collectorID uint32, view string, peers []mrtPeer) []byte {
	var body []byte
	body = binary.BigEndian.AppendUint32(body, collectorID)
	body = binary.BigEndian.AppendUint16(body, uint16(len(view)))
	body = append(body, view...)
	body = binary.BigEndian.AppendUint16(body, uint16(len(peers)))
	for _, p := range peers {
		typ := byte(0x02) // AS4
		if p.addr.Is6() {
			typ |= 0x01
		}
		body = append(body, typ)
		body = binary.BigEndian.AppendUint32(body, p.routerID)
		body = append(body, p.addr.AsSlice()...)
		body = binary.BigEndian.AppendUint32(body, p.asn)
	}
	dst = appendMRTHeader(dst, ts, mrtTableDumpV2, mrtPeerIndexTable, len(body))
	return append(dst, body...)
}

// mrtEntry is one path of a RIB record.
type mrtEntry struct {
	peer       uint16
	originated uint32
	attrs      []byte // encoded path attributes
}

// appendRIBRecord appends a RIB_IPV4_UNICAST or RIB_IPV6_UNICAST record
// (by f) of prefix k with its entries.
func appendRIBRecord(dst []byte, ts time.Time, f family, seq uint32, k pfxKey, entries []mrtEntry) []byte {
	sub := uint16(mrtRIBIPv4Unicast)
	if f == famV6 {
		sub = mrtRIBIPv6Unicast
	}
	start := len(dst)
	dst = appendMRTHeader(dst, ts, mrtTableDumpV2, sub, 0)
	dst = binary.BigEndian.AppendUint32(dst, seq)
	dst = k.appendNLRI(dst, false, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(entries)))
	for _, e := range entries {
		dst = binary.BigEndian.AppendUint16(dst, e.peer)
		dst = binary.BigEndian.AppendUint32(dst, e.originated)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(e.attrs)))
		dst = append(dst, e.attrs...)
	}
	binary.BigEndian.PutUint32(dst[start+8:], uint32(len(dst)-start-mrtHeaderLen))
	return dst
}

// appendRIBGenericRecord appends a RIB_GENERIC record (RFC 6396 4.3.3)
// of family f's NLRI (without a path identifier) with its entries.
func appendRIBGenericRecord(dst []byte, ts time.Time, f family, seq uint32, nlri []byte, entries []mrtEntry) []byte {
	start := len(dst)
	dst = appendMRTHeader(dst, ts, mrtTableDumpV2, mrtRIBGeneric, 0)
	dst = binary.BigEndian.AppendUint32(dst, seq)
	afi, safi := bgp.RouteFamilyToAfiSafi(f.routeFamily())
	dst = binary.BigEndian.AppendUint16(dst, afi)
	dst = append(dst, safi)
	dst = append(dst, nlri...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(entries)))
	for _, e := range entries {
		dst = binary.BigEndian.AppendUint16(dst, e.peer)
		dst = binary.BigEndian.AppendUint32(dst, e.originated)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(e.attrs)))
		dst = append(dst, e.attrs...)
	}
	binary.BigEndian.PutUint32(dst[start+8:], uint32(len(dst)-start-mrtHeaderLen))
	return dst
}

// mrtAttrs encodes a's attributes as TABLE_DUMP_V2 entries carry them:
// NEXT_HOP for an IPv4 next hop; for IPv6 an MP_REACH_NLRI holding only
// the next hop's length and address (RFC 6396 4.3.4); for a generic
// family such an MP_REACH_NLRI with the next hop field as received (an
// RD and address for VPN; none for flowspec).
func mrtAttrs(a *attrs, generic bool) []byte {
	var dst []byte
	if generic {
		return mrtGenAttrs(a)
	}
	v4 := a.nextHop.Is4()
	mp := !v4 && a.nextHop.IsValid()
	for _, p := range a.list {
		t := p.GetType()
		if v4 && t > bgp.BGP_ATTR_TYPE_NEXT_HOP {
			dst = appendNextHopAttr(dst, a.nextHop)
			v4 = false
		}
		if mp && t > bgp.BGP_ATTR_TYPE_MP_REACH_NLRI {
			dst = appendMRTMPReach(dst, a)
			mp = false
		}
		if b, err := p.Serialize(); err == nil {
			dst = append(dst, b...)
		}
	}
	if v4 {
		dst = appendNextHopAttr(dst, a.nextHop)
	}
	if mp {
		dst = appendMRTMPReach(dst, a)
	}
	return dst
}

// mrtGenAttrs is mrtAttrs for a generic family's path. A path without a
// next hop (flowspec) has no MP_REACH_NLRI: it would carry nothing, and
// GoBGP's MRT reader refuses one shorter than 3 bytes.
func mrtGenAttrs(a *attrs) []byte {
	var dst []byte
	mp := a.rawNH != ""
	for _, p := range a.list {
		if mp && p.GetType() > bgp.BGP_ATTR_TYPE_MP_REACH_NLRI {
			dst = appendMRTGenMPReach(dst, a.rawNH)
			mp = false
		}
		if b, err := p.Serialize(); err == nil {
			dst = append(dst, b...)
		}
	}
	if mp {
		dst = appendMRTGenMPReach(dst, a.rawNH)
	}
	return dst
}

func appendMRTGenMPReach(dst []byte, nh string) []byte {
	dst = append(dst, byte(bgp.BGP_ATTR_FLAG_OPTIONAL), byte(bgp.BGP_ATTR_TYPE_MP_REACH_NLRI), byte(1+len(nh)), byte(len(nh)))
	return append(dst, nh...)
}

func appendMRTMPReach(dst []byte, a *attrs) []byte {
	nh := a.nextHop.As16()
	v := append([]byte{16}, nh[:]...)
	if a.nextHopLL.IsValid() {
		ll := a.nextHopLL.As16()
		v[0] = 32
		v = append(v, ll[:]...)
	}
	dst = append(dst, byte(bgp.BGP_ATTR_FLAG_OPTIONAL), byte(bgp.BGP_ATTR_TYPE_MP_REACH_NLRI), byte(len(v)))
	return append(dst, v...)
}

// appendBGP4MPMessage appends a BGP4MP_MESSAGE_AS4 record of the UPDATE
// whose body is body, received from peer by local.
func appendBGP4MPMessage(dst []byte, ts time.Time, peerAS, localAS uint32, peer, local netip.Addr, body []byte) []byte {
	if peer.Is4() != local.Is4() { // cannot be said in one record; map the local address
		local = netip.IPv6Unspecified()
		if peer.Is4() {
			local = netip.IPv4Unspecified()
		}
	}
	afi := uint16(bgp.AFI_IP)
	if peer.Is6() {
		afi = bgp.AFI_IP6
	}
	n := 4 + 4 + 2 + 2 + 2*len(peer.AsSlice()) + headerLen + len(body)
	dst = appendMRTHeader(dst, ts, mrtBGP4MP, mrtBGP4MPMessageAS4, n)
	dst = binary.BigEndian.AppendUint32(dst, peerAS)
	dst = binary.BigEndian.AppendUint32(dst, localAS)
	dst = binary.BigEndian.AppendUint16(dst, 0) // interface index
	dst = binary.BigEndian.AppendUint16(dst, afi)
	dst = append(dst, peer.AsSlice()...)
	dst = append(dst, local.AsSlice()...)
	dst = appendBGPHeader(dst, bgp.BGP_MSG_UPDATE, len(body))
	return append(dst, body...)
}
