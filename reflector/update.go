package reflector

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// parseUpdate decodes an UPDATE with the codec, applies RFC 7606 error
// handling, and appends its changes to batch. It returns how many prefixes
// it added, or the error that must reset the session.
func (s *session) parseUpdate(hdr *bgp.BGPHeader, body []byte, rfs map[bgp.RouteFamily]bgp.BGPAddPathMode, batch *ribBatch) (int, error) {
	if e := checkMPAttrs(body); e != nil {
		return 0, e
	}
	codecBody, stripped := stripGenNLRI(body)
	if stripped {
		hdr = &bgp.BGPHeader{Marker: hdr.Marker, Len: uint16(headerLen + len(codecBody)), Type: hdr.Type}
	}
	m, err := parseBody(hdr, codecBody)
	handling, cause := bgp.ERROR_HANDLING_NONE, err
	if err != nil {
		var me *bgp.MessageError
		var cp errCodecPanic
		if errors.As(err, &cp) {
			s.rib.met.codecPanics.Inc()
			return 0, newNotify(bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_MALFORMED_ATTRIBUTE_LIST, "undecodable UPDATE: "+err.Error())
		}
		if !errors.As(err, &me) {
			return 0, newNotify(bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_MALFORMED_ATTRIBUTE_LIST, err.Error())
		}
		handling = me.ErrorHandling
	}
	var u *bgp.BGPUpdate
	if m != nil {
		u, _ = m.Body.(*bgp.BGPUpdate)
	}
	if u == nil {
		return 0, newNotify(bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_MALFORMED_ATTRIBUTE_LIST, "undecodable UPDATE")
	}
	if handling < bgp.ERROR_HANDLING_TREAT_AS_WITHDRAW {
		if ok, verr := validateUpdate(u, rfs, s.ebgp); !ok {
			var me *bgp.MessageError
			if errors.As(verr, new(errCodecPanic)) {
				s.rib.met.codecPanics.Inc()
			}
			if !errors.As(verr, &me) {
				me = &bgp.MessageError{ErrorHandling: bgp.ERROR_HANDLING_SESSION_RESET, Message: verr.Error()}
			}
			if me.ErrorHandling > handling {
				handling, cause = me.ErrorHandling, verr
			}
		}
	}
	if handling < bgp.ERROR_HANDLING_TREAT_AS_WITHDRAW {
		if h, gerr := checkGenNLRI(body); h > handling {
			handling, cause = h, gerr
		}
	}
	switch handling {
	case bgp.ERROR_HANDLING_SESSION_RESET, bgp.ERROR_HANDLING_AFISAFI_DISABLE:
		return 0, notifyFromMessageError(cause, bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_MALFORMED_ATTRIBUTE_LIST)
	case bgp.ERROR_HANDLING_TREAT_AS_WITHDRAW:
		s.rib.met.treatAsWithdraw.Inc()
		s.warn("malformed UPDATE treated as withdraw", logKeyErr, cause)
		return s.withdrawAll(u, body, batch)
	case bgp.ERROR_HANDLING_ATTRIBUTE_DISCARD:
		// The codec has left the attribute out of u.PathAttributes; the
		// routes are kept without it (RFC 7606 2).
		s.rib.met.attrDiscard.Inc()
		s.warn("malformed attribute discarded", logKeyErr, cause)
	}
	if eor, rf := u.IsEndOfRib(); eor && !stripped { // with NLRI stripped, it had routes
		if f, ok := familyOf(rf); ok {
			batch.eor = batch.eor.with(f)
		}
		return 0, nil
	}
	return s.convert(u, body, batch), nil
}

// convert appends a valid UPDATE's withdrawals and announcements.
func (s *session) convert(u *bgp.BGPUpdate, body []byte, batch *ribBatch) int {
	var nh netip.Addr
	var reach *bgp.PathAttributeMpReachNLRI
	var unreach *bgp.PathAttributeMpUnreachNLRI
	for _, pa := range u.PathAttributes {
		switch v := pa.(type) {
		case *bgp.PathAttributeNextHop:
			nh = addrFromIP(v.Value)
		case *bgp.PathAttributeMpReachNLRI:
			reach = v
		case *bgp.PathAttributeMpUnreachNLRI:
			unreach = v
		}
	}
	n := 0
	add := func(f family, a *attrs, keys []pfxKey) {
		if len(keys) > 0 {
			batch.updates = append(batch.updates, routeUpdate{fam: f, a: a, nlri: keys})
			n += len(keys)
		}
	}
	add(famV4, nil, v4Keys(u.WithdrawnRoutes))
	if unreach != nil {
		if f, ok := familyOf(bgp.AfiSafiToRouteFamily(unreach.AFI, unreach.SAFI)); ok && !f.generic() {
			add(f, nil, prefixKeys(f, unreach.Value))
		}
	}
	loop := s.isLoop(u.PathAttributes)
	n += s.convertGen(u, body, loop, batch)
	if len(u.NLRI) > 0 {
		var a *attrs
		if !loop && nh.Is4() {
			a = newAttrs(attrsInput{list: u.PathAttributes, nextHop: nh, fromEBGP: s.ebgp})
		}
		add(famV4, a, v4Keys(u.NLRI))
	}
	if reach != nil {
		if f, ok := familyOf(bgp.AfiSafiToRouteFamily(reach.AFI, reach.SAFI)); ok && !f.generic() {
			var a *attrs
			rnh, ll := mpNextHops(f, reach)
			if !loop && rnh.IsValid() {
				a = newAttrs(attrsInput{list: u.PathAttributes, nextHop: rnh, nextHopLL: ll, fromEBGP: s.ebgp})
			}
			add(f, a, prefixKeys(f, reach.Value))
		}
	}
	return n
}

