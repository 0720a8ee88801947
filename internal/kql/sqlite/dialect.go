package sqlite

import (
	"strconv"

	"github.com/tether-hub/tether/internal/kql"
)

// Dialect is the SQLite kql.Dialect.
type Dialect struct{}

var _ kql.Dialect = Dialect{}

// Quote quotes an identifier with double quotes.
func (Dialect) Quote(name string) string { return kql.QuoteIdent(name) }

// Param is ?N: numbered, so one placeholder can appear several times.
func (Dialect) Param(n int) string { return "?" + strconv.Itoa(n) }

// JSONPath renders $.key / $."odd key" / $[3]. SQLite cannot express a key
// containing a double quote.
func (Dialect) JSONPath(path []any) (string, bool) { return kql.SQLiteJSONPath(path) }

// likeEscaped escapes LIKE's wildcards in the SQL string s (escape
// character \).
func likeEscaped(s string) string {
	return `replace(replace(replace(` + s + `, '\', '\\'), '%', '\%'), '_', '\_')`
}

// Func renders the dialect operations (see kql.Dialect).
func (Dialect) Func(op string, a ...string) string {
	switch op {
	case "has":
		return "kql_has(" + a[0] + ", " + a[1] + ", 0, 0, 0)"
	case "has_cs":
		return "kql_has(" + a[0] + ", " + a[1] + ", 1, 0, 0)"
	case "hasprefix":
		return "kql_has(" + a[0] + ", " + a[1] + ", 0, 1, 0)"
	case "hassuffix":
		return "kql_has(" + a[0] + ", " + a[1] + ", 0, 0, 1)"
	// contains folds Unicode case in Go; startswith/endswith use LIKE,
	// which folds ASCII case only (a documented departure).
	case "contains":
		return "kql_contains(" + a[0] + ", " + a[1] + ")"
	case "startswith":
		return "(" + a[0] + " LIKE " + likeEscaped(a[1]) + ` || '%' ESCAPE '\')`
	case "endswith":
		return "(" + a[0] + ` LIKE '%' || ` + likeEscaped(a[1]) + ` ESCAPE '\')`
	case "contains_cs":
		return "(instr(" + a[0] + ", " + a[1] + ") > 0)"
	case "startswith_cs":
		return "(substr(" + a[0] + ", 1, length(" + a[1] + ")) = " + a[1] + ")"
	case "endswith_cs":
		return "(length(" + a[1] + ") = 0 OR substr(" + a[0] + ", -length(" + a[1] + ")) = " + a[1] + ")"
	case "eq_nocase":
		return "kql_eq_nocase(" + a[0] + ", " + a[1] + ")"
	case "lower":
		return "kql_lower(" + a[0] + ")"
	case "upper":
		return "kql_upper(" + a[0] + ")"
	case "json_get":
		return "(CASE WHEN json_valid(" + a[0] + ") THEN " + a[0] + " -> " + a[1] + " END)"
	case "json_parse":
		return "(CASE WHEN " + a[0] + " IS NULL THEN NULL WHEN json_valid(" + a[0] + ") THEN json(" + a[0] + ") ELSE json_quote(" + a[0] + ") END)"
	case "json_tostring":
		return "kql_json_tostring(" + a[0] + ")"
	case "json_scalar":
		return "(CASE WHEN json_valid(" + a[0] + ") THEN " + a[0] + " ->> '$' END)"
	case "str_to_long":
		return "kql_tolong(" + a[0] + ")"
	case "str_to_real":
		return "kql_toreal(" + a[0] + ")"
	case "str_to_datetime":
		return "kql_todatetime(" + a[0] + ")"
	case "str_to_timespan":
		return "kql_totimespan(" + a[0] + ")"
	case "str_to_bool":
		return "kql_tobool(" + a[0] + ")"
	case "datetime_to_str":
		return "kql_datetime_str(" + a[0] + ")"
	case "timespan_to_str":
		return "kql_timespan_str(" + a[0] + ")"
	case "real_to_str":
		return "kql_real_str(" + a[0] + ")"
	case "format_datetime":
		return "kql_format_datetime(" + a[0] + ", " + a[1] + ")"
	case "floor":
		return "kql_floor(" + a[0] + ")"
	case "make_set":
		return "kql_make_set(json_quote(" + a[0] + "), 0)"
	case "make_set_json":
		return "kql_make_set(json(" + a[0] + "), 1)"
	case "cast_long":
		return "CAST(" + a[0] + " AS INTEGER)"
	case "cast_real":
		return "CAST(" + a[0] + " AS REAL)"
	case "cast_text":
		return "CAST(" + a[0] + " AS TEXT)"
	case "div_long":
		return "(" + a[0] + " / " + a[1] + ")"
	case "sum_long":
		return "sum(" + a[0] + ")"
	case "sum_real":
		return "total(" + a[0] + ")"
	case "arg_max_col", "arg_min_col":
		// SQLite gives a bare column of a query with one min() or max()
		// the value of the row that has the extreme.
		return a[0]
	}
	panic("kql/sqlite: no rendering for operation " + op)
}
