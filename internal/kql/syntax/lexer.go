package syntax

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Lex splits src into tokens, ending with an EOF token. Comments (// to
// the end of the line) and white space are dropped.
func Lex(src string) ([]Token, error) {
	l := &lexer{src: src, line: 1, col: 1}
	var toks []Token
	for {
		t, err := l.next()
		if err != nil {
			return nil, err
		}
		toks = append(toks, t)
		if t.Kind == TokEOF {
			return toks, nil
		}
	}
}

type lexer struct {
	src       string
	off       int
	line, col int
}

func (l *lexer) pos() Pos { return Pos{Line: l.line, Col: l.col, Offset: l.off} }

func (l *lexer) peekByte(n int) byte {
	if l.off+n < len(l.src) {
		return l.src[l.off+n]
	}
	return 0
}

// advance moves past n bytes, keeping line and column.
func (l *lexer) advance(n int) {
	end := l.off + n
	for l.off < end {
		r, size := utf8.DecodeRuneInString(l.src[l.off:])
		l.off += size
		if r == '\n' {
			l.line++
			l.col = 1
		} else {
			l.col++
		}
	}
}

// negatable are the word operators KQL negates with a leading '!'.
var negatable = []string{"has", "has_cs", "contains", "contains_cs", "startswith", "startswith_cs",
	"endswith", "endswith_cs", "in", "between", "hasprefix", "hassuffix"}

// symbols are the punctuation operators, longest first.
var symbols = []string{"..", "==", "!=", "=~", "!~", "<=", ">=", "<>", "|", "(", ")", "[", "]", "{", "}", ",", ".",
	"=", "<", ">", "+", "-", "*", "/", "%", ";", ":"}

func (l *lexer) next() (Token, error) {
	l.skipSpace()
	start := l.pos()
	if l.off >= len(l.src) {
		return Token{Kind: TokEOF, Pos: start}, nil
	}
	c := l.src[l.off]
	switch {
	case c == '@' && (l.peekByte(1) == '"' || l.peekByte(1) == '\''):
		l.advance(1)
		s, err := l.verbatim(start)
		return Token{Kind: TokString, Text: s, Pos: start, Verbatim: true}, err
	case c == '"' || c == '\'':
		s, err := l.quoted(start)
		return Token{Kind: TokString, Text: s, Pos: start}, err
	case c >= '0' && c <= '9':
		return l.number(start)
	case c == '!' && isIdentStart(rune(l.peekByte(1))):
		word := l.identAt(l.off + 1)
		for _, w := range negatable {
			if word == w {
				l.advance(1 + len(word))
				if w == "in" && l.peekByte(0) == '~' {
					l.advance(1)
					return Token{Kind: TokOp, Text: "!in~", Pos: start}, nil
				}
				return Token{Kind: TokOp, Text: "!" + w, Pos: start}, nil
			}
		}
	case isIdentStart(rune(c)) || c >= utf8.RuneSelf:
		r, _ := utf8.DecodeRuneInString(l.src[l.off:])
		if !isIdentStart(r) {
			return Token{}, Errorf(start, "unexpected character %q", r)
		}
		word := l.identAt(l.off)
		l.advance(len(word))
		switch {
		case word == "in" && l.peekByte(0) == '~':
			l.advance(1)
			return Token{Kind: TokOp, Text: "in~", Pos: start}, nil
		case word == "project" && l.peekByte(0) == '-':
			rest := l.identAt(l.off + 1)
			if rest == "away" || rest == "rename" || rest == "keep" || rest == "reorder" {
				l.advance(1 + len(rest))
				return Token{Kind: TokIdent, Text: "project-" + rest, Pos: start}, nil
			}
		case word == "datetime":
			if t, ok, err := l.datetimeBody(start); ok || err != nil {
				return t, err
			}
		}
		return Token{Kind: TokIdent, Text: word, Pos: start}, nil
	}
	for _, s := range symbols {
		if strings.HasPrefix(l.src[l.off:], s) {
			l.advance(len(s))
			return Token{Kind: TokOp, Text: s, Pos: start}, nil
		}
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.off:])
	return Token{}, Errorf(start, "unexpected character %q", r)
}

func (l *lexer) skipSpace() {
	for l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			l.advance(1)
		case c == '/' && l.peekByte(1) == '/':
			for l.off < len(l.src) && l.src[l.off] != '\n' {
				l.advance(1)
			}
		default:
			r, size := utf8.DecodeRuneInString(l.src[l.off:])
			if size > 1 && unicode.IsSpace(r) {
				l.advance(size)
				continue
			}
			return
		}
	}
}

func isIdentStart(r rune) bool { return r == '_' || r == '$' || unicode.IsLetter(r) }

func isIdentPart(r rune) bool { return isIdentStart(r) || unicode.IsDigit(r) }

// identAt returns the identifier starting at byte off ("" if none).
func (l *lexer) identAt(off int) string {
	i := off
	for i < len(l.src) {
		r, size := utf8.DecodeRuneInString(l.src[i:])
		if i == off && !isIdentStart(r) || i > off && !isIdentPart(r) {
			break
		}
		i += size
	}
	return l.src[off:i]
}