// mpNextHops returns MP_REACH_NLRI's next hops when they suit family f.
func mpNextHops(f family, r *bgp.PathAttributeMpReachNLRI) (nh, ll netip.Addr) {
	a, ok := netip.AddrFromSlice(r.Nexthop)
	if !ok {
		return netip.Addr{}, netip.Addr{}
	}
	if f == famV4 {
		if a = a.Unmap(); !a.Is4() {
			return netip.Addr{}, netip.Addr{}
		}
		return a, netip.Addr{}
	}
	if a.Is4() || a.IsUnspecified() {
		return netip.Addr{}, netip.Addr{}
	}
	if l, ok := netip.AddrFromSlice(r.LinkLocalNexthop); ok && l.Is6() && !l.IsUnspecified() {
		ll = l
	}
	return a, ll
}

// isLoop applies loop detection: our AS in an eBGP route's AS_PATH (RFC
// 4271), our router id as ORIGINATOR_ID or our cluster id in CLUSTER_LIST
// (RFC 4456). Such routes are treated as withdrawn.
func (s *session) isLoop(list []bgp.PathAttributeInterface) bool {
	if s.ebgp {
		return asPathContains(list, s.local.asn)
	}
	for _, p := range list {
		switch v := p.(type) {
		case *bgp.PathAttributeOriginatorId:
			if ip4ToUint(v.Value) == s.local.routerID {
				return true
			}
		case *bgp.PathAttributeClusterList:
			for _, c := range v.Value {
				if ip4ToUint(c) == s.local.clusterID {
					return true
				}
			}
		}
	}
	return false
}

// withdrawAll implements treat-as-withdraw: every prefix of the UPDATE is
// withdrawn. The IPv4 fields are re-read from the raw body, since the codec
// stops decoding at some attribute errors.
func (s *session) withdrawAll(u *bgp.BGPUpdate, body []byte, batch *ribBatch) (int, error) {
	var keys []pfxKey
	collect := func(k pfxKey, _ uint32) { keys = append(keys, k) }
	if len(body) < 4 {
		return 0, newNotify(bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_MALFORMED_ATTRIBUTE_LIST, "short UPDATE")
	}
	wl := int(binary.BigEndian.Uint16(body))
	if 2+wl+2 > len(body) {
		return 0, newNotify(bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_MALFORMED_ATTRIBUTE_LIST, "bad withdrawn length")
	}
	al := int(binary.BigEndian.Uint16(body[2+wl:]))
	if 2+wl+2+al > len(body) {
		return 0, newNotify(bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_MALFORMED_ATTRIBUTE_LIST, "bad attribute length")
	}
	if parseNLRI(famV4, body[2:2+wl], false, collect) != nil || parseNLRI(famV4, body[4+wl+al:], false, collect) != nil {
		return 0, newNotify(bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_INVALID_NETWORK_FIELD, "bad NLRI")
	}
	n := len(keys)
	if n > 0 {
		batch.updates = append(batch.updates, routeUpdate{fam: famV4, nlri: keys})
	}
	for _, pa := range u.PathAttributes {
		var f bgp.RouteFamily
		var vals []bgp.AddrPrefixInterface
		switch v := pa.(type) {
		case *bgp.PathAttributeMpReachNLRI:
			f, vals = bgp.AfiSafiToRouteFamily(v.AFI, v.SAFI), v.Value
		case *bgp.PathAttributeMpUnreachNLRI:
			f, vals = bgp.AfiSafiToRouteFamily(v.AFI, v.SAFI), v.Value
		default:
			continue
		}
		if fam, ok := familyOf(f); ok && len(vals) > 0 && !fam.generic() {
			batch.updates = append(batch.updates, routeUpdate{fam: fam, nlri: prefixKeys(fam, vals)})
			n += len(vals)
		}
	}
	return n + withdrawGen(body, batch), nil
}

func v4Keys(ps []*bgp.IPAddrPrefix) []pfxKey {
	if len(ps) == 0 {
		return nil
	}
	keys := make([]pfxKey, 0, len(ps))
	for _, p := range ps {
		if k, ok := keyFromIP(famV4, p.Prefix, p.Length); ok {
			keys = append(keys, k)
		}
	}
	return keys
}

func prefixKeys(f family, ps []bgp.AddrPrefixInterface) []pfxKey {
	keys := make([]pfxKey, 0, len(ps))
	for _, p := range ps {
		var k pfxKey
		var ok bool
		switch v := p.(type) {
		case *bgp.IPAddrPrefix:
			k, ok = keyFromIP(f, v.Prefix, v.Length)
		case *bgp.IPv6AddrPrefix:
			k, ok = keyFromIP(f, v.Prefix, v.Length)
		}
		if ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// keyFromIP builds a masked key of family f from a codec prefix.
func keyFromIP(f family, ip net.IP, bits uint8) (pfxKey, bool) {
	if f == famV4 {
		ip4 := ip.To4()
		if ip4 == nil || bits > 32 {
			return pfxKey{}, false
		}
		return keyOf(netip.PrefixFrom(netip.AddrFrom4([4]byte(ip4)), int(bits))), true
	}
	ip16 := ip.To16()
	if ip16 == nil || bits > 128 {
		return pfxKey{}, false
	}
	return keyOf(netip.PrefixFrom(netip.AddrFrom16([16]byte(ip16)), int(bits))), true
}
