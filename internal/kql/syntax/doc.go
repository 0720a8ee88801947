// Package syntax is the KQL subset Tether understands: a hand-written
// lexer, a recursive-descent parser producing an AST, a printer that
// renders the AST back to canonical KQL, and errors that carry the line
// and column of the offending text.
//
// The package knows nothing about tables, types or SQL; the compiler in
// package kql does. It imports only the standard library.
//
// Grammar (informal):
//
//	query     = { "let" ident "=" expr ";" } ident { "|" operator } [ ";" ]
//	operator  = "where" expr | "extend" assigns | "project" assigns
//	          | "project-away" idents | "project-rename" ident "=" ident {…}
//	          | "distinct" ( "*" | idents ) | "summarize" [assigns] [ "by" assigns ]
//	          | ("order"|"sort") "by" sortkeys | ("take"|"limit") expr
//	          | "top" expr "by" sortkey | "count"
//	expr      = or-expr with KQL precedence: or < and < comparison/string
//	            operators/in/between < + - < * / % < unary - < postfix . [ ] ( )
package syntax
