package kql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"
)

// Querier runs a compiled, read-only statement and hands its rows to scan.
// The log store implements it (connlog/sqlite Store.ReadQuery).
type Querier interface {
	ReadQuery(ctx context.Context, query string, args []any, scan func(*sql.Rows) error) error
}

// RangeQuerier is a Querier partitioned by time: ReadQueryIn runs a
// statement that reads only rows of the table within bounds
// (Compiled.Bounds; a zero end is unbounded), so the store may leave the
// other partitions out.
type RangeQuerier interface {
	ReadQueryIn(ctx context.Context, bounds TimeRange, query string, args []any, scan func(*sql.Rows) error) error
}

// Defaults of Engine's limits.
const (
	DefaultTimeout         = 30 * time.Second
	DefaultMaxRows         = 10000
	DefaultMaxBytes        = 64 << 20
	DefaultDefaultTimespan = 24 * time.Hour
)

// Engine runs queries against one table of a store.
type Engine struct {
	DB      Querier
	Table   *Table
	Dialect Dialect
	// Now is the clock of now() and ago(); default time.Now.
	Now func() time.Time
	// Timeout bounds one query; default DefaultTimeout.
	Timeout time.Duration
	// MaxRows bounds the rows of a result (more: Truncated); default
	// DefaultMaxRows.
	MaxRows int
	// MaxBytes bounds the size of a result's values (more: Truncated);
	// default DefaultMaxBytes.
	MaxBytes int
	// DefaultTimespan applies when a query has neither a timespan nor a
	// time filter of its own; default DefaultDefaultTimespan.
	DefaultTimespan time.Duration
}

// Request is one query.
type Request struct {
	Query string
	// Timespan, when set, limits the table's time column to it.
	Timespan *TimeRange
}

// Result is a query's answer: typed columns and rows of Go values
// (string, int64, float64, bool, time.Time, time.Duration,
// json.RawMessage for dynamic, nil for null).
type Result struct {
	Columns []Column
	Rows    [][]any
	// Truncated says the query had more rows than returned; Reason says
	// which limit cut it.
	Truncated bool
	Reason    string
	// TimeRange is the time range applied to the table (nil when the
	// query's own filter stood alone).
	TimeRange *TimeRange
}

