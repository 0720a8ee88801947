package sqlite

import (
	"database/sql/driver"
	"fmt"
	"slices"
	"strings"

	"modernc.org/sqlite"
)

// MaxSetBytes bounds the JSON text of one make_set() result. SQLite's
// json_group_array(DISTINCT …) collects every value before its result is
// checked against the connection's length limit — a set of large strings
// grew by gigabytes before it failed — so make_set is this Go aggregate,
// which fails as soon as its set passes the limit. It equals the log
// store's limit on one value (connlog/sqlite.MaxReadValue), which the
// result must pass anyway.
const MaxSetBytes = 256 << 10

// makeSetTooLarge starts the error of a set past MaxSetBytes; kql maps it
// to LimitExceeded.
const makeSetTooLarge = "make_set() result is larger than"

func init() {
	// kql_make_set(elem, keepNull): elem is one element's JSON text
	// (json_quote of a scalar, json() of a dynamic value); SQL NULL is
	// skipped, and so is the JSON text null unless keepNull (a dynamic
	// null is an element, a missing scalar is not). The result is the JSON
	// array of the distinct elements, as
	// json_group_array(DISTINCT …) made it, sorted by their JSON text
	// (KQL leaves the order open; the DuckDB dialect sorts the same way).
	err := sqlite.RegisterFunction("kql_make_set", &sqlite.FunctionImpl{
		NArgs: 2, Deterministic: true,
		MakeAggregate: func(sqlite.FunctionContext) (sqlite.AggregateFunction, error) {
			return &makeSet{seen: map[string]struct{}{}}, nil
		},
	})
	if err != nil {
		panic(fmt.Sprintf("kql/sqlite: registering kql_make_set: %v", err))
	}
}

type makeSet struct {
	seen  map[string]struct{}
	elems []string
	size  int // of the JSON array text
}

func (m *makeSet) Step(_ *sqlite.FunctionContext, a []driver.Value) error {
	if a[0] == nil {
		return nil
	}
	e := text(a[0])
	if e == "null" && num(a[1]) == 0 {
		return nil
	}
	if _, ok := m.seen[e]; ok {
		return nil
	}
	if m.size+len(e)+1 > MaxSetBytes-2 {
		return fmt.Errorf("%s %d bytes", makeSetTooLarge, MaxSetBytes)
	}
	m.seen[e] = struct{}{}
	m.elems = append(m.elems, e)
	m.size += len(e) + 1
	return nil
}

func (m *makeSet) WindowInverse(*sqlite.FunctionContext, []driver.Value) error {
	return fmt.Errorf("kql_make_set is not a window function")
}

func (m *makeSet) WindowValue(*sqlite.FunctionContext) (driver.Value, error) {
	return "[" + strings.Join(slices.Sorted(slices.Values(m.elems)), ",") + "]", nil
}

func (m *makeSet) Final(*sqlite.FunctionContext) {}
