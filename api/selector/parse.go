package selector

// parser is a recursive-descent parser over the tokens of one selector.
type parser struct {
	src   string
	toks  []token
	i     int
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if p.i < len(p.toks)-1 {
		p.i++
	}
	return t
}

// fail reports msg at token t; a lexing error at t takes precedence, since
// it says more about what is wrong there.
func (p *parser) fail(t token, msg string) error {
	if t.kind == tError {
		msg = t.text
	}
	return &ParseError{Selector: p.src, Column: column(p.src, t.pos), Msg: msg}
}

func (p *parser) parse() (Expr, error) {
	if p.peek().kind == tEOF {
		return All{}, nil
	}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.fail(t, `expected "&&", "||" or the end of the selector`)
	}
	return e, nil
}

func (p *parser) parseOr() (Expr, error) {
	x, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	xs := []Expr{x}
	for p.peek().kind == tOr {
		p.next()
		y, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		xs = append(xs, y)
	}
	if len(xs) == 1 {
		return x, nil
	}
	return newOr(xs), nil
}

func (p *parser) parseAnd() (Expr, error) {
	x, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	xs := []Expr{x}
	for p.peek().kind == tAnd {
		p.next()
		y, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		xs = append(xs, y)
	}
	if len(xs) == 1 {
		return x, nil
	}
	return newAnd(xs), nil
}

func (p *parser) parseUnary() (Expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, p.fail(p.peek(), "selector nests too deeply")
	}
	if p.peek().kind == tBang {
		p.next()
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return newNot(x), nil
	}
	return p.parsePrimary()
}

func (p *parser) parsePrimary() (Expr, error) {
	t := p.next()
	switch t.kind {
	case tLParen:
		x, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, p.fail(c, `expected ")"`)
		}
		return x, nil
	case tIdent:
		if p.peek().kind == tLParen {
			return p.parseFunc(t)
		}
		return p.parseComparison(t.text)
	}
	return nil, p.fail(t, `expected a label key, "has(", "all()", "!" or "("`)
}

// parseFunc parses all() and has(key), whose name is t.
func (p *parser) parseFunc(t token) (Expr, error) {
	p.next() // "("
	switch t.text {
	case "all":
		if c := p.next(); c.kind != tRParen {
			return nil, p.fail(c, `expected ")": all() takes no arguments`)
		}
		return All{}, nil
	case "has":
		k := p.next()
		if k.kind != tIdent {
			return nil, p.fail(k, "expected a label key")
		}
		if c := p.next(); c.kind != tRParen {
			return nil, p.fail(c, `expected ")"`)
		}
		return Has{Key: k.text}, nil
	}
	return nil, p.fail(t, `unknown function "`+t.text+`" (want has or all)`)
}

// parseComparison parses the operator and operand that follow a label key.
func (p *parser) parseComparison(key string) (Expr, error) {
	op := p.next()
	switch {
	case op.kind == tEq, op.kind == tNe:
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if op.kind == tEq {
			return Equal{Key: key, Value: v}, nil
		}
		return NotEqual{Key: key, Value: v}, nil
	case op.kind == tIdent && op.text == "in":
		vs, err := p.set()
		if err != nil {
			return nil, err
		}
		return newIn(key, vs), nil
	case op.kind == tIdent && op.text == "not":
		if in := p.next(); in.kind != tIdent || in.text != "in" {
			return nil, p.fail(in, `expected "in" after "not"`)
		}
		vs, err := p.set()
		if err != nil {
			return nil, err
		}
		return newNot(newIn(key, vs)), nil
	case op.kind == tIdent && op.text == "contains":
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		return Contains{Key: key, Value: v}, nil
	case op.kind == tIdent && (op.text == "starts" || op.text == "ends"):
		if w := p.next(); w.kind != tIdent || w.text != "with" {
			return nil, p.fail(w, `expected "with" after "`+op.text+`"`)
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if op.text == "starts" {
			return StartsWith{Key: key, Value: v}, nil
		}
		return EndsWith{Key: key, Value: v}, nil
	}
	return nil, p.fail(op, `expected an operator after label key "`+key+`" (==, !=, in, not in, contains, starts with, ends with)`)
}

func (p *parser) value() (string, error) {
	t := p.next()
	if t.kind != tString {
		return "", p.fail(t, "expected a quoted value")
	}
	return t.text, nil
}

func (p *parser) set() ([]string, error) {
	if t := p.next(); t.kind != tLBrace {
		return nil, p.fail(t, `expected "{"`)
	}
	vs := []string{}
	if p.peek().kind == tRBrace {
		p.next()
		return vs, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
		t := p.next()
		if t.kind == tRBrace {
			return vs, nil
		}
		if t.kind != tComma {
			return nil, p.fail(t, `expected "," or "}"`)
		}
	}
}
