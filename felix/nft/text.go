package nft

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"strings"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
)

// The text of a rule is derived from its expressions (ruleText), never
// written beside them: what the golden files and the fake show, what
// programName hashes and what sameRules compares is the kernel's program,
// read back in nft's words. The kernel's own copy, decoded by
// google/nftables, renders to the same text (TestKernelRulesRenderAsFake,
// TestConformance), so a test of the text is a test of the kernel's rule.
//
// ruleText understands the expression shapes that build.go emits (loads
// into registers, optionally masked, consumed by a comparison, range or
// set lookup; marks, logs and verdicts). Anything else is rendered as
// `[unknown <type>]`, which no golden file may contain.

// operand is a value loaded into one or more registers.
type operand struct {
	reg  uint32 // first 4-byte register (NFT_REG32_*)
	span uint32 // 4-byte registers it fills
	name string // as nft writes it: "ip saddr", "meta l4proto", ...
	kind operandKind
	// mask and xor of a bitwise expression applied to it.
	mask, xor []byte
}

type operandKind uint8

const (
	kindBytes operandKind = iota
	kindNFProto
	kindL4Proto
	kindIfname
	kindMark
	kindCtState
	kindAddr
	kindPort
	kindICMPType
	kindICMPTypeCode
)

// reg32 normalises a register number to the 4-byte register space: the
// 16-byte registers NFT_REG_1..4 are NFT_REG32_00.., four at a time.
func reg32(r uint32) uint32 {
	if r >= 1 && r <= 4 {
		return 8 + (r-1)*4
	}
	return r
}

// textState is ruleText's view of the registers: the operands loaded
// since the last expression that consumed them (several, contiguous, for
// a concatenation).
type textState struct {
	pending []*operand
	l4proto byte // the protocol an earlier `meta l4proto X` required
	words   []string
}

func (s *textState) load(o *operand) {
	o.reg = reg32(o.reg)
	if o.span == 0 {
		o.span = 1
	}
	if n := len(s.pending); n > 0 && s.pending[n-1].reg+s.pending[n-1].span == o.reg {
		s.pending = append(s.pending, o)
		return
	}
	s.pending = []*operand{o}
}

// take returns the operands from register r on and forgets them all.
func (s *textState) take(r uint32) []*operand {
	r = reg32(r)
	defer func() { s.pending = nil }()
	for i, o := range s.pending {
		if o.reg == r {
			return s.pending[i:]
		}
	}
	return nil
}

func (s *textState) at(r uint32) *operand {
	r = reg32(r)
	for _, o := range s.pending {
		if o.reg == r {
			return o
		}
	}
	return nil
}

func (s *textState) emit(w string) { s.words = append(s.words, w) }

// ruleText renders a rule's expressions as nft-like text, deterministically.
func ruleText(es []expr.Any) string {
	s := &textState{}
	for _, e := range es {
		s.expr(e)
	}
	return strings.Join(s.words, " ")
}

