package kql

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/kql/syntax"
)

// scalarFunc compiles a call whose arguments are compiled already.
type scalarFunc struct {
	min, max int // argument counts; max -1: any
	fn       func(c *compiler, call *syntax.Call, args []value) (value, error)
}

var functions map[string]scalarFunc

func init() {
	conv := func(t Type) scalarFunc {
		return scalarFunc{1, 1, func(c *compiler, call *syntax.Call, a []value) (value, error) { return c.convert(call, a[0], t) }}
	}
	iff := scalarFunc{3, 3, func(c *compiler, call *syntax.Call, a []value) (value, error) {
		return c.caseOf(call, a)
	}}
	functions = map[string]scalarFunc{
		"tostring": {1, 1, func(c *compiler, call *syntax.Call, a []value) (value, error) {
			v, err := c.toStringValue(call.Pos(), a[0])
			if v.name == "" {
				v.name = a[0].name
			}
			return v, err
		}},
		"toint": conv(TInt), "tolong": conv(TLong), "todouble": conv(TReal), "toreal": conv(TReal),
		"todatetime": conv(TDatetime), "totimespan": conv(TTimespan), "tobool": conv(TBool), "toboolean": conv(TBool),
		"tolower": {1, 1, func(c *compiler, call *syntax.Call, a []value) (value, error) { return c.caseFold(call, a[0], "lower") }},
		"toupper": {1, 1, func(c *compiler, call *syntax.Call, a []value) (value, error) { return c.caseFold(call, a[0], "upper") }},
		"strcat": {1, 64, func(c *compiler, call *syntax.Call, a []value) (value, error) {
			var parts []string
			for i, v := range a {
				s, err := c.toStringValue(call.Args[i].Pos(), v)
				if err != nil {
					return value{}, err
				}
				parts = append(parts, c.render(s))
			}
			return value{typ: TString, sql: "(" + strings.Join(parts, " || ") + ")"}, nil
		}},
		"strlen": {1, 1, func(c *compiler, call *syntax.Call, a []value) (value, error) {
			s, err := c.toStringValue(call.Pos(), a[0])
			if err != nil {
				return value{}, err
			}
			return value{typ: TLong, sql: "length(" + c.render(s) + ")"}, nil
		}},
		"isnull":     {1, 1, func(c *compiler, call *syntax.Call, a []value) (value, error) { return c.nullTest(a[0], false, false) }},
		"isnotnull":  {1, 1, func(c *compiler, call *syntax.Call, a []value) (value, error) { return c.nullTest(a[0], true, false) }},
		"isempty":    {1, 1, func(c *compiler, call *syntax.Call, a []value) (value, error) { return c.nullTest(a[0], false, true) }},
		"isnotempty": {1, 1, func(c *compiler, call *syntax.Call, a []value) (value, error) { return c.nullTest(a[0], true, true) }},
		"not": {1, 1, func(c *compiler, call *syntax.Call, a []value) (value, error) {
			if err := wantBool(call.Args[0].Pos(), a[0], "the argument of not()"); err != nil {
				return value{}, err
			}
			return value{typ: TBool, sql: "(NOT " + c.render(a[0]) + ")"}, nil
		}},
		"iff": iff, "iif": iff,
		"case": {3, -1, func(c *compiler, call *syntax.Call, a []value) (value, error) {
			if len(a)%2 == 0 {
				return value{}, semErr(call.Pos(), "case() needs pairs of predicate and value, then a default value")
			}
			return c.caseOf(call, a)
		}},
		"parse_json": {1, 1, parseJSON}, "todynamic": {1, 1, parseJSON},
		"now": {0, 1, func(c *compiler, call *syntax.Call, a []value) (value, error) {
			if len(a) == 0 {
				return constant(TDatetime, c.now), nil
			}
			d, err := constDuration(call, a[0])
			if err != nil {
				return value{}, err
			}
			return timeValue(call.Pos(), c.now.Add(d))
		}},
		"ago": {1, 1, func(c *compiler, call *syntax.Call, a []value) (value, error) {
			d, err := constDuration(call, a[0])
			if err != nil {
				return value{}, err
			}
			return timeValue(call.Pos(), c.now.Add(-d))
		}},
		"datetime": {1, 1, func(c *compiler, call *syntax.Call, a []value) (value, error) {
			s, ok := a[0].konst.(string)
			if !a[0].isConst || !ok {
				return value{}, semErr(call.Pos(), "datetime() needs a literal")
			}
			t, ok := syntax.ParseDatetime(s)
			if !ok {
				return value{}, semErr(call.Args[0].Pos(), "invalid datetime '%s'", s)
			}
			return timeValue(call.Pos(), t)
		}},
		"bin": {2, 2, binFunc}, "floor": {2, 2, binFunc},
		"format_datetime": {2, 2, func(c *compiler, call *syntax.Call, a []value) (value, error) {
			if a[0].typ != TDatetime {
				return value{}, semErr(call.Args[0].Pos(), "format_datetime() needs a datetime, not %s", a[0].typ)
			}
			f, ok := a[1].konst.(string)
			if !a[1].isConst || !ok {
				return value{}, semErr(call.Args[1].Pos(), "format_datetime() needs a constant format string")
			}
			if _, err := FormatDatetimeAs(time.Unix(0, 0), f); err != nil {
				return value{}, semErr(call.Args[1].Pos(), "%s", err.Error())
			}
			return value{typ: TString, sql: c.d.Func("format_datetime", c.render(a[0]), c.render(a[1]))}, nil
		}},
	}
}

