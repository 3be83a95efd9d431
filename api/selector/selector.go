// Package selector parses and evaluates Calico-style label selectors, such
// as `role == 'db' && !has(deprecated) && zone in {'a', 'b'}`.
//
// The grammar, loosest binding first:
//
//	or      = and { "||" and }
//	and     = unary { "&&" unary }
//	unary   = "!" unary | primary
//	primary = "(" or ")" | "all()" | "has(" key ")" | key op
//	op      = "==" value | "!=" value | "in" set | "not in" set
//	        | "contains" value | "starts with" value | "ends with" value
//	set     = "{" [ value { "," value } ] "}"
//	value   = a string in single or double quotes (no escapes)
//	key     = one or more of A-Z a-z 0-9 _ . / -
//
// An empty selector is all(). A parsed selector is kept as an exported
// syntax tree (see Expr) in canonical form: conjunctions and disjunctions
// are flattened, their operands sorted and deduplicated, double negation is
// removed, negated comparisons are folded into their opposite operator
// (!(k == 'v') is k != 'v'), and one-element sets become comparisons. So two
// selectors that differ only in spelling, spacing, quoting, operand order or
// redundant parentheses have the same String(), which callers may use as a
// map key.
package selector

import (
	"fmt"
	"unicode/utf8"
)

// maxDepth bounds the nesting of parentheses and negations, so that hostile
// input cannot exhaust the stack.
const maxDepth = 100

// Selector is a parsed label selector. The zero value is not usable; get
// one from Parse. A Selector is immutable and safe for concurrent use.
type Selector struct {
	expr Expr
	str  string
}

// ParseError says where and why a selector does not parse.
type ParseError struct {
	Selector string // the input
	Column   int    // 1-based, in characters, of the offending token
	Msg      string // e.g. "expected a quoted value"
}

// Error renders the error as `selector "role == ": column 9: expected a
// quoted value`.
func (e *ParseError) Error() string {
	return fmt.Sprintf("selector %q: column %d: %s", e.Selector, e.Column, e.Msg)
}

// Parse parses a selector. Errors are *ParseError.
func Parse(s string) (*Selector, error) {
	p := &parser{src: s, toks: lex(s)}
	e, err := p.parse()
	if err != nil {
		return nil, err
	}
	return New(e), nil
}

// MustParse is Parse for selectors written in code; it panics if s does not
// parse. Never call it on user input.
func MustParse(s string) *Selector {
	sel, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return sel
}

// New makes a Selector from a syntax tree, which it normalizes first.
func New(e Expr) *Selector {
	e = Normalize(e)
	return &Selector{expr: e, str: e.String()}
}

// String returns the canonical form of the selector.
func (s *Selector) String() string { return s.str }

// Expr returns the root of the selector's (normalized) syntax tree.
func (s *Selector) Expr() Expr { return s.expr }

// Evaluate reports whether a set of labels matches the selector.
func (s *Selector) Evaluate(labels map[string]string) bool { return s.expr.Evaluate(labels) }

// column converts a byte offset of src into a 1-based character column.
func column(src string, off int) int {
	if off > len(src) {
		off = len(src)
	}
	return utf8.RuneCountInString(src[:off]) + 1
}
