package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
)

// builder assembles one rule's expressions. Its text and references are
// derived from them (ruleText, exprRefs), so that what the golden files
// show is what the kernel gets.
type builder struct {
	exprs []expr.Any
}

// Kernel constants (linux/netfilter.h, linux/if.h, nf_tables.h), written
// out so that the package needs no direct golang.org/x/sys dependency.
const (
	ifNameSize    = 16 // IFNAMSIZ
	nfprotoIPv4   = 2  // NFPROTO_IPV4
	nfprotoIPv6   = 10 // NFPROTO_IPV6
	nftaLogPrefix = 2  // NFTA_LOG_PREFIX
)

const (
	reg1   = 1 // NFT_REG_1, 16 bytes
	reg32a = 8 // NFT_REG32_00, the first 4-byte register, for concatenations
)

func (b *builder) add(es ...expr.Any) *builder {
	b.exprs = append(b.exprs, es...)
	return b
}

func (b *builder) rule() *Rule {
	return &Rule{Text: ruleText(b.exprs), Exprs: b.exprs, Refs: exprRefs(b.exprs)}
}

func cmpOp(neg bool) expr.CmpOp {
	if neg {
		return expr.CmpOpNeq
	}
	return expr.CmpOpEq
}

// ifname pads an interface name as the kernel compares it; a name ending
// in "*" is a prefix match.
func ifname(name string) []byte {
	if p, ok := strings.CutSuffix(name, "*"); ok {
		return []byte(p)
	}
	b := make([]byte, ifNameSize)
	copy(b, name)
	return b
}

func (b *builder) iifname(name string) *builder {
	return b.add(&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: ifname(name)})
}

func (b *builder) oifname(name string) *builder {
	return b.add(&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: ifname(name)})
}

// vmap dispatches by interface name through a named verdict map.
func (b *builder) vmap(in bool, set string) *builder {
	key := expr.MetaKeyOIFNAME
	if in {
		key = expr.MetaKeyIIFNAME
	}
	return b.add(&expr.Meta{Key: key, Register: reg1},
		&expr.Lookup{SourceRegister: reg1, SetName: set, DestRegister: 0, IsDestRegSet: true})
}

// ctState matches packets whose conntrack state is one of bits.
func (b *builder) ctState(bits uint32) *builder {
	return b.add(&expr.Ct{Register: reg1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(0)})
}

// markIs matches packets whose mark has bits set (set) or clear.
func (b *builder) markIs(bits uint32, set bool) *builder {
	want := uint32(0)
	if set {
		want = bits
	}
	return b.add(&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(want)})
}

// setMark sets bits in the mark; clearMark clears them.
func (b *builder) setMark(bits uint32) *builder { return b.add(b.markOp(^bits, bits)...) }

func (b *builder) clearMark(bits uint32) *builder { return b.add(b.markOp(^bits, 0)...) }

func (b *builder) markOp(mask, xor uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: binaryutil.NativeEndian.PutUint32(xor)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg1},
	}
}

func (b *builder) nfproto(family int) *builder {
	p := byte(nfprotoIPv4)
	if family == 6 {
		p = nfprotoIPv6
	}
	return b.add(&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{p}})
}

func (b *builder) l4proto(p uint8, neg bool) *builder {
	return b.add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: cmpOp(neg), Register: reg1, Data: []byte{p}})
}

func protoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "ipv6-icmp"
	case 132:
		return "sctp"
	case 136:
		return "udplite"
	}
	return fmt.Sprint(p)
}

// addrPayload loads the source or destination address into reg.
func addrPayload(family int, src bool, reg uint32) *expr.Payload {
	off, n := uint32(16), uint32(4)
	if family == 6 {
		off, n = 24, 16
	}
	if src {
		off -= n
	}
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}
}

// net matches an address against a prefix.
func (b *builder) net(family int, src bool, p netip.Prefix, neg bool) *builder {
	load := addrPayload(family, src, reg1)
	es := []expr.Any{load}
	if p.Bits() < p.Addr().BitLen() {
		mask := netipMask(p)
		es = append(es, &expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: load.Len,
			Mask: mask, Xor: make([]byte, load.Len)})
	}
	es = append(es, &expr.Cmp{Op: cmpOp(neg), Register: reg1, Data: p.Masked().Addr().AsSlice()})
	return b.add(es...)
}

func netipMask(p netip.Prefix) []byte {
	n := p.Addr().BitLen() / 8
	m := make([]byte, n)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// inSet matches an address against a named address set.
func (b *builder) inSet(family int, src bool, set string, neg bool) *builder {
	return b.add(addrPayload(family, src, reg1), &expr.Lookup{SourceRegister: reg1, SetName: set, Invert: neg})
}

// inPortSet matches address . protocol . port against a named port set.
func (b *builder) inPortSet(family int, src bool, set string, neg bool) *builder {
	load := addrPayload(family, src, reg32a)
	protoReg := reg32a + load.Len/4
	portOff := uint32(2)
	if src {
		portOff = 0
	}
	return b.add(load,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: protoReg},
		&expr.Payload{DestRegister: protoReg + 1, Base: expr.PayloadBaseTransportHeader, Offset: portOff, Len: 2},
		&expr.Lookup{SourceRegister: reg32a, SetName: set, Invert: neg})
}

// port matches the source or destination port against a range.
func (b *builder) port(src bool, lo, hi uint16, neg bool) *builder {
	off := uint32(2)
	if src {
		off = 0
	}
	load := &expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2}
	if lo == hi {
		return b.add(load, &expr.Cmp{Op: cmpOp(neg), Register: reg1, Data: binaryutil.BigEndian.PutUint16(lo)})
	}
	return b.add(load, &expr.Range{Op: cmpOp(neg), Register: reg1,
		FromData: binaryutil.BigEndian.PutUint16(lo), ToData: binaryutil.BigEndian.PutUint16(hi)})
}

// icmp matches the ICMP type and, if hasCode, code. (The rule has
// matched the protocol before, so the transport header is ICMP's.)
func (b *builder) icmp(typ, code uint8, hasCode, neg bool) *builder {
	if !hasCode {
		return b.add(&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Cmp{Op: cmpOp(neg), Register: reg1, Data: []byte{typ}})
	}
	// Type and code in one comparison, so that the negation is of both.
	return b.add(&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
		&expr.Cmp{Op: cmpOp(neg), Register: reg1, Data: []byte{typ, code}})
}

// icmpTypes matches an ICMP type range.
func (b *builder) icmpTypes(lo, hi uint8) *builder {
	load := &expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1}
	if lo == hi {
		return b.add(load, &expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{lo}})
	}
	return b.add(load, &expr.Range{Op: expr.CmpOpEq, Register: reg1, FromData: []byte{lo}, ToData: []byte{hi}})
}

func (b *builder) log(prefix string) *builder {
	return b.add(&expr.Log{Key: 1 << nftaLogPrefix, Data: []byte(prefix)})
}

func (b *builder) verdict(kind expr.VerdictKind) *Rule {
	return b.add(&expr.Verdict{Kind: kind}).rule()
}

func (b *builder) jump(chain string) *Rule {
	return b.add(&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}).rule()
}

// Element encodings.

func ifnameElement(name, jump string) Element {
	return Element{Key: ifname(name), Jump: jump}
}

func addrElement(a netip.Addr) Element {
	return Element{Key: a.AsSlice()}
}

func addrPortElement(a netip.Addr, proto uint8, port uint16) Element {
	key := append(a.AsSlice(), proto, 0, 0, 0)
	key = binary.BigEndian.AppendUint16(key, port)
	key = append(key, 0, 0)
	return Element{Key: key}
}
