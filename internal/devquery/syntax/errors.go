package syntax

import (
	"fmt"
	"unicode/utf8"
)

// Error is a mistake in a query: where it is and what is wrong. Pos is the
// 0-based byte offset into the query; Line and Col are 1-based, columns
// counting characters (runes).
type Error struct {
	Pos       int
	Line, Col int
	Msg       string
}

func (e *Error) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
}

// ErrorAt returns an *Error at byte offset pos of src, with its line and
// column worked out from src.
func ErrorAt(src string, pos int, format string, args ...any) *Error {
	pos = max(0, min(pos, len(src)))
	line, col := 1, 1
	for i := 0; i < pos; {
		r, size := utf8.DecodeRuneInString(src[i:])
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return &Error{Pos: pos, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}
