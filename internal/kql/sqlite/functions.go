package sqlite

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"modernc.org/sqlite"

	"github.com/tether-hub/tether/internal/kql"
	"github.com/tether-hub/tether/internal/kql/syntax"
)

func init() {
	for name, f := range map[string]struct {
		n  int32
		fn func(args []driver.Value) (driver.Value, error)
	}{
		"kql_has": {5, func(a []driver.Value) (driver.Value, error) {
			return b2i(kql.HasTerm(text(a[0]), text(a[1]), num(a[2]) != 0, num(a[3]) != 0, num(a[4]) != 0)), nil
		}},
		"kql_contains": {2, func(a []driver.Value) (driver.Value, error) {
			return b2i(strings.Contains(strings.ToLower(text(a[0])), strings.ToLower(text(a[1])))), nil
		}},
		"kql_eq_nocase": {2, func(a []driver.Value) (driver.Value, error) {
			if a[0] == nil || a[1] == nil {
				return nil, nil
			}
			return b2i(strings.EqualFold(text(a[0]), text(a[1]))), nil
		}},
		"kql_lower":         {1, func(a []driver.Value) (driver.Value, error) { return strings.ToLower(text(a[0])), nil }},
		"kql_upper":         {1, func(a []driver.Value) (driver.Value, error) { return strings.ToUpper(text(a[0])), nil }},
		"kql_json_tostring": {1, jsonToString},
		"kql_tolong": {1, func(a []driver.Value) (driver.Value, error) {
			if n, ok := kql.ParseLong(text(a[0])); ok {
				return n, nil
			}
			return nil, nil
		}},
		"kql_toreal": {1, func(a []driver.Value) (driver.Value, error) {
			if f, ok := kql.ParseReal(text(a[0])); ok {
				return f, nil
			}
			return nil, nil
		}},
		"kql_todatetime": {1, func(a []driver.Value) (driver.Value, error) {
			if t, ok := parseTime(text(a[0])); ok {
				return t, nil
			}
			return nil, nil
		}},
		"kql_totimespan": {1, func(a []driver.Value) (driver.Value, error) {
			if d, ok := kql.ParseTimespan(text(a[0])); ok {
				return int64(d), nil
			}
			return nil, nil
		}},
		"kql_tobool": {1, func(a []driver.Value) (driver.Value, error) {
			if b, ok := kql.ParseBool(text(a[0])); ok {
				return b2i(b), nil
			}
			return nil, nil
		}},
		"kql_datetime_str": {1, func(a []driver.Value) (driver.Value, error) {
			if a[0] == nil {
				return "", nil
			}
			return kql.FormatDatetime(time.Unix(0, num(a[0]))), nil
		}},
		"kql_timespan_str": {1, func(a []driver.Value) (driver.Value, error) {
			if a[0] == nil {
				return "", nil
			}
			return kql.FormatTimespan(time.Duration(num(a[0]))), nil
		}},
		"kql_real_str": {1, func(a []driver.Value) (driver.Value, error) {
			switch x := a[0].(type) {
			case nil:
				return "", nil
			case float64:
				return kql.FormatReal(x), nil
			}
			return text(a[0]), nil
		}},
		"kql_format_datetime": {2, func(a []driver.Value) (driver.Value, error) {
			if a[0] == nil {
				return "", nil
			}
			s, err := kql.FormatDatetimeAs(time.Unix(0, num(a[0])), text(a[1]))
			if err != nil {
				return "", nil // the compiler checked the constant format
			}
			return s, nil
		}},
		"kql_floor": {1, func(a []driver.Value) (driver.Value, error) {
			switch x := a[0].(type) {
			case float64:
				return math.Floor(x), nil
			case int64:
				return float64(x), nil
			}
			return nil, nil
		}},
	} {
		fn := f.fn
		err := sqlite.RegisterDeterministicScalarFunction(name, f.n, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			return fn(args)
		})
		if err != nil {
			panic(fmt.Sprintf("kql/sqlite: registering %s: %v", name, err))
		}
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
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
	case int64:
		return fmt.Sprint(x)
	case float64:
		return kql.FormatReal(x)
	case bool:
		if x {
			return "true"
		}
		return "false"
	case time.Time:
		return kql.FormatDatetime(x)
	}
	return fmt.Sprint(v)
}

// num is a SQL value as an integer (0 for NULL or text).
func num(v driver.Value) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		if x >= math.MinInt64 && x < math.MaxInt64 {
			return int64(x)
		}
	case bool:
		return b2i(x)
	}
	return 0
}

func parseTime(s string) (int64, bool) {
	t, ok := syntax.ParseDatetime(s)
	if !ok || t.Before(time.Unix(0, math.MinInt64)) || t.After(time.Unix(0, math.MaxInt64)) {
		return 0, false
	}
	return t.UnixNano(), true
}

// jsonToString is tostring() of a JSON value: strings unquoted, null and
// absent "", anything else compact JSON.
func jsonToString(a []driver.Value) (driver.Value, error) {
	s := strings.TrimSpace(text(a[0]))
	if s == "" || s == "null" {
		return "", nil
	}
	if s[0] == '"' {
		var out string
		if json.Unmarshal([]byte(s), &out) == nil {
			return out, nil
		}
	}
	return s, nil
}
