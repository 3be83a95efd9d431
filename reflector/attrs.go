package reflector

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// attrs is one interned set of path attributes, shared by every path that
// carries an identical set. Only the RIB loop touches refs and out.
type attrs struct {
	// key is the canonical encoding: the attributes in type order, without
	// NEXT_HOP and MP_(UN)REACH_NLRI, followed by the next hops.
	key    string
	refs   int
	handle uint32 // in the internTable; 0 while not interned
	// list holds the attributes that key encodes, parsed, in type order.
	list []bgp.PathAttributeInterface

	nextHop, nextHopLL netip.Addr
	origin             uint8
	asPathLen          int
	firstAS            uint32 // leftmost AS of the AS_PATH, 0 when empty
	localPref          uint32 // effective: 100 when absent
	med                uint32 // 0 when absent
	originatorID       uint32
	hasOriginator      bool
	clusterList        []uint32
	// A generic family's next hop field as received, and the path's
	// part of the NLRI (famgen.go); both empty for unicast.
	rawNH, extra string
	rts          []uint64 // a generic family's route targets (famrtc.go)
	gen          bool     // the attrs of a generic family's path
	// llgrStale and noLLGR: the communities carry LLGR_STALE or NO_LLGR
	// (RFC 9494, llgr.go).
	llgrStale, noLLGR bool

	// out caches the attributes as exported to each class of group.
	out []*outAttrs
}

const defaultLocalPref = 100

// attrsInput is what the reader extracts from one UPDATE for newAttrs.
type attrsInput struct {
	list               []bgp.PathAttributeInterface
	nextHop, nextHopLL netip.Addr
	fromEBGP           bool
	// setLocalPref overrides LOCAL_PREF with localPref (an import
	// policy's): in the list from iBGP; from eBGP, where the list has
	// none, as the effective value, which then counts in the key.
	localPref    uint32
	setLocalPref bool
	// gen is set for a generic family: rawNH and extra as in attrs.
	gen          bool
	rawNH, extra []byte
}

// newAttrs builds the attrs of one UPDATE. Attributes that are per-peer or
// meaningless from an eBGP peer (LOCAL_PREF, ORIGINATOR_ID, CLUSTER_LIST)
// are stripped so that identical routes share one attrs, as are AS4_PATH and
// AS4_AGGREGATOR (RFC 6793: a 4-octet speaker ignores them from another).
func newAttrs(in attrsInput) *attrs {
	a := &attrs{localPref: defaultLocalPref, nextHop: in.nextHop, nextHopLL: in.nextHopLL,
		rawNH: string(in.rawNH), extra: string(in.extra)}
	list := make([]bgp.PathAttributeInterface, 0, len(in.list))
	gshut := false
	for _, p := range in.list {
		if c, ok := p.(*bgp.PathAttributeCommunities); ok && slices.Contains(c.Value, gracefulShutdownCommunity) {
			gshut = true
		}
		switch v := p.(type) {
		case *bgp.PathAttributeNextHop, *bgp.PathAttributeMpReachNLRI, *bgp.PathAttributeMpUnreachNLRI,
			*bgp.PathAttributeAs4Path, *bgp.PathAttributeAs4Aggregator:
			continue
		case *bgp.PathAttributeOrigin:
			a.origin = v.Value
		case *bgp.PathAttributeAsPath:
			v = as4Path(v)
			p = v
			a.asPathLen, a.firstAS = asPathInfo(v)
		case *bgp.PathAttributeMultiExitDisc:
			a.med = v.Value
		case *bgp.PathAttributeLocalPref:
			if in.fromEBGP {
				continue
			}
			a.localPref = v.Value
		case *bgp.PathAttributeOriginatorId:
			if in.fromEBGP {
				continue
			}
			a.originatorID, a.hasOriginator = ip4ToUint(v.Value), true
		case *bgp.PathAttributeClusterList:
			if in.fromEBGP {
				continue
			}
			for _, ip := range v.Value {
				a.clusterList = append(a.clusterList, ip4ToUint(ip))
			}
		default:
			var ok bool
			if p, ok = passOn(p); !ok {
				continue
			}
		}
		list = append(list, p)
	}
	// RFC 8326: a path that carries GRACEFUL_SHUTDOWN gets LOCAL_PREF 0,
	// so that it loses to every other path while its sender drains. An
	// import policy that sets the local preference decides instead.
	if gshut && !in.setLocalPref {
		in.setLocalPref, in.localPref = true, 0
	}
	if in.setLocalPref {
		a.localPref = in.localPref
		if !in.fromEBGP {
			list = slices.DeleteFunc(list, func(p bgp.PathAttributeInterface) bool {
				_, ok := p.(*bgp.PathAttributeLocalPref)
				return ok
			})
			list = append(list, bgp.NewPathAttributeLocalPref(in.localPref))
		}
	}
	slices.SortStableFunc(list, func(x, y bgp.PathAttributeInterface) int {
		return int(x.GetType()) - int(y.GetType())
	})
	a.list = list
	if in.gen {
		a.rts, a.gen = routeTargets(list), true
	}
	a.llgrStale, a.noLLGR = llgrFlags(list)
	buf := make([]byte, 0, 64)
	for _, p := range list {
		b, err := p.Serialize()
		if err != nil {
			continue // cannot happen for a decoded attribute; drop it
		}
		buf = append(buf, b...)
	}
	buf = append(buf, a.nextHop.AsSlice()...)
	buf = append(buf, 0xff)
	buf = append(buf, a.nextHopLL.AsSlice()...)
	if in.gen {
		buf = append(buf, 0xfd, byte(len(in.rawNH)))
		buf = append(buf, in.rawNH...)
		buf = append(buf, in.extra...)
	}
	if in.setLocalPref && in.fromEBGP {
		buf = append(buf, 0xfe)
		buf = binary.BigEndian.AppendUint32(buf, in.localPref)
	}
	a.key = string(buf)
	return a
}

