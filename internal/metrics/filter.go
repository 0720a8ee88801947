package metrics

import (
	"fmt"
	"strings"
)

// ParseFilter parses Azure Monitor's metric $filter: clauses
// "Dimension eq 'value'" joined by "and" (different dimensions) or "or"
// (values of one dimension), optionally in parentheses. A value of '*'
// splits by the dimension. It returns the accepted values per dimension
// and the dimensions to split by, in order of appearance. Dimension names
// are as written; Window checks them against the metric.
func ParseFilter(s string) (filter map[string][]string, split []string, err error) {
	p := &filterParser{src: s}
	filter = map[string][]string{}
	bad := func(why string) (map[string][]string, []string, error) {
		return nil, nil, fmt.Errorf("%w: filter %q at offset %d: %s (e.g. ResultType eq '401003' and Protocol eq '*')", ErrInvalidQuery, s, p.pos, why)
	}
	if strings.TrimSpace(s) == "" {
		return filter, nil, nil
	}
	seenSplit := map[string]bool{}
	lastDim, lastOp := "", ""
	depth := 0
	for {
		for p.skip(); p.peek() == '('; p.skip() {
			p.pos++
			depth++
		}
		dim := p.word()
		if dim == "" {
			return bad("expected a dimension name")
		}
		if op := p.word(); !strings.EqualFold(op, "eq") {
			return bad(fmt.Sprintf("expected eq after %s, found %q", dim, op))
		}
		val, ok := p.quoted()
		if !ok {
			return bad("expected a value in single quotes")
		}
		if lastOp == "or" && !strings.EqualFold(lastDim, dim) {
			return bad("or joins values of one dimension; use and between dimensions")
		}
		key := dim
		for k := range filter {
			if strings.EqualFold(k, dim) {
				key = k
			}
		}
		for k := range seenSplit {
			if strings.EqualFold(k, dim) {
				key = k
			}
		}
		if val == "*" {
			if !seenSplit[key] {
				seenSplit[key] = true
				split = append(split, key)
			}
		} else {
			filter[key] = append(filter[key], val)
		}
		lastDim = dim
		for p.skip(); p.peek() == ')'; p.skip() {
			p.pos++
			depth--
			if depth < 0 {
				return bad("unbalanced )")
			}
		}
		if p.pos >= len(p.src) {
			break
		}
		op := strings.ToLower(p.word())
		if op != "and" && op != "or" {
			return bad(fmt.Sprintf("expected and or or, found %q", op))
		}
		lastOp = op
	}
	if depth != 0 {
		return bad("unbalanced (")
	}
	return filter, split, nil
}

type filterParser struct {
	src string
	pos int
}

func (p *filterParser) skip() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
}

func (p *filterParser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

// word reads letters, digits, '.', '_' and '-'.
func (p *filterParser) word() string {
	p.skip()
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			p.pos++
			continue
		}
		break
	}
	return p.src[start:p.pos]
}

// quoted reads 'value' (” is a quote inside).
func (p *filterParser) quoted() (string, bool) {
	p.skip()
	if p.peek() != '\'' {
		return "", false
	}
	p.pos++
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		if c != '\'' {
			b.WriteByte(c)
			continue
		}
		if p.peek() == '\'' {
			b.WriteByte('\'')
			p.pos++
			continue
		}
		return b.String(), true
	}
	return "", false
}