func parseJSON(c *compiler, call *syntax.Call, a []value) (value, error) {
	v := a[0]
	switch v.typ {
	case TDynamic:
		return v, nil
	case TString:
		return value{typ: TDynamic, dyn: &dynRef{src: c.render(v), raw: true, srcBase: v.base}, name: v.name}, nil
	}
	s, err := c.toStringValue(call.Pos(), v)
	if err != nil {
		return value{}, err
	}
	return value{typ: TDynamic, dyn: &dynRef{src: c.render(s), raw: true}}, nil
}

func constDuration(call *syntax.Call, v value) (time.Duration, error) {
	d, ok := v.konst.(time.Duration)
	if !v.isConst || !ok {
		return 0, semErr(call.Pos(), "%s() needs a constant timespan such as 1h", call.Func.Name)
	}
	return d, nil
}

// binFunc is bin(x, size) (and floor): x rounded down to a multiple of size.
func binFunc(c *compiler, call *syntax.Call, a []value) (value, error) {
	x, size := a[0], a[1]
	if !size.isConst || size.konst == nil {
		return value{}, semErr(call.Args[1].Pos(), "bin() needs a constant bin size")
	}
	var n int64
	switch {
	case x.typ == TDatetime || x.typ == TTimespan:
		d, ok := size.konst.(time.Duration)
		if !ok {
			return value{}, semErr(call.Args[1].Pos(), "bin() of a %s needs a timespan size such as 1h, not %s", x.typ, size.typ)
		}
		n = int64(d)
	case x.typ == TLong || x.typ == TInt:
		switch k := size.konst.(type) {
		case int64:
			n = k
		case float64:
			if k <= 0 {
				return value{}, semErr(call.Args[1].Pos(), "bin() needs a positive bin size")
			}
			return value{typ: TReal, sql: "(" + c.d.Func("floor", c.d.Func("cast_real", c.render(x))+" / "+c.render(size)) + " * " + c.render(size) + ")", name: x.name}, nil
		default:
			return value{}, semErr(call.Args[1].Pos(), "bin() of a number needs a number size")
		}
	case x.typ == TReal:
		if !size.typ.numeric() {
			return value{}, semErr(call.Args[1].Pos(), "bin() of a number needs a number size")
		}
		if f, ok := size.konst.(float64); ok && f <= 0 {
			return value{}, semErr(call.Args[1].Pos(), "bin() needs a positive bin size")
		}
		if i, ok := size.konst.(int64); ok && i <= 0 {
			return value{}, semErr(call.Args[1].Pos(), "bin() needs a positive bin size")
		}
		return value{typ: TReal, sql: "(" + c.d.Func("floor", c.render(x)+" / "+c.render(size)) + " * " + c.render(size) + ")", name: x.name}, nil
	default:
		return value{}, semErr(call.Args[0].Pos(), "bin() needs a number, datetime or timespan, not %s", x.typ)
	}
	if n <= 0 {
		return value{}, semErr(call.Args[1].Pos(), "bin() needs a positive bin size")
	}
	xs, ns := c.render(x), c.param(n)
	// x - ((x % n) + n) % n rounds down for negative x too.
	return value{typ: x.typ, sql: "(" + xs + " - ((" + xs + " % " + ns + ") + " + ns + ") % " + ns + ")", name: x.name}, nil
}

