package syntax

import (
	"strings"
	"testing"
	"time"
)

// TestParseTree checks the shape of parsed queries through a compact
// s-expression dump (sexpr below).
func TestParseTree(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`T`, `T`},
		{`T | where a == 1 and b != "x" or not(c)`, `T | where (or (and (== a 1) (!= b "x")) (call not c))`},
		{`T | where a + b * c - -d > 2`, `T | where (> (- (+ a (* b c)) (neg d)) 2)`},
		{`T | where x has "a" and y !contains_cs 'B' and z startswith @"c\"`, `T | where (and (and (has x "a") (!contains_cs y "B")) (startswith z "c\\"))`},
		{`T | where x in ("a", "b") and y !in~ (1) and z between (1 .. 2) and w !between (ago(1h) .. now())`,
			`T | where (and (and (and (in x "a" "b") (!in~ y 1)) (between z 1 2)) (!between w (call ago 1h) (call now)))`},
		{`T | extend D = tostring(parse_json(properties_s).deviceId), E = p["a"].b[0]`,
			`T | extend D=(call tostring (. (call parse_json properties_s) deviceId)) E=([] (. ([] p "a") b) 0)`},
		{`T | project a, B = b + 1 | project-away c, d | project-rename e = f`, `T | project a B=(+ b 1) | project-away c d | project-rename e=f`},
		{`T | summarize count(), n = dcount(x) by bin(TimeGenerated, 1h), y`, `T | summarize (call count) n=(call dcount x) by (call bin TimeGenerated 1h) y`},
		{`T | summarize by x`, `T | summarize by x`},
		{`T | order by a asc nulls first, b | sort by c desc nulls last`, `T | order a:asc:first b:desc | sort c:desc:last`},
		{`T | take 5 | limit 2 | top 3 by x asc | count`, `T | take 5 | limit 2 | top 3 x:asc | count`},
		{`T | distinct a, b | distinct *`, `T | distinct a b | distinct *`},
		{`let n = 5; let s = "x"; T | take n`, `let n 5; let s "x"; T | take n`},
		{`T | where t > datetime(2024-01-02) and t < datetime(null)`, `T | where (and (> t 2024-01-02T00:00:00Z) (< t null))`},
		{`T | where ['odd name'] == 1`, `T | where (== odd name 1)`},
		{"T // all\n| where a <> 1;", `T | where (!= a 1)`},
		{`T | where (a or b) and c`, `T | where (and (paren (or a b)) c)`},
		{`T | extend x = case(a, 1, b, 2, 3), y = iff(a, 1.5, 1e3)`, `T | extend x=(call case a 1 b 2 3) y=(call iff a 1.5 1e3)`},
	} {
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

func TestParseLiterals(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want any
	}{
		{`5m`, 5 * time.Minute}, {`1.5h`, 90 * time.Minute}, {`100ms`, 100 * time.Millisecond}, {`7d`, 7 * 24 * time.Hour},
		{`2ticks`, 200 * time.Nanosecond}, {`0x10`, int64(16)}, {`2.5`, 2.5},
		{`datetime(2024-01-02T03:04:05.5Z)`, time.Date(2024, 1, 2, 3, 4, 5, 5e8, time.UTC)},
		{`datetime(2024-01-02 03:04)`, time.Date(2024, 1, 2, 3, 4, 0, 0, time.UTC)},
		{`datetime(2024-01-02T03:04:05+02:00)`, time.Date(2024, 1, 2, 1, 4, 5, 0, time.UTC)},
	} {
		e, err := ParseExpr(tc.src)
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		var got any
		switch x := e.(type) {
		case *TimespanLit:
			got = x.Value
		case *LongLit:
			got = x.Value
		case *RealLit:
			got = x.Value
		case *DatetimeLit:
			got = x.Value
		}
		if got != tc.want {
			t.Errorf("%s = %v, want %v", tc.src, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{``, `1:1: expected a table name, found end of query`},
		{`| where x`, `1:1: expected a table name, found '|'`},
		{`T | wher x == 1`, `1:5: unknown tabular operator 'wher'; did you mean 'where'?`},
		{`T | where`, `1:10: expected an expression, found end of query`},
		{"T\n| where x ==", `2:13: expected an expression, found end of query`},
		{`T | where (a == 1`, `1:18: expected ')', found end of query`},
		{`T | order x`, `1:11: expected 'by' after 'order', found 'x'`},
		{`T | top 5 x`, `1:11: expected 'by' after 'top N', found 'x'`},
		{`T | where x in 1`, `1:16: expected '(', found '1'`},
		{`T | where x between (1, 2)`, `1:23: expected '..', found ','`},
		{`T where x == 1`, `1:3: expected '|' before 'where'; tabular operators are separated by '|'`},
		{`let x = 1`, `1:10: expected ';', found end of query`},
		{`let x = 1;`, `1:11: the query has only let statements; it must end with a table expression`},
		{`T | where t > datetime(yesterday)`, `1:15: invalid datetime literal 'yesterday'; write ISO 8601, e.g. datetime(2024-01-31T13:45:00Z)`},
		{`T | take 99999999999999999999`, `1:10: number 99999999999999999999 is out of range for long`},
		{`T | where x > 9999999999999999999d`, `1:15: timespan 9999999999999999999d is out of range`},
		{`T | summarize`, `1:14: expected an aggregation or 'by', found end of query`},
		{`T | extend a = `, `1:16: expected an expression, found end of query`},
		{`T | project-rename a`, `1:21: expected '=', found end of query`},
		{`T | where p.`, `1:13: expected a property name after '.', found end of query`},
		{`T | order by a nulls x`, `1:22: expected 'first' or 'last' after 'nulls', found 'x'`},
		{`T | 5`, `1:5: expected a tabular operator (where, extend, project, summarize, …), found '5'`},
		{`T | take 1 )`, `1:12: expected '|' or end of query, found ')'`},
	} {
		_, err := Parse(tc.src)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q) error\n got %v\nwant %s", tc.src, err, tc.want)
		}
	}
}