// Run compiles and runs a query. Mistakes in the query and limits it ran
// into (timeout) are *Error; other errors are the hub's.
func (e *Engine) Run(ctx context.Context, req Request) (*Result, error) {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	maxRows, maxBytes, timeout, def := e.MaxRows, e.MaxBytes, e.Timeout, e.DefaultTimespan
	if maxRows <= 0 {
		maxRows = DefaultMaxRows
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if def == 0 {
		def = DefaultDefaultTimespan
	}
	if len(req.Query) > MaxQueryLen {
		return nil, &Error{Code: CodeLimit, Msg: fmt.Sprintf("the query is longer than %d bytes", MaxQueryLen)}
	}
	comp, err := Compile(req.Query, e.Table, e.Dialect, CompileOptions{
		Now: now(), Timespan: req.Timespan, DefaultTimespan: def, MaxRows: maxRows,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := &Result{Columns: comp.Columns, Rows: [][]any{}, TimeRange: comp.TimeRange}
	read := e.DB.ReadQuery
	if rq, ok := e.DB.(RangeQuerier); ok {
		read = func(ctx context.Context, q string, args []any, scan func(*sql.Rows) error) error {
			return rq.ReadQueryIn(ctx, comp.Bounds, q, args, scan)
		}
	}
	err = read(ctx, comp.SQL, comp.Args, func(rows *sql.Rows) error {
		return scanRows(rows, res, maxRows, maxBytes)
	})
	if err != nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded && !errors.Is(err, context.Canceled):
			return nil, &Error{Code: CodeTimeout, Msg: fmt.Sprintf("the query ran longer than %s", timeout),
				Hint: "narrow the time range or filter on DeviceId or Category"}
		case errors.Is(err, context.Canceled) || ctx.Err() != nil:
			return nil, &Error{Code: CodeCanceled, Msg: "the query was canceled"}
		}
		if qe := e.runtimeError(err); qe != nil {
			return nil, qe
		}
		return nil, fmt.Errorf("kql: running %q: %w", req.Query, err)
	}
	return res, nil
}

// MaxQueryLen bounds the text of a query.
const MaxQueryLen = 64 << 10

// ReadLimiter is implemented by a Querier that bounds what a statement may
// build in memory; the engine names the limits when a query runs into them.
type ReadLimiter interface {
	// ReadLimits returns the largest value (string, set or row) in bytes
	// and the most columns of a result or intermediate step.
	ReadLimits() (maxValue, maxColumns int)
}

// runtimeError maps the database errors a valid query can still meet at
// run time to *Error.
func (e *Engine) runtimeError(err error) *Error {
	msg := err.Error()
	maxValue, maxColumns := 0, 0
	if l, ok := e.DB.(ReadLimiter); ok {
		maxValue, maxColumns = l.ReadLimits()
	}
	switch {
	case strings.Contains(msg, "integer overflow") || strings.Contains(msg, "out of range for the destination type") ||
		strings.Contains(msg, "Overflow in"):
		return &Error{Code: CodeSemantic, Msg: "integer overflow while computing the result", Hint: "use todouble(…) for large sums"}
	case strings.Contains(msg, "string or blob too big") || strings.Contains(msg, "make_set() result is larger"):
		return &Error{Code: CodeLimit, Msg: fmt.Sprintf("a value the query builds (a string, a set or a row) is larger than %s", bytesText(maxValue)),
			Hint: "build shorter strings, make_set over fewer distinct values, or summarize by more columns"}
	case strings.Contains(msg, "too many columns"):
		return &Error{Code: CodeLimit, Msg: fmt.Sprintf("the query has more than %s columns in one step", countText(maxColumns)),
			Hint: "project the columns you need before extending more"}
	case strings.Contains(msg, "too large") || strings.Contains(msg, "too many"):
		return &Error{Code: CodeLimit, Msg: "the query is too complex to run"}
	}
	return nil
}

func bytesText(n int) string {
	switch {
	case n <= 0:
		return "the log store allows"
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func countText(n int) string {
	if n <= 0 {
		return "the log store allows"
	}
	return fmt.Sprint(n)
}

// scanRows reads rows into res, converting by column type, until the
// row or byte limit.
func scanRows(rows *sql.Rows, res *Result, maxRows, maxBytes int) error {
	n := len(res.Columns)
	raw := make([]any, n)
	ptrs := make([]any, n)
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	size := 0
	for rows.Next() {
		if len(res.Rows) >= maxRows {
			res.Truncated, res.Reason = true, fmt.Sprintf("the result has more than %d rows", maxRows)
			return nil
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		row := make([]any, n)
		for i, c := range res.Columns {
			row[i] = convertCell(raw[i], c.Type)
			size += cellSize(row[i])
		}
		if size > maxBytes {
			res.Truncated, res.Reason = true, fmt.Sprintf("the result is larger than %d bytes", maxBytes)
			return nil
		}
		res.Rows = append(res.Rows, row)
	}
	return rows.Err()
}

func cellSize(v any) int {
	switch x := v.(type) {
	case string:
		return 16 + len(x)
	case json.RawMessage:
		return 24 + len(x)
	}
	return 16
}

// convertCell turns a driver value into the Go value of a KQL type.
func convertCell(v any, t Type) any {
	v = normalizeCell(v, t)
	if v == nil {
		if t == TString {
			return ""
		}
		return nil
	}
	switch t {
	case TString:
		switch x := v.(type) {
		case string:
			return x
		case float64:
			return FormatReal(x)
		}
		return fmt.Sprint(v)
	case TLong, TInt:
		switch x := v.(type) {
		case int64:
			return x
		case float64:
			if x >= math.MinInt64 && x < math.MaxInt64 {
				return int64(x)
			}
			return nil
		}
	case TReal:
		switch x := v.(type) {
		case float64:
			return x
		case int64:
			return float64(x)
		}
	case TBool:
		switch x := v.(type) {
		case int64:
			return x != 0
		case float64:
			return x != 0
		}
	case TDatetime:
		if x, ok := v.(int64); ok {
			return time.Unix(0, x).UTC()
		}
	case TTimespan:
		switch x := v.(type) {
		case int64:
			return time.Duration(x)
		case float64:
			if x >= math.MinInt64 && x < math.MaxInt64 {
				return time.Duration(x)
			}
		}
	case TDynamic:
		switch x := v.(type) {
		case string:
			if x == "null" {
				return nil
			}
			if json.Valid([]byte(x)) {
				return json.RawMessage(x)
			}
			b, _ := json.Marshal(x)
			return json.RawMessage(b)
		case int64, float64:
			b, _ := json.Marshal(x)
			return json.RawMessage(b)
		}
	}
	return nil
}

// normalizeCell maps the driver types other engines return onto
// SQLite's few (int64, float64, string, nil): DuckDB's narrower integers,
// HUGEINT (*big.Int) and BOOLEAN (0/1, as SQLite has it).
func normalizeCell(v any, t Type) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
		return float64(x)
	case float32:
		return float64(x)
	case *big.Int:
		if x.IsInt64() {
			return x.Int64()
		}
		f, _ := new(big.Float).SetInt(x).Float64()
		return f
	}
	return v
}

// JSONCell is a cell as the Log Analytics API writes it: datetimes ISO
// 8601, timespans [d.]hh:mm:ss, dynamic values as their JSON text in a
// string, non-finite reals as "NaN"/"Infinity"/"-Infinity".
func JSONCell(v any) any {
	switch x := v.(type) {
	case time.Time:
		return FormatDatetime(x)
	case time.Duration:
		return FormatTimespan(x)
	case json.RawMessage:
		return string(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return FormatReal(x)
		}
	}
	return v
}
