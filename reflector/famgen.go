package reflector

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// Generic families. The reflector carries the families it does not need to
// understand (EVPN, VPN, labeled unicast, flowspec, RTC) in generic tables:
// a route is keyed by the bytes of its NLRI that identify it, as each RFC
// defines, and the rest of the NLRI (labels, and for EVPN the ESI and
// gateway) is an attribute of the path, kept in its interned attrs (extra).
// The key's first byte says how to put the NLRI together again (genJoin).
//
//   - L2VPN EVPN (RFC 7432 7, RFC 9136 3): the route type and RD always;
//     type 1: ESI, Ethernet tag (the label is extra); type 2: Ethernet tag,
//     MAC, IP (ESI and labels extra); type 3 and 4: all of it; type 5:
//     Ethernet tag, prefix (ESI, gateway and label extra). A route of
//     type 1 to 5 whose fields do not add up is malformed; one of a later
//     type (RFC 9251 and others) is keyed by all of its bytes, so that it
//     is reflected as it is.
//   - VPN (RFC 4364, 4659, 8277): RD and prefix; the label is extra.
//   - Labeled unicast (RFC 8277): the prefix; the label is extra.
//   - Flowspec (RFC 8955, 8956): all components, which must be well
//     formed and in strictly increasing type order.
//   - RTC (RFC 4684): the prefix (origin AS and route target).
//
// Without the Multiple Labels capability (RFC 8277 2.1), which the
// reflector does not advertise, a labeled NLRI carries exactly one label.

// Key forms (the key's first byte).
const (
	genWhole    byte = iota // the key is the NLRI's value; no extra
	genPrefix               // VPN, labeled unicast: prefix length, [RD,] prefix; extra: the label
	genEVPNTail             // EVPN type 1: type, RD ESI tag; extra appended (label)
	genEVPNESI              // EVPN types 2 and 5: type, RD, fields after the ESI; extra: ESI, then the tail
)

const (
	labelLen     = 3
	rdLen        = 8
	esiLen       = 10
	withdrawnLbl = 0x800000 // RFC 8277 2.4
)

// genFrame returns the length of the NLRI at the start of data (family
// f, without a path identifier), or false when it overruns data.
func genFrame(f family, data []byte) (int, bool) {
	if len(data) < 1 {
		return 0, false
	}
	var n int
	switch f {
	case famEVPN:
		if len(data) < 2 {
			return 0, false
		}
		n = 2 + int(data[1])
	case famFSv4, famFSv6:
		n = 1 + int(data[0])
		if data[0] >= 0xf0 {
			if len(data) < 2 {
				return 0, false
			}
			n = 2 + int(binary.BigEndian.Uint16(data)&0x0fff)
		}
	default:
		n = 1 + (int(data[0])+7)/8
	}
	return n, n <= len(data)
}

// genSplit splits one whole NLRI of family f into key and extra. It
// returns false for an NLRI its family's rules refuse (RFC 7606 5.3:
// the caller treats the UPDATE as withdrawing what it can).
func genSplit(f family, nlri []byte) (key, extra []byte, ok bool) {
	switch f {
	case famEVPN:
		return evpnSplit(nlri)
	case famFSv4, famFSv6:
		hl := 1
		if nlri[0] >= 0xf0 {
			hl = 2
		}
		if !flowspecValid(f, nlri[hl:]) {
			return nil, nil, false
		}
		return append([]byte{genWhole}, nlri[hl:]...), nil, true
	case famRTC:
		bits := int(nlri[0])
		if bits != 0 && (bits < 32 || bits > 96) {
			return nil, nil, false
		}
		return maskedPrefix([]byte{genWhole, byte(bits)}, bits, nlri[1:]), nil, true
	}
	// VPN and labeled unicast: bits covers the label, [the RD,] the prefix.
	bits := int(nlri[0])
	fixed := labelLen * 8
	maxBits := 32
	if f == famVPNv4 || f == famVPNv6 {
		fixed += rdLen * 8
	}
	if f == famVPNv6 || f == famLUv6 {
		maxBits = 128
	}
	if bits < fixed || bits-fixed > maxBits {
		return nil, nil, false
	}
	body := nlri[1+labelLen:]
	key = []byte{genPrefix, byte(bits - fixed)}
	if f == famVPNv4 || f == famVPNv6 {
		key = append(key, body[:rdLen]...)
		body = body[rdLen:]
	}
	return maskedPrefix(key, bits-fixed, body), nlri[1 : 1+labelLen], true
}