func (s *textState) expr(e expr.Any) {
	switch e := e.(type) {
	case *expr.Meta:
		if e.SourceRegister {
			s.metaSet(e)
			return
		}
		s.load(metaOperand(e))
	case *expr.Payload:
		if e.OperationType != expr.PayloadLoad {
			s.unknown(e)
			return
		}
		s.load(s.payloadOperand(e))
	case *expr.Ct:
		o := &operand{reg: e.Register, name: fmt.Sprintf("ct key %d", e.Key)}
		if e.Key == expr.CtKeySTATE {
			o.name, o.kind = "ct state", kindCtState
		}
		s.load(o)
	case *expr.Bitwise:
		o := s.at(e.SourceRegister)
		if o == nil || reg32(e.DestRegister) != o.reg || o.mask != nil {
			s.unknown(e)
			return
		}
		o.mask, o.xor = e.Mask, e.Xor
	case *expr.Cmp:
		ops := s.take(e.Register)
		if len(ops) == 0 {
			s.unknown(e)
			return
		}
		s.cmp(ops[0], e.Op, e.Data)
	case *expr.Range:
		ops := s.take(e.Register)
		if len(ops) == 0 || (e.Op != expr.CmpOpEq && e.Op != expr.CmpOpNeq) {
			s.unknown(e)
			return
		}
		o := ops[0]
		s.emit(o.name + " " + opWord(e.Op) + o.value(e.FromData) + "-" + o.value(e.ToData))
	case *expr.Lookup:
		ops := s.take(e.SourceRegister)
		if len(ops) == 0 {
			s.unknown(e)
			return
		}
		names := make([]string, len(ops))
		for i, o := range ops {
			names[i] = o.name
		}
		lhs := strings.Join(names, " . ")
		switch {
		case e.IsDestRegSet && e.DestRegister == 0:
			s.emit(lhs + " vmap @" + e.SetName)
		case e.Invert:
			s.emit(lhs + " != @" + e.SetName)
		default:
			s.emit(lhs + " @" + e.SetName)
		}
	case *expr.Log:
		w := "log"
		if e.Key&(1<<nftaLogPrefix) != 0 {
			w += fmt.Sprintf(" prefix %q", e.Data)
		}
		s.emit(w)
	case *expr.Verdict:
		s.emit(verdictText(e))
	default:
		s.unknown(e)
	}
}

func (s *textState) unknown(e expr.Any) {
	s.pending = nil
	s.emit(fmt.Sprintf("[unknown %T]", e))
}

func metaOperand(e *expr.Meta) *operand {
	o := &operand{reg: e.Register}
	switch e.Key {
	case expr.MetaKeyNFPROTO:
		o.name, o.kind = "meta nfproto", kindNFProto
	case expr.MetaKeyL4PROTO:
		o.name, o.kind = "meta l4proto", kindL4Proto
	case expr.MetaKeyIIFNAME:
		o.name, o.kind, o.span = "iifname", kindIfname, ifNameSize/4
	case expr.MetaKeyOIFNAME:
		o.name, o.kind, o.span = "oifname", kindIfname, ifNameSize/4
	case expr.MetaKeyMARK:
		o.name, o.kind = "meta mark", kindMark
	default:
		o.name = fmt.Sprintf("meta key %d", e.Key)
	}
	return o
}

func (s *textState) payloadOperand(e *expr.Payload) *operand {
	o := &operand{reg: e.DestRegister, span: (e.Len + 3) / 4, kind: kindBytes}
	switch e.Base {
	case expr.PayloadBaseNetworkHeader:
		switch {
		case e.Offset == 12 && e.Len == 4:
			o.name, o.kind = "ip saddr", kindAddr
		case e.Offset == 16 && e.Len == 4:
			o.name, o.kind = "ip daddr", kindAddr
		case e.Offset == 8 && e.Len == 16:
			o.name, o.kind = "ip6 saddr", kindAddr
		case e.Offset == 24 && e.Len == 16:
			o.name, o.kind = "ip6 daddr", kindAddr
		default:
			o.name = fmt.Sprintf("@nh,%d,%d", e.Offset*8, e.Len*8)
		}
	case expr.PayloadBaseTransportHeader:
		icmp := ""
		switch s.l4proto {
		case 1:
			icmp = "icmp"
		case 58:
			icmp = "icmpv6"
		}
		switch {
		case icmp != "" && e.Offset == 0 && e.Len == 1:
			o.name, o.kind = icmp+" type", kindICMPType
		case icmp != "" && e.Offset == 0 && e.Len == 2:
			o.name, o.kind = icmp+" type . code", kindICMPTypeCode
		case icmp == "" && e.Offset == 0 && e.Len == 2:
			o.name, o.kind = "th sport", kindPort
		case icmp == "" && e.Offset == 2 && e.Len == 2:
			o.name, o.kind = "th dport", kindPort
		default:
			o.name = fmt.Sprintf("@th,%d,%d", e.Offset*8, e.Len*8)
		}
	default:
		o.name = fmt.Sprintf("@base%d,%d,%d", e.Base, e.Offset*8, e.Len*8)
	}
	return o
}

