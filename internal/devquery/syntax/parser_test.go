package syntax

import (
	"strings"
	"testing"
)

// TestParse checks the shape of parsed queries through their canonical
// rendering, with parentheses added where the tree has a node the
// printer would otherwise write flat (see sexpr).
func TestParse(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`SELECT * FROM devices`, `SELECT * FROM devices`},
		{"select *\nfrom DEVICES\twhere a = 'x'", `SELECT * FROM DEVICES WHERE (= a 'x')`},
		{`SELECT TOP 10 deviceId, tags.location.region AS region FROM devices`,
			`SELECT TOP 10 deviceId, tags.location.region AS region FROM devices`},
		{`SELECT TOP 0x10 * FROM devices`, `SELECT TOP 16 * FROM devices`},
		{`SELECT COUNT() AS n, SUM(x.y), avg(z), Min(w) AS lo, MAX(v) FROM devices`,
			`SELECT COUNT() AS n, SUM(x.y), AVG(z), MIN(w) AS lo, MAX(v) FROM devices`},
		{`SELECT properties.reported.x AS x, COUNT() AS n FROM devices GROUP BY properties.reported.x, tags.a`,
			`SELECT properties.reported.x AS x, COUNT() AS n FROM devices GROUP BY properties.reported.x, tags.a`},
		{`SELECT * FROM devices WHERE a = 1 AND b != 2 OR c <> 3 AND NOT d < 4`,
			`SELECT * FROM devices WHERE (OR (AND (= a 1) (!= b 2)) (AND (!= c 3) (NOT (< d 4))))`},
		{`SELECT * FROM devices WHERE a >= 1 AND (b <= 2 OR c > 3)`,
			`SELECT * FROM devices WHERE (AND (>= a 1) (OR (<= b 2) (> c 3)))`},
		{`SELECT * FROM devices WHERE a + b * c - -d / 2 % e > -1.5e3`,
			`SELECT * FROM devices WHERE (> (- (+ a (* b c)) (% (/ (NEG d) 2) e)) -1.5e3)`},
		{`SELECT * FROM devices WHERE x IN ['a', "b", -1, 2.5, true, false, null] AND y NIN []`,
			`SELECT * FROM devices WHERE (AND (IN x 'a' 'b' -1 2.5 true false null) (NIN y))`},
		{`SELECT * FROM devices WHERE is_defined(tags.x) AND startswith(deviceId, 'sensor-')`,
			`SELECT * FROM devices WHERE (AND (IS_DEFINED tags.x) (STARTSWITH deviceId 'sensor-'))`},
		{`SELECT * FROM devices WHERE [[group]].x = 1 AND tags.group = 2 AND tags.[[my-prop]] = 3`,
			`SELECT * FROM devices WHERE (AND (AND (= [[group]].x 1) (= tags.group 2)) (= tags.[[my-prop]] 3))`},
		{`SELECT * FROM devices WHERE properties.desired.$version > 2 AND properties.reported.$metadata.$lastUpdated > '2024'`,
			`SELECT * FROM devices WHERE (AND (> properties.desired.$version 2) (> properties.reported.$metadata.$lastUpdated '2024'))`},
		{`SELECT * FROM devices WHERE a = 'it''s'`, ``}, // two strings: an error, below
		{`SELECT * FROM devices WHERE a = "it's" AND b = 'say \"hi\"\n\u00e9\ud83d\ude00'`,
			`SELECT * FROM devices WHERE (AND (= a "it's") (= b 'say "hi"\né😀'))`},
		{`SELECT * FROM devices WHERE NOT NOT x AND - - y = 1 AND -(1) = z`,
			`SELECT * FROM devices WHERE (AND (AND (NOT (NOT x)) (= (NEG (NEG y)) 1)) (= (NEG 1) z))`},
		{`SELECT * FROM devices WHERE a = undefined`, `SELECT * FROM devices WHERE (= a undefined)`},
		{`SELECT * FROM devices WHERE ((a))`, `SELECT * FROM devices WHERE a`},
	} {
		if tc.want == "" {
			continue
		}
		q, err := Parse(tc.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.src, err)
			continue
		}
		if got := sexprQuery(q); got != tc.want {
			t.Errorf("Parse(%q)\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	long := "SELECT * FROM devices WHERE deviceId IN ['" + strings.Repeat("x", MaxQueryLength) + "']"
	deep := "SELECT * FROM devices WHERE " + strings.Repeat("(", MaxDepth+1) + "a" + strings.Repeat(")", MaxDepth+1)
	nots := "SELECT * FROM devices WHERE " + strings.Repeat("NOT ", MaxDepth+1) + "a"
	big := "SELECT * FROM devices WHERE a IN [" + strings.Repeat("1,", MaxInList) + "1]"
	for _, tc := range []struct{ src, want string }{
		{``, `line 1, column 1: expected SELECT, found end of query`},
		{`   `, `line 1, column 4: expected SELECT, found end of query`},
		{`SELEC * FROM devices`, `line 1, column 1: expected SELECT, found 'SELEC'`},
		{`SELECT * FROM devices WHERE connectionState = AND status = 'enabled'`,
			`line 1, column 47: expected a value after '=', found 'AND'`},
		{"SELECT *\nFROM devices\nWHERE a =", `line 3, column 10: expected a value after '=', found end of query`},
		{`SELECT * FROM devices WHERE`, `line 1, column 28: expected a condition after WHERE, found end of query`},
		{`SELECT * FROM devices WHERE a = 1 AND`, `line 1, column 38: expected a condition after AND, found end of query`},
		{`SELECT * FROM devices WHERE NOT`, `line 1, column 32: expected a condition after NOT, found end of query`},
		{`SELECT * FROM devices WHERE (a = 1`, `line 1, column 35: expected ')', found end of query`},
		{`SELECT * FROM devices WHERE a == 1`, `line 1, column 31: '==' is not an operator; compare with '='`},
		{`SELECT * FROM devices WHERE a = 1 && b = 2`, `line 1, column 35: '&&' is not an operator; use AND`},
		{`SELECT * FROM devices WHERE a = 1 = 2`, `line 1, column 35: comparisons cannot be chained; join them with AND`},
		{`SELECT * FROM devices WHERE a IN ('x', 'y')`,
			`line 1, column 34: expected '[' after IN, found '('; lists are written in square brackets: IN ['a', 'b']`},
		{`SELECT * FROM devices WHERE a NIN ['x' 'y']`, `line 1, column 40: expected ',' or ']' in the NIN list, found string 'y'`},
		{`SELECT * FROM devices WHERE a IN [b]`,
			`line 1, column 35: expected a constant (string, number, true, false or null) in the IN list, found 'b'`},
		{`SELECT * FROM devices WHERE a = [1]`, `line 1, column 33: a list [...] is only allowed after IN or NIN`},
		{`SELECT * FROM devices WHERE a = 'abc`, `line 1, column 33: string is not terminated: missing closing '`},
		{`SELECT * FROM devices WHERE a = 'a\qb'`,
			`line 1, column 35: unknown escape sequence \q in string; escapes are \' \" \\ \/ \b \f \n \r \t and \uXXXX`},
		{`SELECT * FROM devices WHERE a = '\u12'`, `line 1, column 34: \u in a string must be followed by 4 hexadecimal digits`},
		{`SELECT * FROM devices WHERE a = '\ud83d'`,
			`line 1, column 34: \uD83D is half of a UTF-16 surrogate pair; write the character or both halves`},
		{`SELECT * FROM devices WHERE a = 1.5.2`, `line 1, column 33: invalid number '1.5.2'`},
		{`SELECT * FROM devices WHERE a = 12abc`, `line 1, column 33: invalid number '12abc'`},
		{`SELECT * FROM devices WHERE a = 0x`, `line 1, column 33: invalid number '0x'`},
		{`SELECT * FROM devices WHERE a = 1e999`, `line 1, column 33: number 1e999 is out of range`},
		{`SELECT * FROM devices WHERE a = 0x1FFFFFFFFFFFFFFFF`, `line 1, column 33: number 0x1FFFFFFFFFFFFFFFF is out of range`},
		{`SELECT * FROM devices WHERE a = #`, `line 1, column 33: unexpected character '#'`},
		{`SELECT * FROM devices WHERE group = 1`,
			`line 1, column 29: expected a condition after WHERE, found keyword 'group' (write [[group]] if it is a name)`},
		{`SELECT * FROM devices WHERE tags.x[0] = 1`,
			`line 1, column 35: indexing with [ ] is not supported; paths name object members only`},
		{`SELECT * FROM devices WHERE a. = 1`, `line 1, column 32: expected a name after '.', found '='`},
		{`SELECT * FROM devices WHERE [[]] = 1`, `line 1, column 29: escaped name [[]] is empty`},
		{`SELECT * FROM devices WHERE [[a = 1`, `line 1, column 29: escaped name is not terminated: missing ]]`},
		{`SELECT * FROM devices WHERE f(a, = 1`, `line 1, column 34: expected an argument of F(), found '='`},
		{`SELECT * FROM devices WHERE f(a b) = 1`, `line 1, column 33: expected ',' or ')' in the call of F(), found 'b'`},
		{`SELECT FROM devices`, `line 1, column 8: expected an attribute path, an aggregate or * after SELECT, found keyword 'FROM' (write [[FROM]] if it is a name)`},
		{`SELECT *, deviceId FROM devices`, `line 1, column 9: SELECT * cannot be combined with other items; list the attributes instead`},
		{`SELECT deviceId status FROM devices`, `line 1, column 17: expected ',' or FROM after the select list, found 'status'`},
		{`SELECT a + 1 FROM devices`,
			`line 1, column 10: expected ',' or FROM after the select list, found '+'; the select list takes attribute paths and aggregates, not expressions`},
		{`SELECT IS_DEFINED(a) FROM devices`,
			`line 1, column 8: SELECT lists attribute paths and the aggregates COUNT(), AVG, SUM, MIN and MAX; 'IS_DEFINED' is not one of them`},
		{`SELECT COUNT(*) FROM devices`, `line 1, column 14: COUNT takes no argument: write COUNT()`},
		{`SELECT SUM() FROM devices`, `line 1, column 12: expected an attribute path in SUM(), found ')'`},
		{`SELECT SUM(a FROM devices`, `line 1, column 14: expected ')' to close SUM(, found 'FROM'`},
		{`SELECT a AS FROM devices`, `line 1, column 13: expected a name after AS, found keyword 'FROM' (write [[FROM]] if it is a name)`},
		{`SELECT a AS group FROM devices`, `line 1, column 13: expected a name after AS, found keyword 'group' (write [[group]] if it is a name)`},
		{`SELECT a AS 'x' FROM devices`, `line 1, column 13: expected a name after AS, found string 'x'`},
		{`SELECT TOP * FROM devices`, `line 1, column 12: expected a number of rows after TOP, found '*'`},
		{`SELECT TOP -1 * FROM devices`, `line 1, column 12: TOP takes a number of rows, 0 or more, found '-1'`},
		{`SELECT TOP 1.5 * FROM devices`, `line 1, column 12: TOP takes a whole number of rows, found 1.5`},
		{`SELECT * devices`, `line 1, column 10: expected FROM, found 'devices'`},
		{`SELECT * FROM`, `line 1, column 14: expected a collection after FROM (devices), found end of query`},
		{`SELECT * FROM devices.`, `line 1, column 23: expected a name after '.', found end of query`},
		{`SELECT * FROM devices WHERE a = 1 ORDER BY a`,
			`line 1, column 35: ORDER BY is not part of the IoT Hub query language; results come in device id order`},
		{`SELECT a FROM devices GROUP a`, `line 1, column 29: expected BY after GROUP, found 'a'`},
		{`SELECT a FROM devices GROUP BY`, `line 1, column 31: expected an attribute path after GROUP BY, found end of query`},
		{`SELECT * FROM devices WHERE a = 1)`, `line 1, column 34: expected end of query, found ')'`},
		{`SELECT * FROM devices GROUP BY a WHERE a = 1`, `line 1, column 34: expected end of query, found 'WHERE'`},
		{"SELECT * FROM devices WHERE a = '\xff'", `line 1, column 34: invalid UTF-8 in the query`},
		{"SELECT * FROM devices WHERE é = ü AND ☃ = 1 AND x = 1", `line 1, column 39: unexpected character '☃'`},
		{long, `line 1, column 1: the query is 8236 characters long; the limit is 8192`},
		{deep, `line 1, column 93: the expression nests more than 64 levels deep`},
		{nots, `line 1, column 285: the expression nests more than 64 levels deep`},
		{big, `line 1, column 2035: an IN list holds at most 1000 values`},
	} {
		_, err := Parse(tc.src)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%.80q)\n got %v\nwant %s", tc.src, err, tc.want)
		}
		if e, ok := err.(*Error); ok && (e.Pos < 0 || e.Pos > len(tc.src)) {
			t.Errorf("Parse(%.80q): position %d outside the query", tc.src, e.Pos)
		}
	}
}

