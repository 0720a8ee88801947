package syntax

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Parse parses a whole query.
func Parse(src string) (*Query, error) {
	toks, err := Lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	q, err := p.query()
	if err != nil {
		return nil, err
	}
	return q, nil
}

// ParseExpr parses a scalar expression (for tests and tools).
func ParseExpr(src string) (Expr, error) {
	toks, err := Lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	e, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.cur().Kind != TokEOF {
		return nil, p.unexpected("end of expression")
	}
	return e, nil
}

type parser struct {
	toks  []Token
	i     int
	depth int // nesting of expressions, bounded by maxDepth
}

// maxDepth bounds expression nesting: deeper input would exhaust the
// stack here or the SQL engine's expression depth later.
const maxDepth = 100

func (p *parser) cur() Token  { return p.toks[p.i] }
func (p *parser) peek() Token { return p.toks[min(p.i+1, len(p.toks)-1)] }

func (p *parser) nextTok() Token {
	t := p.toks[p.i]
	if t.Kind != TokEOF {
		p.i++
	}
	return t
}

// isOp reports whether the current token is the symbol s.
func (p *parser) isOp(s string) bool { t := p.cur(); return t.Kind == TokOp && t.Text == s }

// isWord reports whether the current token is the identifier w.
func (p *parser) isWord(w string) bool { t := p.cur(); return t.Kind == TokIdent && t.Text == w }

func (p *parser) unexpected(want string) *Error {
	t := p.cur()
	return Errorf(t.Pos, "expected %s, found %s", want, t)
}

func (p *parser) expectOp(s string) (Token, error) {
	if !p.isOp(s) {
		return Token{}, p.unexpected("'" + s + "'")
	}
	return p.nextTok(), nil
}

func (p *parser) query() (*Query, error) {
	q := &Query{}
	for p.isWord("let") {
		at := p.nextTok().Pos
		name, err := p.ident("a name after 'let'")
		if err != nil {
			return nil, err
		}
		if _, err := p.expectOp("="); err != nil {
			return nil, err
		}
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		if _, err := p.expectOp(";"); err != nil {
			return nil, err
		}
		q.Lets = append(q.Lets, &Let{At: at, Name: name, Value: v})
	}
	if p.cur().Kind != TokIdent {
		if p.cur().Kind == TokEOF && len(q.Lets) > 0 {
			return nil, Errorf(p.cur().Pos, "the query has only let statements; it must end with a table expression")
		}
		return nil, p.unexpected("a table name")
	}
	body := &Pipeline{Source: p.identTok(p.nextTok())}
	for p.isOp("|") {
		p.nextTok()
		op, err := p.operator()
		if err != nil {
			return nil, err
		}
		body.Ops = append(body.Ops, op)
	}
	q.Body = body
	if p.isOp(";") {
		p.nextTok()
	}
	if p.cur().Kind != TokEOF {
		if p.cur().Kind == TokIdent && len(body.Ops) == 0 || p.cur().Kind == TokIdent && p.toks[p.i-1].Kind == TokIdent {
			return nil, &Error{Pos: p.cur().Pos, Msg: "expected '|' before " + p.cur().String(),
				Hint: "tabular operators are separated by '|'"}
		}
		e := p.unexpected("'|' or end of query")
		if p.isOp("=") {
			e.Hint = "to compare, write =="
		}
		return nil, e
	}
	return q, nil
}

func (p *parser) identTok(t Token) *Ident { return &Ident{At: t.Pos, Name: t.Text} }

// ident reads a name: a plain identifier or ['name'].
func (p *parser) ident(what string) (*Ident, error) {
	t := p.cur()
	if t.Kind == TokIdent {
		p.nextTok()
		return p.identTok(t), nil
	}
	if p.isOp("[") && p.peek().Kind == TokString {
		p.nextTok()
		s := p.nextTok()
		if _, err := p.expectOp("]"); err != nil {
			return nil, err
		}
		return &Ident{At: t.Pos, Name: s.Text, Bracketed: true}, nil
	}
	return nil, p.unexpected(what)
}

// Operators lists the tabular operators the parser knows.
var Operators = []string{"where", "extend", "project", "project-away", "project-rename", "distinct",
	"summarize", "order", "sort", "take", "limit", "top", "count"}

