package syntax

import (
	"strings"
	"unicode/utf8"
)

// Limits of the parser (see the package doc).
const (
	MaxQueryLength = 8192 // characters
	MaxDepth       = 64
	MaxInList      = 1000
)

// Parse parses one query.
func Parse(src string) (*Query, error) {
	if !utf8.ValidString(src) {
		at := 0
		for at < len(src) {
			r, size := utf8.DecodeRuneInString(src[at:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			at += size
		}
		return nil, ErrorAt(src, at, "invalid UTF-8 in the query")
	}
	if n := utf8.RuneCountInString(src); n > MaxQueryLength {
		return nil, ErrorAt(src, 0, "the query is %d characters long; the limit is %d", n, MaxQueryLength)
	}
	toks, err := Lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	return p.query()
}

type parser struct {
	src   string
	toks  []Token
	i     int
	depth int
}

func (p *parser) cur() Token { return p.toks[p.i] }

func (p *parser) peek() Token { return p.toks[min(p.i+1, len(p.toks)-1)] }

func (p *parser) next() Token {
	t := p.toks[p.i]
	if t.Kind != EOF {
		p.i++
	}
	return t
}

func (p *parser) errorf(pos int, format string, args ...any) *Error {
	return ErrorAt(p.src, pos, format, args...)
}

// expected reports that the current token is not what was wanted.
func (p *parser) expected(want string) *Error {
	return p.errorf(p.cur().Pos, "expected %s, found %s", want, p.cur())
}

func (p *parser) keyword(word string) bool {
	if p.cur().Kind == Ident && strings.EqualFold(p.cur().Text, word) {
		p.next()
		return true
	}
	return false
}

func (p *parser) op(s string) bool {
	if p.cur().Kind == Op && p.cur().Text == s {
		p.next()
		return true
	}
	return false
}

func (p *parser) query() (*Query, error) {
	q := &Query{At: p.cur().Pos}
	if !p.keyword("SELECT") {
		return nil, p.expected("SELECT")
	}
	if p.cur().is("TOP") {
		q.TopPos = p.next().Pos
		t := p.cur()
		if t.Kind != Number {
			if t.is("-") {
				return nil, p.errorf(t.Pos, "TOP takes a number of rows, 0 or more, found '-%s'", p.peek().Text)
			}
			return nil, p.expected("a number of rows after TOP")
		}
		v, _ := ParseNumber(t.Text)
		if !v.IsInt {
			return nil, p.errorf(t.Pos, "TOP takes a whole number of rows, found %s", t.Text)
		}
		p.next()
		q.Top, q.HasTop = v.Int, true
	}
	if err := p.selectList(q); err != nil {
		return nil, err
	}
	if !p.keyword("FROM") {
		if t := p.cur(); len(q.Items) > 0 && t.Kind == Op && t.Text != "(" && t.Text != ")" {
			return nil, p.errorf(t.Pos, "expected ',' or FROM after the select list, found %s; the select list takes attribute paths and aggregates, not expressions", t)
		}
		if len(q.Items) > 0 {
			return nil, p.expected("',' or FROM after the select list")
		}
		return nil, p.expected("FROM")
	}
	if err := p.source(q); err != nil {
		return nil, err
	}
	if p.keyword("WHERE") {
		e, err := p.expr("a condition after WHERE")
		if err != nil {
			return nil, err
		}
		q.Where = e
	}
	if p.cur().is("GROUP") {
		p.next()
		if !p.keyword("BY") {
			return nil, p.expected("BY after GROUP")
		}
		for {
			path, err := p.path("an attribute path after GROUP BY")
			if err != nil {
				return nil, err
			}
			q.GroupBy = append(q.GroupBy, path)
			if !p.op(",") {
				break
			}
		}
	}
	if t := p.cur(); t.is("ORDER") {
		return nil, p.errorf(t.Pos, "ORDER BY is not part of the IoT Hub query language; results come in device id order")
	}
	if p.cur().Kind != EOF {
		return nil, p.expected("end of query")
	}
	return q, nil
}

func (p *parser) selectList(q *Query) error {
	if t := p.cur(); t.is("*") {
		q.Star, q.StarPos = true, p.next().Pos
		if p.cur().is(",") {
			return p.errorf(p.cur().Pos, "SELECT * cannot be combined with other items; list the attributes instead")
		}
		return nil
	}
	for {
		it, err := p.item()
		if err != nil {
			return err
		}
		q.Items = append(q.Items, it)
		if !p.op(",") {
			return nil
		}
	}
}

// aggregates are the functions a select list may hold.
var aggregates = map[string]bool{"COUNT": true, "AVG": true, "SUM": true, "MIN": true, "MAX": true}

// IsAggregate reports whether name (upper case) is an aggregate function.
func IsAggregate(name string) bool { return aggregates[name] }

func (p *parser) item() (*Item, error) {
	it := &Item{AliasPos: -1}
	t := p.cur()
	if t.Kind == Ident && p.peek().is("(") {
		name := strings.ToUpper(t.Text)
		if !aggregates[name] {
			return nil, p.errorf(t.Pos, "SELECT lists attribute paths and the aggregates COUNT(), AVG, SUM, MIN and MAX; '%s' is not one of them", t.Text)
		}
		p.next()
		p.next()
		agg := &Aggregate{At: t.Pos, Func: name}
		if name == "COUNT" {
			if !p.cur().is(")") {
				return nil, p.errorf(p.cur().Pos, "COUNT takes no argument: write COUNT()")
			}
		} else {
			arg, err := p.path("an attribute path in " + name + "()")
			if err != nil {
				return nil, err
			}
			agg.Arg = arg
		}
		if !p.op(")") {
			return nil, p.expected("')' to close " + name + "(")
		}
		it.Expr = agg
	} else {
		path, err := p.path("an attribute path, an aggregate or * after SELECT")
		if err != nil {
			return nil, err
		}
		it.Expr = path
	}
	if p.keyword("AS") {
		t := p.cur()
		switch {
		case t.Kind == Escaped || t.Kind == Ident && !IsKeyword(t.Text):
			it.Alias, it.AliasPos = t.Text, t.Pos
			p.next()
		case t.Kind == Ident:
			return nil, p.errorf(t.Pos, "expected a name after AS, found keyword '%s' (write [[%s]] if it is a name)", t.Text, t.Text)
		default:
			return nil, p.expected("a name after AS")
		}
	}
	return it, nil
}

func (p *parser) source(q *Query) error {
	t := p.cur()
	if t.Kind != Ident || IsKeyword(t.Text) {
		return p.expected("a collection after FROM (devices)")
	}
	q.From = Source{At: t.Pos, Names: []string{p.next().Text}}
	for p.op(".") {
		t := p.cur()
		if t.Kind != Ident {
			return p.expected("a name after '.'")
		}
		q.From.Names = append(q.From.Names, p.next().Text)
	}
	return nil
}

// path reads name { "." name }; want describes what was expected for the
// error when no path starts here.
func (p *parser) path(want string) (*Path, error) {
	t := p.cur()
	switch {
	case t.Kind == Ident && IsKeyword(t.Text):
		return nil, p.errorf(t.Pos, "expected %s, found keyword '%s' (write [[%s]] if it is a name)", want, t.Text, t.Text)
	case t.Kind != Ident && t.Kind != Escaped:
		return nil, p.expected(want)
	}
	path := &Path{Segments: []Segment{{Name: t.Text, Escaped: t.Kind == Escaped, At: t.Pos}}}
	p.next()
	for p.op(".") {
		t := p.cur()
		if t.Kind != Ident && t.Kind != Escaped {
			return nil, p.expected("a name after '.'")
		}
		path.Segments = append(path.Segments, Segment{Name: t.Text, Escaped: t.Kind == Escaped, At: t.Pos})
		p.next()
	}
	if t := p.cur(); t.is("[") {
		return nil, p.errorf(t.Pos, "indexing with [ ] is not supported; paths name object members only")
	}
	return path, nil
}

// nest guards recursion; every call must be paired with p.depth--.
func (p *parser) nest(at int) error {
	p.depth++
	if p.depth > MaxDepth {
		return p.errorf(at, "the expression nests more than %d levels deep", MaxDepth)
	}
	return nil
}

// expr parses a whole expression; want says what was expected in the
// error when none starts here.
func (p *parser) expr(want string) (Expr, error) {
	l, err := p.and(want)
	if err != nil {
		return nil, err
	}
	for p.cur().is("OR") {
		at := p.next().Pos
		r, err := p.and("a condition after OR")
		if err != nil {
			return nil, err
		}
		l = &Binary{At: at, Op: "OR", L: l, R: r}
	}
	return l, nil
}

func (p *parser) and(want string) (Expr, error) {
	l, err := p.not(want)
	if err != nil {
		return nil, err
	}
	for p.cur().is("AND") {
		at := p.next().Pos
		r, err := p.not("a condition after AND")
		if err != nil {
			return nil, err
		}
		l = &Binary{At: at, Op: "AND", L: l, R: r}
	}
	return l, nil
}

func (p *parser) not(want string) (Expr, error) {
	if !p.cur().is("NOT") {
		return p.compare(want)
	}
	at := p.next().Pos
	if err := p.nest(at); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	x, err := p.not("a condition after NOT")
	if err != nil {
		return nil, err
	}
	return &Not{At: at, X: x}, nil
}

var comparisons = map[string]string{"=": "=", "!=": "!=", "<>": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}

func (p *parser) isComparison() bool {
	t := p.cur()
	return t.Kind == Op && comparisons[t.Text] != "" || t.is("IN") || t.is("NIN")
}

func (p *parser) compare(want string) (Expr, error) {
	l, err := p.sum(want)
	if err != nil {
		return nil, err
	}
	if !p.isComparison() {
		return l, nil
	}
	t := p.next()
	var e Expr
	if t.Kind == Ident {
		in := &In{At: t.Pos, Negated: strings.EqualFold(t.Text, "NIN"), X: l}
		if in.List, err = p.list(strings.ToUpper(t.Text)); err != nil {
			return nil, err
		}
		e = in
	} else {
		r, err := p.sum("a value after '" + t.Text + "'")
		if err != nil {
			return nil, err
		}
		e = &Binary{At: t.Pos, Op: comparisons[t.Text], L: l, R: r}
	}
	if p.isComparison() {
		return nil, p.errorf(p.cur().Pos, "comparisons cannot be chained; join them with AND")
	}
	return e, nil
}

func (p *parser) list(op string) ([]*Literal, error) {
	if t := p.cur(); !t.is("[") {
		if t.is("(") {
			return nil, p.errorf(t.Pos, "expected '[' after %s, found '('; lists are written in square brackets: %s ['a', 'b']", op, op)
		}
		return nil, p.expected("'[' after " + op)
	}
	p.next()
	list := []*Literal{}
	if p.op("]") {
		return list, nil
	}
	for {
		if len(list) == MaxInList {
			return nil, p.errorf(p.cur().Pos, "an %s list holds at most %d values", op, MaxInList)
		}
		c, err := p.constant(op)
		if err != nil {
			return nil, err
		}
		list = append(list, c)
		if p.op("]") {
			return list, nil
		}
		if !p.op(",") {
			return nil, p.expected("',' or ']' in the " + op + " list")
		}
	}
}

func (p *parser) constant(op string) (*Literal, error) {
	t := p.cur()
	if t.is("-") && p.peek().Kind == Number {
		p.next()
		return p.negative(t.Pos)
	}
	if lit := p.literal(); lit != nil {
		return lit, nil
	}
	return nil, p.expected("a constant (string, number, true, false or null) in the " + op + " list")
}

// literal consumes and returns the literal at the current token, if any.
func (p *parser) literal() *Literal {
	t := p.cur()
	var lit *Literal
	switch t.Kind {
	case String:
		lit = &Literal{At: t.Pos, Kind: LitString, Text: t.Text}
	case Number:
		lit = &Literal{At: t.Pos, Kind: LitNumber, Text: t.Text}
	case Ident:
		kind, ok := map[string]LitKind{"TRUE": LitTrue, "FALSE": LitFalse, "NULL": LitNull, "UNDEFINED": LitUndefined}[strings.ToUpper(t.Text)]
		if !ok {
			return nil
		}
		lit = &Literal{At: t.Pos, Kind: kind}
	default:
		return nil
	}
	p.next()
	return lit
}

// negative folds '-' (at minus) and the number after it into one literal.
func (p *parser) negative(minus int) (*Literal, error) {
	t := p.next()
	text := "-" + t.Text
	if _, err := ParseNumber(text); err != nil {
		return nil, p.errorf(minus, "%s", err.Error())
	}
	return &Literal{At: minus, Kind: LitNumber, Text: text}, nil
}

func (p *parser) sum(want string) (Expr, error) {
	l, err := p.product(want)
	if err != nil {
		return nil, err
	}
	for p.cur().is("+") || p.cur().is("-") {
		t := p.next()
		r, err := p.product("a value after '" + t.Text + "'")
		if err != nil {
			return nil, err
		}
		l = &Binary{At: t.Pos, Op: t.Text, L: l, R: r}
	}
	return l, nil
}

func (p *parser) product(want string) (Expr, error) {
	l, err := p.unary(want)
	if err != nil {
		return nil, err
	}
	for p.cur().is("*") || p.cur().is("/") || p.cur().is("%") {
		t := p.next()
		r, err := p.unary("a value after '" + t.Text + "'")
		if err != nil {
			return nil, err
		}
		l = &Binary{At: t.Pos, Op: t.Text, L: l, R: r}
	}
	return l, nil
}

func (p *parser) unary(want string) (Expr, error) {
	t := p.cur()
	if !t.is("-") {
		return p.primary(want)
	}
	p.next()
	if p.cur().Kind == Number {
		return p.negative(t.Pos)
	}
	if err := p.nest(t.Pos); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	x, err := p.unary("a value after '-'")
	if err != nil {
		return nil, err
	}
	return &Neg{At: t.Pos, X: x}, nil
}

func (p *parser) primary(want string) (Expr, error) {
	t := p.cur()
	if lit := p.literal(); lit != nil {
		return lit, nil
	}
	switch {
	case t.is("("):
		p.next()
		if err := p.nest(t.Pos); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		e, err := p.expr("an expression after '('")
		if err != nil {
			return nil, err
		}
		if !p.op(")") {
			return nil, p.expected("')'")
		}
		return e, nil
	case t.Kind == Ident && !IsKeyword(t.Text) && p.peek().is("("):
		return p.call()
	case t.Kind == Ident && !IsKeyword(t.Text), t.Kind == Escaped:
		return p.path(want)
	case t.is("["):
		return nil, p.errorf(t.Pos, "a list [...] is only allowed after IN or NIN")
	case t.Kind == Ident && (p.peek().is(".") || p.peek().Kind == Op && comparisons[p.peek().Text] != ""):
		// A keyword used as a name: group.x, group = 1.
		return nil, p.errorf(t.Pos, "expected %s, found keyword '%s' (write [[%s]] if it is a name)", want, t.Text, t.Text)
	}
	return nil, p.expected(want)
}

func (p *parser) call() (Expr, error) {
	t := p.next()
	p.next() // (
	if err := p.nest(t.Pos); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	c := &Call{At: t.Pos, Name: strings.ToUpper(t.Text)}
	if p.op(")") {
		return c, nil
	}
	for {
		arg, err := p.expr("an argument of " + c.Name + "()")
		if err != nil {
			return nil, err
		}
		c.Args = append(c.Args, arg)
		if p.op(")") {
			return c, nil
		}
		if !p.op(",") {
			return nil, p.expected("',' or ')' in the call of " + c.Name + "()")
		}
	}
}
