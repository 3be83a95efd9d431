package reflector

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// family is an address family the reflector carries.
type family uint8

const (
	famV4 family = iota
	famV6
	numFamilies
)

func (f family) String() string {
	if f == famV6 {
		return "ipv6-unicast"
	}
	return "ipv4-unicast"
}

func (f family) routeFamily() bgp.RouteFamily {
	if f == famV6 {
		return bgp.RF_IPv6_UC
	}
	return bgp.RF_IPv4_UC
}

func familyOf(rf bgp.RouteFamily) (family, bool) {
	switch rf {
	case bgp.RF_IPv4_UC:
		return famV4, true
	case bgp.RF_IPv6_UC:
		return famV6, true
	}
	return 0, false
}

// families is a set of families.
type families uint8

func (s families) has(f family) bool { return s&(1<<f) != 0 }
func (s families) with(f family) families {
	return s | 1<<f
}

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
