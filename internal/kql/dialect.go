package kql

// Dialect renders what differs between SQL engines. The compiler writes
// the portable parts itself (SELECT … FROM … WHERE … GROUP BY … ORDER BY
// … LIMIT, CASE, arithmetic, comparisons, AND/OR/NOT, IN, BETWEEN,
// count/min/max/avg, count(DISTINCT), COALESCE) and asks the dialect
// for the rest by operation name (Func).
//
// Values: strings are text and never NULL (KQL strings have no null);
// datetimes and timespans are 64-bit integers of nanoseconds (Unix epoch,
// UTC); bools are 0/1; dynamic values are JSON text.
type Dialect interface {
	// Quote quotes an identifier.
	Quote(name string) string
	// Param is the placeholder of the n-th bound argument (1-based); the
	// same placeholder may appear several times.
	Param(n int) string
	// JSONPath renders a path of object keys (string) and array indexes
	// (int64) as the argument the dynamic functions take (bound as a
	// parameter); ok false if the dialect cannot express it.
	JSONPath(path []any) (string, bool)
	// Func renders operation op over rendered arguments. The operations:
	//
	//	has, has_cs, hasprefix, hassuffix (a, b): term match, bool
	//	contains, startswith, endswith (a, b): case-insensitive, bool
	//	contains_cs, startswith_cs, endswith_cs (a, b): bool
	//	eq_nocase (a, b): case-insensitive equality, bool
	//	lower, upper (a): string
	//	json_get (src, path): the JSON text at path of JSON text src, or
	//	  NULL when src is not JSON or path is absent
	//	json_parse (s): s as JSON text if it is JSON, else s as a JSON string
	//	json_tostring (j): a JSON value as KQL tostring shows it ("" for null)
	//	json_scalar (j): a JSON value as a SQL scalar (string, number, NULL)
	//	str_to_long, str_to_real, str_to_datetime, str_to_timespan,
	//	str_to_bool (s): parse, NULL when invalid
	//	datetime_to_str, timespan_to_str, real_to_str (x): KQL's text forms
	//	format_datetime (x, fmt): fmt is a KQL format string
	//	floor (x): real
	//	make_set (x): aggregate, JSON array text of the distinct values
	//	make_set_json (j): make_set of JSON texts
	//	arg_max_col, arg_min_col (v, k): aggregate, v of the row with the
	//	  greatest/least k
	//	cast_long, cast_real, cast_text (x): CAST to a 64-bit integer
	//	  (truncating), a double, text
	//	div_long (a, b): integer division, truncating
	//	sum_long (x): aggregate sum of integers, an error on overflow
	//	sum_real (x): aggregate sum as a real, 0.0 over no rows
	Func(op string, args ...string) string
}

// Narrower is implemented by a dialect that can add a cheaper condition
// implied by `column == value` on the table itself: the DuckDB store's
// hash of DeviceId, whose zone maps skip the row groups of other devices.
// The condition is inlined into the SQL, so it must hold no text from the
// query (a number, a column name).
type Narrower interface {
	Narrow(column string, value any) (cond string, ok bool)
}
