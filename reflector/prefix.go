package reflector

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// family is an address family the reflector carries. The unicast
// families have their own compact keys (pfxKey); the others are generic
// (famgen.go): keyed by the bytes of their NLRI that identify the route.
type family uint8

const (
	famV4 family = iota
	famV6
	famEVPN  // L2VPN EVPN, AFI 25 SAFI 70 (RFC 7432, 9136)
	famVPNv4 // AFI 1 SAFI 128 (RFC 4364)
	famVPNv6 // AFI 2 SAFI 128 (RFC 4659)
	famLUv4  // AFI 1 SAFI 4 (RFC 8277)
	famLUv6  // AFI 2 SAFI 4
	famFSv4  // AFI 1 SAFI 133 (RFC 8955)
	famFSv6  // AFI 2 SAFI 133 (RFC 8956)
	famRTC   // AFI 1 SAFI 132 (RFC 4684)
	numFamilies

	numUnicast = famV6 + 1 // the unicast families come first
)

// familyInfo names a family (in configuration, metrics and status: these
// names are the only family label values) and gives its codec family.
var familyInfo = [numFamilies]struct {
	name string
	rf   bgp.RouteFamily
}{
	famV4:    {"ipv4-unicast", bgp.RF_IPv4_UC},
	famV6:    {"ipv6-unicast", bgp.RF_IPv6_UC},
	famEVPN:  {"l2vpn-evpn", bgp.RF_EVPN},
	famVPNv4: {"ipv4-vpn", bgp.RF_IPv4_VPN},
	famVPNv6: {"ipv6-vpn", bgp.RF_IPv6_VPN},
	famLUv4:  {"ipv4-labeled-unicast", bgp.RF_IPv4_MPLS},
	famLUv6:  {"ipv6-labeled-unicast", bgp.RF_IPv6_MPLS},
	famFSv4:  {"ipv4-flowspec", bgp.RF_FS_IPv4_UC},
	famFSv6:  {"ipv6-flowspec", bgp.RF_FS_IPv6_UC},
	famRTC:   {"rtc", bgp.RF_RTC_UC},
}

func (f family) String() string { return familyInfo[f].name }

func (f family) routeFamily() bgp.RouteFamily { return familyInfo[f].rf }

// generic reports whether f is kept in a generic table (famgen.go).
func (f family) generic() bool { return f > famV6 }

func familyOf(rf bgp.RouteFamily) (family, bool) {
	for f := range numFamilies {
		if familyInfo[f].rf == rf {
			return f, true
		}
	}
	return 0, false
}

// familyByName returns the family of a configuration name.
func familyByName(name string) (family, bool) {
	for f := range numFamilies {
		if familyInfo[f].name == name {
			return f, true
		}
	}
	return 0, false
}

// families is a set of families.
type families uint16

func (s families) has(f family) bool { return s&(1<<f) != 0 }
func (s families) with(f family) families {
	return s | 1<<f
}

// unicastFamilies are the families configured when none are.
var unicastFamilies = families(0).with(famV4).with(famV6)

// allFamilies are all the families the reflector carries.
const allFamilies = families(1<<numFamilies - 1)

// pfxKey is a pointer-free prefix key, so that maps of millions of them cost
// the garbage collector nothing to scan. IPv4 addresses sit in the top 32
// bits of hi.
type pfxKey struct {
	hi, lo uint64
	bits   uint8
}

func keyOf(p netip.Prefix) pfxKey {
	p = p.Masked()
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		return pfxKey{hi: uint64(binary.BigEndian.Uint32(b[:])) << 32, bits: uint8(p.Bits())}
	}
	b := a.As16()
	return pfxKey{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:]), bits: uint8(p.Bits())}
}

func (k pfxKey) bytes() [16]byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return b
}

func (k pfxKey) prefix(f family) netip.Prefix {
	b := k.bytes()
	if f == famV4 {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte(b[:4])), int(k.bits))
	}
	return netip.PrefixFrom(netip.AddrFrom16(b), int(k.bits))
}

// nlriLen is the encoded length of the prefix, with a path identifier when
// addPath is set.
func (k pfxKey) nlriLen(addPath bool) int {
	n := 1 + (int(k.bits)+7)/8
	if addPath {
		n += 4
	}
	return n
}

// appendNLRI appends the RFC 4271 (and RFC 7911 with addPath) encoding.
func (k pfxKey) appendNLRI(dst []byte, addPath bool, pathID uint32) []byte {
	if addPath {
		dst = binary.BigEndian.AppendUint32(dst, pathID)
	}
	b := k.bytes()
	return append(append(dst, k.bits), b[:(int(k.bits)+7)/8]...)
}

var errBadNLRI = errors.New("malformed NLRI")

// parseNLRI decodes a run of NLRI of family f, calling fn for each. It never
// panics on any input.
func parseNLRI(f family, data []byte, addPath bool, fn func(k pfxKey, pathID uint32)) error {
	maxBits := 32
	if f == famV6 {
		maxBits = 128
	}
	for len(data) > 0 {
		var id uint32
		if addPath {
			if len(data) < 4 {
				return errBadNLRI
			}
			id = binary.BigEndian.Uint32(data)
			data = data[4:]
		}
		if len(data) < 1 {
			return errBadNLRI
		}
		bits := int(data[0])
		n := (bits + 7) / 8
		if bits > maxBits || len(data) < 1+n {
			return errBadNLRI
		}
		var b [16]byte
		copy(b[:], data[1:1+n])
		if r := bits % 8; r != 0 {
			b[n-1] &= byte(0xff << (8 - r))
		}
		fn(pfxKey{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:]), bits: uint8(bits)}, id)
		data = data[1+n:]
	}
	return nil
}
