package kql

import (
	"fmt"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/kql/syntax"
)

// expr compiles a scalar expression in the scope of r (nil: only let
// names, for let values).
func (c *compiler) expr(r *rel, e syntax.Expr) (value, error) {
	switch x := e.(type) {
	case *syntax.Ident:
		return c.ident(r, x)
	case *syntax.StringLit:
		return constant(TString, x.Value), nil
	case *syntax.LongLit:
		return constant(TLong, x.Value), nil
	case *syntax.RealLit:
		return constant(TReal, x.Value), nil
	case *syntax.BoolLit:
		return constant(TBool, x.Value), nil
	case *syntax.TimespanLit:
		return constant(TTimespan, x.Value), nil
	case *syntax.DatetimeLit:
		if x.Null {
			return nullOf(TDatetime), nil
		}
		return timeValue(x.At, x.Value)
	case *syntax.Paren:
		return c.expr(r, x.X)
	case *syntax.Unary:
		v, err := c.expr(r, x.X)
		if err != nil {
			return value{}, err
		}
		if !v.typ.numeric() && v.typ != TTimespan {
			return value{}, semErr(x.At, "unary %s needs a number or timespan, not %s", x.Op, v.typ)
		}
		if x.Op == "+" {
			return v, nil
		}
		if v.isConst {
			switch k := v.konst.(type) {
			case int64:
				if k != -k || k == 0 {
					return constant(v.typ, -k), nil
				}
			case float64:
				return constant(v.typ, -k), nil
			case time.Duration:
				if k != -k || k == 0 {
					return constant(v.typ, -k), nil
				}
			case nil:
				return v, nil
			}
		}
		return value{typ: v.typ, sql: "(-" + c.render(v) + ")"}, nil
	case *syntax.Binary:
		return c.binary(r, x)
	case *syntax.In:
		return c.in(r, x)
	case *syntax.Between:
		return c.between(r, x)
	case *syntax.Call:
		return c.call(r, x)
	case *syntax.Member:
		return c.path(r, x.X, x.Name.Name, x.Name.At)
	case *syntax.Index:
		idx, err := c.expr(r, x.Index)
		if err != nil {
			return value{}, err
		}
		if !idx.isConst || (idx.typ != TString && idx.typ != TLong && idx.typ != TInt) || idx.konst == nil {
			return value{}, semErr(x.Index.Pos(), "an index must be a constant string or number")
		}
		return c.path(r, x.X, idx.konst, x.At)
	case *syntax.Star:
		return value{}, semErr(x.At, "'*' is allowed only in count(*), arg_max(…, *) and distinct *")
	}
	return value{}, semErr(e.Pos(), "unsupported expression")
}

func (c *compiler) ident(r *rel, x *syntax.Ident) (value, error) {
	if r != nil {
		if i := r.find(x.Name); i >= 0 {
			v := r.cols[i].v
			v.name = x.Name
			if c.inWhere && v.base != "" && v.base == c.t.TimeColumn {
				c.timeFiltered = true
			}
			return v, nil
		}
	}
	if v, ok := c.lets[x.Name]; ok {
		return v, nil
	}
	if _, ok := functions[x.Name]; ok {
		return value{}, semErr(x.At, "column '%s' not found", x.Name).withHint("to call the function, write " + x.Name + "(…)")
	}
	return value{}, c.notFound(r, x)
}

// path follows .key or [key] into a dynamic value.
func (c *compiler) path(r *rel, base syntax.Expr, key any, at syntax.Pos) (value, error) {
	v, err := c.expr(r, base)
	if err != nil {
		return value{}, err
	}
	if v.typ != TDynamic {
		return value{}, semErr(at, "property access needs a dynamic value, not %s", v.typ).withHint("parse a JSON string with parse_json(…)")
	}
	d := *c.dynOf(v)
	d.path = append(append([]any(nil), d.path...), key)
	if _, ok := c.d.JSONPath(d.path); !ok {
		return value{}, semErr(at, "property name %s cannot be used", syntax.Quote(fmt.Sprint(key))).withHint(`Tether cannot address keys that contain '"' or NUL`)
	}
	name := v.name
	if k, ok := key.(string); ok {
		if name != "" {
			name += "_" + k
		} else {
			name = k
		}
	}
	return value{typ: TDynamic, dyn: &d, name: name}, nil
}

