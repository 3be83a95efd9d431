package topology

import (
	"math/big"
	"net/netip"
)

// subnet returns the i-th subnet of length bits inside p.
func subnet(p netip.Prefix, bits, i int) (netip.Prefix, bool) {
	if bits < p.Bits() || i < 0 || (bits-p.Bits() < 62 && i >= 1<<(bits-p.Bits())) {
		return netip.Prefix{}, false
	}
	n := new(big.Int).Lsh(big.NewInt(int64(i)), uint(p.Addr().BitLen()-bits))
	a, ok := addInt(p.Masked().Addr(), n)
	if !ok {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, bits), true
}

// lastSubnet returns the address of the last subnet of length bits in p.
func lastSubnet(p netip.Prefix, bits int) netip.Addr {
	s, _ := subnet(p, bits, 1<<min(bits-p.Bits(), 30)-1)
	return s.Addr()
}

// host returns the i-th host address of p (1 is the first after the
// network address) with p's length, refusing the broadcast address of an
// IPv4 subnet.
func host(p netip.Prefix, i int) (netip.Prefix, bool) {
	hostBits := p.Addr().BitLen() - p.Bits()
	if i < 1 || (hostBits < 62 && i >= 1<<hostBits-1) {
		return netip.Prefix{}, false
	}
	a, ok := addInt(p.Masked().Addr(), big.NewInt(int64(i)))
	if !ok {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, p.Bits()), true
}

// pointToPoint returns end i (1 or 2) of a /31, /127 or /30, /126 link.
func pointToPoint(p netip.Prefix, i int) (netip.Prefix, bool) {
	off := i - 1
	if p.Addr().BitLen()-p.Bits() == 2 {
		off = i
	}
	a, ok := addInt(p.Masked().Addr(), big.NewInt(int64(off)))
	return netip.PrefixFrom(a, p.Bits()), ok
}

func addInt(a netip.Addr, n *big.Int) (netip.Addr, bool) {
	v := new(big.Int).SetBytes(a.AsSlice())
	v.Add(v, n)
	b := v.Bytes()
	size := a.BitLen() / 8
	if len(b) > size {
		return netip.Addr{}, false
	}
	buf := make([]byte, size)
	copy(buf[size-len(b):], b)
	out, _ := netip.AddrFromSlice(buf)
	return out, true
}
