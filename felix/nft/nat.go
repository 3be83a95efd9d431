package nft

// Outgoing NAT for IP pools (IPPool natOutgoing), as Calico does it:
// traffic from the addresses of a pool with natOutgoing to a destination
// outside every pool is masqueraded to the address of the interface it
// leaves by. It has its own table, `inet bgpfabric-nat`, apart from the
// ACL table, so that the two are replaced and repaired independently:
//
//	table inet bgpfabric-nat {
//		chain postrouting {
//			type nat hook postrouting priority srcnat; policy accept;
//			ip daddr 10.244.0.0/16 return                       # every pool
//			ip daddr 10.245.0.0/16 return
//			ip saddr 10.244.0.0/16 masquerade fully-random      # natOutgoing pools
//			ip6 daddr fd00:10::/48 return
//			ip6 saddr fd00:10::/48 masquerade fully-random
//		}
//	}
//
// The table exists only while some pool has natOutgoing. Every change
// rewrites it whole in one transaction (a few rules per pool).

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// DefaultNATTable is the name of the outgoing NAT table.
const DefaultNATTable = "bgpfabric-nat"

// NATPool is an IP pool as outgoing NAT sees it.
type NATPool struct {
	CIDR netip.Prefix
	// Masquerade is the pool's natOutgoing.
	Masquerade bool
}

// natRule is one rule of the postrouting chain: nft's text and the
// expressions the kernel gets, built together by natRules.
type natRule struct {
	text  string
	exprs []expr.Any
}

// natRules renders the postrouting chain for pools: per family, a return
// for every pool (traffic to a pool is not masqueraded), then a
// masquerade for each natOutgoing pool. A family without a natOutgoing
// pool has no rules; no rules at all means no table.
func natRules(pools []NATPool) []natRule {
	var out []natRule
	for _, v4 := range []bool{true, false} {
		var all, masq []netip.Prefix
		for _, p := range pools {
			if !p.CIDR.IsValid() || p.CIDR.Addr().Is4() != v4 {
				continue
			}
			pfx := p.CIDR.Masked()
			all = append(all, pfx)
			if p.Masquerade {
				masq = append(masq, pfx)
			}
		}
		if len(masq) == 0 {
			continue
		}
		all, masq = sortedUnique(all), sortedUnique(masq)
		for _, p := range all {
			out = append(out, natRule{
				text:  fmt.Sprintf("%s daddr %s return", ipWord(v4), p),
				exprs: append(prefixMatch(p, false), &expr.Verdict{Kind: expr.VerdictReturn}),
			})
		}
		for _, p := range masq {
			out = append(out, natRule{
				text:  fmt.Sprintf("%s saddr %s masquerade fully-random", ipWord(v4), p),
				exprs: append(prefixMatch(p, true), &expr.Masq{FullyRandom: true}),
			})
		}
	}
	return out
}

func ipWord(v4 bool) string {
	if v4 {
		return "ip"
	}
	return "ip6"
}

func sortedUnique(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(ps)
}

// prefixMatch matches packets of p's family whose source (src) or
// destination address is in p.
func prefixMatch(p netip.Prefix, src bool) []expr.Any {
	proto, off, n := byte(unix.NFPROTO_IPV4), uint32(16), uint32(4)
	if src {
		off = 12
	}
	if !p.Addr().Is4() {
		proto, off, n = unix.NFPROTO_IPV6, 24, 16
		if src {
			off = 8
		}
	}
	addr := p.Addr().AsSlice()
	mask := make([]byte, n)
	for i := range p.Bits() {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr},
	}
}

// NATConfig configures a NAT.
type NATConfig struct {
	// Table is the table's name (default DefaultNATTable).
	Table string
	// NetNS is a file descriptor of the network namespace to program; 0
	// is the calling thread's. The caller keeps it open.
	NetNS int
}

// NAT keeps the outgoing NAT table of one namespace equal to the pools it
// is given. It is not safe for concurrent use: felix's loop owns it.
type NAT struct {
	cfg NATConfig
	// applied is the text of the rules in the kernel; valid says it is
	// known (false at first, after a failure and after Resync).
	applied []string
	valid   bool
}

// NewNAT returns a NAT for cfg.
func NewNAT(cfg NATConfig) *NAT {
	if cfg.Table == "" {
		cfg.Table = DefaultNATTable
	}
	return &NAT{cfg: cfg}
}

// Resync makes the next Apply rewrite the table, repairing any change made
// behind our back.
func (n *NAT) Resync() { n.valid = false }

// Rules returns the text of the rules in force, for tests and status.
func (n *NAT) Rules() []string { return slices.Clone(n.applied) }

// Apply makes the table masquerade as pools say, in one transaction. It
// does nothing when the pools give the rules already in force.
func (n *NAT) Apply(ctx context.Context, pools []NATPool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rules := natRules(pools)
	texts := make([]string, len(rules))
	for i, r := range rules {
		texts[i] = r.text
	}
	if n.valid && slices.Equal(texts, n.applied) {
		return nil
	}
	n.valid = false
	conn, err := nftables.New(nftables.WithNetNSFd(n.cfg.NetNS))
	if err != nil {
		return fmt.Errorf("nat table: nftables connection: %w", err)
	}
	tbl := &nftables.Table{Family: nftables.TableFamilyINet, Name: n.cfg.Table}
	// Adding first makes the delete succeed whether or not the table
	// exists; the batch is one transaction.
	conn.AddTable(tbl)
	conn.DelTable(tbl)
	if len(rules) > 0 {
		conn.AddTable(tbl)
		accept := nftables.ChainPolicyAccept
		ch := conn.AddChain(&nftables.Chain{
			Name: "postrouting", Table: tbl, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept,
		})
		for _, r := range rules {
			conn.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: r.exprs})
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nat table %s: writing %d rules: %w", n.cfg.Table, len(rules), err)
	}
	n.applied, n.valid = texts, true
	return nil
}