// operand types and helpers

func (c *compiler) toStringValue(p syntax.Pos, v value) (value, error) {
	switch v.typ {
	case TString:
		return v, nil
	case TDynamic:
		d := c.dynOf(v)
		if d.raw && d.srcBase != "" && len(d.path) == 1 {
			if k, ok := d.path[0].(string); ok {
				if colName, ok := c.t.Extracted[d.srcBase][k]; ok {
					return value{typ: TString, sql: c.d.Quote(colName), base: colName, name: v.name}, nil
				}
			}
		}
		return value{typ: TString, sql: c.d.Func("json_tostring", c.dynJSON(d)), name: v.name}, nil
	}
	if v.isConst {
		return constant(TString, constString(v)), nil
	}
	s := c.render(v)
	var out string
	switch v.typ {
	case TLong, TInt:
		out = "COALESCE(" + c.d.Func("cast_text", s) + ", '')"
	case TReal:
		out = c.d.Func("real_to_str", s)
	case TBool:
		out = "(CASE " + s + " WHEN 1 THEN 'true' WHEN 0 THEN 'false' ELSE '' END)"
	case TDatetime:
		out = c.d.Func("datetime_to_str", s)
	case TTimespan:
		out = c.d.Func("timespan_to_str", s)
	default:
		return value{}, semErr(p, "cannot convert %s to string", v.typ)
	}
	return value{typ: TString, sql: out, name: v.name}, nil
}

// constString is tostring of a constant.
func constString(v value) string {
	switch k := v.konst.(type) {
	case nil:
		return ""
	case string:
		return k
	case int64:
		return fmt.Sprint(k)
	case float64:
		return FormatReal(k)
	case bool:
		if k {
			return "true"
		}
		return "false"
	case time.Time:
		return FormatDatetime(k)
	case time.Duration:
		return FormatTimespan(k)
	}
	return ""
}

// scalarOf turns a dynamic value into a comparable SQL scalar.
func (c *compiler) scalarOf(v value) value {
	if v.typ != TDynamic {
		return v
	}
	return value{typ: TDynamic, sql: c.d.Func("json_scalar", c.dynJSON(c.dynOf(v)))}
}