// recognised are the attribute types the reflector implements or passes on
// knowingly: RFC 4271's, RFC 4456's, MP_(UN)REACH_NLRI, the communities
// (RFC 1997, 4360, 8092) and the AS4 attributes (RFC 6793).
var recognised = func() (r [256]bool) {
	for _, t := range []bgp.BGPAttrType{
		bgp.BGP_ATTR_TYPE_ORIGIN, bgp.BGP_ATTR_TYPE_AS_PATH, bgp.BGP_ATTR_TYPE_NEXT_HOP,
		bgp.BGP_ATTR_TYPE_MULTI_EXIT_DISC, bgp.BGP_ATTR_TYPE_LOCAL_PREF, bgp.BGP_ATTR_TYPE_ATOMIC_AGGREGATE,
		bgp.BGP_ATTR_TYPE_AGGREGATOR, bgp.BGP_ATTR_TYPE_COMMUNITIES, bgp.BGP_ATTR_TYPE_ORIGINATOR_ID,
		bgp.BGP_ATTR_TYPE_CLUSTER_LIST, bgp.BGP_ATTR_TYPE_MP_REACH_NLRI, bgp.BGP_ATTR_TYPE_MP_UNREACH_NLRI,
		bgp.BGP_ATTR_TYPE_EXTENDED_COMMUNITIES, bgp.BGP_ATTR_TYPE_AS4_PATH, bgp.BGP_ATTR_TYPE_AS4_AGGREGATOR,
		bgp.BGP_ATTR_TYPE_LARGE_COMMUNITY,
	} {
		r[t] = true
	}
	return r
}()

