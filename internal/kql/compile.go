package kql

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/kql/syntax"
)

// CompileOptions are the inputs of a compilation besides the query.
type CompileOptions struct {
	// Now is the query's now(): ago() and now() are this instant in every
	// row, as in KQL.
	Now time.Time
	// Timespan, when set, limits the table to [Start, End] whatever the
	// query says (the time range of the Log Analytics API).
	Timespan *TimeRange
	// DefaultTimespan applies [Now-DefaultTimespan, Now] when Timespan is
	// nil and the query does not filter the time column itself; 0: none.
	DefaultTimespan time.Duration
	// MaxRows bounds the rows the statement returns; the statement asks
	// for MaxRows+1 so the caller can tell that the result was truncated.
	MaxRows int
}

// TimeRange is a closed interval of TimeGenerated.
type TimeRange struct {
	Start, End time.Time
}

// Compiled is a query ready to run.
type Compiled struct {
	SQL     string
	Args    []any
	Columns []Column
	// TimeRange is the range the statement applies to the time column
	// (nil when the query's own filter stands alone).
	TimeRange *TimeRange
	// Bounds is what the statement can read of the table's time column:
	// TimeRange narrowed by the query's own time filters (conjuncts of a
	// where on the table comparing the time column with a constant). A
	// zero Start or End is unbounded. Stores partitioned by time read only
	// the partitions within (RangeQuerier).
	Bounds TimeRange
}

// Compile parses and compiles a query against table t for dialect d.
// Mistakes in the query are *Error.
func Compile(src string, t *Table, d Dialect, opts CompileOptions) (*Compiled, error) {
	q, err := syntax.Parse(src)
	if err != nil {
		return nil, asQueryError(err)
	}
	return CompileQuery(q, t, d, opts)
}

// maxSQLLen bounds one column's SQL: inlining a column into later ones
// can grow the text exponentially (x = a + a | y = x + x | …); beyond this
// the relation is nested instead.
const maxSQLLen = 4 << 10

// CompileQuery compiles a parsed query.
func CompileQuery(q *syntax.Query, t *Table, d Dialect, opts CompileOptions) (*Compiled, error) {
	// The marker stands in the table's WHERE for the time range, known only
	// once the whole query is compiled; the random part keeps a quoted
	// identifier from spelling it.
	c := &compiler{t: t, d: d, now: opts.Now.UTC(), lets: map[string]value{},
		marker: fmt.Sprintf("/*time %016x*/", rand.Uint64()), pmark: fmt.Sprintf("/*p%016x:", rand.Uint64())}
	for _, l := range q.Lets {
		v, err := c.expr(nil, l.Value)
		if err != nil {
			return nil, err
		}
		v.name = l.Name.Name
		c.lets[l.Name.Name] = v
	}
	if q.Body.Source.Name != t.Name {
		e := semErr(q.Body.Source.At, "table '%s' not found", q.Body.Source.Name)
		return nil, e.withHint("the only table is '" + t.Name + "'")
	}
	r := c.baseRelation()
	for _, op := range q.Body.Ops {
		if r.oversized() {
			r = c.wrap(r)
		}
		var err error
		if r, err = c.operator(r, op); err != nil {
			return nil, err
		}
	}
	out := &Compiled{}
	// The time range goes into the table's WHERE, found by its marker.
	tr := opts.Timespan
	if tr == nil && opts.DefaultTimespan > 0 && !c.timeFiltered {
		tr = &TimeRange{Start: c.now.Add(-opts.DefaultTimespan), End: c.now}
	}
	timeCond := "1 = 1"
	if tr != nil && t.TimeColumn != "" {
		tc := c.d.Quote(t.TimeColumn)
		timeCond = fmt.Sprintf("%s >= %s AND %s <= %s", tc, c.param(clampTime(tr.Start).UnixNano()), tc, c.param(clampTime(tr.End).UnixNano()))
		out.TimeRange = tr
		c.lo, c.hi = later(c.lo, tr.Start), earlier(c.hi, tr.End)
	}
	out.Bounds = TimeRange{Start: c.lo, End: c.hi}
	if opts.MaxRows > 0 {
		limit := int64(opts.MaxRows) + 1
		if r.limitN >= 0 && r.limitN < limit {
			limit = r.limitN
		}
		r.limit, r.limitN = c.param(limit), limit
	}
	visible := r.cols
	sqlText := c.selectSQL(r, visible, false)
	if strings.Count(sqlText, c.marker) != 1 {
		return nil, fmt.Errorf("kql: compiled SQL holds the time marker %d times", strings.Count(sqlText, c.marker))
	}
	out.SQL, out.Args = c.bindParams(strings.Replace(sqlText, c.marker, timeCond, 1))
	for _, col := range visible {
		out.Columns = append(out.Columns, Column{Name: col.name, Type: col.v.typ})
	}
	return out, nil
}