func (p *parser) operator() (Operator, error) {
	t := p.cur()
	if t.Kind != TokIdent {
		return nil, p.unexpected("a tabular operator (where, extend, project, summarize, …)")
	}
	p.nextTok()
	at := t.Pos
	switch t.Text {
	case "where", "filter":
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		return &Where{At: at, Pred: e}, nil
	case "extend":
		as, err := p.assigns(true)
		if err != nil {
			return nil, err
		}
		return &Extend{At: at, Assigns: as}, nil
	case "project":
		as, err := p.assigns(true)
		if err != nil {
			return nil, err
		}
		return &Project{At: at, Items: as}, nil
	case "project-away":
		ns, err := p.idents()
		if err != nil {
			return nil, err
		}
		return &ProjectAway{At: at, Names: ns}, nil
	case "project-rename":
		var rs []*Rename
		for {
			n, err := p.ident("a new column name")
			if err != nil {
				return nil, err
			}
			if _, err := p.expectOp("="); err != nil {
				return nil, err
			}
			o, err := p.ident("the column to rename")
			if err != nil {
				return nil, err
			}
			rs = append(rs, &Rename{New: n, Old: o})
			if !p.isOp(",") {
				return &ProjectRename{At: at, Items: rs}, nil
			}
			p.nextTok()
		}
	case "distinct":
		if p.isOp("*") {
			p.nextTok()
			return &Distinct{At: at, All: true}, nil
		}
		ns, err := p.idents()
		if err != nil {
			return nil, err
		}
		return &Distinct{At: at, Cols: ns}, nil
	case "summarize":
		s := &Summarize{At: at}
		if p.cur().Kind == TokEOF || p.isOp("|") {
			return nil, p.unexpected("an aggregation or 'by'")
		}
		if !p.isWord("by") {
			as, err := p.assigns(true)
			if err != nil {
				return nil, err
			}
			s.Aggs = as
		}
		if p.isWord("by") {
			p.nextTok()
			as, err := p.assigns(true)
			if err != nil {
				return nil, err
			}
			s.By = as
		}
		return s, nil
	case "order", "sort":
		if !p.isWord("by") {
			return nil, p.unexpected("'by' after '" + t.Text + "'")
		}
		p.nextTok()
		var keys []*SortKey
		for {
			k, err := p.sortKey()
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
			if !p.isOp(",") {
				return &Sort{At: at, Keyword: t.Text, Keys: keys}, nil
			}
			p.nextTok()
		}
	case "take", "limit":
		n, err := p.expr()
		if err != nil {
			return nil, err
		}
		return &Take{At: at, Keyword: t.Text, N: n}, nil
	case "top":
		n, err := p.additive()
		if err != nil {
			return nil, err
		}
		if !p.isWord("by") {
			return nil, p.unexpected("'by' after 'top N'")
		}
		p.nextTok()
		k, err := p.sortKey()
		if err != nil {
			return nil, err
		}
		return &Top{At: at, N: n, Key: k}, nil
	case "count":
		return &Count{At: at}, nil
	}
	e := &Error{Pos: at, Msg: "unknown tabular operator '" + t.Text + "'"}
	if s := Suggest(t.Text, Operators); s != "" {
		e.Hint = "did you mean '" + s + "'?"
	}
	return nil, e
}

func (p *parser) idents() ([]*Ident, error) {
	var ns []*Ident
	for {
		n, err := p.ident("a column name")
		if err != nil {
			return nil, err
		}
		ns = append(ns, n)
		if !p.isOp(",") {
			return ns, nil
		}
		p.nextTok()
	}
}

// assigns reads "[Name =] expr, …".
func (p *parser) assigns(allowBare bool) ([]*Assign, error) {
	var as []*Assign
	for {
		a := &Assign{}
		if (p.cur().Kind == TokIdent || p.isOp("[")) && p.nameBeforeEquals() {
			n, err := p.ident("a column name")
			if err != nil {
				return nil, err
			}
			p.nextTok() // "="
			a.Name = n
		}
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		a.Value = v
		as = append(as, a)
		if !p.isOp(",") {
			return as, nil
		}
		p.nextTok()
	}
}

// nameBeforeEquals reports whether the tokens at the cursor are "name =" or "['name'] =".
func (p *parser) nameBeforeEquals() bool {
	i := p.i
	if p.toks[i].Kind == TokOp && p.toks[i].Text == "[" {
		if i+3 >= len(p.toks) || p.toks[i+1].Kind != TokString || p.toks[i+2].Text != "]" {
			return false
		}
		i += 2
	}
	n := p.toks[min(i+1, len(p.toks)-1)]
	return n.Kind == TokOp && n.Text == "="
}

func (p *parser) sortKey() (*SortKey, error) {
	e, err := p.expr()
	if err != nil {
		return nil, err
	}
	k := &SortKey{Expr: e, Desc: true}
	switch {
	case p.isWord("asc"):
		p.nextTok()
		k.Desc, k.Explicit = false, true
	case p.isWord("desc"):
		p.nextTok()
		k.Explicit = true
	}
	if p.isWord("nulls") {
		p.nextTok()
		switch {
		case p.isWord("first"), p.isWord("last"):
			k.Nulls = p.nextTok().Text
		default:
			return nil, p.unexpected("'first' or 'last' after 'nulls'")
		}
	}
	return k, nil
}

