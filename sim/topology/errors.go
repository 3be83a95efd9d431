package topology

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in a topology file, located by line and field.
type Error struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int
	// Field is the path of the field, e.g. "nodes[2].count".
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in a file, in line order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find each *Error.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

func (l ErrorList) sorted() ErrorList {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Line != l[j].Line {
			return l[i].Line < l[j].Line
		}
		return l[i].Column < l[j].Column
	})
	return l
}

// path is a field path: string elements are mapping keys, ints are
// sequence indexes.
type path []any

func (p path) key(k string) path { return append(p[:len(p):len(p)], k) }
func (p path) idx(i int) path    { return append(p[:len(p):len(p)], i) }

func (p path) String() string {
	var b strings.Builder
	for _, e := range p {
		switch e := e.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", e)
		case string:
			if strings.ContainsAny(e, "./[] ") || e == "" {
				fmt.Fprintf(&b, "[%q]", e)
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e)
		}
	}
	return b.String()
}

// parsePath reads a path as the api package writes field errors:
// "spec.ingress[0].ports[1]". Bracketed non-numbers are keys.
func parsePath(s string) path {
	var p path
	for s != "" {
		switch s[0] {
		case '.':
			s = s[1:]
		case '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return append(p, s)
			}
			in := s[1:end]
			if n, err := strconv.Atoi(in); err == nil {
				p = append(p, n)
			} else {
				p = append(p, strings.Trim(in, `"'`))
			}
			s = s[end+1:]
		default:
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			p = append(p, s[:end])
			s = s[end:]
		}
	}
	return p
}