func clampTime(t time.Time) time.Time {
	switch {
	case t.Before(minTime):
		return minTime
	case t.After(maxTime):
		return maxTime
	}
	return t
}

type compiler struct {
	t            *Table
	d            Dialect
	now          time.Time
	args         []any
	lets         map[string]value
	tables       int
	marker       string
	pmark        string    // starts a parameter marker (param)
	lo, hi       time.Time // Compiled.Bounds (timeBounds)
	inWhere      bool
	timeFiltered bool
}

// col is one column of a relation: its name and its value in terms of
// the relation's FROM.
type col struct {
	name string
	v    value
}

// rel is a SELECT being built. Operators that keep the row set (where,
// extend, project…) change it in place; others nest it as a subquery first
// (wrap) when it has grouped, distinct or limited rows.
type rel struct {
	cols     []col
	from     string
	where    []string
	grouped  bool
	group    []string
	distinct bool
	order    []orderTerm
	limit    string
	limitN   int64 // -1: no limit
}

func (r *rel) find(name string) int {
	for i, c := range r.cols {
		if c.name == name {
			return i
		}
	}
	return -1
}

func (r *rel) oversized() bool {
	for _, c := range r.cols {
		if len(c.v.sql) > maxSQLLen {
			return true
		}
	}
	return false
}

func (r *rel) colNames() []string {
	out := make([]string, len(r.cols))
	for i, c := range r.cols {
		out[i] = c.name
	}
	return out
}

func (c *compiler) baseRelation() *rel {
	r := &rel{from: c.d.Quote(c.t.Name), where: []string{c.marker}, limitN: -1}
	for _, tc := range c.t.Columns {
		r.cols = append(r.cols, col{name: tc.Name, v: value{typ: tc.Type, sql: c.d.Quote(tc.Name), base: tc.Name, name: tc.Name}})
	}
	return r
}

// selectSQL renders r with the given output columns, and its order keys
// as hidden columns when withOrderKeys (for a nesting SELECT to sort by).
func (c *compiler) selectSQL(r *rel, cols []col, withOrderKeys bool) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	if r.distinct {
		b.WriteString("DISTINCT ")
	}
	for i, col := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.render(col.v) + " AS " + c.d.Quote(colAlias(i)))
	}
	if withOrderKeys {
		for i, o := range r.order {
			fmt.Fprintf(&b, ", %s AS %s", o.expr, c.d.Quote(orderKey(i)))
		}
	}
	b.WriteString(" FROM " + r.from)
	if len(r.where) > 0 {
		b.WriteString(" WHERE " + strings.Join(r.where, " AND "))
	}
	if r.grouped && len(r.group) > 0 {
		b.WriteString(" GROUP BY " + strings.Join(r.group, ", "))
	}
	// Without a LIMIT a nested SELECT need not sort: the outer one does.
	if len(r.order) > 0 && (!withOrderKeys || r.limit != "") {
		terms := make([]string, len(r.order))
		for i, o := range r.order {
			terms[i] = o.expr + " " + o.dir
		}
		b.WriteString(" ORDER BY " + strings.Join(terms, ", "))
	}
	if r.limit != "" {
		b.WriteString(" LIMIT " + r.limit)
	}
	return b.String()
}

