package kql

import (
	"strconv"

	"github.com/tether-hub/tether/internal/kql/syntax"
)

// summarize compiles summarize aggs by keys into a grouped SELECT: the
// by columns first, then the aggregations, as KQL orders them.
func (c *compiler) summarize(r *rel, o *syntax.Summarize) (*rel, error) {
	if r.grouped || r.distinct || r.limit != "" {
		r = c.wrap(r)
	}
	r.order = nil
	var out []col
	var group []string
	auto := 0
	seen := map[string]bool{}
	add := func(p syntax.Pos, name string, v value) error {
		if seen[name] {
			return semErr(p, "column '%s' is produced twice", name)
		}
		seen[name] = true
		out = append(out, col{name: name, v: v})
		return nil
	}
	for _, a := range o.By {
		if isAggregateCall(a.Value) {
			return nil, semErr(a.Value.Pos(), "an aggregation cannot be a 'by' key")
		}
		v, err := c.expr(r, a.Value)
		if err != nil {
			return nil, err
		}
		v = c.materialize(v)
		name, _ := c.assignName(a, v, &auto)
		if err := add(a.Value.Pos(), name, value{typ: v.typ, sql: v.sql}); err != nil {
			return nil, err
		}
		group = append(group, v.sql)
	}
	byCount := len(out)
	for _, a := range o.Aggs {
		call, ok := a.Value.(*syntax.Call)
		if !ok || !isAggregateCall(call) {
			return nil, semErr(a.Value.Pos(), "summarize needs an aggregation here, such as count(), max(x) or dcount(x)")
		}
		if (call.Func.Name == "arg_max" || call.Func.Name == "arg_min") && len(o.Aggs) > 1 {
			return nil, semErr(call.Pos(), "%s() must be the only aggregation of its summarize", call.Func.Name).
				withHint("Tether computes arg_max/arg_min alone; split the query")
		}
		cols, err := c.aggregate(r, call, out[:byCount], &auto)
		if err != nil {
			return nil, err
		}
		if a.Name != nil {
			cols[0].name = a.Name.Name
		}
		for _, cl := range cols {
			if err := add(call.Pos(), cl.name, cl.v); err != nil {
				return nil, err
			}
		}
	}
	return &rel{cols: out, from: r.from, where: r.where, grouped: true, group: group, limitN: -1}, nil
}

func isAggregateCall(e syntax.Expr) bool {
	call, ok := e.(*syntax.Call)
	if !ok {
		return false
	}
	for _, a := range aggregates {
		if a == call.Func.Name {
			return true
		}
	}
	return false
}