func opWord(op expr.CmpOp) string {
	switch op {
	case expr.CmpOpEq:
		return ""
	case expr.CmpOpNeq:
		return "!= "
	case expr.CmpOpLt:
		return "< "
	case expr.CmpOpLte:
		return "<= "
	case expr.CmpOpGt:
		return "> "
	case expr.CmpOpGte:
		return ">= "
	}
	return fmt.Sprintf("op%d ", op)
}

func (s *textState) cmp(o *operand, op expr.CmpOp, data []byte) {
	zero := func(b []byte) bool {
		for _, c := range b {
			if c != 0 {
				return false
			}
		}
		return true
	}
	switch {
	case o.mask == nil:
		if o.kind == kindL4Proto && op == expr.CmpOpEq && len(data) == 1 {
			s.l4proto = data[0]
		}
		s.emit(o.name + " " + opWord(op) + o.value(data))
	case !zero(o.xor):
		s.emit(fmt.Sprintf("%s & 0x%x ^ 0x%x %s 0x%x", o.name, o.mask, o.xor, cmpSymbol(op), data))
	case o.kind == kindAddr:
		ones, ok := prefixLen(o.mask)
		if !ok {
			s.emit(fmt.Sprintf("%s & %s %s %s", o.name, o.value(o.mask), cmpSymbol(op), o.value(data)))
			return
		}
		s.emit(fmt.Sprintf("%s %s%s/%d", o.name, opWord(op), o.value(data), ones))
	case o.kind == kindCtState && op == expr.CmpOpNeq && zero(data) && len(o.mask) == 4:
		s.emit("ct state " + ctStateNames(binaryutil.NativeEndian.Uint32(o.mask)))
	case o.kind == kindMark && len(o.mask) == 4 && len(data) == 4:
		s.emit(fmt.Sprintf("meta mark & 0x%08x %s 0x%08x", binaryutil.NativeEndian.Uint32(o.mask), cmpSymbol(op),
			binaryutil.NativeEndian.Uint32(data)))
	default:
		s.emit(fmt.Sprintf("%s & 0x%x %s 0x%x", o.name, o.mask, cmpSymbol(op), data))
	}
}

func cmpSymbol(op expr.CmpOp) string {
	if op == expr.CmpOpEq {
		return "=="
	}
	return strings.TrimSpace(opWord(op))
}

// metaSet renders a mark written from a register: `meta mark set meta
// mark | bits` (bitwise mask ^bits, xor bits) or `& mask` (xor zero).
func (s *textState) metaSet(e *expr.Meta) {
	ops := s.take(e.Register)
	if e.Key != expr.MetaKeyMARK || len(ops) == 0 || ops[0].kind != kindMark || len(ops[0].mask) != 4 || len(ops[0].xor) != 4 {
		s.unknown(e)
		return
	}
	mask := binaryutil.NativeEndian.Uint32(ops[0].mask)
	xor := binaryutil.NativeEndian.Uint32(ops[0].xor)
	switch {
	case xor == 0:
		s.emit(fmt.Sprintf("meta mark set meta mark & 0x%08x", mask))
	case mask == ^xor:
		s.emit(fmt.Sprintf("meta mark set meta mark | 0x%08x", xor))
	default:
		s.emit(fmt.Sprintf("meta mark set meta mark & 0x%08x ^ 0x%08x", mask, xor))
	}
}

