package syntax

import "fmt"

// Kind is a token's class.
type Kind int

const (
	TokEOF      Kind = iota
	TokIdent         // names and keywords: where, AzureDiagnostics, and, has
	TokString        // "a", 'a', @"a": Text is the decoded value
	TokLong          // 42
	TokReal          // 1.5, 1e3
	TokTimespan      // 5m, 1.5h, 100ms: Text is the literal as written
	TokDatetime      // datetime(2024-01-01T00:00:00Z): Text is what is inside the parentheses
	TokOp            // punctuation and symbolic or negated word operators: | == !has in~ …
)

var kindNames = [...]string{TokEOF: "end of query", TokIdent: "name", TokString: "string", TokLong: "number",
	TokReal: "number", TokTimespan: "timespan", TokDatetime: "datetime", TokOp: "operator"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Token is one lexeme. Text is the source spelling, except for strings
// (the decoded value) and datetimes (the text inside the parentheses).
type Token struct {
	Kind Kind
	Text string
	Pos  Pos
	// Verbatim marks an @"…" string (printing keeps it readable).
	Verbatim bool
}

func (t Token) String() string {
	switch t.Kind {
	case TokEOF:
		return "end of query"
	case TokString:
		return fmt.Sprintf("string %q", t.Text)
	case TokDatetime:
		return "datetime(" + t.Text + ")"
	}
	return fmt.Sprintf("'%s'", t.Text)
}
