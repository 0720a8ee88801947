package syntax

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// String renders q as canonical text: keywords in upper case, single
// spaces, parentheses only where the tree needs them, '<>' as '!='.
// Parsing the result gives a query that renders to the same text.
func (q *Query) String() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	if q.HasTop {
		b.WriteString("TOP " + strconv.FormatInt(q.Top, 10) + " ")
	}
	if q.Star {
		b.WriteString("*")
	}
	for i, it := range q.Items {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(ExprString(it.Expr))
		if it.AliasPos >= 0 {
			b.WriteString(" AS " + name(it.Alias, true))
		}
	}
	b.WriteString(" FROM " + strings.Join(q.From.Names, "."))
	if q.Where != nil {
		b.WriteString(" WHERE " + ExprString(q.Where))
	}
	for i, g := range q.GroupBy {
		if i == 0 {
			b.WriteString(" GROUP BY ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(ExprString(g))
	}
	return b.String()
}

// Precedence levels, loosest first.
const (
	precOr = iota + 1
	precAnd
	precNot
	precCompare
	precSum
	precProduct
	precNeg
	precPrimary
)

func prec(e Expr) int {
	switch e := e.(type) {
	case *Binary:
		switch e.Op {
		case "OR":
			return precOr
		case "AND":
			return precAnd
		case "+", "-":
			return precSum
		case "*", "/", "%":
			return precProduct
		}
		return precCompare
	case *In:
		return precCompare
	case *Not:
		return precNot
	case *Neg:
		return precNeg
	}
	return precPrimary
}

// ExprString renders one expression.
func ExprString(e Expr) string {
	var b strings.Builder
	writeExpr(&b, e)
	return b.String()
}

// writeSub writes e, in parentheses when paren says so.
func writeSub(b *strings.Builder, e Expr, paren bool) {
	if paren {
		b.WriteByte('(')
	}
	writeExpr(b, e)
	if paren {
		b.WriteByte(')')
	}
}

func writeExpr(b *strings.Builder, e Expr) {
	switch e := e.(type) {
	case *Path:
		for i, s := range e.Segments {
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(name(s.Name, i == 0))
		}
	case *Literal:
		switch e.Kind {
		case LitString:
			b.WriteString(quote(e.Text))
		case LitNumber:
			b.WriteString(e.Text)
		default:
			b.WriteString([...]string{LitTrue: "true", LitFalse: "false", LitNull: "null", LitUndefined: "undefined"}[e.Kind])
		}
	case *Binary:
		p := prec(e)
		// Comparisons do not chain, so an inner one on the left needs
		// parentheses too; on the right, equal precedence always does
		// (the parser builds left-deep trees).
		writeSub(b, e.L, prec(e.L) < p || prec(e.L) == p && p == precCompare)
		b.WriteString(" " + e.Op + " ")
		writeSub(b, e.R, prec(e.R) <= p)
	case *Not:
		b.WriteString("NOT ")
		writeSub(b, e.X, prec(e.X) < precNot)
	case *Neg:
		b.WriteByte('-')
		writeSub(b, e.X, prec(e.X) < precNeg)
	case *In:
		writeSub(b, e.X, prec(e.X) <= precCompare)
		if e.Negated {
			b.WriteString(" NIN [")
		} else {
			b.WriteString(" IN [")
		}
		for i, l := range e.List {
			if i > 0 {
				b.WriteString(", ")
			}
			writeExpr(b, l)
		}
		b.WriteByte(']')
	case *Call:
		b.WriteString(e.Name + "(")
		for i, a := range e.Args {
			if i > 0 {
				b.WriteString(", ")
			}
			writeExpr(b, a)
		}
		b.WriteByte(')')
	case *Aggregate:
		b.WriteString(e.Func + "(")
		if e.Arg != nil {
			writeExpr(b, e.Arg)
		}
		b.WriteByte(')')
	default:
		panic(fmt.Sprintf("syntax: unknown expression %T", e))
	}
}

// name renders a name plainly when it lexes back as the same identifier,
// else as [[name]]. first marks names where a keyword needs escaping.
func name(s string, first bool) string {
	plain := s != "" && !(first && IsKeyword(s))
	for i, r := range s {
		if i == 0 && !isNameStart(r) || !isNamePart(r) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return "[[" + s + "]]"
}

// quote renders s as a string literal, in single quotes unless double ones
// need fewer escapes.
func quote(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte(q)
	return b.String()
}