// TestErrorPosition checks that Pos, Line and Col agree on multi-line
// queries with multi-byte characters.
func TestErrorPosition(t *testing.T) {
	src := "SELECT *\r\nFROM devices\nWHERE tags.é = 'ü' AND\n   ?"
	_, err := Parse(src)
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %v is not *Error", err)
	}
	if e.Pos != strings.IndexByte(src, '?') || e.Line != 4 || e.Col != 4 {
		t.Errorf("error at pos %d line %d col %d, want pos %d line 4 col 4", e.Pos, e.Line, e.Col, strings.IndexByte(src, '?'))
	}
}

// sexprQuery renders q like String but with expressions as
// s-expressions, so the test sees the tree and not only the text.
func sexprQuery(q *Query) string {
	s := q.String()
	if q.Where == nil {
		return s
	}
	i := strings.Index(s, " WHERE ")
	rest := ""
	if j := strings.Index(s, " GROUP BY "); j > 0 {
		rest = s[j:]
	}
	return s[:i] + " WHERE " + sexpr(q.Where) + rest
}

func sexpr(e Expr) string {
	switch e := e.(type) {
	case *Binary:
		return "(" + e.Op + " " + sexpr(e.L) + " " + sexpr(e.R) + ")"
	case *Not:
		return "(NOT " + sexpr(e.X) + ")"
	case *Neg:
		return "(NEG " + sexpr(e.X) + ")"
	case *In:
		op := "IN"
		if e.Negated {
			op = "NIN"
		}
		s := "(" + op + " " + sexpr(e.X)
		for _, l := range e.List {
			s += " " + sexpr(l)
		}
		return s + ")"
	case *Call:
		s := "(" + e.Name
		for _, a := range e.Args {
			s += " " + sexpr(a)
		}
		return s + ")"
	}
	return ExprString(e)
}
