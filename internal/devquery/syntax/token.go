package syntax

import (
	"fmt"
	"strings"
)

// Kind is a token's class.
type Kind uint8

const (
	EOF     Kind = iota
	Ident        // a name or a keyword, as written
	Escaped      // [[name]]: Text is the name inside the brackets
	String       // 'a' or "a": Text is the decoded value
	Number       // 42, 1.5e3, 0x1F: Text is the literal as written
	Op           // punctuation: ( ) [ ] , . * = != <> < > <= >= + - / %
)

// Token is one lexeme; Pos is its byte offset in the query.
type Token struct {
	Kind Kind
	Text string
	Pos  int
}

// String describes the token for error messages: 'AND', string 'x', end of query.
func (t Token) String() string {
	switch t.Kind {
	case EOF:
		return "end of query"
	case String:
		return "string " + quote(t.Text)
	case Escaped:
		return "[[" + t.Text + "]]"
	}
	return fmt.Sprintf("'%s'", t.Text)
}

// keywords are the words that cannot start a path unescaped. Function and
// aggregate names are not among them: a name followed by '(' is a call.
var keywords = map[string]bool{
	"SELECT": true, "TOP": true, "FROM": true, "WHERE": true, "GROUP": true, "BY": true,
	"AS": true, "AND": true, "OR": true, "NOT": true, "IN": true, "NIN": true,
	"TRUE": true, "FALSE": true, "NULL": true, "UNDEFINED": true, "ORDER": true,
}

// IsKeyword reports whether word (any case) is a keyword.
func IsKeyword(word string) bool { return keywords[strings.ToUpper(word)] }

// is reports whether t is the keyword or symbol s (keywords in any case).
func (t Token) is(s string) bool {
	switch t.Kind {
	case Ident:
		return strings.EqualFold(t.Text, s)
	case Op:
		return t.Text == s
	}
	return false
}