func (c *compiler) caseFold(call *syntax.Call, v value, op string) (value, error) {
	s, err := c.toStringValue(call.Pos(), v)
	if err != nil {
		return value{}, err
	}
	if s.isConst {
		if op == "lower" {
			return constant(TString, strings.ToLower(s.konst.(string))), nil
		}
		return constant(TString, strings.ToUpper(s.konst.(string))), nil
	}
	return value{typ: TString, sql: c.d.Func(op, c.render(s)), name: v.name}, nil
}

// nullTest is isnull/isnotnull (empty false) and isempty/isnotempty.
// Strings are never null; isempty is true for "" and null.
func (c *compiler) nullTest(v value, negate, empty bool) (value, error) {
	s := c.render(v)
	var out string
	switch {
	case v.typ == TString && !empty:
		out = "0"
	case v.typ == TString:
		out = "(" + s + " = '')"
	case v.typ == TDynamic && empty:
		out = "(" + s + " IS NULL OR " + s + " IN ('\"\"', '[]', '{}', 'null'))"
	default:
		out = "(" + s + " IS NULL)"
	}
	if negate {
		out = "(NOT " + out + ")"
	}
	return value{typ: TBool, sql: out}, nil
}

// caseOf compiles iff(p, a, b) and case(p1, v1, …, else).
func (c *compiler) caseOf(call *syntax.Call, a []value) (value, error) {
	t := a[len(a)-1].typ
	for i := 1; i < len(a); i += 2 {
		if a[i].typ == t || a[i].isConst && a[i].konst == nil {
			continue
		}
		if a[i].typ.numeric() && t.numeric() {
			if a[i].typ == TReal || t == TReal {
				t = TReal
			} else {
				t = TLong
			}
			continue
		}
		if t == TDynamic || a[i].typ == TDynamic {
			t = TDynamic
			continue
		}
		return value{}, semErr(call.Args[i].Pos(), "%s() values must have one type: %s and %s", call.Func.Name, a[i].typ, t)
	}
	var b strings.Builder
	b.WriteString("(CASE")
	for i := 0; i+1 < len(a); i += 2 {
		if err := wantBool(call.Args[i].Pos(), a[i], "the predicate of "+call.Func.Name+"()"); err != nil {
			return value{}, err
		}
		b.WriteString(" WHEN " + c.render(a[i]) + " THEN " + c.render(c.materialize(a[i+1])))
	}
	b.WriteString(" ELSE " + c.render(c.materialize(a[len(a)-1])) + " END)")
	v := value{typ: t, sql: b.String()}
	if t == TDynamic {
		v = value{typ: TDynamic, dyn: &dynRef{src: b.String()}}
	}
	return v, nil
}

