package nft

import (
	"context"

	"github.com/google/nftables/expr"
)

// Dataplane is the kernel side of a Table: Netlink in production, Fake in
// unit tests. It knows one table (family inet) and performs lists of
// operations on it as single transactions.
type Dataplane interface {
	// Commit performs ops in order as one nftables transaction: either all
	// of them take effect or none does.
	Commit(ctx context.Context, ops []Op) error
}

// OpKind is what an Op does.
type OpKind uint8

// Operations. OpReplaceTable must be the first op of its transaction: it
// deletes the table if it exists and creates it empty, so that the rest of
// the transaction writes it from scratch.
const (
	OpReplaceTable OpKind = iota + 1
	OpAddChain
	OpFlushChain
	OpDelChain
	OpAddRule
	OpAddSet
	OpDelSet
	OpAddElements
	OpDelElements
)

func (k OpKind) String() string {
	return [...]string{"?", "replace-table", "add-chain", "flush-chain", "del-chain", "add-rule",
		"add-set", "del-set", "add-elements", "del-elements"}[k]
}

// Op is one operation of a transaction.
type Op struct {
	Kind OpKind
	// Chain is the chain of chain ops and of OpAddRule.
	Chain *Chain
	// Rule is appended to Chain by OpAddRule.
	Rule *Rule
	// Set is the set of set and element ops.
	Set *Set
	// Elements are added or deleted (or the initial ones of OpAddSet).
	Elements []Element
}

// Chain is a chain of the table; base chains have a Hook.
type Chain struct {
	Name string
	Hook *Hook
}

// Hook makes a base chain: type filter, policy accept.
type Hook struct {
	// Name is "forward", "input" or "output".
	Name     string
	Priority int32
}

// Rule is a rendered rule: its expressions, which the kernel gets, and
// what is derived from them (text.go): its nft text, which the fake keeps,
// the golden files show and program chain names hash, and its references.
type Rule struct {
	Text  string
	Exprs []expr.Any
	// Refs name the chains and sets (with a leading "@") the rule refers
	// to, so that the fake can check references as the kernel does.
	Refs []string
}

// SetType is the type of a set's keys (and, for maps, values).
type SetType uint8

// Set types.
const (
	// SetIPv4 and SetIPv6 hold addresses.
	SetIPv4 SetType = iota + 1
	SetIPv6
	// SetIPv4Port and SetIPv6Port hold address . inet_proto .
	// inet_service, for named ports.
	SetIPv4Port
	SetIPv6Port
	// MapIfname maps interface names to verdicts (jump chain).
	MapIfname
)

func (t SetType) String() string {
	return [...]string{"?", "ipv4_addr", "ipv6_addr", "ipv4_addr . inet_proto . inet_service",
		"ipv6_addr . inet_proto . inet_service", "ifname : verdict"}[t]
}

// Set is a named set or map of the table.
type Set struct {
	Name string
	Type SetType
}

// Element is one element of a set or map. Its text, as nft lists it
// (e.g. `10.0.0.1`, `10.0.0.2 . tcp . 8080` or `"wl-a" : jump
// ep-out-4f14082f916dd51a`), is derived from the key and the set's type
// (elementText).
type Element struct {
	// Key is the key as the kernel stores it.
	Key []byte
	// Jump is the chain a map element jumps to.
	Jump string
}
