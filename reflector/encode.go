package reflector

import (
	"encoding/binary"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

const (
	maxMsgLen     = bgp.BGP_MAX_MESSAGE_LENGTH
	maxExtMsgLen  = 65535 // RFC 8654
	headerLen     = bgp.BGP_HEADER_LENGTH
	mpAttrMaxHead = 4 + 3 + 1 + 32 + 1 // extended header, AFI/SAFI, next hop, reserved
)

// nlriItem is one prefix to encode, with the path identifier for add-path.
type nlriItem struct {
	k  pfxKey
	id uint32
}

// bucket holds the prefixes that share one set of exported attributes.
type bucket struct {
	oa    *outAttrs
	items []nlriItem
}

// partition collects announcements (bucketed by attributes) and
// withdrawals, and encodes them as densely packed UPDATE messages.
type partition struct {
	buckets   []*bucket
	byAttrs   map[*outAttrs]*bucket
	withdraws []nlriItem
}

func (p *partition) announce(oa *outAttrs, it nlriItem) {
	if p.byAttrs == nil {
		p.byAttrs = map[*outAttrs]*bucket{}
	}
	b := p.byAttrs[oa]
	if b == nil {
		b = &bucket{oa: oa}
		p.byAttrs[oa] = b
		p.buckets = append(p.buckets, b)
	}
	b.items = append(b.items, it)
}

func (p *partition) withdraw(it nlriItem) { p.withdraws = append(p.withdraws, it) }

func (p *partition) empty() bool { return len(p.buckets) == 0 && len(p.withdraws) == 0 }

func (p *partition) counts() (ann, wd int) {
	for _, b := range p.buckets {
		ann += len(b.items)
	}
	return ann, len(p.withdraws)
}

// encoding says how a partition is encoded.
type encoding struct {
	f       family
	addPath bool
	keys    []string // a generic family's route keys by pfxKey.hi (its table's slots)
	max     int      // the message size limit
}

// encoding returns how group g's partitions of table t are encoded.
func (g *updateGroup) encoding(t *table) encoding {
	return encoding{f: t.fam, addPath: g.key.addPath.has(t.fam), keys: t.keys, max: g.key.maxMsgLen()}
}

// encode appends the UPDATE messages of a unicast family in messages of
// up to 4,096 bytes.
func (p *partition) encode(dst []byte, f family, addPath bool) []byte {
	return p.encodeWith(dst, encoding{f: f, addPath: addPath, max: maxMsgLen})
}

// encodeWith appends the UPDATE messages: withdrawals first, then one run
// of messages per attribute set, each packing as many NLRI as fit.
func (p *partition) encodeWith(dst []byte, e encoding) []byte {
	if e.f.generic() {
		items := p.withdraws
		for len(items) > 0 {
			dst, items = appendGenUpdate(dst, e, nil, items)
		}
		for _, b := range p.buckets {
			items := b.items
			for len(items) > 0 {
				dst, items = appendGenUpdate(dst, e, b.oa, items)
			}
		}
		return dst
	}
	items := p.withdraws
	for len(items) > 0 {
		dst, items = appendUpdate(dst, e.f, e.addPath, e.max, nil, items, true)
	}
	for _, b := range p.buckets {
		items := b.items
		for len(items) > 0 {
			dst, items = appendUpdate(dst, e.f, e.addPath, e.max, b.oa, items, false)
		}
	}
	return dst
}

// appendGenUpdate appends one UPDATE of a generic family carrying as many
// of items as fit (announced with oa, or withdrawn when oa is nil) and
// returns the rest.
func appendGenUpdate(dst []byte, e encoding, oa *outAttrs, items []nlriItem) ([]byte, []nlriItem) {
	start := len(dst)
	dst = appendHeader(dst, bgp.BGP_MSG_UPDATE)
	dst = binary.BigEndian.AppendUint16(dst, 0) // no withdrawn routes
	lenAt := len(dst)
	dst = append(dst, 0, 0)
	mpAt := len(dst)
	typ := bgp.BGP_ATTR_TYPE_MP_UNREACH_NLRI
	if oa != nil {
		typ = bgp.BGP_ATTR_TYPE_MP_REACH_NLRI
	}
	dst = appendMPAttr(dst, typ, 0)
	afi, safi := bgp.RouteFamilyToAfiSafi(e.f.routeFamily())
	dst = binary.BigEndian.AppendUint16(dst, afi)
	dst = append(dst, safi)
	limit := start + e.max
	extra := ""
	if oa != nil {
		dst = append(dst, byte(len(oa.rawNH)))
		dst = append(dst, oa.rawNH...)
		dst = append(dst, 0)
		limit -= len(oa.bytes)
		extra = oa.extra
	}
	n := 0
	for n < len(items) {
		mark := len(dst)
		if e.addPath {
			dst = binary.BigEndian.AppendUint32(dst, items[n].id)
		}
		key := e.keys[uint32(items[n].k.hi)]
		if oa == nil {
			extra = genWithdrawExtra(key)
		}
		dst = genJoin(dst, e.f, key, extra)
		if len(dst) > limit || len(dst)-mpAt-4 > 0xffff {
			dst = dst[:mark]
			break
		}
		n++
	}
	if n == 0 { // this route does not fit with its attributes: it cannot be sent
		return dst[:start], items[1:]
	}
	binary.BigEndian.PutUint16(dst[mpAt+2:], uint16(len(dst)-mpAt-4))
	if oa != nil {
		dst = append(dst, oa.bytes...)
	}
	binary.BigEndian.PutUint16(dst[lenAt:], uint16(len(dst)-lenAt-2))
	binary.BigEndian.PutUint16(dst[start+16:], uint16(len(dst)-start))
	return dst, items[n:]
}

// appendUpdate appends one UPDATE carrying as many of items as fit and
// returns the rest.
func appendUpdate(dst []byte, f family, addPath bool, maxLen int, oa *outAttrs, items []nlriItem, withdraw bool) ([]byte, []nlriItem) {
	start := len(dst)
	dst = appendHeader(dst, bgp.BGP_MSG_UPDATE)
	room := maxLen - headerLen - 4
	if oa != nil {
		room -= len(oa.bytes)
	}
	if f == famV6 {
		room -= mpAttrMaxHead
	}
	n, size := 0, 0
	for n < len(items) && size+items[n].k.nlriLen(addPath) <= room {
		size += items[n].k.nlriLen(addPath)
		n++
	}
	if n == 0 { // attributes too large for even one prefix: drop them
		return dst[:start], nil
	}
	batch := items[:n]
	switch {
	case f == famV4 && withdraw:
		dst = binary.BigEndian.AppendUint16(dst, uint16(size))
		dst = appendNLRIs(dst, batch, addPath)
		dst = binary.BigEndian.AppendUint16(dst, 0)
	case f == famV4:
		dst = binary.BigEndian.AppendUint16(dst, 0)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(oa.bytes)))
		dst = append(dst, oa.bytes...)
		dst = appendNLRIs(dst, batch, addPath)
	case withdraw:
		dst = binary.BigEndian.AppendUint16(dst, 0)
		lenAt := len(dst)
		dst = append(dst, 0, 0)
		dst = appendMPAttr(dst, bgp.BGP_ATTR_TYPE_MP_UNREACH_NLRI, 3+size)
		dst = append(dst, 0, bgp.AFI_IP6, bgp.SAFI_UNICAST)
		dst = appendNLRIs(dst, batch, addPath)
		binary.BigEndian.PutUint16(dst[lenAt:], uint16(len(dst)-lenAt-2))
	default:
		dst = binary.BigEndian.AppendUint16(dst, 0)
		lenAt := len(dst)
		dst = append(dst, 0, 0)
		nh := oa.nextHop.As16()
		nhLen := 16
		if oa.nextHopLL.IsValid() {
			nhLen = 32
		}
		dst = appendMPAttr(dst, bgp.BGP_ATTR_TYPE_MP_REACH_NLRI, 5+nhLen+size)
		dst = append(dst, 0, bgp.AFI_IP6, bgp.SAFI_UNICAST, byte(nhLen))
		dst = append(dst, nh[:]...)
		if oa.nextHopLL.IsValid() {
			ll := oa.nextHopLL.As16()
			dst = append(dst, ll[:]...)
		}
		dst = append(dst, 0)
		dst = appendNLRIs(dst, batch, addPath)
		dst = append(dst, oa.bytes...)
		binary.BigEndian.PutUint16(dst[lenAt:], uint16(len(dst)-lenAt-2))
	}
	binary.BigEndian.PutUint16(dst[start+16:], uint16(len(dst)-start))
	return dst, items[n:]
}

