package syntax

import (
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Lex splits src into tokens, ending with an EOF token.
func Lex(src string) ([]Token, error) {
	l := lexer{src: src}
	var toks []Token
	for {
		t, err := l.next()
		if err != nil {
			return nil, err
		}
		toks = append(toks, t)
		if t.Kind == EOF {
			return toks, nil
		}
	}
}

type lexer struct {
	src string
	off int
}

func (l *lexer) errorf(pos int, format string, args ...any) *Error {
	return ErrorAt(l.src, pos, format, args...)
}

func (l *lexer) byteAt(i int) byte {
	if i < len(l.src) {
		return l.src[i]
	}
	return 0
}

func (l *lexer) next() (Token, error) {
	for l.off < len(l.src) && strings.IndexByte(" \t\r\n", l.src[l.off]) >= 0 {
		l.off++
	}
	start := l.off
	if start >= len(l.src) {
		return Token{Kind: EOF, Pos: start}, nil
	}
	c := l.src[start]
	switch {
	case c == '\'' || c == '"':
		return l.str(start)
	case c >= '0' && c <= '9':
		return l.number(start)
	case c == '[' && l.byteAt(start+1) == '[':
		return l.escaped(start)
	}
	if r, size := utf8.DecodeRuneInString(l.src[start:]); isNameStart(r) {
		i := start + size
		for i < len(l.src) {
			r, size := utf8.DecodeRuneInString(l.src[i:])
			if !isNamePart(r) {
				break
			}
			i += size
		}
		l.off = i
		return Token{Kind: Ident, Text: l.src[start:i], Pos: start}, nil
	}
	two := l.src[start:min(start+2, len(l.src))]
	switch two {
	case "!=", "<>", "<=", ">=":
		l.off += 2
		return Token{Kind: Op, Text: two, Pos: start}, nil
	case "==":
		return Token{}, l.errorf(start, "'==' is not an operator; compare with '='")
	case "&&", "||":
		return Token{}, l.errorf(start, "'%s' is not an operator; use %s", two, map[string]string{"&&": "AND", "||": "OR"}[two])
	}
	if strings.IndexByte("()[],.*=<>+-/%", c) >= 0 {
		l.off++
		return Token{Kind: Op, Text: string(c), Pos: start}, nil
	}
	r, size := utf8.DecodeRuneInString(l.src[start:])
	if r == utf8.RuneError && size == 1 {
		return Token{}, l.errorf(start, "invalid UTF-8 in the query")
	}
	return Token{}, l.errorf(start, "unexpected character %q", r)
}

func isNameStart(r rune) bool { return r == '_' || r == '$' || unicode.IsLetter(r) }

func isNamePart(r rune) bool { return isNameStart(r) || unicode.IsDigit(r) }

// str reads a quoted string and decodes its escapes.
func (l *lexer) str(start int) (Token, error) {
	q := l.src[start]
	var b strings.Builder
	i := start + 1
	for {
		if i >= len(l.src) {
			return Token{}, l.errorf(start, "string is not terminated: missing closing %c", q)
		}
		c := l.src[i]
		switch {
		case c == q:
			l.off = i + 1
			return Token{Kind: String, Text: b.String(), Pos: start}, nil
		case c == '\\':
			n, err := l.escape(&b, i)
			if err != nil {
				return Token{}, err
			}
			i += n
		default:
			r, size := utf8.DecodeRuneInString(l.src[i:])
			if r == utf8.RuneError && size == 1 {
				return Token{}, l.errorf(i, "invalid UTF-8 in string")
			}
			b.WriteString(l.src[i : i+size])
			i += size
		}
	}
}

// escape decodes the escape sequence at i into b and returns its length.
func (l *lexer) escape(b *strings.Builder, i int) (int, error) {
	e := l.byteAt(i + 1)
	if simple, ok := map[byte]byte{'\'': '\'', '"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}[e]; ok {
		b.WriteByte(simple)
		return 2, nil
	}
	if e != 'u' {
		if i+1 >= len(l.src) {
			return 0, l.errorf(i, "string is not terminated: it ends in a backslash")
		}
		r, _ := utf8.DecodeRuneInString(l.src[i+1:])
		return 0, l.errorf(i, "unknown escape sequence \\%c in string; escapes are \\' \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX", r)
	}
	r1, ok := l.hex4(i + 2)
	if !ok {
		return 0, l.errorf(i, "\\u in a string must be followed by 4 hexadecimal digits")
	}
	if utf16Surrogate(r1) {
		// A UTF-16 pair written as two escapes, as JSON does for characters
		// beyond the Basic Multilingual Plane.
		if l.byteAt(i+6) == '\\' && l.byteAt(i+7) == 'u' {
			if r2, ok := l.hex4(i + 8); ok {
				if r := decodePair(r1, r2); r != utf8.RuneError {
					b.WriteRune(r)
					return 12, nil
				}
			}
		}
		return 0, l.errorf(i, "\\u%04X is half of a UTF-16 surrogate pair; write the character or both halves", r1)
	}
	b.WriteRune(r1)
	return 6, nil
}

func (l *lexer) hex4(i int) (rune, bool) {
	if i+4 > len(l.src) {
		return 0, false
	}
	v, err := strconv.ParseUint(l.src[i:i+4], 16, 32)
	return rune(v), err == nil
}

func utf16Surrogate(r rune) bool { return r >= 0xD800 && r < 0xE000 }

func decodePair(hi, lo rune) rune {
	if hi < 0xD800 || hi >= 0xDC00 || lo < 0xDC00 || lo >= 0xE000 {
		return utf8.RuneError
	}
	return 0x10000 + (hi-0xD800)<<10 + (lo - 0xDC00)
}

// number reads 42, 1.5, 6.02e23 or 0x1F. A minus sign is an operator; the
// parser folds it into the literal.
func (l *lexer) number(start int) (Token, error) {
	i := start
	digits := func() {
		for i < len(l.src) && l.src[i] >= '0' && l.src[i] <= '9' {
			i++
		}
	}
	hex := l.src[i] == '0' && (l.byteAt(i+1) == 'x' || l.byteAt(i+1) == 'X')
	if hex {
		i += 2
		for i < len(l.src) && strings.IndexByte("0123456789abcdefABCDEF", l.src[i]) >= 0 {
			i++
		}
	} else {
		digits()
		if l.byteAt(i) == '.' && l.byteAt(i+1) >= '0' && l.byteAt(i+1) <= '9' {
			i++
			digits()
		}
		if c := l.byteAt(i); c == 'e' || c == 'E' {
			j := i + 1
			if c := l.byteAt(j); c == '+' || c == '-' {
				j++
			}
			if c := l.byteAt(j); c >= '0' && c <= '9' {
				i = j
				digits()
			}
		}
	}
	end := i
	for i < len(l.src) {
		r, size := utf8.DecodeRuneInString(l.src[i:])
		if !isNamePart(r) && r != '.' {
			break
		}
		i += size
	}
	text := l.src[start:end]
	if i > end || (hex && len(text) == 2) {
		return Token{}, l.errorf(start, "invalid number '%s'", l.src[start:i])
	}
	if _, err := ParseNumber(text); err != nil {
		return Token{}, l.errorf(start, "%s", err.Error())
	}
	l.off = end
	return Token{Kind: Number, Text: text, Pos: start}, nil
}

// NumberValue is a numeric literal's value: an exact integer when the
// literal is one that fits in int64, else a float.
type NumberValue struct {
	Int   int64
	Float float64
	IsInt bool
}

// ParseNumber reads a literal as Lex accepts it, optionally with a leading
// '-'.
func ParseNumber(text string) (NumberValue, error) {
	neg := strings.HasPrefix(text, "-")
	body := strings.TrimPrefix(text, "-")
	if strings.HasPrefix(body, "0x") || strings.HasPrefix(body, "0X") {
		u, err := strconv.ParseUint(body[2:], 16, 64)
		if err != nil {
			return NumberValue{}, rangeError(text)
		}
		return intOrFloat(u, neg), nil
	}
	if strings.IndexAny(body, ".eE") < 0 {
		if u, err := strconv.ParseUint(body, 10, 64); err == nil {
			return intOrFloat(u, neg), nil
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) {
		return NumberValue{}, rangeError(text)
	}
	if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
		return NumberValue{Int: int64(f), Float: f, IsInt: true}, nil
	}
	return NumberValue{Float: f}, nil
}

func intOrFloat(u uint64, neg bool) NumberValue {
	switch {
	case !neg && u <= math.MaxInt64:
		return NumberValue{Int: int64(u), Float: float64(u), IsInt: true}
	case neg && u <= 1<<63:
		i := -int64(u-1) - 1 // -(u) without overflowing at 1<<63
		return NumberValue{Int: i, Float: float64(i), IsInt: true}
	case neg:
		return NumberValue{Float: -float64(u)}
	}
	return NumberValue{Float: float64(u)}
}

type rangeError string

func (e rangeError) Error() string { return "number " + string(e) + " is out of range" }

// escaped reads [[name]].
func (l *lexer) escaped(start int) (Token, error) {
	end := strings.Index(l.src[start+2:], "]]")
	if end < 0 {
		return Token{}, l.errorf(start, "escaped name is not terminated: missing ]]")
	}
	name := l.src[start+2 : start+2+end]
	if name == "" {
		return Token{}, l.errorf(start, "escaped name [[]] is empty")
	}
	if !utf8.ValidString(name) {
		return Token{}, l.errorf(start, "invalid UTF-8 in escaped name")
	}
	l.off = start + 2 + end + 2
	return Token{Kind: Escaped, Text: name, Pos: start}, nil
}
