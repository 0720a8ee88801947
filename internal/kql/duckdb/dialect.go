//go:build cgo

package duckdb

import (
	"strconv"

	"github.com/tether-hub/tether/internal/connlog"
	logduckdb "github.com/tether-hub/tether/internal/connlog/duckdb"
	"github.com/tether-hub/tether/internal/kql"
)

// Dialect is the DuckDB kql.Dialect. Register its functions on the
// database first.
type Dialect struct{}

var _ kql.Dialect = Dialect{}

// Quote quotes an identifier with double quotes.
func (Dialect) Quote(name string) string { return kql.QuoteIdent(name) }

// Param is $N: numbered, so one placeholder can appear several times.
func (Dialect) Param(n int) string { return "$" + strconv.Itoa(n) }

// JSONPath renders $."key" / $[3] / $[#-1], the JSON path syntax DuckDB
// shares with SQLite. A key holding a double quote cannot be expressed.
func (Dialect) JSONPath(path []any) (string, bool) { return kql.SQLiteJSONPath(path) }

var _ kql.Narrower = Dialect{}

// Narrow adds `_DeviceKey = hash` to an equality of DeviceId and a string
// (see connlog/duckdb: day tables are sorted by _DeviceKey and its zone
// maps find one device's row groups).
func (Dialect) Narrow(column string, value any) (string, bool) {
	s, ok := value.(string)
	if column != connlog.ColDeviceID || !ok {
		return "", false
	}
	return `"_DeviceKey" = ` + strconv.FormatUint(uint64(logduckdb.DeviceKey(s)), 10), true
}

// MaxSetBytes bounds the JSON text of one make_set() result, as in the
// SQLite dialect; past it the query fails with the message kql maps to
// LimitExceeded. (DuckDB builds the list before the check: its
// memory_limit bounds that.)
const MaxSetBytes = 256 << 10

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
	case "contains":
		return "contains(lower(" + a[0] + "), lower(" + a[1] + "))"
	case "startswith":
		return "starts_with(lower(" + a[0] + "), lower(" + a[1] + "))"
	case "endswith":
		return "ends_with(lower(" + a[0] + "), lower(" + a[1] + "))"
	case "contains_cs":
		return "contains(" + a[0] + ", " + a[1] + ")"
	case "startswith_cs":
		return "starts_with(" + a[0] + ", " + a[1] + ")"
	case "endswith_cs":
		return "ends_with(" + a[0] + ", " + a[1] + ")"
	case "eq_nocase":
		return "(lower(" + a[0] + ") = lower(" + a[1] + "))"
	case "lower":
		return "lower(" + a[0] + ")"
	case "upper":
		return "upper(" + a[0] + ")"
	case "json_get":
		return "(CASE WHEN json_valid(" + a[0] + ") THEN CAST(json_extract(" + a[0] + ", CAST(" + a[1] + " AS VARCHAR)) AS VARCHAR) END)"
	case "json_parse":
		return "(CASE WHEN " + a[0] + " IS NULL THEN NULL WHEN json_valid(" + a[0] + ") THEN CAST(json(" + a[0] + ") AS VARCHAR) ELSE CAST(to_json(" + a[0] + ") AS VARCHAR) END)"
	case "json_tostring":
		return "kql_json_tostring(" + a[0] + ")"
	case "json_scalar":
		return "kql_json_scalar(" + a[0] + ")"
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
		return "kql_real_str(CAST(" + a[0] + " AS DOUBLE))"
	case "format_datetime":
		return "kql_format_datetime(" + a[0] + ", " + a[1] + ")"
	case "floor":
		return "floor(CAST(" + a[0] + " AS DOUBLE))"
	case "make_set":
		return setLimit(jsonSet("CAST(to_json("+a[0]+") AS VARCHAR)", a[0]))
	case "make_set_json":
		return setLimit(jsonSet("CAST(json("+a[0]+") AS VARCHAR)", a[0]))
	case "arg_max_col":
		return "arg_max(" + a[0] + ", " + a[1] + ")"
	case "arg_min_col":
		return "arg_min(" + a[0] + ", " + a[1] + ")"
	case "cast_long":
		// CAST of a DOUBLE rounds in DuckDB; KQL (and SQLite) truncate.
		return "CAST(trunc(" + a[0] + ") AS BIGINT)"
	case "cast_real":
		return "CAST(" + a[0] + " AS DOUBLE)"
	case "cast_text":
		return "CAST(" + a[0] + " AS VARCHAR)"
	case "div_long":
		return "(" + a[0] + " // " + a[1] + ")"
	case "sum_long":
		// sum(BIGINT) is HUGEINT in DuckDB; back to BIGINT, failing on
		// overflow as KQL does.
		return "CAST(sum(" + a[0] + ") AS BIGINT)"
	case "sum_real":
		return "coalesce(sum(CAST(" + a[0] + " AS DOUBLE)), 0.0)"
	}
	panic("kql/duckdb: no rendering for operation " + op)
}

// jsonSet is the JSON array of the distinct element texts elem (of rows
// where src is not NULL), sorted bytewise as the SQLite dialect sorts
// them: KQL leaves make_set's order open, and both stores give the same.
func jsonSet(elem, src string) string {
	return "('[' || coalesce(array_to_string(list_sort(list(DISTINCT " + elem + ") FILTER (WHERE " + src + " IS NOT NULL)), ','), '') || ']')"
}

// setLimit fails a make_set result longer than MaxSetBytes.
func setLimit(s string) string {
	return "(CASE WHEN length(" + s + ") > " + strconv.Itoa(MaxSetBytes) +
		" THEN error('make_set() result is larger than " + strconv.Itoa(MaxSetBytes) + " bytes') ELSE " + s + " END)"
}