// passOn applies RFC 4271 5 to an attribute: a recognised one passes as
// it is; an unrecognised optional transitive one passes with the Partial
// bit set; an unrecognised optional non-transitive one does not pass (nor
// does a well-known one, which the codec's validation refuses earlier).
func passOn(p bgp.PathAttributeInterface) (bgp.PathAttributeInterface, bool) {
	t, flags := p.GetType(), p.GetFlags()
	if recognised[t] {
		return p, true
	}
	if flags&bgp.BGP_ATTR_FLAG_OPTIONAL == 0 || flags&bgp.BGP_ATTR_FLAG_TRANSITIVE == 0 {
		return nil, false
	}
	if flags&bgp.BGP_ATTR_FLAG_PARTIAL != 0 {
		return p, true
	}
	b, err := p.Serialize()
	if err != nil || len(b) < 3 {
		return nil, false
	}
	hl := 3
	if bgp.BGPAttrFlag(b[0])&bgp.BGP_ATTR_FLAG_EXTENDED_LENGTH != 0 {
		hl = 4
	}
	if len(b) < hl {
		return nil, false
	}
	return bgp.NewPathAttributeUnknown(flags|bgp.BGP_ATTR_FLAG_PARTIAL, t, b[hl:]), true
}

// asPathInfo returns the RFC 4271 path length (a set counts one,
// confederation segments none) and the leftmost AS.
func asPathInfo(p *bgp.PathAttributeAsPath) (n int, first uint32) {
	for _, seg := range p.Value {
		as := seg.GetAS()
		switch seg.GetType() {
		case bgp.BGP_ASPATH_ATTR_TYPE_SEQ:
			n += len(as)
			if first == 0 && len(as) > 0 {
				first = as[0]
			}
		case bgp.BGP_ASPATH_ATTR_TYPE_SET:
			n++
		}
	}
	return n, first
}

// as4Path returns p with every segment in 4-octet form, so that it is
// re-encoded as a 4-octet AS speaker must.
func as4Path(p *bgp.PathAttributeAsPath) *bgp.PathAttributeAsPath {
	for _, seg := range p.Value {
		if _, ok := seg.(*bgp.As4PathParam); !ok {
			segs := make([]bgp.AsPathParamInterface, len(p.Value))
			for i, s := range p.Value {
				segs[i] = bgp.NewAs4PathParam(s.GetType(), s.GetAS())
			}
			return bgp.NewPathAttributeAsPath(segs)
		}
	}
	return p
}

// asPathContains reports whether asn appears anywhere in the AS_PATH.
func asPathContains(list []bgp.PathAttributeInterface, asn uint32) bool {
	for _, p := range list {
		if v, ok := p.(*bgp.PathAttributeAsPath); ok {
			for _, seg := range v.Value {
				if slices.Contains(seg.GetAS(), asn) {
					return true
				}
			}
		}
	}
	return false
}

func ip4ToUint(ip []byte) uint32 {
	if len(ip) == 16 {
		ip = ip[12:]
	}
	if len(ip) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(ip)
}

func uintToAddr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// internTable interns attrs by key and gives each a handle, the form in
// which the tables store it. It belongs to the RIB loop; paths hold the
// references (see table.announce).
type internTable struct {
	byKey map[string]*attrs
	slab  []*attrs // by handle; 0 is none
	free  []uint32
}

func newInternTable() *internTable {
	return &internTable{byKey: map[string]*attrs{}, slab: []*attrs{nil}}
}

// get returns the shared attrs equal to a, adding a when new.
func (t *internTable) get(a *attrs) *attrs {
	if s, ok := t.byKey[a.key]; ok {
		return s
	}
	t.byKey[a.key] = a
	if n := len(t.free); n > 0 {
		a.handle = t.free[n-1]
		t.free = t.free[:n-1]
		t.slab[a.handle] = a
	} else {
		a.handle = uint32(len(t.slab))
		t.slab = append(t.slab, a)
	}
	return a
}

// release drops a reference and forgets the attrs when none remain.
func (t *internTable) release(a *attrs) {
	a.refs--
	t.dropUnused(a)
}

// dropUnused forgets a when no path references it.
func (t *internTable) dropUnused(a *attrs) {
	if a.refs <= 0 && t.byKey[a.key] == a {
		delete(t.byKey, a.key)
		t.slab[a.handle] = nil
		t.free = append(t.free, a.handle)
		a.handle = 0
	}
}