// value formats data as a value of the operand.
func (o *operand) value(b []byte) string {
	switch o.kind {
	case kindNFProto:
		if len(b) == 1 {
			switch b[0] {
			case nfprotoIPv4:
				return "ipv4"
			case nfprotoIPv6:
				return "ipv6"
			}
		}
	case kindL4Proto:
		if len(b) == 1 {
			return protoName(b[0])
		}
	case kindIfname:
		name, _, _ := strings.Cut(string(b), "\x00")
		if len(b) < ifNameSize {
			name += "*" // a prefix match
		}
		return fmt.Sprintf("%q", name)
	case kindMark:
		if len(b) == 4 {
			return fmt.Sprintf("0x%08x", binaryutil.NativeEndian.Uint32(b))
		}
	case kindAddr:
		if a, ok := netip.AddrFromSlice(b); ok {
			return a.String()
		}
	case kindPort:
		if len(b) == 2 {
			return fmt.Sprint(binary.BigEndian.Uint16(b))
		}
	case kindICMPType:
		if len(b) == 1 {
			return fmt.Sprint(b[0])
		}
	case kindICMPTypeCode:
		if len(b) == 2 {
			return fmt.Sprintf("%d . %d", b[0], b[1])
		}
	}
	return fmt.Sprintf("0x%x", b)
}

// prefixLen returns the number of leading one bits of an address mask, if
// the mask is a prefix.
func prefixLen(mask []byte) (int, bool) {
	n, done := 0, false
	for _, c := range mask {
		l := bits.LeadingZeros8(^c)
		if done && c != 0 || l < 8 && c<<l != 0 {
			return 0, false
		}
		n += l
		done = done || l < 8
	}
	return n, true
}

// ctStateNames lists conntrack state bits as nft does, in bit order.
func ctStateNames(m uint32) string {
	names := []struct {
		bit  uint32
		name string
	}{{expr.CtStateBitINVALID, "invalid"}, {expr.CtStateBitESTABLISHED, "established"},
		{expr.CtStateBitRELATED, "related"}, {expr.CtStateBitNEW, "new"}, {expr.CtStateBitUNTRACKED, "untracked"}}
	var out []string
	for _, n := range names {
		if m&n.bit != 0 {
			out = append(out, n.name)
			m &^= n.bit
		}
	}
	if m != 0 {
		out = append(out, fmt.Sprintf("0x%x", m))
	}
	return strings.Join(out, ",")
}

func verdictText(v *expr.Verdict) string {
	switch v.Kind {
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictReturn:
		return "return"
	case expr.VerdictContinue:
		return "continue"
	case expr.VerdictJump:
		return "jump " + v.Chain
	case expr.VerdictGoto:
		return "goto " + v.Chain
	}
	return fmt.Sprintf("verdict %d", v.Kind)
}

// exprRefs names the chains and sets (with a leading "@") that es refer
// to.
func exprRefs(es []expr.Any) []string {
	var out []string
	for _, e := range es {
		switch e := e.(type) {
		case *expr.Lookup:
			out = append(out, "@"+e.SetName)
		case *expr.Verdict:
			if e.Kind == expr.VerdictJump || e.Kind == expr.VerdictGoto {
				out = append(out, e.Chain)
			}
		}
	}
	return out
}

// elementText renders a set or map element as nft lists it, from its key
// (and, for a map, its verdict).
func elementText(typ SetType, e Element) string {
	switch typ {
	case SetIPv4, SetIPv6:
		if a, ok := netip.AddrFromSlice(e.Key); ok {
			return a.String()
		}
	case SetIPv4Port, SetIPv6Port:
		// address . protocol (padded to 4 bytes) . port (padded to 4)
		n := 4
		if typ == SetIPv6Port {
			n = 16
		}
		if len(e.Key) == n+8 {
			a, _ := netip.AddrFromSlice(e.Key[:n])
			return fmt.Sprintf("%s . %s . %d", a, protoName(e.Key[n]), binary.BigEndian.Uint16(e.Key[n+4:]))
		}
	case MapIfname:
		o := operand{kind: kindIfname}
		return fmt.Sprintf("%s : jump %s", o.value(e.Key), e.Jump)
	}
	return fmt.Sprintf("0x%x", e.Key)
}
