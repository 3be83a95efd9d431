package selector

import (
	"slices"
	"sort"
)

// Normalize returns e in canonical form (see the package documentation).
// Trees from Parse are already normalized; Normalize is for trees built in
// code.
func Normalize(e Expr) Expr {
	switch e := e.(type) {
	case nil:
		return All{}
	case In:
		return newIn(e.Key, e.Values)
	case NotIn:
		return newNot(newIn(e.Key, e.Values))
	case Not:
		return newNot(Normalize(e.X))
	case And:
		xs := make([]Expr, len(e.Exprs))
		for i, x := range e.Exprs {
			xs[i] = Normalize(x)
		}
		return newAnd(xs)
	case Or:
		xs := make([]Expr, len(e.Exprs))
		for i, x := range e.Exprs {
			xs[i] = Normalize(x)
		}
		return newOr(xs)
	}
	return e
}

// newIn sorts and deduplicates the set; a one-element set is a comparison.
func newIn(key string, values []string) Expr {
	vs := slices.Clone(values)
	slices.Sort(vs)
	vs = slices.Compact(vs)
	if len(vs) == 1 {
		return Equal{Key: key, Value: vs[0]}
	}
	if vs == nil {
		vs = []string{}
	}
	return In{Key: key, Values: vs}
}

// newNot negates a normalized expression, folding negations into the
// operators that have an opposite.
func newNot(x Expr) Expr {
	switch x := x.(type) {
	case Not:
		return x.X
	case Equal:
		return NotEqual(x)
	case NotEqual:
		return Equal(x)
	case In:
		return NotIn(x)
	case NotIn:
		return In(x)
	}
	return Not{X: x}
}

// newAnd flattens, drops all() (the identity), sorts and deduplicates
// normalized operands.
func newAnd(xs []Expr) Expr {
	var flat []Expr
	for _, x := range xs {
		switch x := x.(type) {
		case All:
		case And:
			flat = append(flat, x.Exprs...)
		default:
			flat = append(flat, x)
		}
	}
	flat = sortUnique(flat)
	switch len(flat) {
	case 0:
		return All{}
	case 1:
		return flat[0]
	}
	return And{Exprs: flat}
}

// newOr flattens, sorts and deduplicates normalized operands; all() among
// them makes the whole disjunction all().
func newOr(xs []Expr) Expr {
	var flat []Expr
	for _, x := range xs {
		switch x := x.(type) {
		case All:
			return All{}
		case Or:
			flat = append(flat, x.Exprs...)
		default:
			flat = append(flat, x)
		}
	}
	flat = sortUnique(flat)
	switch len(flat) {
	case 0: // an empty disjunction, built in code, matches nothing
		return Not{X: All{}}
	case 1:
		return flat[0]
	}
	return Or{Exprs: flat}
}

// sortUnique orders expressions by their rendering and drops duplicates.
func sortUnique(xs []Expr) []Expr {
	type keyed struct {
		s string
		e Expr
	}
	ks := make([]keyed, len(xs))
	for i, x := range xs {
		ks[i] = keyed{x.String(), x}
	}
	sort.SliceStable(ks, func(i, j int) bool { return ks[i].s < ks[j].s })
	out := xs[:0:0]
	for i, k := range ks {
		if i > 0 && k.s == ks[i-1].s {
			continue
		}
		out = append(out, k.e)
	}
	return out
}