func appendHeader(dst []byte, typ uint8) []byte {
	for range 16 {
		dst = append(dst, 0xff)
	}
	return append(dst, 0, 0, typ)
}

func appendMPAttr(dst []byte, typ bgp.BGPAttrType, length int) []byte {
	flags := byte(bgp.BGP_ATTR_FLAG_OPTIONAL | bgp.BGP_ATTR_FLAG_EXTENDED_LENGTH)
	dst = append(dst, flags, byte(typ))
	return binary.BigEndian.AppendUint16(dst, uint16(length))
}

func appendNLRIs(dst []byte, items []nlriItem, addPath bool) []byte {
	for _, it := range items {
		dst = it.k.appendNLRI(dst, addPath, it.id)
	}
	return dst
}

// countMessages returns how many BGP messages b holds (b is a run of
// whole messages that we encoded).
func countMessages(b []byte) int {
	n := 0
	for len(b) >= headerLen {
		l := int(binary.BigEndian.Uint16(b[16:18]))
		if l < headerLen || l > len(b) {
			break
		}
		b = b[l:]
		n++
	}
	return n
}

// appendEndOfRIB appends the RFC 4724 End-of-RIB marker of family f.
func appendEndOfRIB(dst []byte, f family) []byte {
	start := len(dst)
	dst = appendHeader(dst, bgp.BGP_MSG_UPDATE)
	if f == famV4 {
		dst = append(dst, 0, 0, 0, 0)
	} else {
		afi, safi := bgp.RouteFamilyToAfiSafi(f.routeFamily())
		dst = append(dst, 0, 0, 0, 7)
		dst = appendMPAttr(dst, bgp.BGP_ATTR_TYPE_MP_UNREACH_NLRI, 3)
		dst = binary.BigEndian.AppendUint16(dst, afi)
		dst = append(dst, safi)
	}
	binary.BigEndian.PutUint16(dst[start+16:], uint16(len(dst)-start))
	return dst
}
