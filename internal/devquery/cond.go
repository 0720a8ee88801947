package devquery

import (
	"encoding/json"
	"math"
	"strings"

	"github.com/tether-hub/tether/internal/devquery/syntax"
)

// tri is the value of a condition: undefined, false or true.
type tri int8

const (
	unknown tri = iota
	no
	yes
)

func triOf(b bool) tri {
	if b {
		return yes
	}
	return no
}

var (
	negated   = [...]tri{unknown: unknown, no: yes, yes: no}
	triValues = [...]value{unknown: undefined, no: vFalse, yes: vTrue}
)

// condFn evaluates a condition against one document. Conditions are
// compiled apart from values so the common ones (AND, OR, NOT, a path
// compared with a constant, IN) pass one byte around, not a value.
type condFn func(d Doc) tri

// condValue is a condition used where a value is wanted (tags.a = (b = c)).
func (c *compiler) condValue(e syntax.Expr) (evalFn, error) {
	f, err := c.cond(e)
	if err != nil {
		return nil, err
	}
	return func(d Doc) value { return triValues[f(d)] }, nil
}

func (c *compiler) cond(e syntax.Expr) (condFn, error) {
	switch e := e.(type) {
	case *syntax.Binary:
		switch e.Op {
		case "AND", "OR":
			l, r, err := both(c.cond, e.L, e.R)
			if err != nil {
				return nil, err
			}
			// Three-valued logic: one side decides when it holds the
			// dominant value (false for AND, true for OR); otherwise the
			// result is unknown unless both sides are known.
			dominant := no
			if e.Op == "OR" {
				dominant = yes
			}
			return func(d Doc) tri {
				a := l(d)
				if a == dominant {
					return a
				}
				switch b := r(d); {
				case b == dominant:
					return b
				case a == unknown || b == unknown:
					return unknown
				}
				return a
			}, nil
		case "=", "!=", "<", "<=", ">", ">=":
			return c.compare(e)
		}
	case *syntax.Not:
		x, err := c.cond(e.X)
		if err != nil {
			return nil, err
		}
		return func(d Doc) tri { return negated[x(d)] }, nil
	case *syntax.In:
		return c.in(e)
	}
	v, err := c.expr(e)
	if err != nil {
		return nil, err
	}
	return func(d Doc) tri {
		if b := v(d); b.k == kBool {
			return triOf(b.b)
		}
		return unknown
	}, nil
}

// cmpOp is a comparison operator.
type cmpOp uint8

const (
	opEq cmpOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

var cmpOps = map[string]cmpOp{"=": opEq, "!=": opNe, "<": opLt, "<=": opLe, ">": opGt, ">=": opGe}

// flipped is the operator with its operands swapped: 1 < x is x > 1.
var flipped = [...]cmpOp{opEq: opEq, opNe: opNe, opLt: opGt, opLe: opGe, opGt: opLt, opGe: opLe}

// holds reports whether a comparison result c (-1, 0, 1) satisfies op.
func (op cmpOp) holds(c int) bool {
	switch op {
	case opEq:
		return c == 0
	case opNe:
		return c != 0
	case opLt:
		return c < 0
	case opLe:
		return c <= 0
	case opGt:
		return c > 0
	}
	return c >= 0
}

func (c *compiler) compare(e *syntax.Binary) (condFn, error) {
	op := cmpOps[e.Op]
	path, lp := e.L.(*syntax.Path)
	lit, rl := e.R.(*syntax.Literal)
	if !lp || !rl {
		// 'x' = path reads as path = 'x'.
		if p, ok := e.R.(*syntax.Path); ok {
			if l, ok := e.L.(*syntax.Literal); ok {
				path, lit, op, lp, rl = p, l, flipped[op], true, true
			}
		}
	}
	if lp && rl && (lit.Kind == syntax.LitString || lit.Kind == syntax.LitNumber) {
		names, err := c.path(path)
		if err != nil {
			return nil, err
		}
		if lit.Kind == syntax.LitString {
			return stringCompare(names, op, lit.Text), nil
		}
		return numberCompare(names, op, literal(lit).n), nil
	}
	l, r, err := both(c.expr, e.L, e.R)
	if err != nil {
		return nil, err
	}
	return func(d Doc) tri {
		if cmp, ok := compare(l(d), r(d)); ok {
			return triOf(op.holds(cmp))
		}
		return unknown
	}, nil
}

// stringCompare is path OP 'constant': connectionState = 'Disconnected',
// the condition issue 11 wants fast, in one lookup and one comparison.
func stringCompare(names []string, op cmpOp, s string) condFn {
	return func(d Doc) tri {
		x, ok := d.Lookup(names)
		if !ok {
			return unknown
		}
		v, ok := x.(string)
		if !ok {
			return unknown
		}
		switch op {
		case opEq:
			return triOf(v == s)
		case opNe:
			return triOf(v != s)
		}
		return triOf(op.holds(strings.Compare(v, s)))
	}
}

// numberCompare is path OP number.
func numberCompare(names []string, op cmpOp, n num) condFn {
	return func(d Doc) tri {
		x, ok := d.Lookup(names)
		if !ok {
			return unknown
		}
		v, ok := numOf(x)
		if !ok {
			return unknown
		}
		return triOf(op.holds(cmpNum(v, n)))
	}
}

// numOf reads a number from what Doc.Lookup returned.
func numOf(x any) (num, bool) {
	switch x := x.(type) {
	case json.Number:
		return parseNum(string(x))
	case float64:
		return floatNum(x)
	case int:
		return intNum(int64(x)), true
	case int64:
		return intNum(x), true
	case int32:
		return intNum(int64(x)), true
	case uint32:
		return intNum(int64(x)), true
	case uint64:
		if x <= math.MaxInt64 {
			return intNum(int64(x)), true
		}
		return floatNum(float64(x))
	case float32:
		return floatNum(float64(x))
	}
	return num{}, false
}

// in is x IN [..] and x NIN [..]: unknown when x is undefined or not a
// primitive, else whether some element equals x (NIN: none does).
func (c *compiler) in(e *syntax.In) (condFn, error) {
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
	return func(d Doc) tri {
		v := x(d)
		if !v.primitive() {
			return unknown
		}
		found := v.k == kStr && strs[v.s]
		for i := 0; i < len(list) && !found; i++ {
			cmp, ok := compare(v, list[i])
			found = ok && cmp == 0
		}
		return triOf(found != neg)
	}, nil
}