// aggregate compiles one aggregation call; arg_max/arg_min give several
// columns.
func (c *compiler) aggregate(r *rel, call *syntax.Call, by []col, auto *int) ([]col, error) {
	name := call.Func.Name
	nargs := map[string][2]int{"count": {0, 0}, "countif": {1, 1}, "dcount": {1, 2}, "min": {1, 1}, "max": {1, 1},
		"avg": {1, 1}, "sum": {1, 1}, "make_set": {1, 1}, "arg_max": {2, 64}, "arg_min": {2, 64}}[name]
	args := call.Args
	if name == "count" && len(args) == 1 {
		if _, star := args[0].(*syntax.Star); star {
			args = nil
		}
	}
	if len(args) < nargs[0] || len(args) > nargs[1] {
		return nil, semErr(call.Func.At, "%s() takes %s, got %d", name, argCount(nargs[0], nargs[1]), len(args))
	}
	if name == "count" {
		return []col{{name: "count_", v: value{typ: TLong, sql: "count(*)"}}}, nil
	}
	if name == "arg_max" || name == "arg_min" {
		return c.argExtreme(r, call, by)
	}
	v, err := c.expr(r, args[0])
	if err != nil {
		return nil, err
	}
	label := v.name
	if label == "" {
		*auto++
		label = "Column" + strconv.Itoa(*auto)
	}
	p := args[0].Pos()
	switch name {
	case "countif":
		if err := wantBool(p, v, "the argument of countif()"); err != nil {
			return nil, err
		}
		return []col{{name: "countif_", v: value{typ: TLong, sql: "COALESCE(sum(CASE WHEN " + c.render(v) + " THEN 1 ELSE 0 END), 0)"}}}, nil
	case "dcount":
		if len(args) == 2 {
			acc, err := c.expr(r, args[1])
			if err != nil {
				return nil, err
			}
			if !acc.isConst || (acc.typ != TLong && acc.typ != TInt) {
				return nil, semErr(args[1].Pos(), "dcount()'s accuracy must be a constant 0–4")
			}
		}
		return []col{{name: "dcount_" + label, v: value{typ: TLong, sql: "count(DISTINCT " + c.render(c.materialize(v)) + ")"}}}, nil
	case "min", "max":
		if v.typ == TDynamic {
			return nil, semErr(p, "%s() of a dynamic value", name).withHint("convert it, e.g. tolong(…) or tostring(…)")
		}
		return []col{{name: name + "_" + label, v: value{typ: v.typ, sql: name + "(" + c.render(v) + ")"}}}, nil
	case "avg":
		switch {
		case v.typ.numeric():
			return []col{{name: "avg_" + label, v: value{typ: TReal, sql: "avg(" + c.render(v) + ")"}}}, nil
		case v.typ == TTimespan:
			return []col{{name: "avg_" + label, v: value{typ: TTimespan, sql: c.d.Func("cast_long", "avg("+c.render(v)+")")}}}, nil
		}
		return nil, semErr(p, "avg() needs a number or timespan, not %s", v.typ)
	case "sum":
		switch {
		case v.typ == TReal:
			return []col{{name: "sum_" + label, v: value{typ: TReal, sql: c.d.Func("sum_real", c.render(v))}}}, nil
		case v.typ.numeric() || v.typ == TTimespan:
			t := v.typ
			if t == TInt {
				t = TLong
			}
			return []col{{name: "sum_" + label, v: value{typ: t, sql: c.d.Func("sum_long", c.render(v))}}}, nil
		}
		return nil, semErr(p, "sum() needs a number or timespan, not %s", v.typ)
	case "make_set":
		var s string
		switch v.typ {
		case TDynamic:
			s = c.d.Func("make_set_json", c.render(v))
		case TBool:
			s = c.d.Func("make_set_json", "(CASE "+c.render(v)+" WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)")
		case TDatetime, TTimespan:
			sv, err := c.toStringValue(p, v)
			if err != nil {
				return nil, err
			}
			rendered := c.render(v)
			s = c.d.Func("make_set", "(CASE WHEN "+rendered+" IS NULL THEN NULL ELSE "+c.render(sv)+" END)")
		default:
			s = c.d.Func("make_set", c.render(v))
		}
		return []col{{name: "set_" + label, v: value{typ: TDynamic, dyn: &dynRef{src: s}}}}, nil
	}
	return nil, semErr(call.Pos(), "unknown aggregation %s()", name)
}

// argExtreme is arg_max(key, cols…) / arg_min: the key's extreme and the
// other columns of the row that has it (Dialect op arg_max_col).
func (c *compiler) argExtreme(r *rel, call *syntax.Call, by []col) ([]col, error) {
	fn := map[string]string{"arg_max": "max", "arg_min": "min"}[call.Func.Name]
	k, err := c.expr(r, call.Args[0])
	if err != nil {
		return nil, err
	}
	if k.typ == TDynamic || k.typ == TBool {
		return nil, semErr(call.Args[0].Pos(), "%s() cannot order by a %s value", call.Func.Name, k.typ)
	}
	keyName := k.name
	if keyName == "" {
		keyName = fn + "_"
	}
	ks := c.render(k)
	out := []col{{name: keyName, v: value{typ: k.typ, sql: fn + "(" + ks + ")"}}}
	skip := map[string]bool{keyName: true}
	for _, b := range by {
		skip[b.name] = true
	}
	addCol := func(name string, v value) {
		if skip[name] {
			return
		}
		skip[name] = true
		v = c.materialize(v)
		out = append(out, col{name: name, v: value{typ: v.typ, sql: c.d.Func("arg_"+fn+"_col", v.sql, ks)}})
	}
	for _, a := range call.Args[1:] {
		if _, star := a.(*syntax.Star); star {
			for _, cl := range r.cols {
				addCol(cl.name, cl.v)
			}
			continue
		}
		v, err := c.expr(r, a)
		if err != nil {
			return nil, err
		}
		if v.name == "" {
			return nil, semErr(a.Pos(), "%s() takes column names or *", call.Func.Name)
		}
		addCol(v.name, v)
	}
	return out, nil
}