func orderKey(i int) string { return fmt.Sprintf("__order%d", i) }

// colAlias is the SQL name of a relation's i-th column: KQL names (any
// text, e.g. ['a b'] or a key with a NUL) live only in Go.
func colAlias(i int) string { return fmt.Sprintf("c%d", i) }

// orderTerm is one ORDER BY key: the expression (what a nesting SELECT
// outputs as a hidden column) and "ASC NULLS FIRST" or the like.
type orderTerm struct {
	expr, dir string
}

// wrap nests r as a subquery: the new relation reads its columns by name
// and keeps its order through hidden key columns.
func (c *compiler) wrap(r *rel) *rel {
	alias := fmt.Sprintf("t%d", c.tables)
	c.tables++
	inner := c.selectSQL(r, r.cols, len(r.order) > 0)
	nr := &rel{from: "(" + inner + ") AS " + alias, limitN: -1}
	for i, col := range r.cols {
		ref := alias + "." + c.d.Quote(colAlias(i))
		v := value{typ: col.v.typ, sql: ref, name: col.name}
		if col.v.typ == TDynamic {
			v = value{typ: TDynamic, dyn: &dynRef{src: ref}, name: col.name}
		}
		nr.cols = append(nr.cols, col2(col.name, v))
	}
	for i, o := range r.order {
		nr.order = append(nr.order, orderTerm{alias + "." + c.d.Quote(orderKey(i)), o.dir})
	}
	return nr
}

func col2(name string, v value) col { return col{name: name, v: v} }

func (c *compiler) operator(r *rel, op syntax.Operator) (*rel, error) {
	switch o := op.(type) {
	case *syntax.Where:
		if r.grouped || r.distinct || r.limit != "" {
			r = c.wrap(r)
		}
		c.timeBounds(r, o.Pred)
		c.inWhere = true
		v, err := c.expr(r, o.Pred)
		c.inWhere = false
		if err != nil {
			return nil, err
		}
		if err := wantBool(o.Pred.Pos(), v, "the 'where' predicate"); err != nil {
			return nil, err
		}
		r.where = append(r.where, c.render(v))
		return r, nil
	case *syntax.Extend:
		if r.grouped || r.distinct {
			r = c.wrap(r)
		}
		return c.extend(r, o.Assigns)
	case *syntax.Project:
		if r.grouped || r.distinct {
			r = c.wrap(r)
		}
		return c.project(r, o.Items)
	case *syntax.ProjectAway:
		keep := map[string]bool{}
		for _, col := range r.cols {
			keep[col.name] = true
		}
		for _, n := range o.Names {
			if !keep[n.Name] {
				return nil, c.notFound(r, n)
			}
			keep[n.Name] = false
		}
		var cols []col
		for _, col := range r.cols {
			if keep[col.name] {
				cols = append(cols, col)
			}
		}
		if len(cols) == 0 {
			return nil, semErr(o.At, "project-away removes every column")
		}
		r.cols = cols
		return r, nil
	case *syntax.ProjectRename:
		for _, rn := range o.Items {
			i := r.find(rn.Old.Name)
			if i < 0 {
				return nil, c.notFound(r, rn.Old)
			}
			if j := r.find(rn.New.Name); j >= 0 && j != i {
				return nil, semErr(rn.New.At, "column '%s' already exists", rn.New.Name)
			}
			r.cols[i].name = rn.New.Name
		}
		return r, nil
	case *syntax.Distinct:
		if r.grouped || r.distinct || r.limit != "" {
			r = c.wrap(r)
		}
		r.order = nil
		if !o.All {
			var cols []col
			seen := map[string]bool{}
			for _, n := range o.Cols {
				i := r.find(n.Name)
				if i < 0 {
					return nil, c.notFound(r, n)
				}
				if seen[n.Name] {
					return nil, semErr(n.At, "column '%s' is listed twice", n.Name)
				}
				seen[n.Name] = true
				cols = append(cols, r.cols[i])
			}
			r.cols = cols
		}
		for i := range r.cols {
			r.cols[i].v = c.materialize(r.cols[i].v)
		}
		r.distinct = true
		return r, nil
	case *syntax.Summarize:
		return c.summarize(r, o)
	case *syntax.Count:
		if r.grouped || r.distinct || r.limit != "" {
			r = c.wrap(r)
		}
		r.order = nil
		r.grouped, r.group = true, nil
		r.cols = []col{{name: "Count", v: value{typ: TLong, sql: "count(*)"}}}
		return r, nil
	case *syntax.Sort:
		if r.grouped || r.distinct || r.limit != "" {
			r = c.wrap(r)
		}
		var order []orderTerm
		for _, k := range o.Keys {
			term, err := c.sortTerm(r, k)
			if err != nil {
				return nil, err
			}
			order = append(order, term)
		}
		r.order = order
		return r, nil
	case *syntax.Take:
		n, err := c.count(r, o.N, "'"+o.Keyword+"'")
		if err != nil {
			return nil, err
		}
		if r.limit != "" {
			r = c.wrap(r)
		}
		r.limit, r.limitN = c.param(n), n
		return r, nil
	case *syntax.Top:
		n, err := c.count(r, o.N, "'top'")
		if err != nil {
			return nil, err
		}
		if r.grouped || r.distinct || r.limit != "" {
			r = c.wrap(r)
		}
		term, err := c.sortTerm(r, o.Key)
		if err != nil {
			return nil, err
		}
		r.order = []orderTerm{term}
		r.limit, r.limitN = c.param(n), n
		return r, nil
	}
	return nil, semErr(op.Pos(), "operator not supported")
}