// Expressions, lowest precedence first.

func (p *parser) expr() (Expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, Errorf(p.cur().Pos, "expression nested too deeply (more than %d levels)", maxDepth)
	}
	return p.or()
}

func (p *parser) or() (Expr, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.isWord("or") {
		at := p.nextTok().Pos
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = &Binary{At: at, Op: "or", L: l, R: r}
	}
	return l, nil
}

func (p *parser) and() (Expr, error) {
	l, err := p.comparison()
	if err != nil {
		return nil, err
	}
	for p.isWord("and") {
		at := p.nextTok().Pos
		r, err := p.comparison()
		if err != nil {
			return nil, err
		}
		l = &Binary{At: at, Op: "and", L: l, R: r}
	}
	return l, nil
}

// comparisonOps are the binary operators of comparison precedence
// (symbols and words; negated words come from the lexer as one token).
var comparisonOps = map[string]bool{
	"==": true, "!=": true, "<>": true, "<": true, "<=": true, ">": true, ">=": true, "=~": true, "!~": true,
	"has": true, "!has": true, "has_cs": true, "!has_cs": true, "contains": true, "!contains": true,
	"contains_cs": true, "!contains_cs": true, "startswith": true, "!startswith": true,
	"startswith_cs": true, "!startswith_cs": true, "endswith": true, "!endswith": true,
	"endswith_cs": true, "!endswith_cs": true, "hasprefix": true, "!hasprefix": true,
	"hassuffix": true, "!hassuffix": true,
}

func (p *parser) comparison() (Expr, error) {
	l, err := p.additive()
	if err != nil {
		return nil, err
	}
	for {
		t := p.cur()
		if t.Kind != TokOp && t.Kind != TokIdent {
			return l, nil
		}
		switch {
		case t.Text == "in" || t.Text == "!in" || t.Text == "in~" || t.Text == "!in~":
			p.nextTok()
			list, err := p.parenList()
			if err != nil {
				return nil, err
			}
			l = &In{X: l, At: t.Pos, Op: t.Text, List: list}
		case t.Text == "between" || t.Text == "!between":
			p.nextTok()
			if _, err := p.expectOp("("); err != nil {
				return nil, err
			}
			lo, err := p.additive()
			if err != nil {
				return nil, err
			}
			if _, err := p.expectOp(".."); err != nil {
				return nil, err
			}
			hi, err := p.additive()
			if err != nil {
				return nil, err
			}
			if _, err := p.expectOp(")"); err != nil {
				return nil, err
			}
			l = &Between{X: l, At: t.Pos, Not: t.Text == "!between", Lo: lo, Hi: hi}
		case comparisonOps[t.Text]:
			p.nextTok()
			r, err := p.additive()
			if err != nil {
				return nil, err
			}
			op := t.Text
			if op == "<>" {
				op = "!="
			}
			l = &Binary{At: t.Pos, Op: op, L: l, R: r}
		default:
			return l, nil
		}
	}
}

func (p *parser) parenList() ([]Expr, error) {
	if _, err := p.expectOp("("); err != nil {
		return nil, err
	}
	var list []Expr
	for {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		list = append(list, e)
		if p.isOp(")") {
			p.nextTok()
			return list, nil
		}
		if _, err := p.expectOp(","); err != nil {
			return nil, err
		}
	}
}

func (p *parser) additive() (Expr, error) {
	l, err := p.multiplicative()
	if err != nil {
		return nil, err
	}
	for p.isOp("+") || p.isOp("-") {
		t := p.nextTok()
		r, err := p.multiplicative()
		if err != nil {
			return nil, err
		}
		l = &Binary{At: t.Pos, Op: t.Text, L: l, R: r}
	}
	return l, nil
}

func (p *parser) multiplicative() (Expr, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.isOp("*") || p.isOp("/") || p.isOp("%") {
		t := p.nextTok()
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = &Binary{At: t.Pos, Op: t.Text, L: l, R: r}
	}
	return l, nil
}

func (p *parser) unary() (Expr, error) {
	if p.isOp("-") || p.isOp("+") {
		t := p.nextTok()
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxDepth {
			return nil, Errorf(t.Pos, "expression nested too deeply (more than %d levels)", maxDepth)
		}
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &Unary{At: t.Pos, Op: t.Text, X: x}, nil
	}
	return p.postfix()
}

func (p *parser) postfix() (Expr, error) {
	x, err := p.primary()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isOp("."):
			p.nextTok()
			t := p.cur()
			if t.Kind != TokIdent {
				return nil, p.unexpected("a property name after '.'")
			}
			p.nextTok()
			x = &Member{X: x, Name: p.identTok(t)}
		case p.isOp("["):
			at := p.nextTok().Pos
			idx, err := p.expr()
			if err != nil {
				return nil, err
			}
			if _, err := p.expectOp("]"); err != nil {
				return nil, err
			}
			x = &Index{X: x, At: at, Index: idx}
		default:
			return x, nil
		}
	}
}

