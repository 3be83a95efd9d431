package reflector

import (
	"encoding/binary"
	"fmt"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// GoBGP's codec trusts some lengths it has not checked, and a peer's bytes
// can make it index past a slice (an MP_REACH_NLRI shorter than its fixed
// fields). Two guards keep such input from costing more than the session:
// checkMPAttrs finds the known cases before the codec sees them and names
// the right NOTIFICATION, and parseBody turns any other codec panic into
// an UPDATE Message Error for this session alone.

// checkMPAttrs walks an UPDATE body's attributes the way the codec does
// and checks the fixed parts of MP_REACH_NLRI and MP_UNREACH_NLRI. The
// codec reads each attribute from the rest of the body, not only from the
// attribute list: an attribute whose length overruns the list is decoded
// all the same (and the list's remaining length wraps around), so the walk
// does that too. Framing errors are left to the codec, which reports them
// with RFC 7606 handling. A short MP attribute is an UPDATE Message Error,
// Optional Attribute Error, with the attribute as data (RFC 4760 7; RFC
// 7606 7.11 allows no treat-as-withdraw, since its NLRI cannot be located).
func checkMPAttrs(body []byte) *notifyError {
	if len(body) < 4 {
		return nil
	}
	wl := int(binary.BigEndian.Uint16(body))
	if 2+wl+2 > len(body) {
		return nil
	}
	pathlen := binary.BigEndian.Uint16(body[2+wl:])
	data := body[4+wl:]
	if int(pathlen) > len(data) {
		return nil
	}
	for pathlen >= 3 {
		if len(data) < 3 {
			return nil
		}
		flags, typ := bgp.BGPAttrFlag(data[0]), bgp.BGPAttrType(data[1])
		hl, vl := 3, int(data[2])
		if flags&bgp.BGP_ATTR_FLAG_EXTENDED_LENGTH != 0 {
			if len(data) < 4 {
				return nil
			}
			hl, vl = 4, int(binary.BigEndian.Uint16(data[2:]))
		}
		if hl+vl > len(data) {
			return nil
		}
		v := data[hl : hl+vl]
		var msg string
		switch typ {
		case bgp.BGP_ATTR_TYPE_MP_REACH_NLRI:
			// AFI (2), SAFI (1), next hop length (1), next hop, reserved (1).
			if len(v) < 5 || 4+int(v[3])+1 > len(v) {
				msg = fmt.Sprintf("MP_REACH_NLRI of %d bytes is shorter than its fixed fields", len(v))
			}
		case bgp.BGP_ATTR_TYPE_MP_UNREACH_NLRI:
			if len(v) < 3 {
				msg = fmt.Sprintf("MP_UNREACH_NLRI of %d bytes is shorter than its fixed fields", len(v))
			}
		}
		if msg != "" {
			e := newNotify(bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_OPTIONAL_ATTRIBUTE_ERROR, msg)
			e.data = append([]byte(nil), data[:hl+vl]...)
			return e
		}
		pathlen -= uint16(hl + vl) // wraps as the codec's does
		data = data[hl+vl:]
	}
	return nil
}

// errCodecPanic marks a message the codec panicked on.
type errCodecPanic struct{ v any }

func (e errCodecPanic) Error() string { return fmt.Sprintf("codec panic: %v", e.v) }

// parseBody is bgp.ParseBGPBody with any panic turned into an error.
func parseBody(hdr *bgp.BGPHeader, body []byte) (m *bgp.BGPMessage, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, errCodecPanic{r}
		}
	}()
	return bgp.ParseBGPBody(hdr, body)
}

// validateUpdate is bgp.ValidateUpdateMsg with any panic turned into an
// error.
func validateUpdate(u *bgp.BGPUpdate, rfs map[bgp.RouteFamily]bgp.BGPAddPathMode, ebgp bool) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, errCodecPanic{r}
		}
	}()
	return bgp.ValidateUpdateMsg(u, rfs, ebgp, false, true)
}
