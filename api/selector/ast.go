package selector

import (
	"slices"
	"strings"
)

// Expr is one node of a selector's syntax tree. The node types are All,
// Has, Equal, NotEqual, In, NotIn, Contains, StartsWith, EndsWith, Not, And
// and Or; felix may switch on them to index selectors by label.
type Expr interface {
	// Evaluate reports whether labels match the expression.
	Evaluate(labels map[string]string) bool
	// String renders the expression; for a normalized tree it is the
	// canonical form.
	String() string
	isExpr()
}

// All matches everything: all().
type All struct{}

// Has matches labels that have Key: has(Key).
type Has struct{ Key string }

// Equal matches labels where Key is present and equals Value.
type Equal struct{ Key, Value string }

// NotEqual matches labels where Key is absent or differs from Value.
type NotEqual struct{ Key, Value string }

// In matches labels where Key is present and its value is one of Values
// (sorted and deduplicated once normalized).
type In struct {
	Key    string
	Values []string
}

// NotIn matches labels where Key is absent or its value is none of Values.
type NotIn struct {
	Key    string
	Values []string
}

// Contains matches labels where Key is present and contains Value.
type Contains struct{ Key, Value string }

// StartsWith matches labels where Key is present and starts with Value.
type StartsWith struct{ Key, Value string }

// EndsWith matches labels where Key is present and ends with Value.
type EndsWith struct{ Key, Value string }

// Not negates X.
type Not struct{ X Expr }

// And matches when every one of Exprs matches.
type And struct{ Exprs []Expr }

// Or matches when any one of Exprs matches.
type Or struct{ Exprs []Expr }

func (All) isExpr()        {}
func (Has) isExpr()        {}
func (Equal) isExpr()      {}
func (NotEqual) isExpr()   {}
func (In) isExpr()         {}
func (NotIn) isExpr()      {}
func (Contains) isExpr()   {}
func (StartsWith) isExpr() {}
func (EndsWith) isExpr()   {}
func (Not) isExpr()        {}
func (And) isExpr()        {}
func (Or) isExpr()         {}

// Evaluate implements Expr.
func (All) Evaluate(map[string]string) bool { return true }

// Evaluate implements Expr.
func (e Has) Evaluate(l map[string]string) bool { _, ok := l[e.Key]; return ok }

// Evaluate implements Expr.
func (e Equal) Evaluate(l map[string]string) bool { v, ok := l[e.Key]; return ok && v == e.Value }

// Evaluate implements Expr.
func (e NotEqual) Evaluate(l map[string]string) bool {
	v, ok := l[e.Key]
	return !ok || v != e.Value
}

// Evaluate implements Expr.
func (e In) Evaluate(l map[string]string) bool {
	v, ok := l[e.Key]
	return ok && slices.Contains(e.Values, v)
}

// Evaluate implements Expr.
func (e NotIn) Evaluate(l map[string]string) bool {
	v, ok := l[e.Key]
	return !ok || !slices.Contains(e.Values, v)
}

// Evaluate implements Expr.
func (e Contains) Evaluate(l map[string]string) bool {
	v, ok := l[e.Key]
	return ok && strings.Contains(v, e.Value)
}

// Evaluate implements Expr.
func (e StartsWith) Evaluate(l map[string]string) bool {
	v, ok := l[e.Key]
	return ok && strings.HasPrefix(v, e.Value)
}

// Evaluate implements Expr.
func (e EndsWith) Evaluate(l map[string]string) bool {
	v, ok := l[e.Key]
	return ok && strings.HasSuffix(v, e.Value)
}

// Evaluate implements Expr.
func (e Not) Evaluate(l map[string]string) bool { return !e.X.Evaluate(l) }

// Evaluate implements Expr.
func (e And) Evaluate(l map[string]string) bool {
	for _, x := range e.Exprs {
		if !x.Evaluate(l) {
			return false
		}
	}
	return true
}

// Evaluate implements Expr.
func (e Or) Evaluate(l map[string]string) bool {
	for _, x := range e.Exprs {
		if x.Evaluate(l) {
			return true
		}
	}
	return false
}

// quote renders a value in single quotes, or in double quotes if it holds a
// single quote. (A value holding both cannot be written in the syntax, and
// so never comes out of Parse.)
func quote(v string) string {
	if strings.Contains(v, "'") {
		return `"` + v + `"`
	}
	return "'" + v + "'"
}

func set(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = quote(v)
	}
	return "{" + strings.Join(q, ", ") + "}"
}

// String implements Expr.
func (All) String() string { return "all()" }

// String implements Expr.
func (e Has) String() string { return "has(" + e.Key + ")" }

// String implements Expr.
func (e Equal) String() string { return e.Key + " == " + quote(e.Value) }

// String implements Expr.
func (e NotEqual) String() string { return e.Key + " != " + quote(e.Value) }

// String implements Expr.
func (e In) String() string { return e.Key + " in " + set(e.Values) }

// String implements Expr.
func (e NotIn) String() string { return e.Key + " not in " + set(e.Values) }

// String implements Expr.
func (e Contains) String() string { return e.Key + " contains " + quote(e.Value) }

// String implements Expr.
func (e StartsWith) String() string { return e.Key + " starts with " + quote(e.Value) }

// String implements Expr.
func (e EndsWith) String() string { return e.Key + " ends with " + quote(e.Value) }

// String implements Expr: function-like operands are negated as they are,
// anything else is parenthesized.
// String implements Expr.
func (e Not) String() string {
	switch e.X.(type) {
	case All, Has:
		return "!" + e.X.String()
	}
	return "!(" + e.X.String() + ")"
}

// String implements Expr; operands that are disjunctions are parenthesized.
// String implements Expr.
func (e And) String() string {
	parts := make([]string, len(e.Exprs))
	for i, x := range e.Exprs {
		if _, ok := x.(Or); ok {
			parts[i] = "(" + x.String() + ")"
		} else {
			parts[i] = x.String()
		}
	}
	return strings.Join(parts, " && ")
}

// String implements Expr.
// String implements Expr.
func (e Or) String() string {
	parts := make([]string, len(e.Exprs))
	for i, x := range e.Exprs {
		parts[i] = x.String()
	}
	return strings.Join(parts, " || ")
}