// count evaluates the row count of take and top: a constant long ≥ 0.
func (c *compiler) count(r *rel, e syntax.Expr, what string) (int64, error) {
	v, err := c.expr(r, e)
	if err != nil {
		return 0, err
	}
	n, ok := v.konst.(int64)
	if !v.isConst || !ok || (v.typ != TLong && v.typ != TInt) {
		return 0, semErr(e.Pos(), "%s needs a constant number of rows", what)
	}
	if n < 0 {
		return 0, semErr(e.Pos(), "%s needs a number of rows ≥ 0, not %d", what, n)
	}
	return n, nil
}

func (c *compiler) sortTerm(r *rel, k *syntax.SortKey) (orderTerm, error) {
	v, err := c.expr(r, k.Expr)
	if err != nil {
		return orderTerm{}, err
	}
	if v.typ == TDynamic {
		return orderTerm{}, semErr(k.Expr.Pos(), "cannot sort by a dynamic value").withHint("convert it, e.g. tostring(…) or tolong(…)")
	}
	dir := "ASC"
	if k.Desc {
		dir = "DESC"
	}
	nulls := k.Nulls
	if nulls == "" {
		nulls = map[bool]string{true: "last", false: "first"}[k.Desc]
	}
	return orderTerm{c.render(v), dir + " NULLS " + strings.ToUpper(nulls)}, nil
}

// materialize renders a value so it can be selected, grouped or compared
// as a whole (dynamic values become JSON text).
func (c *compiler) materialize(v value) value {
	if v.dyn == nil && !v.isConst {
		return v
	}
	return value{typ: v.typ, sql: c.render(v), name: v.name, base: v.base}
}

func (c *compiler) extend(r *rel, as []*syntax.Assign) (*rel, error) {
	auto := 0
	for _, a := range as {
		v, err := c.expr(r, a.Value)
		if err != nil {
			return nil, err
		}
		name, err := c.assignName(a, v, &auto)
		if err != nil {
			return nil, err
		}
		if len(v.sql) > 1<<20 {
			return nil, semErr(a.Value.Pos(), "expression too large")
		}
		v.name = name
		if i := r.find(name); i >= 0 {
			r.cols[i].v = v
		} else {
			r.cols = append(r.cols, col{name: name, v: v})
		}
	}
	return r, nil
}

