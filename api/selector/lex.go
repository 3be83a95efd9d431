package selector

import (
	"fmt"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF    tokKind = iota
	tIdent          // label key or keyword
	tString         // quoted value; text is the value without quotes
	tEq             // ==
	tNe             // !=
	tBang           // !
	tAnd            // &&
	tOr             // ||
	tLParen
	tRParen
	tLBrace
	tRBrace
	tComma
	tError // text is the message
)

type token struct {
	kind tokKind
	text string
	pos  int // byte offset in the input
}

func isKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '/' || c == '-'
}

// lex splits s into tokens, ending in tEOF or at the first tError.
func lex(s string) []token {
	var toks []token
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
		if i == len(s) {
			return append(toks, token{kind: tEOF, pos: i})
		}
		start := i
		two := ""
		if i+1 < len(s) {
			two = s[i : i+2]
		}
		var t token
		switch {
		case two == "==":
			t, i = token{kind: tEq}, i+2
		case two == "!=":
			t, i = token{kind: tNe}, i+2
		case two == "&&":
			t, i = token{kind: tAnd}, i+2
		case two == "||":
			t, i = token{kind: tOr}, i+2
		case s[i] == '!':
			t, i = token{kind: tBang}, i+1
		case s[i] == '(':
			t, i = token{kind: tLParen}, i+1
		case s[i] == ')':
			t, i = token{kind: tRParen}, i+1
		case s[i] == '{':
			t, i = token{kind: tLBrace}, i+1
		case s[i] == '}':
			t, i = token{kind: tRBrace}, i+1
		case s[i] == ',':
			t, i = token{kind: tComma}, i+1
		case s[i] == '\'' || s[i] == '"':
			q := s[i]
			j := i + 1
			for j < len(s) && s[j] != q {
				j++
			}
			if j == len(s) {
				return append(toks, token{kind: tError, pos: start, text: "unterminated string"})
			}
			t, i = token{kind: tString, text: s[i+1 : j]}, j+1
		case isKeyChar(s[i]):
			j := i
			for j < len(s) && isKeyChar(s[j]) {
				j++
			}
			t, i = token{kind: tIdent, text: s[i:j]}, j
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			msg := fmt.Sprintf("unexpected character %q", r)
			switch s[i] {
			case '=':
				msg = `unexpected "=" (did you mean "=="?)`
			case '&':
				msg = `unexpected "&" (did you mean "&&"?)`
			case '|':
				msg = `unexpected "|" (did you mean "||"?)`
			}
			return append(toks, token{kind: tError, pos: start, text: msg})
		}
		t.pos = start
		toks = append(toks, t)
	}
}