// quoted reads a "…" or '…' string with backslash escapes.
func (l *lexer) quoted(start Pos) (string, error) {
	q := l.src[l.off]
	l.advance(1)
	var b strings.Builder
	for {
		if l.off >= len(l.src) || l.src[l.off] == '\n' {
			return "", Errorf(start, "string literal not terminated")
		}
		c := l.src[l.off]
		switch {
		case c == q:
			l.advance(1)
			return b.String(), nil
		case c == '\\':
			escPos := l.pos()
			e := l.peekByte(1)
			switch e {
			case '\\', '"', '\'':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			default:
				return "", Errorf(escPos, "unknown escape sequence \\%c in string", e)
			}
			l.advance(2)
		default:
			r, size := utf8.DecodeRuneInString(l.src[l.off:])
			if r == utf8.RuneError && size == 1 {
				return "", Errorf(l.pos(), "invalid UTF-8 in string")
			}
			b.WriteString(l.src[l.off : l.off+size])
			l.advance(size)
		}
	}
}

// verbatim reads an @"…" string: no escapes, a doubled quote stands for one.
func (l *lexer) verbatim(start Pos) (string, error) {
	q := l.src[l.off]
	l.advance(1)
	var b strings.Builder
	for {
		if l.off >= len(l.src) || l.src[l.off] == '\n' {
			return "", Errorf(start, "string literal not terminated")
		}
		c := l.src[l.off]
		if c == q {
			if l.peekByte(1) == q {
				b.WriteByte(q)
				l.advance(2)
				continue
			}
			l.advance(1)
			return b.String(), nil
		}
		r, size := utf8.DecodeRuneInString(l.src[l.off:])
		if r == utf8.RuneError && size == 1 {
			return "", Errorf(l.pos(), "invalid UTF-8 in string")
		}
		b.WriteString(l.src[l.off : l.off+size])
		l.advance(size)
	}
}

// timespanUnits maps KQL's timespan suffixes to their canonical spelling.
var timespanUnits = map[string]string{
	"d": "d", "day": "d", "days": "d",
	"h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
	"m": "m", "min": "m", "minute": "m", "minutes": "m",
	"s": "s", "sec": "s", "second": "s", "seconds": "s",
	"ms": "ms", "milli": "ms", "millis": "ms", "millisecond": "ms", "milliseconds": "ms",
	"microsecond": "microsecond", "microseconds": "microsecond",
	"tick": "tick", "ticks": "tick",
}

// number reads 42, 1.5, 1e3, 0x1F, or a timespan such as 5m or 1.5h.
func (l *lexer) number(start Pos) (Token, error) {
	i := l.off
	digits := func() {
		for i < len(l.src) && l.src[i] >= '0' && l.src[i] <= '9' {
			i++
		}
	}
	kind := TokLong
	if l.src[i] == '0' && i+1 < len(l.src) && (l.src[i+1] == 'x' || l.src[i+1] == 'X') {
		i += 2
		for i < len(l.src) && strings.IndexByte("0123456789abcdefABCDEF", l.src[i]) >= 0 {
			i++
		}
	} else {
		digits()
		if i+1 < len(l.src) && l.src[i] == '.' && l.src[i+1] >= '0' && l.src[i+1] <= '9' {
			kind = TokReal
			i++
			digits()
		}
		if i < len(l.src) && (l.src[i] == 'e' || l.src[i] == 'E') {
			j := i + 1
			if j < len(l.src) && (l.src[j] == '+' || l.src[j] == '-') {
				j++
			}
			if j < len(l.src) && l.src[j] >= '0' && l.src[j] <= '9' {
				kind = TokReal
				i = j
				digits()
			}
		}
	}
	num := l.src[l.off:i]
	if suffix := l.identAt(i); suffix != "" {
		if _, ok := timespanUnits[suffix]; !ok || strings.HasPrefix(num, "0x") || strings.HasPrefix(num, "0X") {
			return Token{}, &Error{Pos: start, Msg: "invalid number or timespan literal " + num + suffix,
				Hint: "timespan units are d, h, m, s, ms, microsecond, tick"}
		}
		i += len(suffix)
		kind = TokTimespan
	}
	text := l.src[l.off:i]
	l.advance(i - l.off)
	return Token{Kind: kind, Text: text, Pos: start}, nil
}

// datetimeBody handles datetime(2024-01-02 03:04:05): the parentheses hold
// unquoted text. A quoted argument or an empty one is left to the parser
// (ok false).
func (l *lexer) datetimeBody(start Pos) (Token, bool, error) {
	i := l.off
	for i < len(l.src) && (l.src[i] == ' ' || l.src[i] == '\t') {
		i++
	}
	if i >= len(l.src) || l.src[i] != '(' {
		return Token{}, false, nil
	}
	j := i + 1
	for j < len(l.src) && (l.src[j] == ' ' || l.src[j] == '\t') {
		j++
	}
	if j >= len(l.src) || l.src[j] == '"' || l.src[j] == '\'' || l.src[j] == ')' || l.src[j] == '@' {
		return Token{}, false, nil
	}
	end := strings.IndexByte(l.src[j:], ')')
	if end < 0 {
		l.advance(j - l.off)
		return Token{}, true, Errorf(start, "datetime literal not terminated: missing ')'")
	}
	body := strings.TrimSpace(l.src[j : j+end])
	l.advance(j + end + 1 - l.off)
	return Token{Kind: TokDatetime, Text: body, Pos: start}, true, nil
}
