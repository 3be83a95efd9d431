package selector

import "testing"

// FuzzParse checks that Parse never panics and that the canonical form of
// anything it accepts parses again to the same canonical form and the same
// meaning.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "all()", "role == 'db'", "!has(k) && a in {'x','y'}",
		"(a == '1' || b != \"2\") && !(c not in {}) || d contains 'x'",
		"k starts with 'a' && k ends with 'z'",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := Parse(s)
		if err != nil {
			return
		}
		canon := sel.String()
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its String %q does not parse: %v", s, canon, err)
		}
		if again.String() != canon {
			t.Fatalf("Parse(%q).String() = %q, which re-parses to %q", s, canon, again.String())
		}
		for _, labels := range labelSets(sel.Expr()) {
			if sel.Evaluate(labels) != again.Evaluate(labels) {
				t.Fatalf("%q and its canonical form %q disagree on %v", s, canon, labels)
			}
		}
	})
}

// labelSets returns a few label sets that exercise the keys and values an
// expression mentions.
func labelSets(e Expr) []map[string]string {
	first := map[string]string{}
	other := map[string]string{}
	var walk func(Expr)
	walk = func(e Expr) {
		switch e := e.(type) {
		case Has:
			first[e.Key] = ""
		case Equal:
			first[e.Key] = e.Value
		case NotEqual:
			first[e.Key] = e.Value
		case In:
			if len(e.Values) > 0 {
				first[e.Key] = e.Values[0]
			}
		case NotIn:
			if len(e.Values) > 0 {
				other[e.Key] = e.Values[len(e.Values)-1]
			}
		case Contains:
			other[e.Key] = "x" + e.Value + "y"
		case StartsWith:
			first[e.Key] = e.Value + "z"
		case EndsWith:
			other[e.Key] = "z" + e.Value
		case Not:
			walk(e.X)
		case And:
			for _, x := range e.Exprs {
				walk(x)
			}
		case Or:
			for _, x := range e.Exprs {
				walk(x)
			}
		}
	}
	walk(e)
	return []map[string]string{nil, first, other}
}
