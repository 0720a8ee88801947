package devquery

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"

	"github.com/tether-hub/tether/internal/devquery/syntax"
)

// aggPlan is a query with aggregates or GROUP BY: it reads every matching
// document and returns one row per group (one row in all without GROUP BY).
type aggPlan struct {
	keys [][]string // the GROUP BY paths
	cols []aggCol   // the select list
}

// aggCol is one item of the select list: a GROUP BY attribute (key ≥ 0)
// or an aggregate of fn over arg.
type aggCol struct {
	name string
	key  int
	fn   string
	arg  []string
}

// aggregate checks the select list of an aggregating query: every item is
// an aggregate or one of the GROUP BY attributes (as in Cosmos DB;
// GROUP BY attributes need not be selected).
func (c *compiler) aggregate(ast *syntax.Query) (*aggPlan, error) {
	plan := &aggPlan{}
	for _, g := range ast.GroupBy {
		p, err := c.path(g)
		if err != nil {
			return nil, err
		}
		plan.keys = append(plan.keys, p)
	}
	names := map[string]bool{}
	unnamed := 0
	for _, it := range ast.Items {
		col := aggCol{key: -1}
		var path []string
		switch e := it.Expr.(type) {
		case *syntax.Path:
			p, err := c.path(e)
			if err != nil {
				return nil, err
			}
			col.key = slices.IndexFunc(plan.keys, func(k []string) bool { return slices.Equal(k, p) })
			if col.key < 0 {
				if len(ast.GroupBy) == 0 {
					return nil, c.errorf(e.Pos(), "'%s' must be in GROUP BY when the select list has aggregates", syntax.ExprString(e))
				}
				return nil, c.errorf(e.Pos(), "'%s' is neither an aggregate nor one of the GROUP BY attributes", syntax.ExprString(e))
			}
			path = p
		case *syntax.Aggregate:
			col.fn = e.Func
			if e.Arg != nil {
				p, err := c.path(e.Arg)
				if err != nil {
					return nil, err
				}
				col.arg = p
			}
			if it.AliasPos < 0 {
				unnamed++
			}
		}
		name, err := c.memberName(it, path, names, unnamed)
		if err != nil {
			return nil, err
		}
		col.name = name
		plan.cols = append(plan.cols, col)
	}
	return plan, nil
}

// group is one row in the making.
type group struct {
	keys []value
	raw  []any  // the first document's key values, as returned
	def  []bool // whether each key was defined
	accs []acc
}

// acc accumulates one aggregate of one group.
type acc struct {
	count int64 // COUNT: documents; SUM, AVG: numbers seen
	sum   num
	bad   bool  // SUM, AVG: a non-number; MIN, MAX: an object or array
	best  value // MIN, MAX
	raw   any   // MIN, MAX: best as the document holds it
	has   bool
}

func (a *acc) add(col *aggCol, d Doc) {
	if col.fn == "COUNT" {
		a.count++
		return
	}
	x, ok := d.Lookup(col.arg)
	if !ok {
		return
	}
	v := fromAny(x)
	switch col.fn {
	case "SUM", "AVG":
		if v.k != kNum {
			a.bad = true
			return
		}
		if a.count == 0 {
			a.sum = intNum(0)
		}
		a.count++
		if a.sum.isInt && v.n.isInt {
			if r, ok := intArith("+", a.sum.i, v.n.i); ok {
				a.sum = intNum(r)
				return
			}
		}
		a.sum = num{f: a.sum.f + v.n.f}
	default: // MIN, MAX
		if !v.primitive() {
			a.bad = true
			return
		}
		c := order(v, a.best)
		if !a.has || col.fn == "MIN" && c < 0 || col.fn == "MAX" && c > 0 {
			a.best, a.raw, a.has = v, x, true
		}
	}
}

// result is the aggregate's value; ok is false when it is undefined (the
// member is then left out of the row): SUM or AVG over a non-number, AVG,
// MIN or MAX over nothing. SUM over nothing is 0.
func (a *acc) result(col *aggCol) (any, bool) {
	switch col.fn {
	case "COUNT":
		return a.count, true
	case "SUM":
		if a.bad {
			return nil, false
		}
		if a.count == 0 {
			return int64(0), true
		}
		return numValue(a.sum).output()
	case "AVG":
		if a.bad || a.count == 0 {
			return nil, false
		}
		return floatValue(a.sum.f / float64(a.count)).output()
	}
	if a.bad || !a.has {
		return nil, false
	}
	return a.raw, true
}

// aggregateRows reads every matching document of src and returns the
// rows, groups ordered by their keys (undefined first, then null, false,
// true, numbers, strings …).
func (q *Query) aggregateRows(src Source) []any {
	p := q.agg
	groups := map[string]*group{}
	var all []*group
	var buf []byte
	keys := make([]value, len(p.keys))
	raw := make([]any, len(p.keys))
	def := make([]bool, len(p.keys))
	add := func(d Doc) {
		buf = buf[:0]
		for i, k := range p.keys {
			x, ok := d.Lookup(k)
			keys[i], raw[i], def[i] = undefined, x, ok
			if ok {
				keys[i] = fromAny(x)
			}
			buf = appendKey(buf, keys[i])
		}
		g := groups[string(buf)]
		if g == nil {
			g = &group{keys: slices.Clone(keys), raw: slices.Clone(raw), def: slices.Clone(def), accs: make([]acc, len(p.cols))}
			groups[string(buf)] = g
			all = append(all, g)
		}
		for i := range p.cols {
			if p.cols[i].key < 0 {
				g.accs[i].add(&p.cols[i], d)
			}
		}
	}
	src.Scan("", func(_ string, d Doc) bool {
		if q.Match(d) {
			add(d)
		}
		return true
	})
	if len(p.keys) == 0 && len(all) == 0 {
		all = append(all, &group{accs: make([]acc, len(p.cols))})
	}
	slices.SortFunc(all, func(a, b *group) int {
		for i := range a.keys {
			if c := order(a.keys[i], b.keys[i]); c != 0 {
				return c
			}
		}
		return 0
	})
	rows := make([]any, len(all))
	for i, g := range all {
		row := make(Row, 0, len(p.cols))
		for j := range p.cols {
			col := &p.cols[j]
			if col.key >= 0 {
				if g.def[col.key] {
					row = append(row, Member{Name: col.name, Value: g.raw[col.key]})
				}
			} else if v, ok := g.accs[j].result(col); ok {
				row = append(row, Member{Name: col.name, Value: v})
			}
		}
		rows[i] = row
	}
	return rows
}

// appendKey encodes v so that equal values (5 and 5.0 included) encode
// alike and different ones differently.
func appendKey(b []byte, v value) []byte {
	b = append(b, byte(v.k))
	switch v.k {
	case kBool:
		if v.b {
			return append(b, 1)
		}
		return append(b, 0)
	case kNum:
		if v.n.isInt {
			return binary.BigEndian.AppendUint64(append(b, 'i'), uint64(v.n.i))
		}
		return binary.BigEndian.AppendUint64(append(b, 'f'), math.Float64bits(v.n.f))
	case kStr:
		return append(binary.AppendUvarint(b, uint64(len(v.s))), v.s...)
	case kArr, kObj:
		j, _ := json.Marshal(v.x)
		return append(binary.AppendUvarint(b, uint64(len(j))), j...)
	}
	return b
}
