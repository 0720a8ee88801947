package kql

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/kql/syntax"
)

// value is a compiled scalar expression: a compile-time constant, a lazy
// dynamic reference, or rendered SQL.
type value struct {
	typ     Type
	sql     string
	isConst bool
	konst   any // string, int64, float64, bool, time.Time, time.Duration; nil: a typed null
	dyn     *dynRef
	// base names the table column this value reads unchanged, while the
	// relation still reads the table itself (rewrites, time filters).
	base string
	// name is the column name KQL gives this expression when unnamed.
	name string
}

// dynRef is parse_json(src) followed by a path of keys and indexes; it
// stays symbolic until used so tostring(parse_json(c).key) can become a
// column.
type dynRef struct {
	src     string // rendered SQL of the source
	raw     bool   // src is a string to parse; false: src is JSON text
	srcBase string // the table column src reads unchanged ("" otherwise)
	path    []any  // string keys, int64 indexes
}

func constant(t Type, v any) value { return value{typ: t, isConst: true, konst: v} }

func nullOf(t Type) value { return value{typ: t, isConst: true} }

// sqlArg converts a constant to what the driver binds.
func sqlArg(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UnixNano()
	case time.Duration:
		return int64(x)
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	}
	return v
}

// render returns v as SQL, binding constants as parameters.
func (c *compiler) render(v value) string {
	switch {
	case v.dyn != nil:
		return c.dynJSON(v.dyn)
	case v.isConst:
		if v.konst == nil {
			return "NULL"
		}
		return c.param(sqlArg(v.konst))
	}
	return v.sql
}

// param binds a value and returns its placeholder.
//
// The placeholder is a marker (paramMarker) until the query is compiled:
// operators may drop SQL that used a value (a take replaced by a smaller
// limit), and engines such as DuckDB refuse arguments the statement does
// not use, so bindParams numbers only the values the final SQL holds.
func (c *compiler) param(v any) string {
	c.args = append(c.args, v)
	return c.pmark + strconv.Itoa(len(c.args)) + "*/"
}

// bindParams replaces the parameter markers of sql by the dialect's
// placeholders, numbered in order of first appearance, and returns the
// arguments they stand for.
func (c *compiler) bindParams(sql string) (string, []any) {
	var b strings.Builder
	var args []any
	renum := map[int]int{}
	for {
		i := strings.Index(sql, c.pmark)
		if i < 0 {
			b.WriteString(sql)
			return b.String(), args
		}
		b.WriteString(sql[:i])
		rest := sql[i+len(c.pmark):]
		j := strings.Index(rest, "*/")
		n, err := strconv.Atoi(rest[:j])
		if err != nil || n < 1 || n > len(c.args) {
			panic("kql: malformed parameter marker")
		}
		k, ok := renum[n]
		if !ok {
			args = append(args, c.args[n-1])
			k = len(args)
			renum[n] = k
		}
		b.WriteString(c.d.Param(k))
		sql = rest[j+2:]
	}
}

// dynJSON renders a dynamic reference as JSON text (NULL when absent).
func (c *compiler) dynJSON(d *dynRef) string {
	if len(d.path) == 0 {
		if d.raw {
			return c.d.Func("json_parse", d.src)
		}
		return d.src
	}
	p, _ := c.d.JSONPath(d.path)
	return c.d.Func("json_get", d.src, c.param(p))
}

// timeValue checks that a datetime constant fits the store's range.
func timeValue(p syntax.Pos, t time.Time) (value, error) {
	if t.Before(minTime) || t.After(maxTime) {
		return value{}, semErr(p, "datetime %s is out of range (1678–2262)", t.Format(time.RFC3339))
	}
	return constant(TDatetime, t), nil
}

var (
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// dynOf returns the dynamic reference of a dynamic value; one rendered
// already (JSON text) becomes a reference without a path.
func (c *compiler) dynOf(v value) *dynRef {
	if v.dyn != nil {
		return v.dyn
	}
	return &dynRef{src: c.render(v)}
}
