package kql

import (
	"math"
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
func (c *compiler) param(v any) string {
	c.args = append(c.args, v)
	return c.d.Param(len(c.args))
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
