package reflector

import (
	"encoding/binary"
	"fmt"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// The reader's side of the generic families: their routes are read from
// the UPDATE's raw MP_(UN)REACH_NLRI bytes, after the codec has decoded
// (and so validated) the message, so that keys and extras are the bytes
// as sent.

// mpAttr is one raw MP_REACH_NLRI or MP_UNREACH_NLRI value.
type mpAttr struct {
	reach bool
	fam   family
	nh    []byte // MP_REACH_NLRI's next hop field
	nlri  []byte
}

// genAttrs returns the UPDATE body's MP attributes of generic families.
// A value too short for its fixed fields is left out (checkMPAttrs has
// refused those before).
func genAttrs(body []byte) []mpAttr {
	if len(body) < 4 {
		return nil
	}
	wl := int(binary.BigEndian.Uint16(body))
	if 2+wl+2 > len(body) {
		return nil
	}
	al := int(binary.BigEndian.Uint16(body[2+wl:]))
	data := body[4+wl:]
	if al < len(data) {
		data = data[:al]
	}
	var out []mpAttr
	for len(data) >= 3 {
		flags, typ := bgp.BGPAttrFlag(data[0]), bgp.BGPAttrType(data[1])
		hl, vl := 3, int(data[2])
		if flags&bgp.BGP_ATTR_FLAG_EXTENDED_LENGTH != 0 {
			if len(data) < 4 {
				break
			}
			hl, vl = 4, int(binary.BigEndian.Uint16(data[2:]))
		}
		if hl+vl > len(data) {
			break
		}
		v := data[hl : hl+vl]
		data = data[hl+vl:]
		if (typ != bgp.BGP_ATTR_TYPE_MP_REACH_NLRI && typ != bgp.BGP_ATTR_TYPE_MP_UNREACH_NLRI) || len(v) < 3 {
			continue
		}
		f, ok := familyOf(bgp.AfiSafiToRouteFamily(binary.BigEndian.Uint16(v), v[2]))
		if !ok || !f.generic() {
			continue
		}
		a := mpAttr{reach: typ == bgp.BGP_ATTR_TYPE_MP_REACH_NLRI, fam: f, nlri: v[3:]}
		if a.reach {
			if len(v) < 5 || 4+int(v[3])+1 > len(v) {
				continue
			}
			a.nh = v[4 : 4+int(v[3])]
			a.nlri = v[4+int(v[3])+1:]
		}
		out = append(out, a)
	}
	return out
}

// stripGenNLRI returns a copy of an UPDATE body without the NLRI of its
// generic families' MP attributes (their AFI, SAFI and next hop stay), for
// the codec: the reflector reads those NLRI from the raw bytes itself
// (genSplit checks them), and the codec's decoding of them into objects
// cost half of the time to read an EVPN UPDATE. It returns body itself,
// and false, when there is nothing to strip or the attributes do not
// frame exactly (the codec then sees and judges the message as sent).
func stripGenNLRI(body []byte) ([]byte, bool) {
	if len(body) < 4 {
		return body, false
	}
	wl := int(binary.BigEndian.Uint16(body))
	if 2+wl+2 > len(body) {
		return body, false
	}
	al := int(binary.BigEndian.Uint16(body[2+wl:]))
	if 4+wl+al > len(body) {
		return body, false
	}
	data := body[4+wl : 4+wl+al]
	type cut struct{ at, n, lenAt int } // NLRI at..at+n of data; the attribute's length field
	var cuts []cut
	for off := 0; off < len(data); {
		if len(data)-off < 3 {
			return body, false
		}
		flags, typ := bgp.BGPAttrFlag(data[off]), bgp.BGPAttrType(data[off+1])
		hl, vl := 3, int(data[off+2])
		if flags&bgp.BGP_ATTR_FLAG_EXTENDED_LENGTH != 0 {
			if len(data)-off < 4 {
				return body, false
			}
			hl, vl = 4, int(binary.BigEndian.Uint16(data[off+2:]))
		}
		if off+hl+vl > len(data) {
			return body, false
		}
		v := data[off+hl : off+hl+vl]
		if (typ == bgp.BGP_ATTR_TYPE_MP_REACH_NLRI || typ == bgp.BGP_ATTR_TYPE_MP_UNREACH_NLRI) && len(v) >= 3 && hl == 4 {
			if f, ok := familyOf(bgp.AfiSafiToRouteFamily(binary.BigEndian.Uint16(v), v[2])); ok && f.generic() {
				fixed := 3
				if typ == bgp.BGP_ATTR_TYPE_MP_REACH_NLRI {
					if len(v) < 5 || 4+int(v[3])+1 > len(v) {
						return body, false
					}
					fixed = 4 + int(v[3]) + 1
				}
				if n := len(v) - fixed; n > 0 {
					cuts = append(cuts, cut{at: off + hl + fixed, n: n, lenAt: off + 2})
				}
			}
		}
		off += hl + vl
	}
	if len(cuts) == 0 {
		return body, false
	}
	out := make([]byte, 0, len(body))
	out = append(out, body[:4+wl]...)
	removed, prev := 0, 0
	for _, c := range cuts {
		start := len(out) - prev // data offset 0 in out
		out = append(out, data[prev:c.at]...)
		l := int(binary.BigEndian.Uint16(data[c.lenAt:])) - c.n
		binary.BigEndian.PutUint16(out[start+c.lenAt:], uint16(l))
		prev = c.at + c.n
		removed += c.n
	}
	out = append(out, data[prev:]...)
	out = append(out, body[4+wl+al:]...)
	binary.BigEndian.PutUint16(out[2+wl:], uint16(al-removed))
	return out, true
}

// eachGen calls fn for each NLRI of a; it stops at the first whose
// framing overruns the attribute and returns false.
func (a *mpAttr) eachGen(fn func(nlri []byte)) bool {
	data := a.nlri
	for len(data) > 0 {
		n, ok := genFrame(a.fam, data)
		if !ok {
			return false
		}
		fn(data[:n])
		data = data[n:]
	}
	return true
}

// checkGenNLRI applies RFC 7606 to the generic families' NLRI: one that
// cannot be framed hides the rest of the attribute, so its family is
// disabled (the reflector resets the session, which RFC 7606 3 (j)
// allows); one that is framed but breaks its family's rules makes the
// UPDATE treat-as-withdraw (RFC 7606 5.3).
func checkGenNLRI(body []byte) (bgp.ErrorHandling, error) {
	h, cause := bgp.ERROR_HANDLING_NONE, error(nil)
	for _, a := range genAttrs(body) {
		bad := 0
		framed := a.eachGen(func(nlri []byte) {
			if _, _, ok := genSplit(a.fam, nlri); !ok {
				bad++
			}
		})
		switch {
		case !framed:
			return bgp.ERROR_HANDLING_AFISAFI_DISABLE, bgp.NewMessageError(bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR,
				bgp.BGP_ERROR_SUB_OPTIONAL_ATTRIBUTE_ERROR, nil, fmt.Sprintf("%s NLRI overruns its attribute", a.fam))
		case bad > 0:
			h, cause = bgp.ERROR_HANDLING_TREAT_AS_WITHDRAW, fmt.Errorf("%d malformed %s NLRI", bad, a.fam)
		}
	}
	return h, cause
}

// convertGen appends a valid UPDATE's routes of generic families to batch
// and returns how many. loop: the UPDATE failed loop detection, so its
// routes are withdrawn.
func (s *session) convertGen(u *bgp.BGPUpdate, body []byte, loop bool, batch *ribBatch) int {
	n := 0
	for _, a := range genAttrs(body) {
		if !a.reach || loop {
			keys := genKeys(&a)
			if len(keys) > 0 {
				batch.updates = append(batch.updates, routeUpdate{fam: a.fam, keys: keys})
				n += len(keys)
			}
			continue
		}
		// Routes whose extras differ (labels, ESIs) have different attrs:
		// one run per extra.
		runs := map[string]int{}
		a.eachGen(func(nlri []byte) {
			key, extra, ok := genSplit(a.fam, nlri)
			if !ok {
				return // checkGenNLRI made the UPDATE treat-as-withdraw
			}
			i, seen := runs[string(extra)]
			if !seen {
				i = len(batch.updates)
				runs[string(extra)] = i
				at := newAttrs(attrsInput{list: u.PathAttributes, fromEBGP: s.ebgp, gen: true, rawNH: a.nh, extra: extra})
				batch.updates = append(batch.updates, routeUpdate{fam: a.fam, a: at})
			}
			batch.updates[i].keys = append(batch.updates[i].keys, key)
			n++
		})
	}
	return n
}

// genKeys returns the keys of a's routes that can be keyed.
func genKeys(a *mpAttr) [][]byte {
	var keys [][]byte
	a.eachGen(func(nlri []byte) {
		if key, _, ok := genSplit(a.fam, nlri); ok {
			keys = append(keys, key)
		}
	})
	return keys
}

// withdrawGen implements treat-as-withdraw for the generic families: every
// route of the UPDATE that can be keyed is withdrawn.
func withdrawGen(body []byte, batch *ribBatch) int {
	n := 0
	for _, a := range genAttrs(body) {
		if keys := genKeys(&a); len(keys) > 0 {
			batch.updates = append(batch.updates, routeUpdate{fam: a.fam, keys: keys})
			n += len(keys)
		}
	}
	return n
}
