package devquery

import (
	"strings"

	kqlsyntax "github.com/tether-hub/tether/internal/kql/syntax"

	"github.com/tether-hub/tether/internal/devquery/syntax"
)

// evalFn evaluates an expression against one document.
type evalFn func(d Doc) value

// compiler turns the AST into closures and checks what the grammar cannot:
// names of functions, arity, where aggregates may stand.
type compiler struct {
	src string
}

func (c *compiler) errorf(pos int, format string, args ...any) error {
	return syntax.ErrorAt(c.src, pos, format, args...)
}

// path resolves a path to the names Doc.Lookup receives.
func (c *compiler) path(p *syntax.Path) ([]string, error) {
	names := p.Names()
	esc := make([]bool, len(names))
	for i, s := range p.Segments {
		esc[i] = s.Escaped
	}
	if len(names) == 1 && !esc[0] && strings.EqualFold(names[0], "devices") {
		return nil, c.errorf(p.Pos(), "'%s' alone is the whole twin; name one of its attributes (devices.deviceId) or SELECT *", names[0])
	}
	return canonical(names, esc), nil
}

func (c *compiler) expr(e syntax.Expr) (evalFn, error) {
	switch e := e.(type) {
	case *syntax.Path:
		names, err := c.path(e)
		if err != nil {
			return nil, err
		}
		return func(d Doc) value {
			x, ok := d.Lookup(names)
			if !ok {
				return undefined
			}
			return fromAny(x)
		}, nil
	case *syntax.Literal:
		v := literal(e)
		return func(Doc) value { return v }, nil
	case *syntax.Not:
		x, err := c.expr(e.X)
		if err != nil {
			return nil, err
		}
		return func(d Doc) value {
			v := x(d)
			if v.k != kBool {
				return undefined
			}
			return boolValue(!v.b)
		}, nil
	case *syntax.Neg:
		x, err := c.expr(e.X)
		if err != nil {
			return nil, err
		}
		zero := numValue(intNum(0))
		return func(d Doc) value { return arith("-", zero, x(d)) }, nil
	case *syntax.Binary:
		return c.binary(e)
	case *syntax.In:
		return c.in(e)
	case *syntax.Call:
		return c.call(e)
	case *syntax.Aggregate:
		return nil, c.errorf(e.At, "aggregate %s() is only allowed in the select list", e.Func)
	}
	return nil, c.errorf(e.Pos(), "unsupported expression")
}

// literal is the value of a constant; the lexer has checked numbers.
func literal(l *syntax.Literal) value {
	switch l.Kind {
	case syntax.LitString:
		return value{k: kStr, s: l.Text}
	case syntax.LitNumber:
		n, _ := syntax.ParseNumber(l.Text)
		if n.IsInt {
			return numValue(intNum(n.Int))
		}
		return floatValue(n.Float)
	case syntax.LitTrue:
		return vTrue
	case syntax.LitFalse:
		return vFalse
	case syntax.LitNull:
		return value{k: kNull}
	}
	return undefined
}