// maskedPrefix appends the first bits of p, host bits cleared.
func maskedPrefix(dst []byte, bits int, p []byte) []byte {
	n := (bits + 7) / 8
	start := len(dst)
	dst = append(dst, p[:n]...)
	if r := bits % 8; r != 0 {
		dst[start+n-1] &= byte(0xff << (8 - r))
	}
	return dst
}

// evpnSplit splits an EVPN NLRI (type, length, value).
func evpnSplit(nlri []byte) (key, extra []byte, ok bool) {
	typ, v := nlri[0], nlri[2:]
	whole := func() ([]byte, []byte, bool) { return nil, nil, false } // malformed
	switch typ {
	case bgp.EVPN_ROUTE_TYPE_ETHERNET_AUTO_DISCOVERY: // RD, ESI, tag, label
		if len(v) != rdLen+esiLen+4+labelLen {
			return whole()
		}
		return append([]byte{genEVPNTail, typ}, v[:rdLen+esiLen+4]...), v[rdLen+esiLen+4:], true
	case bgp.EVPN_ROUTE_TYPE_MAC_IP_ADVERTISEMENT: // RD, ESI, tag, MAC len, MAC, IP len, IP, label 1, [label 2]
		const macAt = rdLen + esiLen + 4
		if len(v) < macAt+1+6+1 || v[macAt] != 48 {
			return whole()
		}
		ipLen := int(v[macAt+7])
		if ipLen != 0 && ipLen != 32 && ipLen != 128 {
			return whole()
		}
		end := macAt + 8 + ipLen/8
		if tail := len(v) - end; tail != labelLen && tail != 2*labelLen {
			return whole()
		}
		return evpnESISplit(typ, v, end)
	case bgp.EVPN_IP_PREFIX: // RD, ESI, tag, prefix length, prefix, gateway, label
		const pfxAt = rdLen + esiLen + 4
		ipLen := 4
		switch len(v) {
		case pfxAt + 1 + 4 + 4 + labelLen:
		case pfxAt + 1 + 16 + 16 + labelLen:
			ipLen = 16
		default:
			return whole()
		}
		if int(v[pfxAt]) > 8*ipLen {
			return whole()
		}
		return evpnESISplit(typ, v, pfxAt+1+ipLen)
	case bgp.EVPN_INCLUSIVE_MULTICAST_ETHERNET_TAG: // RD, tag, IP length, IP
		if !evpnIPFits(v, rdLen+4) {
			return whole()
		}
	case bgp.EVPN_ETHERNET_SEGMENT_ROUTE: // RD, ESI, IP length, IP
		if !evpnIPFits(v, rdLen+esiLen) {
			return whole()
		}
	}
	return append([]byte{genWhole}, nlri...), nil, true
}

// evpnIPFits reports whether v ends with an IP length at at and an IPv4
// or IPv6 address of that length.
func evpnIPFits(v []byte, at int) bool {
	if len(v) <= at {
		return false
	}
	switch v[at] {
	case 32:
		return len(v) == at+1+4
	case 128:
		return len(v) == at+1+16
	}
	return false
}

// flowspecValid checks a flowspec NLRI's components (RFC 8955 4.2, RFC
// 8956 3): known types in strictly increasing order, prefixes within
// their family's length, operator lists that end.
func flowspecValid(f family, v []byte) bool {
	maxType, maxBits := byte(12), 32
	if f == famFSv6 {
		maxType, maxBits = 13, 128
	}
	last := byte(0)
	for len(v) > 0 {
		typ := v[0]
		if typ <= last || typ > maxType {
			return false
		}
		last, v = typ, v[1:]
		if typ == 1 || typ == 2 { // destination, source prefix
			hl := 1
			if f == famFSv6 {
				hl = 2 // length, offset
			}
			if len(v) < hl || int(v[0]) > maxBits || (hl == 2 && v[1] > v[0]) {
				return false
			}
			n := hl + (int(v[0])+7)/8
			if f == famFSv6 {
				n = hl + (int(v[0])-int(v[1])+7)/8
			}
			if len(v) < n {
				return false
			}
			v = v[n:]
			continue
		}
		for { // operator, value pairs until the end-of-list bit
			if len(v) < 1 {
				return false
			}
			op := v[0]
			n := 1 + 1<<((op>>4)&3)
			if len(v) < n {
				return false
			}
			v = v[n:]
			if op&0x80 != 0 {
				break
			}
		}
	}
	return last != 0
}

