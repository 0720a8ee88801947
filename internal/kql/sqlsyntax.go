package kql

import (
	"strconv"
	"strings"
)

// Syntax that SQLite and DuckDB share, for their dialects.

// QuoteIdent quotes an identifier with double quotes (standard SQL).
func QuoteIdent(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// SQLiteJSONPath renders $."key" / $[3] / $[#-1], the JSON path syntax of
// SQLite's JSON functions, which DuckDB's accept too. A key holding a
// double quote or NUL cannot be expressed (ok false).
func SQLiteJSONPath(path []any) (string, bool) {
	var b strings.Builder
	b.WriteByte('$')
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if strings.ContainsAny(k, "\"\x00") {
				return "", false
			}
			b.WriteString(`."` + k + `"`)
		case int64:
			if k < 0 {
				b.WriteString("[#" + strconv.FormatInt(k, 10) + "]")
			} else {
				b.WriteString("[" + strconv.FormatInt(k, 10) + "]")
			}
		default:
			return "", false
		}
	}
	return b.String(), true
}
