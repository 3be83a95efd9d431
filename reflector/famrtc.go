package reflector

import (
	"encoding/binary"
	"net/netip"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// Route target constraint (RFC 4684). A neighbour that negotiated the RTC
// family receives a VPN or EVPN route only when one of the route's route
// targets matches a membership route it advertised (its own RTC routes in
// the RTC table); its default membership (prefix length 0) matches
// everything. A neighbour that did not negotiate RTC receives every route.
// Such a neighbour has an update group of its own (its filter is its
// own), and when its membership changes it gets the difference: the
// routes that now match, and withdrawals of those that no longer do.
//
// Memberships are reflected like other routes, so that a client that
// negotiated RTC sends the reflector the VPN routes that the others want.
// While a neighbour carries a VPN family without RTC (it wants every
// route), the reflector also advertises the default membership to the
// neighbours that negotiated RTC, so that they send it all their VPN
// routes (RFC 4684 3.2), and withdraws it when the last such neighbour
// goes. (gobgpd 3.10 dereferences a nil pointer on a default membership
// route; newer GoBGP handles it.)

// rtcDefaultWithdraw withdraws our default membership route.
var rtcDefaultWithdraw = func() []byte {
	b := appendHeader(nil, bgp.BGP_MSG_UPDATE)
	b = append(b, 0, 0, 0, 8)
	b = appendMPAttr(b, bgp.BGP_ATTR_TYPE_MP_UNREACH_NLRI, 4)
	b = append(b, 0, bgp.AFI_IP, bgp.SAFI_ROUTE_TARGET_CONSTRAINTS, 0)
	binary.BigEndian.PutUint16(b[16:], uint16(len(b)))
	return b
}()

// wantsAllVPN reports whether a session of families fams takes every VPN
// route: it carries a VPN family without RTC.
func wantsAllVPN(fams families) bool {
	return !fams.has(famRTC) && (fams.has(famVPNv4) || fams.has(famVPNv6) || fams.has(famEVPN))
}

// rtcAllChanged counts a session that wants every VPN route coming (up)
// or going, and sends or withdraws our default membership to the RTC
// members when the count leaves or reaches zero.
func (rl *ribLoop) rtcAllChanged(up bool) {
	if up {
		rl.rtcAll++
		if rl.rtcAll != 1 {
			return
		}
	} else {
		rl.rtcAll--
		if rl.rtcAll != 0 {
			return
		}
	}
	if rl.deferring || rl.stopping {
		return // the dumps at the deferral's end carry it
	}
	for _, g := range rl.groups {
		for _, m := range g.members {
			if m.rtcDefault == nil {
				continue
			}
			if up {
				m.conn.send(m.rtcDefault)
			} else {
				m.conn.send(rtcDefaultWithdraw)
			}
			m.rp.stats.updatesOut.Add(1)
		}
	}
}

// rtcFiltered reports whether RTC constrains family f.
func rtcFiltered(f family) bool { return f == famVPNv4 || f == famVPNv6 || f == famEVPN }

// rtcMembership is what one neighbour advertised.
type rtcMembership struct {
	all     bool // the default membership
	entries []rtcEntry
}

// rtcEntry matches route targets whose first bits bits equal rt's.
type rtcEntry struct {
	bits int
	rt   uint64
}

// matches reports whether a route with attributes a goes to the member.
func (m *rtcMembership) matches(a *attrs) bool {
	if m == nil {
		return false
	}
	if m.all {
		return true
	}
	for _, rt := range a.rts {
		for _, e := range m.entries {
			if e.bits == 0 || (rt^e.rt)>>(64-e.bits) == 0 {
				return true
			}
		}
	}
	return false
}

// routeTargets returns the route targets among the extended communities
// (RFC 4360 types 0x00, 0x01, 0x02 with sub-type 0x02), each as the 8
// bytes of its encoding.
func routeTargets(list []bgp.PathAttributeInterface) []uint64 {
	var out []uint64
	for _, p := range list {
		ec, ok := p.(*bgp.PathAttributeExtendedCommunities)
		if !ok {
			continue
		}
		for _, c := range ec.Value {
			b, err := c.Serialize()
			if err != nil || len(b) != 8 || b[0] > 0x02 || b[1] != 0x02 {
				continue
			}
			out = append(out, binary.BigEndian.Uint64(b))
		}
	}
	return out
}

// rtcMembershipOf builds rp's membership from its paths in the RTC table.
func (rl *ribLoop) rtcMembershipOf(rp *ribPeer) *rtcMembership {
	t := rl.tables[famRTC]
	m := &rtcMembership{}
	t.each(func(k pfxKey, n uint32) {
		if indexOf(t.paths(n), rp) < 0 {
			return
		}
		key := t.keys[n] // genWhole, prefix length, origin AS, route target
		bits := int(key[1])
		if bits == 0 {
			m.all = true
			return
		}
		var rt [8]byte
		copy(rt[:], key[min(len(key), 2+4):])
		m.entries = append(m.entries, rtcEntry{bits: bits - 32, rt: binary.BigEndian.Uint64(rt[:])})
	})
	return m
}

// rtcChanged handles a flush of the RTC table: the members whose own
// membership routes changed get the difference of the VPN families.
func (rl *ribLoop) rtcChanged(t *table, cur [][]path) {
	var peers []*ribPeer
	seen := map[*ribPeer]bool{}
	note := func(ps []path) {
		for i := range ps {
			if rp := ps[i].src; !seen[rp] {
				seen[rp] = true
				peers = append(peers, rp)
			}
		}
	}
	for i, c := range t.changed {
		note(c.old)
		note(cur[i])
	}
	for _, rp := range peers {
		m := rp.member
		if m == nil || m.group == nil || m.group.rtcPeer != rp {
			continue
		}
		old := rp.rtc
		rp.rtc = rl.rtcMembershipOf(rp)
		if rl.deferring || rl.stopping {
			continue // the dump at the deferral's end uses the new one
		}
		for f := range numFamilies {
			if rtcFiltered(f) && m.fams.has(f) {
				rl.rtcRedump(m, f, old, rp.rtc)
			}
		}
	}
}

// rtcRedump sends member m the difference, in family f, between what
// membership old and membership now let through.
func (rl *ribLoop) rtcRedump(m *member, f family, old, now *rtcMembership) {
	t := rl.tables[f]
	g := m.group
	var p partition
	t.each(func(k pfxKey, n uint32) {
		paths := t.paths(n)
		for i := range paths {
			pa := &paths[i]
			if pa.src != m.rp {
				if ok, rule := g.passPolicy(f, k, pa); ok {
					was, is := old.matches(pa.a), now.matches(pa.a)
					it := nlriItem{k, pa.src.pathID}
					switch {
					case is && !was:
						p.announce(rl.exp.export(pa, g.key.role, g.key.localAddr, rule), it)
					case was && !is:
						p.withdraw(it)
					}
				}
			}
			if !g.key.addPath.has(f) {
				break
			}
		}
	})
	ann, wds := p.counts()
	if ann == 0 && wds == 0 {
		return
	}
	b := p.encodeWith(nil, g.encoding(t))
	m.rp.stats.prefixesOut.Add(int64(ann - wds))
	m.rp.stats.updatesOut.Add(int64(countMessages(b)))
	m.conn.send(b)
}

// rtcDefaultUpdate is our default route target membership route, as sent
// to a neighbour whose session's local address is local.
func rtcDefaultUpdate(local netip.Addr, asn uint32, ebgp bool) []byte {
	attrs := []byte{byte(bgp.BGP_ATTR_FLAG_TRANSITIVE), byte(bgp.BGP_ATTR_TYPE_ORIGIN), 1, bgp.BGP_ORIGIN_ATTR_TYPE_IGP}
	if ebgp {
		attrs = append(attrs, byte(bgp.BGP_ATTR_FLAG_TRANSITIVE), byte(bgp.BGP_ATTR_TYPE_AS_PATH), 6, bgp.BGP_ASPATH_ATTR_TYPE_SEQ, 1)
		attrs = binary.BigEndian.AppendUint32(attrs, asn)
	} else {
		attrs = append(attrs, byte(bgp.BGP_ATTR_FLAG_TRANSITIVE), byte(bgp.BGP_ATTR_TYPE_AS_PATH), 0)
		attrs = append(attrs, byte(bgp.BGP_ATTR_FLAG_TRANSITIVE), byte(bgp.BGP_ATTR_TYPE_LOCAL_PREF), 4)
		attrs = binary.BigEndian.AppendUint32(attrs, defaultLocalPref)
	}
	nh := local.AsSlice()
	mp := appendMPAttr(nil, bgp.BGP_ATTR_TYPE_MP_REACH_NLRI, 3+1+len(nh)+1+1)
	mp = append(mp, 0, bgp.AFI_IP, bgp.SAFI_ROUTE_TARGET_CONSTRAINTS, byte(len(nh)))
	mp = append(append(mp, nh...), 0, 0) // reserved; the NLRI: prefix length 0
	b := appendHeader(nil, bgp.BGP_MSG_UPDATE)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(mp)+len(attrs)))
	b = append(append(b, mp...), attrs...)
	binary.BigEndian.PutUint16(b[16:], uint16(len(b)))
	return b
}