var comparisons = map[string]string{"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

func (c *compiler) binary(r *rel, x *syntax.Binary) (value, error) {
	l, err := c.expr(r, x.L)
	if err != nil {
		return value{}, err
	}
	rv, err := c.expr(r, x.R)
	if err != nil {
		return value{}, err
	}
	switch op := x.Op; {
	case op == "and" || op == "or":
		if l.typ != TBool || rv.typ != TBool {
			return value{}, semErr(x.At, "'%s' needs bool operands, not %s and %s", op, l.typ, rv.typ)
		}
		return value{typ: TBool, sql: "(" + c.render(l) + " " + strings.ToUpper(op) + " " + c.render(rv) + ")"}, nil
	case comparisons[op] != "":
		if err := comparable(x.At, op, l.typ, rv.typ); err != nil {
			return value{}, err
		}
		if l.typ == TBool && (op != "==" && op != "!=") {
			return value{}, semErr(x.At, "'%s' cannot compare bools", op)
		}
		s := "(" + c.render(c.scalarOf(l)) + " " + comparisons[op] + " " + c.render(c.scalarOf(rv)) + ")"
		if op == "==" {
			s = c.narrow(l, rv, s)
		}
		return value{typ: TBool, sql: s}, nil
	case op == "=~" || op == "!~":
		ls, rs, err := c.stringOperands(x, l, rv)
		if err != nil {
			return value{}, err
		}
		s := c.d.Func("eq_nocase", c.render(ls), c.render(rs))
		if op == "!~" {
			s = "(NOT " + s + ")"
		}
		return value{typ: TBool, sql: s}, nil
	case stringOps[strings.TrimPrefix(op, "!")]:
		ls, rs, err := c.stringOperands(x, l, rv)
		if err != nil {
			return value{}, err
		}
		s := c.d.Func(strings.TrimPrefix(op, "!"), c.render(ls), c.render(rs))
		if strings.HasPrefix(op, "!") {
			s = "(NOT " + s + ")"
		}
		return value{typ: TBool, sql: s}, nil
	}
	return c.arith(x, l, rv)
}

// narrow puts the dialect's implied condition (Narrower) before eq, the
// SQL of l == r, when one side is a column the relation reads from the
// table itself and the other a constant.
func (c *compiler) narrow(l, r value, eq string) string {
	n, ok := c.d.(Narrower)
	if !ok {
		return eq
	}
	if r.base != "" && l.isConst {
		l, r = r, l
	}
	if l.base == "" || !r.isConst || r.konst == nil || l.dyn != nil {
		return eq
	}
	if cond, ok := n.Narrow(l.base, r.konst); ok {
		return "(" + cond + " AND " + eq + ")"
	}
	return eq
}

var stringOps = map[string]bool{"has": true, "has_cs": true, "hasprefix": true, "hassuffix": true,
	"contains": true, "contains_cs": true, "startswith": true, "startswith_cs": true, "endswith": true, "endswith_cs": true}

func (c *compiler) stringOperands(x *syntax.Binary, l, r value) (value, value, error) {
	if l.typ != TString && l.typ != TDynamic {
		return value{}, value{}, semErr(x.At, "'%s' needs a string on the left, not %s", x.Op, l.typ).withHint("convert it with tostring(…)")
	}
	if r.typ != TString && r.typ != TDynamic {
		return value{}, value{}, semErr(x.At, "'%s' needs a string on the right, not %s", x.Op, r.typ)
	}
	ls, err := c.toStringValue(x.At, l)
	if err != nil {
		return value{}, value{}, err
	}
	rs, err := c.toStringValue(x.At, r)
	return ls, rs, err
}

// comparable checks the operand types of a comparison.
func comparable(p syntax.Pos, op string, a, b Type) error {
	switch {
	case a == b, a.numeric() && b.numeric(), a == TDynamic, b == TDynamic:
		return nil
	}
	e := semErr(p, "cannot compare %s with %s using '%s'", a, b, op)
	if a == TDatetime && b == TString || a == TString && b == TDatetime {
		e.Hint = "write the time as datetime(…) or todatetime(…)"
	}
	if a == TTimespan && b.numeric() || a.numeric() && b == TTimespan {
		e.Hint = "write the duration with a unit, e.g. 5m or 100ms"
	}
	return e
}

func (c *compiler) arith(x *syntax.Binary, l, r value) (value, error) {
	op := x.Op
	bad := func() (value, error) {
		e := semErr(x.At, "operator '%s' cannot combine %s and %s", op, l.typ, r.typ)
		if op == "+" && l.typ == TString && r.typ == TString {
			e.Hint = "join strings with strcat(…)"
		}
		return value{}, e
	}
	var t Type
	switch lt, rt := l.typ, r.typ; {
	case lt.numeric() && rt.numeric():
		switch {
		case lt == TReal || rt == TReal:
			t = TReal
		case lt == TInt && rt == TInt:
			t = TInt
		default:
			t = TLong
		}
	case lt == TDatetime && rt == TDatetime && op == "-":
		t = TTimespan
	case lt == TDatetime && rt == TTimespan && (op == "+" || op == "-"), lt == TTimespan && rt == TDatetime && op == "+":
		t = TDatetime
	case lt == TTimespan && rt == TTimespan && (op == "+" || op == "-" || op == "%"):
		t = TTimespan
	case lt == TTimespan && rt == TTimespan && op == "/":
		t = TReal
	case lt == TTimespan && rt.numeric() && (op == "*" || op == "/"), lt.numeric() && rt == TTimespan && op == "*":
		t = TTimespan
	default:
		return bad()
	}
	if l.isConst && r.isConst {
		if v, ok := foldArith(op, t, l.konst, r.konst); ok {
			if tm, isTime := v.konst.(time.Time); isTime {
				return timeValue(x.At, tm)
			}
			return v, nil
		}
	}
	ls, rs := c.render(l), c.render(r)
	if op == "/" && l.typ != TReal && r.typ == TReal || t == TReal && op == "/" && l.typ != TReal {
		ls = c.d.Func("cast_real", ls)
	}
	if t == TReal && op == "/" && l.typ == TTimespan {
		ls = c.d.Func("cast_real", ls)
	}
	s := "(" + ls + " " + op + " " + rs + ")"
	if op == "/" && l.typ != TReal && r.typ != TReal && t != TReal {
		s = c.d.Func("div_long", ls, rs)
	}
	if t == TTimespan && (l.typ.numeric() || r.typ.numeric()) {
		s = c.d.Func("cast_long", s)
	}
	return value{typ: t, sql: s}, nil
}

// foldArith evaluates constant datetime/timespan/long arithmetic, so that
// now() - 1h and friends are bound as one value the index can use.
func foldArith(op string, t Type, a, b any) (value, bool) {
	switch x := a.(type) {
	case time.Time:
		switch y := b.(type) {
		case time.Duration:
			if op == "-" {
				y = -y
			}
			return constant(TDatetime, x.Add(y)), true
		case time.Time:
			return constant(TTimespan, x.Sub(y)), true
		}
	case time.Duration:
		switch y := b.(type) {
		case time.Duration:
			switch op {
			case "+":
				if s := x + y; (s > x) == (y > 0) || y == 0 {
					return constant(TTimespan, s), true
				}
			case "-":
				if s := x - y; (s < x) == (y > 0) || y == 0 {
					return constant(TTimespan, s), true
				}
			}
		case time.Time:
			if op == "+" {
				return constant(TDatetime, y.Add(x)), true
			}
		}
	}
	return value{}, false
}

func (c *compiler) in(r *rel, x *syntax.In) (value, error) {
	v, err := c.expr(r, x.X)
	if err != nil {
		return value{}, err
	}
	nocase := strings.HasSuffix(x.Op, "~")
	if nocase {
		if v, err = c.stringOperand(x.At, x.Op, v); err != nil {
			return value{}, err
		}
	}
	vs := c.render(c.scalarOf(v))
	var items []string
	for _, e := range x.List {
		iv, err := c.expr(r, e)
		if err != nil {
			return value{}, err
		}
		if nocase {
			if iv, err = c.stringOperand(e.Pos(), x.Op, iv); err != nil {
				return value{}, err
			}
			items = append(items, c.d.Func("eq_nocase", vs, c.render(iv)))
			continue
		}
		if err := comparable(e.Pos(), x.Op, v.typ, iv.typ); err != nil {
			return value{}, err
		}
		items = append(items, c.render(c.scalarOf(iv)))
	}
	var s string
	if nocase {
		s = "(" + strings.Join(items, " OR ") + ")"
	} else {
		s = "(" + vs + " IN (" + strings.Join(items, ", ") + "))"
	}
	if strings.HasPrefix(x.Op, "!") {
		s = "(NOT " + s + ")"
	}
	return value{typ: TBool, sql: s}, nil
}

func (c *compiler) stringOperand(p syntax.Pos, op string, v value) (value, error) {
	if v.typ != TString && v.typ != TDynamic {
		return value{}, semErr(p, "'%s' needs strings, not %s", op, v.typ)
	}
	return c.toStringValue(p, v)
}

func (c *compiler) between(r *rel, x *syntax.Between) (value, error) {
	v, err := c.expr(r, x.X)
	if err != nil {
		return value{}, err
	}
	lo, err := c.expr(r, x.Lo)
	if err != nil {
		return value{}, err
	}
	hi, err := c.expr(r, x.Hi)
	if err != nil {
		return value{}, err
	}
	if !v.typ.numeric() && v.typ != TDatetime && v.typ != TTimespan {
		return value{}, semErr(x.At, "'between' needs a number, datetime or timespan, not %s", v.typ)
	}
	if v.typ == TDatetime && lo.typ == TDatetime && hi.typ == TTimespan {
		// datetime between (t .. 1h) means t .. t+1h.
		if hi, err = c.arith(&syntax.Binary{At: x.At, Op: "+", L: x.Lo, R: x.Hi}, lo, hi); err != nil {
			return value{}, err
		}
	}
	for _, b := range []struct {
		v value
		p syntax.Pos
	}{{lo, x.Lo.Pos()}, {hi, x.Hi.Pos()}} {
		if err := comparable(b.p, "between", v.typ, b.v.typ); err != nil {
			return value{}, err
		}
	}
	s := "(" + c.render(v) + " BETWEEN " + c.render(lo) + " AND " + c.render(hi) + ")"
	if x.Not {
		s = "(NOT " + s + ")"
	}
	return value{typ: TBool, sql: s}, nil
}