func (c *compiler) project(r *rel, items []*syntax.Assign) (*rel, error) {
	var cols []col
	auto := 0
	for _, a := range items {
		var v value
		var err error
		if a.Name == nil {
			if id, ok := a.Value.(*syntax.Ident); ok {
				i := r.find(id.Name)
				if i < 0 {
					return nil, c.notFound(r, id)
				}
				v = r.cols[i].v
				v.name = id.Name
			}
		}
		if v.typ == "" {
			if v, err = c.expr(r, a.Value); err != nil {
				return nil, err
			}
		}
		name, err := c.assignName(a, v, &auto)
		if err != nil {
			return nil, err
		}
		for _, o := range cols {
			if o.name == name {
				return nil, semErr(a.Value.Pos(), "column '%s' is projected twice", name)
			}
		}
		cols = append(cols, col{name: name, v: v})
	}
	r.cols = cols
	return r, nil
}

// assignName is the column name of an extend/project/summarize item.
func (c *compiler) assignName(a *syntax.Assign, v value, auto *int) (string, error) {
	if a.Name != nil {
		return a.Name.Name, nil
	}
	if v.name != "" {
		return v.name, nil
	}
	*auto++
	return fmt.Sprintf("Column%d", *auto), nil
}

func (c *compiler) notFound(r *rel, id *syntax.Ident) *Error {
	e := semErr(id.At, "column '%s' not found", id.Name)
	var cands []string
	if r != nil {
		cands = r.colNames()
	}
	for n := range c.lets {
		cands = append(cands, n)
	}
	if s := syntax.Suggest(id.Name, cands); s != "" {
		e.Hint = "did you mean '" + s + "'?"
	}
	return e
}

func wantBool(p syntax.Pos, v value, what string) error {
	if v.typ != TBool {
		return semErr(p, "%s must be a bool, not %s", what, v.typ)
	}
	return nil
}

// timeBounds narrows c.lo and c.hi by the conjuncts of a where predicate
// on r that compare the table's time column (read from the table itself)
// with a constant. Anything else (or, not, expressions) leaves them.
func (c *compiler) timeBounds(r *rel, e syntax.Expr) {
	switch x := e.(type) {
	case *syntax.Paren:
		c.timeBounds(r, x.X)
	case *syntax.Binary:
		if x.Op == "and" {
			c.timeBounds(r, x.L)
			c.timeBounds(r, x.R)
			return
		}
		flip := map[string]string{">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "=="}
		op, col, other := x.Op, x.L, x.R
		if c.isTimeColumn(r, x.R) {
			op, col, other = flip[x.Op], x.R, x.L
		}
		if flip[op] == "" || !c.isTimeColumn(r, col) {
			return
		}
		v, err := c.expr(r, other)
		if err != nil || !v.isConst {
			return
		}
		t, ok := v.konst.(time.Time)
		if !ok {
			return
		}
		if op == ">" || op == ">=" || op == "==" {
			c.lo = later(c.lo, t)
		}
		if op == "<" || op == "<=" || op == "==" {
			c.hi = earlier(c.hi, t)
		}
	}
}

// isTimeColumn reports whether e names the table's time column as r
// reads it from the table.
func (c *compiler) isTimeColumn(r *rel, e syntax.Expr) bool {
	id, ok := e.(*syntax.Ident)
	if !ok || c.t.TimeColumn == "" {
		return false
	}
	i := r.find(id.Name)
	return i >= 0 && r.cols[i].v.base == c.t.TimeColumn && r.cols[i].v.dyn == nil
}

// later and earlier are the tighter of two bounds (zero: unbounded).
func later(a, b time.Time) time.Time {
	if a.IsZero() || b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}