// evpnESISplit keys an EVPN route on its RD and v[rd+esi:end]; the ESI
// and what follows end are extra.
func evpnESISplit(typ byte, v []byte, end int) ([]byte, []byte, bool) {
	key := make([]byte, 0, 2+rdLen+end-rdLen-esiLen)
	key = append(append(append(key, genEVPNESI, typ), v[:rdLen]...), v[rdLen+esiLen:end]...)
	extra := make([]byte, 0, esiLen+len(v)-end)
	extra = append(append(extra, v[rdLen:rdLen+esiLen]...), v[end:]...)
	return key, extra, true
}

// zeros is the longest extra of a withdrawal.
const zeros = "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// genWithdrawExtra is the extra of a withdrawal: zero ESI and gateway, the
// withdrawn label (their values do not matter to the receiver).
func genWithdrawExtra(key string) string {
	switch key[0] {
	case genPrefix:
		return "\x80\x00\x00"
	case genEVPNTail:
		return zeros[:labelLen]
	case genEVPNESI:
		n := esiLen + labelLen
		if key[1] == bgp.EVPN_IP_PREFIX {
			n += len(key) - 2 - rdLen - 4 - 1 // the gateway is as long as the prefix
		}
		return zeros[:n]
	}
	return ""
}

// genLen returns the encoded length of the NLRI of key with extra.
func genLen(f family, key, extra string) int {
	switch key[0] {
	case genWhole:
		n := len(key) - 1
		switch f {
		case famFSv4, famFSv6:
			if n >= 0xf0 {
				return n + 2
			}
			return n + 1
		}
		return n // EVPN, RTC: the key holds the whole NLRI
	case genPrefix:
		return len(key) - 1 + len(extra)
	}
	return len(key) + len(extra) // EVPN: type, length, fields
}

// genJoin appends the NLRI of key with extra.
func genJoin(dst []byte, f family, key, extra string) []byte {
	switch key[0] {
	case genWhole:
		switch f {
		case famFSv4, famFSv6:
			if n := len(key) - 1; n >= 0xf0 {
				dst = binary.BigEndian.AppendUint16(dst, 0xf000|uint16(n))
			} else {
				dst = append(dst, byte(n))
			}
		}
		return append(dst, key[1:]...)
	case genPrefix:
		fixed := labelLen * 8
		if f == famVPNv4 || f == famVPNv6 {
			fixed += rdLen * 8
		}
		dst = append(dst, key[1]+byte(fixed))
		dst = append(dst, extra...)
		return append(dst, key[2:]...)
	case genEVPNTail:
		dst = append(dst, key[1], byte(len(key)-2+len(extra)))
		dst = append(dst, key[2:]...)
		return append(dst, extra...)
	}
	// genEVPNESI
	dst = append(dst, key[1], byte(len(key)-2+len(extra)))
	dst = append(dst, key[2:2+rdLen]...)
	dst = append(dst, extra[:esiLen]...)
	dst = append(dst, key[2+rdLen:]...)
	return append(dst, extra[esiLen:]...)
}

// FamilySet is a set of address families, as neighbours and ranges are
// configured with; the zero set means IPv4 and IPv6 unicast.
type FamilySet uint16

// FamilyNames are the names of the families the reflector carries, in
// the order ParseFamilies and String use.
func FamilyNames() []string {
	names := make([]string, numFamilies)
	for f := range numFamilies {
		names[f] = f.String()
	}
	return names
}

// ParseFamilies returns the set of the named families. Its error starts
// with the failing index ("[1]: ...") for the caller's field path.
func ParseFamilies(names []string) (FamilySet, error) {
	s, i, err := parseFamilies(names)
	if err != nil {
		return 0, fmt.Errorf("[%d]: %w", i, err)
	}
	return s, nil
}

// parseFamilies is ParseFamilies with the failing index apart.
func parseFamilies(names []string) (FamilySet, int, error) {
	var seen families
	for i, name := range names {
		f, ok := familyByName(name)
		if !ok {
			return 0, i, fmt.Errorf("unknown family %q (known: %s)", name, strings.Join(FamilyNames(), ", "))
		}
		if seen.has(f) {
			return 0, i, fmt.Errorf("%s is listed twice", name)
		}
		seen = seen.with(f)
	}
	return FamilySet(seen), 0, nil
}

// Names returns the set's family names (the default's when zero).
func (s FamilySet) Names() []string {
	var names []string
	for f := range numFamilies {
		if s.families().has(f) {
			names = append(names, f.String())
		}
	}
	return names
}

func (s FamilySet) families() families {
	if s == 0 {
		return unicastFamilies
	}
	return families(s) & (1<<numFamilies - 1)
}

// families returns the neighbour's configured families.
func (n *NeighborConfig) families() families { return n.Families.families() }