func sexprQuery(q *Query) string {
	var parts []string
	for _, l := range q.Lets {
		parts = append(parts, "let "+l.Name.Name+" "+sexpr(l.Value)+";")
	}
	s := q.Body.Source.Name
	for _, op := range q.Body.Ops {
		s += " | " + sexprOp(op)
	}
	return strings.Join(append(parts, s), " ")
}

func sexprAssigns(as []*Assign) string {
	var p []string
	for _, a := range as {
		if a.Name != nil {
			p = append(p, a.Name.Name+"="+sexpr(a.Value))
		} else {
			p = append(p, sexpr(a.Value))
		}
	}
	return strings.Join(p, " ")
}

func sexprKey(k *SortKey) string {
	s := sexpr(k.Expr) + ":" + map[bool]string{true: "desc", false: "asc"}[k.Desc]
	if k.Nulls != "" {
		s += ":" + k.Nulls
	}
	return s
}

func sexprOp(op Operator) string {
	switch o := op.(type) {
	case *Where:
		return "where " + sexpr(o.Pred)
	case *Extend:
		return "extend " + sexprAssigns(o.Assigns)
	case *Project:
		return "project " + sexprAssigns(o.Items)
	case *ProjectAway:
		var p []string
		for _, n := range o.Names {
			p = append(p, n.Name)
		}
		return "project-away " + strings.Join(p, " ")
	case *ProjectRename:
		var p []string
		for _, r := range o.Items {
			p = append(p, r.New.Name+"="+r.Old.Name)
		}
		return "project-rename " + strings.Join(p, " ")
	case *Distinct:
		if o.All {
			return "distinct *"
		}
		var p []string
		for _, n := range o.Cols {
			p = append(p, n.Name)
		}
		return "distinct " + strings.Join(p, " ")
	case *Summarize:
		s := "summarize"
		if len(o.Aggs) > 0 {
			s += " " + sexprAssigns(o.Aggs)
		}
		if len(o.By) > 0 {
			s += " by " + sexprAssigns(o.By)
		}
		return s
	case *Sort:
		var p []string
		for _, k := range o.Keys {
			p = append(p, sexprKey(k))
		}
		return o.Keyword + " " + strings.Join(p, " ")
	case *Take:
		return o.Keyword + " " + sexpr(o.N)
	case *Top:
		return "top " + sexpr(o.N) + " " + sexprKey(o.Key)
	case *Count:
		return "count"
	}
	return "?"
}

func sexpr(e Expr) string {
	switch x := e.(type) {
	case *Ident:
		return x.Name
	case *StringLit:
		return Quote(x.Value)
	case *LongLit, *RealLit, *TimespanLit, *BoolLit:
		return ExprString(x)
	case *DatetimeLit:
		if x.Null {
			return "null"
		}
		return x.Value.Format(time.RFC3339Nano)
	case *Binary:
		return "(" + x.Op + " " + sexpr(x.L) + " " + sexpr(x.R) + ")"
	case *Unary:
		if x.Op == "-" {
			return "(neg " + sexpr(x.X) + ")"
		}
		return sexpr(x.X)
	case *Paren:
		return "(paren " + sexpr(x.X) + ")"
	case *Call:
		s := "(call " + x.Func.Name
		for _, a := range x.Args {
			s += " " + sexpr(a)
		}
		return s + ")"
	case *Member:
		return "(. " + sexpr(x.X) + " " + x.Name.Name + ")"
	case *Index:
		return "([] " + sexpr(x.X) + " " + sexpr(x.Index) + ")"
	case *In:
		s := "(" + x.Op + " " + sexpr(x.X)
		for _, a := range x.List {
			s += " " + sexpr(a)
		}
		return s + ")"
	case *Between:
		op := "between"
		if x.Not {
			op = "!between"
		}
		return "(" + op + " " + sexpr(x.X) + " " + sexpr(x.Lo) + " " + sexpr(x.Hi) + ")"
	case *Star:
		return "*"
	}
	return "?"
}
