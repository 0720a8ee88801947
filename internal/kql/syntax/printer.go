package syntax

import (
	"strings"
)

// String renders q as canonical KQL: one operator per line. Parsing the
// result gives back the same tree.
func (q *Query) String() string {
	var b strings.Builder
	for _, l := range q.Lets {
		b.WriteString("let " + identString(l.Name) + " = " + ExprString(l.Value) + ";\n")
	}
	if q.Body != nil {
		b.WriteString(identString(q.Body.Source))
		for _, op := range q.Body.Ops {
			b.WriteString("\n| " + OperatorString(op))
		}
	}
	return b.String()
}

// OperatorString renders one tabular operator (without the leading '|').
func OperatorString(op Operator) string {
	switch o := op.(type) {
	case *Where:
		return "where " + ExprString(o.Pred)
	case *Extend:
		return "extend " + assignsString(o.Assigns)
	case *Project:
		return "project " + assignsString(o.Items)
	case *ProjectAway:
		return "project-away " + identsString(o.Names)
	case *ProjectRename:
		parts := make([]string, len(o.Items))
		for i, r := range o.Items {
			parts[i] = identString(r.New) + " = " + identString(r.Old)
		}
		return "project-rename " + strings.Join(parts, ", ")
	case *Distinct:
		if o.All {
			return "distinct *"
		}
		return "distinct " + identsString(o.Cols)
	case *Summarize:
		s := "summarize"
		if len(o.Aggs) > 0 {
			s += " " + assignsString(o.Aggs)
		}
		if len(o.By) > 0 {
			s += " by " + assignsString(o.By)
		}
		return s
	case *Sort:
		parts := make([]string, len(o.Keys))
		for i, k := range o.Keys {
			parts[i] = sortKeyString(k)
		}
		return o.Keyword + " by " + strings.Join(parts, ", ")
	case *Take:
		return o.Keyword + " " + ExprString(o.N)
	case *Top:
		return "top " + ExprString(o.N) + " by " + sortKeyString(o.Key)
	case *Count:
		return "count"
	}
	return "?"
}

func sortKeyString(k *SortKey) string {
	s := ExprString(k.Expr)
	if k.Explicit || !k.Desc {
		if k.Desc {
			s += " desc"
		} else {
			s += " asc"
		}
	}
	if k.Nulls != "" {
		s += " nulls " + k.Nulls
	}
	return s
}

func assignsString(as []*Assign) string {
	parts := make([]string, len(as))
	for i, a := range as {
		if a.Name != nil {
			parts[i] = identString(a.Name) + " = " + ExprString(a.Value)
		} else {
			parts[i] = ExprString(a.Value)
		}
	}
	return strings.Join(parts, ", ")
}

func identsString(ns []*Ident) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = identString(n)
	}
	return strings.Join(parts, ", ")
}

func identString(id *Ident) string {
	if id.Bracketed {
		return "[" + Quote(id.Name) + "]"
	}
	return id.Name
}

// ExprString renders a scalar expression.
func ExprString(e Expr) string {
	switch x := e.(type) {
	case *Ident:
		return identString(x)
	case *StringLit:
		if x.Verbatim {
			return `@"` + strings.ReplaceAll(x.Value, `"`, `""`) + `"`
		}
		return Quote(x.Value)
	case *LongLit:
		return x.Text
	case *RealLit:
		return x.Text
	case *BoolLit:
		if x.Value {
			return "true"
		}
		return "false"
	case *TimespanLit:
		return x.Text
	case *DatetimeLit:
		return "datetime(" + x.Text + ")"
	case *Binary:
		return ExprString(x.L) + " " + x.Op + " " + ExprString(x.R)
	case *Unary:
		return x.Op + ExprString(x.X)
	case *Paren:
		return "(" + ExprString(x.X) + ")"
	case *Call:
		args := make([]string, len(x.Args))
		for i, a := range x.Args {
			args[i] = ExprString(a)
		}
		return identString(x.Func) + "(" + strings.Join(args, ", ") + ")"
	case *Member:
		return ExprString(x.X) + "." + x.Name.Name
	case *Index:
		return ExprString(x.X) + "[" + ExprString(x.Index) + "]"
	case *In:
		items := make([]string, len(x.List))
		for i, a := range x.List {
			items[i] = ExprString(a)
		}
		return ExprString(x.X) + " " + x.Op + " (" + strings.Join(items, ", ") + ")"
	case *Between:
		op := "between"
		if x.Not {
			op = "!between"
		}
		return ExprString(x.X) + " " + op + " (" + ExprString(x.Lo) + " .. " + ExprString(x.Hi) + ")"
	case *Star:
		return "*"
	}
	return "?"
}

// Quote renders s as a double-quoted KQL string literal.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case 0:
			b.WriteString(`\0`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