func (c *compiler) binary(e *syntax.Binary) (evalFn, error) {
	l, err := c.expr(e.L)
	if err != nil {
		return nil, err
	}
	r, err := c.expr(e.R)
	if err != nil {
		return nil, err
	}
	switch e.Op {
	case "AND":
		// Three-valued: false wins, then undefined; true only if both are.
		return func(d Doc) value {
			a := l(d)
			if a.k == kBool && !a.b {
				return vFalse
			}
			b := r(d)
			if b.k == kBool && !b.b {
				return vFalse
			}
			return boolOr(a.k == kBool && b.k == kBool, true)
		}, nil
	case "OR":
		return func(d Doc) value {
			a := l(d)
			if a.k == kBool && a.b {
				return vTrue
			}
			b := r(d)
			if b.k == kBool && b.b {
				return vTrue
			}
			return boolOr(a.k == kBool && b.k == kBool, false)
		}, nil
	case "+", "-", "*", "/", "%":
		op := e.Op
		return func(d Doc) value { return arith(op, l(d), r(d)) }, nil
	}
	test := map[string]func(int) bool{
		"=": func(c int) bool { return c == 0 }, "!=": func(c int) bool { return c != 0 },
		"<": func(c int) bool { return c < 0 }, "<=": func(c int) bool { return c <= 0 },
		">": func(c int) bool { return c > 0 }, ">=": func(c int) bool { return c >= 0 },
	}[e.Op]
	if lit, ok := e.R.(*syntax.Literal); ok && lit.Kind == syntax.LitString {
		if p, ok := e.L.(*syntax.Path); ok {
			// The commonest condition (connectionState = 'Disconnected'),
			// kept to one lookup and one string comparison.
			names, _ := c.path(p)
			s := lit.Text
			return func(d Doc) value {
				x, ok := d.Lookup(names)
				if !ok {
					return undefined
				}
				if v, isStr := x.(string); isStr {
					return boolValue(test(cmpOrdered(v, s)))
				}
				return undefined
			}, nil
		}
	}
	return func(d Doc) value {
		if cmp, ok := compare(l(d), r(d)); ok {
			return boolValue(test(cmp))
		}
		return undefined
	}, nil
}

// boolOr returns b when defined, else undefined.
func boolOr(defined, b bool) value {
	if defined {
		return boolValue(b)
	}
	return undefined
}

// in is x IN [..] and x NIN [..]: undefined when x is undefined or not a
// primitive, else whether some element equals x (NIN: none does).
func (c *compiler) in(e *syntax.In) (evalFn, error) {
	x, err := c.expr(e.X)
	if err != nil {
		return nil, err
	}
	neg := e.Negated
	var list []value
	var strs map[string]bool
	for _, l := range e.List {
		v := literal(l)
		if v.k == kStr && len(e.List) > 8 {
			if strs == nil {
				strs = map[string]bool{}
			}
			strs[v.s] = true
			continue
		}
		list = append(list, v)
	}
	return func(d Doc) value {
		v := x(d)
		if !v.primitive() {
			return undefined
		}
		found := v.k == kStr && strs[v.s]
		for i := 0; i < len(list) && !found; i++ {
			cmp, ok := compare(v, list[i])
			found = ok && cmp == 0
		}
		return boolValue(found != neg)
	}, nil
}

func (c *compiler) call(e *syntax.Call) (evalFn, error) {
	fn, ok := functions[e.Name]
	if !ok {
		switch {
		case aggregateNames[e.Name]:
			return nil, c.errorf(e.At, "aggregate %s() is only allowed in the select list", e.Name)
		}
		names := strings.Split(functionNames(), ", ")
		if s := kqlsyntax.Suggest(e.Name, names); s != "" {
			return nil, c.errorf(e.At, "unknown function '%s'; did you mean '%s'?", e.Name, s)
		}
		return nil, c.errorf(e.At, "unknown function '%s'; the functions are %s", e.Name, functionNames())
	}
	want := 1
	if fn.f2 != nil {
		want = 2
	}
	if len(e.Args) != want {
		return nil, c.errorf(e.At, "%s takes %d argument%s, found %d", e.Name, want, map[bool]string{true: "s"}[want > 1], len(e.Args))
	}
	a, err := c.expr(e.Args[0])
	if err != nil {
		return nil, err
	}
	if fn.f1 != nil {
		f := fn.f1
		return func(d Doc) value { return f(a(d)) }, nil
	}
	b, err := c.expr(e.Args[1])
	if err != nil {
		return nil, err
	}
	f := fn.f2
	return func(d Doc) value { return f(a(d), b(d)) }, nil
}

var aggregateNames = map[string]bool{"COUNT": true, "AVG": true, "SUM": true, "MIN": true, "MAX": true}
