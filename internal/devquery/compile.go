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

// both compiles two operands with f.
func both[F any](f func(syntax.Expr) (F, error), a, b syntax.Expr) (F, F, error) {
	fa, err := f(a)
	if err != nil {
		return fa, fa, err
	}
	fb, err := f(b)
	return fa, fb, err
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
	case *syntax.Neg:
		x, err := c.expr(e.X)
		if err != nil {
			return nil, err
		}
		zero := numValue(intNum(0))
		return func(d Doc) value { return arith("-", zero, x(d)) }, nil
	case *syntax.Binary:
		if op := e.Op; op == "+" || op == "-" || op == "*" || op == "/" || op == "%" {
			l, r, err := both(c.expr, e.L, e.R)
			if err != nil {
				return nil, err
			}
			return func(d Doc) value { return arith(op, l(d), r(d)) }, nil
		}
		return c.condValue(e)
	case *syntax.Not, *syntax.In:
		return c.condValue(e)
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

func (c *compiler) call(e *syntax.Call) (evalFn, error) {
	fn, ok := functions[e.Name]
	if !ok {
		if syntax.IsAggregate(e.Name) {
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
	if fn.f1 != nil {
		a, err := c.expr(e.Args[0])
		if err != nil {
			return nil, err
		}
		f := fn.f1
		return func(d Doc) value { return f(a(d)) }, nil
	}
	a, b, err := both(c.expr, e.Args[0], e.Args[1])
	if err != nil {
		return nil, err
	}
	f := fn.f2
	return func(d Doc) value { return f(a(d), b(d)) }, nil
}