// convert compiles toint/tolong/todouble/todatetime/totimespan/tobool.
func (c *compiler) convert(call *syntax.Call, v value, t Type) (value, error) {
	name := v.name
	if v.typ == t || (v.typ == TLong || v.typ == TInt) && (t == TLong || t == TInt) && v.isConst {
		v.typ = t
		return v, nil
	}
	if v.isConst && v.typ == TString {
		s, _ := v.konst.(string)
		if out, ok := convertConst(s, t); ok {
			return out, nil
		}
		return nullOf(t), nil
	}
	if v.typ == TDynamic {
		sv, err := c.toStringValue(call.Pos(), v)
		if err != nil {
			return value{}, err
		}
		v = sv
	}
	s := c.render(v)
	var out string
	switch from := v.typ; {
	case from == TString:
		op := map[Type]string{TInt: "str_to_long", TLong: "str_to_long", TReal: "str_to_real",
			TDatetime: "str_to_datetime", TTimespan: "str_to_timespan", TBool: "str_to_bool"}[t]
		out = c.d.Func(op, s)
	case from.numeric() && (t == TLong || t == TInt):
		out = c.d.Func("cast_long", s)
	case from.numeric() && t == TReal, from == TBool && t == TReal:
		out = c.d.Func("cast_real", s)
	case from == TBool && (t == TLong || t == TInt):
		out = s
	case from.numeric() && t == TBool:
		out = "(CASE WHEN " + s + " IS NULL THEN NULL WHEN " + s + " <> 0 THEN 1 ELSE 0 END)"
	case (from == TLong || from == TInt) && t == TTimespan:
		out = "(" + s + " * 100)" // a number of ticks
	case from == TDatetime && (t == TLong || t == TInt):
		out = "(" + s + " / 100 + 621355968000000000)" // ticks since 0001-01-01, as KQL
	case from == TTimespan && (t == TLong || t == TInt):
		out = "(" + s + " / 100)" // ticks
	case from == TLong && t == TDatetime:
		out = s // Unix nanoseconds
	default:
		return value{}, semErr(call.Pos(), "%s() cannot convert %s", call.Func.Name, from)
	}
	return value{typ: t, sql: out, name: name}, nil
}

// convertConst converts a string constant (the parse functions of the
// dialects follow the same rules: ParseLong, ParseReal, …).
func convertConst(s string, t Type) (value, bool) {
	switch t {
	case TInt, TLong:
		if n, ok := ParseLong(s); ok {
			return constant(t, n), true
		}
	case TReal:
		if f, ok := ParseReal(s); ok {
			return constant(t, f), true
		}
	case TDatetime:
		if tm, ok := syntax.ParseDatetime(s); ok && !tm.Before(minTime) && !tm.After(maxTime) {
			return constant(t, tm), true
		}
	case TTimespan:
		if d, ok := ParseTimespan(s); ok {
			return constant(t, d), true
		}
	case TBool:
		if b, ok := ParseBool(s); ok {
			return constant(t, b), true
		}
	}
	return value{}, false
}

// aggregate names, for messages.
var aggregates = []string{"count", "countif", "dcount", "min", "max", "avg", "sum", "make_set", "arg_max", "arg_min"}

func (c *compiler) call(r *rel, x *syntax.Call) (value, error) {
	name := x.Func.Name
	f, ok := functions[name]
	if !ok {
		if slices.Contains(aggregates, name) {
			return value{}, semErr(x.Func.At, "'%s' is an aggregation: use it in summarize", name)
		}
		cands := append(slices.Collect(maps.Keys(functions)), aggregates...)
		e := semErr(x.Func.At, "unknown function '%s'", name)
		if s := syntax.Suggest(name, cands); s != "" {
			e.Hint = "did you mean '" + s + "'?"
		}
		return value{}, e
	}
	if len(x.Args) < f.min || f.max >= 0 && len(x.Args) > f.max {
		return value{}, semErr(x.Func.At, "%s() takes %s, got %d", name, argCount(f.min, f.max), len(x.Args))
	}
	args := make([]value, len(x.Args))
	for i, a := range x.Args {
		v, err := c.expr(r, a)
		if err != nil {
			return value{}, err
		}
		args[i] = v
	}
	return f.fn(c, x, args)
}

func argCount(lo, hi int) string {
	switch {
	case lo == hi && lo == 1:
		return "1 argument"
	case lo == hi:
		return strconv.Itoa(lo) + " arguments"
	case hi < 0:
		return "at least " + strconv.Itoa(lo) + " arguments"
	}
	return strconv.Itoa(lo) + " to " + strconv.Itoa(hi) + " arguments"
}
