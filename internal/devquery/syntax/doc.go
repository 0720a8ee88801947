// Package syntax is the IoT Hub query language for device twins as Tether
// reads it: a hand-written lexer, a recursive-descent parser producing an
// AST, a printer that renders the AST back to canonical text, and errors
// that carry the offset, line and column of the offending text.
//
// The package knows the grammar only. What the names mean (the twin's
// fields, the functions, the rules of GROUP BY) is package devquery's
// business; it reports its findings with this package's Error so every
// mistake in a query looks the same to the caller. It imports only the
// standard library.
//
// Grammar (keywords case-insensitive; names case-sensitive):
//
//	query      = "SELECT" [ "TOP" integer ] select "FROM" source
//	             [ "WHERE" expr ] [ "GROUP" "BY" path { "," path } ]
//	select     = "*" | item { "," item }
//	item       = ( path | aggregate ) [ "AS" name ]
//	aggregate  = "COUNT" "(" ")" | ( "AVG" | "SUM" | "MIN" | "MAX" ) "(" path ")"
//	source     = name { "." name }                 (only "devices" runs)
//	expr       = and { "OR" and }
//	and        = not { "AND" not }
//	not        = "NOT" not | compare
//	compare    = sum [ ( "=" | "!=" | "<>" | "<" | ">" | "<=" | ">=" ) sum
//	                 | ( "IN" | "NIN" ) list ]
//	sum        = product { ( "+" | "-" ) product }
//	product    = unary { ( "*" | "/" | "%" ) unary }
//	unary      = "-" unary | primary
//	primary    = literal | path | name "(" [ expr { "," expr } ] ")" | "(" expr ")"
//	list       = "[" [ constant { "," constant } ] "]"
//	constant   = string | [ "-" ] number | "true" | "false" | "null" | "undefined"
//	path       = name { "." name }
//	name       = identifier | "[[" any text without "]]" "]]"
//
// Strings are in single or double quotes with the escapes \' \" \\ \/ \b
// \f \n \r \t and \uXXXX; numbers are decimal (42, -1.5, 6.02e23) or
// hexadecimal (0x1F). Identifiers start with a letter, '_' or '$' and go on
// with letters, digits, '_' and '$' (so $version and $metadata are plain
// names). A keyword used as the first name of a path must be escaped:
// [[group]].location; after a '.' any word is a name.
//
// Limits (Limits below): a query is at most 8,192 characters (IoT Hub's
// documented maximum), expressions nest at most 64 deep, and an IN list
// holds at most 1,000 values, so no input can exhaust the parser's stack
// or make one comparison arbitrarily slow.
package syntax