func (p *parser) primary() (Expr, error) {
	t := p.cur()
	switch t.Kind {
	case TokString:
		p.nextTok()
		return &StringLit{At: t.Pos, Value: t.Text, Verbatim: t.Verbatim}, nil
	case TokLong:
		p.nextTok()
		v, err := strconv.ParseInt(t.Text, 0, 64)
		if err != nil {
			return nil, Errorf(t.Pos, "number %s is out of range for long", t.Text)
		}
		return &LongLit{At: t.Pos, Value: v, Text: t.Text}, nil
	case TokReal:
		p.nextTok()
		v, err := strconv.ParseFloat(t.Text, 64)
		if err != nil || math.IsInf(v, 0) {
			return nil, Errorf(t.Pos, "number %s is out of range for real", t.Text)
		}
		return &RealLit{At: t.Pos, Value: v, Text: t.Text}, nil
	case TokTimespan:
		p.nextTok()
		d, err := parseTimespan(t.Text)
		if err != nil {
			return nil, Errorf(t.Pos, "%s", err.Error())
		}
		return &TimespanLit{At: t.Pos, Value: d, Text: t.Text}, nil
	case TokDatetime:
		p.nextTok()
		if strings.EqualFold(t.Text, "null") {
			return &DatetimeLit{At: t.Pos, Null: true, Text: t.Text}, nil
		}
		v, ok := ParseDatetime(t.Text)
		if !ok {
			return nil, &Error{Pos: t.Pos, Msg: "invalid datetime literal '" + t.Text + "'",
				Hint: "write ISO 8601, e.g. datetime(2024-01-31T13:45:00Z)"}
		}
		return &DatetimeLit{At: t.Pos, Value: v, Text: t.Text}, nil
	case TokIdent:
		p.nextTok()
		switch t.Text {
		case "true", "false":
			return &BoolLit{At: t.Pos, Value: t.Text == "true"}, nil
		}
		id := p.identTok(t)
		if !p.isOp("(") {
			return id, nil
		}
		p.nextTok()
		c := &Call{Func: id}
		if p.isOp(")") {
			p.nextTok()
			return c, nil
		}
		for {
			var a Expr
			if p.isOp("*") {
				a = &Star{At: p.nextTok().Pos}
			} else {
				var err error
				if a, err = p.expr(); err != nil {
					return nil, err
				}
			}
			c.Args = append(c.Args, a)
			if p.isOp(")") {
				p.nextTok()
				return c, nil
			}
			if _, err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
	case TokOp:
		switch t.Text {
		case "(":
			p.nextTok()
			x, err := p.expr()
			if err != nil {
				return nil, err
			}
			if _, err := p.expectOp(")"); err != nil {
				return nil, err
			}
			return &Paren{At: t.Pos, X: x}, nil
		case "[":
			return p.ident("an expression")
		}
	}
	return nil, p.unexpected("an expression")
}

// unitDurations are the lengths of the canonical timespan units.
var unitDurations = map[string]time.Duration{
	"d": 24 * time.Hour, "h": time.Hour, "m": time.Minute, "s": time.Second, "ms": time.Millisecond,
	"microsecond": time.Microsecond, "tick": 100 * time.Nanosecond,
}

// parseTimespan reads a lexed timespan literal such as 1.5h or 100ms.
func parseTimespan(text string) (time.Duration, error) {
	i := 0
	for i < len(text) && (text[i] >= '0' && text[i] <= '9' || text[i] == '.' || text[i] == 'e' || text[i] == 'E' || text[i] == '+' || text[i] == '-') {
		if (text[i] == 'e' || text[i] == 'E') && !(i+1 < len(text) && (text[i+1] >= '0' && text[i+1] <= '9' || text[i+1] == '+' || text[i+1] == '-')) {
			break
		}
		i++
	}
	num, unit := text[:i], timespanUnits[text[i:]]
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, errors.New("invalid timespan literal " + text)
	}
	v := f * float64(unitDurations[unit])
	if v > math.MaxInt64 || v < math.MinInt64 || math.IsNaN(v) {
		return 0, errors.New("timespan " + text + " is out of range")
	}
	return time.Duration(v), nil
}

// datetimeLayouts are the spellings datetime() and todatetime() accept.
var datetimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
	"2006-01-02",
	"2006-01",
	time.RFC1123,
	time.RFC1123Z,
}

// ParseDatetime parses the datetime spellings KQL accepts (ISO 8601 and
// RFC 1123); times without a zone are UTC.
func ParseDatetime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, l := range datetimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
