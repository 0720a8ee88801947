//go:build cgo

package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/tether-hub/tether/internal/kql"
	"github.com/tether-hub/tether/internal/kql/syntax"
)

// udf is one Go function DuckDB calls: its argument and result types and
// its body, which receives NULL as nil (special NULL handling: KQL's text
// forms turn a null into "").
type udf struct {
	in  []duckdb.Type
	out duckdb.Type
	fn  func(a []driver.Value) (any, error)
}

func (u *udf) Config() duckdb.ScalarFuncConfig {
	ins := make([]duckdb.TypeInfo, len(u.in))
	for i, t := range u.in {
		ins[i] = mustType(t)
	}
	return duckdb.ScalarFuncConfig{InputTypeInfos: ins, ResultTypeInfo: mustType(u.out), SpecialNullHandling: true}
}

func (u *udf) Executor() duckdb.ScalarFuncExecutor {
	return duckdb.ScalarFuncExecutor{RowExecutor: u.fn}
}

func mustType(t duckdb.Type) duckdb.TypeInfo {
	ti, err := duckdb.NewTypeInfo(t)
	if err != nil {
		panic(fmt.Sprintf("kql/duckdb: type %v: %v", t, err))
	}
	return ti
}

const (
	tText = duckdb.TYPE_VARCHAR
	tLong = duckdb.TYPE_BIGINT
	tInt  = duckdb.TYPE_INTEGER
	tReal = duckdb.TYPE_DOUBLE
	tBool = duckdb.TYPE_BOOLEAN
)

// functions are the Go functions of the dialect, by SQL name.
var functions = map[string]*udf{
	"kql_has": {[]duckdb.Type{tText, tText, tInt, tInt, tInt}, tBool, func(a []driver.Value) (any, error) {
		if a[0] == nil || a[1] == nil {
			return nil, nil
		}
		return kql.HasTerm(text(a[0]), text(a[1]), num(a[2]) != 0, num(a[3]) != 0, num(a[4]) != 0), nil
	}},
	"kql_json_tostring": {[]duckdb.Type{tText}, tText, func(a []driver.Value) (any, error) {
		return jsonToString(text(a[0])), nil
	}},
	"kql_json_scalar": {[]duckdb.Type{tText}, tText, func(a []driver.Value) (any, error) {
		return jsonScalar(a[0]), nil
	}},
	"kql_tolong": {[]duckdb.Type{tText}, tLong, func(a []driver.Value) (any, error) {
		if n, ok := kql.ParseLong(text(a[0])); ok && a[0] != nil {
			return n, nil
		}
		return nil, nil
	}},
	"kql_toreal": {[]duckdb.Type{tText}, tReal, func(a []driver.Value) (any, error) {
		if f, ok := kql.ParseReal(text(a[0])); ok && a[0] != nil {
			return f, nil
		}
		return nil, nil
	}},
	"kql_todatetime": {[]duckdb.Type{tText}, tLong, func(a []driver.Value) (any, error) {
		t, ok := syntax.ParseDatetime(text(a[0]))
		if !ok || a[0] == nil || t.Before(time.Unix(0, math.MinInt64)) || t.After(time.Unix(0, math.MaxInt64)) {
			return nil, nil
		}
		return t.UnixNano(), nil
	}},
	"kql_totimespan": {[]duckdb.Type{tText}, tLong, func(a []driver.Value) (any, error) {
		if d, ok := kql.ParseTimespan(text(a[0])); ok && a[0] != nil {
			return int64(d), nil
		}
		return nil, nil
	}},
	"kql_tobool": {[]duckdb.Type{tText}, tBool, func(a []driver.Value) (any, error) {
		if b, ok := kql.ParseBool(text(a[0])); ok && a[0] != nil {
			return b, nil
		}
		return nil, nil
	}},
	"kql_datetime_str": {[]duckdb.Type{tLong}, tText, func(a []driver.Value) (any, error) {
		if a[0] == nil {
			return "", nil
		}
		return kql.FormatDatetime(time.Unix(0, num(a[0]))), nil
	}},
	"kql_timespan_str": {[]duckdb.Type{tLong}, tText, func(a []driver.Value) (any, error) {
		if a[0] == nil {
			return "", nil
		}
		return kql.FormatTimespan(time.Duration(num(a[0]))), nil
	}},
	"kql_real_str": {[]duckdb.Type{tReal}, tText, func(a []driver.Value) (any, error) {
		if x, ok := a[0].(float64); ok {
			return kql.FormatReal(x), nil
		}
		return "", nil
	}},
	"kql_format_datetime": {[]duckdb.Type{tLong, tText}, tText, func(a []driver.Value) (any, error) {
		if a[0] == nil {
			return "", nil
		}
		s, err := kql.FormatDatetimeAs(time.Unix(0, num(a[0])), text(a[1]))
		if err != nil {
			return "", nil // the compiler checked the constant format
		}
		return s, nil
	}},
}

// Register makes the dialect's functions known to the database db (all
// its connections). Call it once per database, before queries run.
func Register(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for name, f := range functions {
		if err := duckdb.RegisterScalarUDF(conn, name, f); err != nil {
			return fmt.Errorf("kql/duckdb: registering %s: %w", name, err)
		}
	}
	return nil
}

// text is a SQL value as a string ("" for NULL).
func text(v driver.Value) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

// num is a SQL value as an integer (0 for NULL or text).
func num(v driver.Value) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case float64:
		if x >= math.MinInt64 && x < math.MaxInt64 {
			return int64(x)
		}
	case bool:
		if x {
			return 1
		}
	}
	return 0
}

// jsonToString is tostring() of a JSON value: strings unquoted, null and
// absent "", anything else compact JSON.
func jsonToString(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || s == "null" {
		return ""
	}
	if s[0] == '"' {
		var out string
		if json.Unmarshal([]byte(s), &out) == nil {
			return out
		}
	}
	return s
}

// jsonScalar is a JSON value as a comparable SQL scalar: a string
// unquoted, a number or bool as its JSON text, null and non-JSON NULL,
// arrays and objects as their text.
func jsonScalar(v driver.Value) any {
	if v == nil {
		return nil
	}
	s := strings.TrimSpace(text(v))
	if !json.Valid([]byte(s)) || s == "null" {
		return nil
	}
	if s[0] == '"' {
		var out string
		if json.Unmarshal([]byte(s), &out) == nil {
			return out
		}
	}
	return s
}
