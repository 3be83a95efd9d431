package selector

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCanonical(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "all()"},
		{"  all( )  ", "all()"},
		{`role == "db"`, "role == 'db'"},
		{`role=='db'`, "role == 'db'"},
		{`name == "it's"`, `name == "it's"`},
		{"k != 'v'", "k != 'v'"},
		{"has(k8s-app)", "has(k8s-app)"},
		{"!has(k)", "!has(k)"},
		{"!!has(k)", "has(k)"},
		{"!(k == 'v')", "k != 'v'"},
		{"!k == 'v'", "k != 'v'"},
		{"!(k != 'v')", "k == 'v'"},
		{"k in {'b', 'a', 'b'}", "k in {'a', 'b'}"},
		{"k in {'a'}", "k == 'a'"},
		{"k not in {'a'}", "k != 'a'"},
		{"k in {}", "k in {}"},
		{"k not in {'y','x'}", "k not in {'x', 'y'}"},
		{"!(k in {'y','x'})", "k not in {'x', 'y'}"},
		{"b == '1' && a == '2'", "a == '2' && b == '1'"},
		{"a == '1' && (b == '2' && c == '3')", "a == '1' && b == '2' && c == '3'"},
		{"a == '1' && a == '1'", "a == '1'"},
		{"a == '1' || b == '2' && c == '3'", "a == '1' || b == '2' && c == '3'"},
		{"(a == '1' || b == '2') && c == '3'", "(a == '1' || b == '2') && c == '3'"},
		{"c == '3' && (b == '2' || a == '1')", "(a == '1' || b == '2') && c == '3'"},
		{"!(a == '1' && b == '2')", "!(a == '1' && b == '2')"},
		{"all() && role == 'x'", "role == 'x'"},
		{"all() || role == 'x'", "all()"},
		{"!all()", "!all()"},
		{"x contains 'ab'", "x contains 'ab'"},
		{"x starts with 'ab'", "x starts with 'ab'"},
		{"x ends with 'ab'", "x ends with 'ab'"},
		{"!x contains 'ab'", "!(x contains 'ab')"},
		{"example.com/tier == 'fe'", "example.com/tier == 'fe'"},
		{"has == 'x'", "has == 'x'"},
		{"in == 'x'", "in == 'x'"},
	}
	for _, tt := range tests {
		sel, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got := sel.String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in     string
		column int
		msg    string
	}{
		{"role == ", 9, "expected a quoted value"},
		{"role == db", 9, "expected a quoted value"},
		{"role = 'db'", 6, `unexpected "=" (did you mean "=="?)`},
		{"role == 'db", 9, "unterminated string"},
		{"a == 'x' & b == 'y'", 10, `unexpected "&" (did you mean "&&"?)`},
		{"a == 'x' b", 10, `expected "&&", "||" or the end of the selector`},
		{"(a == 'x'", 10, `expected ")"`},
		{"has(k", 6, `expected ")"`},
		{"has()", 5, "expected a label key"},
		{"foo(k)", 1, `unknown function "foo" (want has or all)`},
		{"all(x)", 5, `expected ")": all() takes no arguments`},
		{"k in 'a'", 6, `expected "{"`},
		{"k in {'a' 'b'}", 11, `expected "," or "}"`},
		{"k not 'a'", 7, `expected "in" after "not"`},
		{"k starts 'a'", 10, `expected "with" after "starts"`},
		{"k", 2, `expected an operator after label key "k" (==, !=, in, not in, contains, starts with, ends with)`},
		{"&& a == 'x'", 1, `expected a label key, "has(", "all()", "!" or "("`},
		{"é == 'x'", 1, `unexpected character 'é'`},
		{"'é' == 'x' @", 1, `expected a label key, "has(", "all()", "!" or "("`},
		{"a == 'é' @", 10, `unexpected character '@'`},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) = %v, want a *ParseError", tt.in, err)
			continue
		}
		want := &ParseError{Selector: tt.in, Column: tt.column, Msg: tt.msg}
		if diff := cmp.Diff(want, pe); diff != "" {
			t.Errorf("Parse(%q) error (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestErrorString(t *testing.T) {
	_, err := Parse("role == ")
	want := `selector "role == ": column 9: expected a quoted value`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestDepthLimit(t *testing.T) {
	deep := ""
	for range 200 {
		deep += "!"
	}
	if _, err := Parse(deep + "has(a)"); err == nil {
		t.Error("200 nested negations parsed, want an error")
	}
	ok := "!!!!has(a)"
	if _, err := Parse(ok); err != nil {
		t.Errorf("Parse(%q): %v", ok, err)
	}
}

func TestEvaluate(t *testing.T) {
	labels := map[string]string{"role": "db", "zone": "a", "name": "db-primary-1"}
	tests := []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"all()", true},
		{"!all()", false},
		{"role == 'db'", true},
		{"role == 'web'", false},
		{"missing == 'x'", false},
		{"role != 'web'", true},
		{"missing != 'x'", true},
		{"role != 'db'", false},
		{"has(role)", true},
		{"has(missing)", false},
		{"!has(missing)", true},
		{"zone in {'a', 'b'}", true},
		{"zone in {'c', 'b'}", false},
		{"missing in {'a', 'b'}", false},
		{"zone not in {'a', 'b'}", false},
		{"missing not in {'a', 'b'}", true},
		{"zone in {}", false},
		{"zone not in {}", true},
		{"name contains 'primary'", true},
		{"name contains 'replica'", false},
		{"missing contains ''", false},
		{"name starts with 'db-'", true},
		{"name starts with 'web-'", false},
		{"name ends with '-1'", true},
		{"name ends with '-2'", false},
		{"role == 'db' && zone == 'a'", true},
		{"role == 'db' && zone == 'b'", false},
		{"role == 'web' || zone == 'a'", true},
		{"role == 'web' || zone == 'b'", false},
		{"role == 'web' || zone == 'a' && has(missing)", false},
		{"(role == 'web' || zone == 'a') && !has(missing)", true},
		{"!(role == 'db' && zone == 'a')", false},
	}
	for _, tt := range tests {
		sel, err := Parse(tt.sel)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.sel, err)
			continue
		}
		if got := sel.Evaluate(labels); got != tt.want {
			t.Errorf("%q.Evaluate(%v) = %v, want %v", tt.sel, labels, got, tt.want)
		}
	}
}

func TestNormalizeBuiltTree(t *testing.T) {
	e := Or{Exprs: []Expr{
		And{Exprs: []Expr{Not{X: In{Key: "k", Values: []string{"b", "a"}}}, All{}}},
		Not{X: Not{X: Has{Key: "h"}}},
	}}
	want := "has(h) || k not in {'a', 'b'}"
	if got := New(e).String(); got != want {
		t.Errorf("New(...).String() = %q, want %q", got, want)
	}
	if got := New(Or{}).String(); got != "!all()" {
		t.Errorf("empty Or = %q, want !all()", got)
	}
	if got := New(nil).String(); got != "all()" {
		t.Errorf("nil = %q, want all()", got)
	}
}

func TestExprTree(t *testing.T) {
	got := MustParse("role == 'db' && !has(x) || zone in {'b', 'a'}").Expr()
	want := Or{Exprs: []Expr{
		And{Exprs: []Expr{Not{X: Has{Key: "x"}}, Equal{Key: "role", Value: "db"}}},
		In{Key: "zone", Values: []string{"a", "b"}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}
