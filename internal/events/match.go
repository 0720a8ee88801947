package events

import (
	"encoding/json"
	"slices"
	"strings"
)

// Matcher decides which events a subscription receives. Build it once per
// subscription (NewMatcher) and call Match per event; it is safe for
// concurrent use.
//
// Semantics, from Event Grid's filtering documentation
// (reference/iothub-facts.md §1.9, event-filtering.md 2022):
//
//   - includedEventTypes, subject prefix/suffix and every advanced filter
//     must match; the values of one advanced filter are alternatives.
//   - Subject prefix/suffix ignore case unless isSubjectCaseSensitive.
//     Event types are compared without regard to case.
//   - String operators ignore case.
//   - A key is missing when it is absent or null. A missing key matches
//     for NumberNotIn, StringNotIn, NumberNotInRange and
//     IsNullOrUndefined only; every other operator, including
//     StringNotContains, StringNotBeginsWith and StringNotEndsWith, does
//     not match (Event Grid's documented list; NumberNotInRange is not in
//     it and is treated like NumberNotIn).
//   - Values of another type than the operator's are ignored: NumberIn
//     [5] does not match "5", StringIn ["5"] does not match 5. So a
//     positive operator does not match, and a negated one (…NotIn,
//     …NotContains, …NotBeginsWith, …NotEndsWith, NumberNotInRange)
//     matches, a present key of the wrong type, an object, or (without
//     enableAdvancedFilteringOnArrays) an array.
//   - With enableAdvancedFilteringOnArrays an array key is the set of its
//     number, string and boolean elements: a positive operator matches
//     when some element matches some value, a negated one when none does.
//     Objects inside arrays are never compared.
type Matcher struct {
	schema        Schema
	types         []EventType // nil: all
	begins, ends  string
	caseSensitive bool
	arrays        bool
	filters       []compiledFilter
	needData      bool
}

// NewMatcher compiles s's filter; the error is a *ValidationError when the
// filter is invalid.
func NewMatcher(s Subscription) (*Matcher, error) {
	schema := EventGridSchema
	if v, ok := ParseSchema(string(s.EventDeliverySchema)); ok {
		schema = v
	}
	f := s.Filter
	if errs := f.check(schema); len(errs) > 0 {
		return nil, &ValidationError{Errors: errs}
	}
	m := &Matcher{
		schema:        schema,
		begins:        f.SubjectBeginsWith,
		ends:          f.SubjectEndsWith,
		caseSensitive: f.IsSubjectCaseSensitive,
		arrays:        f.EnableAdvancedFilteringOnArrays,
	}
	if !m.caseSensitive {
		m.begins, m.ends = strings.ToLower(m.begins), strings.ToLower(m.ends)
	}
	for _, t := range f.IncludedEventTypes {
		if v, ok := ParseEventType(string(t)); ok {
			m.types = append(m.types, v)
		}
	}
	for _, a := range f.AdvancedFilters {
		c, _, _ := compileFilter(schema, a, "")
		m.filters = append(m.filters, c)
		if c.key.path != nil {
			m.needData = true
		}
	}
	return m, nil
}

// Match reports whether s receives e. An invalid filter matches nothing.
// It compiles the filter on every call: hold a NewMatcher to match many
// events.
func (s Subscription) Match(e Event) bool {
	m, err := NewMatcher(s)
	return err == nil && m.Match(e)
}

// Match reports whether the subscription receives e.
func (m *Matcher) Match(e Event) bool {
	if m.types != nil && !slices.ContainsFunc(m.types, func(t EventType) bool { return strings.EqualFold(string(t), string(e.Type)) }) {
		return false
	}
	subject := e.Subject
	if !m.caseSensitive {
		subject = strings.ToLower(subject)
	}
	if !strings.HasPrefix(subject, m.begins) || !strings.HasSuffix(subject, m.ends) {
		return false
	}
	var data any
	if m.needData && len(e.Data) > 0 {
		if json.Unmarshal(e.Data, &data) != nil {
			data = nil // undecodable data: every data key is missing
		}
	}
	for i := range m.filters {
		if !m.filters[i].match(m.schema, &e, data, m.arrays) {
			return false
		}
	}
	return true
}

// match evaluates one filter.
func (c *compiledFilter) match(schema Schema, e *Event, data any, arrays bool) bool {
	vals, present := c.lookup(schema, e, data, arrays)
	switch c.op {
	case IsNullOrUndefined:
		return !present
	case IsNotNull:
		return present
	}
	if !present {
		return c.info.missingMatches
	}
	hit := slices.ContainsFunc(vals, c.hit)
	if c.info.negated {
		return !hit
	}
	return hit
}

// lookup returns the comparable values of the key (strings, float64,
// booleans) and whether the key is present (neither absent nor null).
func (c *compiledFilter) lookup(schema Schema, e *Event, data any, arrays bool) ([]any, bool) {
	if c.key.path == nil {
		v, ok := envelopeValue(schema, c.key.envelope, e)
		if !ok {
			return nil, false
		}
		return []any{v}, true
	}
	cur := data
	for _, name := range c.key.path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false // through a scalar or an array: no such member
		}
		if cur, ok = member(obj, name); !ok {
			return nil, false
		}
	}
	switch v := cur.(type) {
	case nil:
		return nil, false
	case map[string]any:
		return nil, true
	case []any:
		if !arrays {
			return nil, true
		}
		out := make([]any, 0, len(v))
		for _, el := range v {
			switch el.(type) {
			case string, float64, bool:
				out = append(out, el)
			}
		}
		return out, true
	default:
		return []any{v}, true
	}
}

// hit reports whether one key value matches one of the filter's values
// (for negated operators: the value that makes the filter fail).
func (c *compiledFilter) hit(v any) bool {
	switch c.info.operand {
	case oneNumber, numbers, ranges:
		f, ok := v.(float64)
		if !ok {
			return false
		}
		switch c.op {
		case NumberLessThan:
			return f < c.nums[0]
		case NumberGreaterThan:
			return f > c.nums[0]
		case NumberLessThanOrEquals:
			return f <= c.nums[0]
		case NumberGreaterThanOrEquals:
			return f >= c.nums[0]
		case NumberIn, NumberNotIn:
			return slices.Contains(c.nums, f)
		default: // NumberInRange, NumberNotInRange
			return slices.ContainsFunc(c.rngs, func(r [2]float64) bool { return f >= r[0] && f <= r[1] })
		}
	case oneBool:
		b, ok := v.(bool)
		return ok && b == c.b
	case strs:
		s, ok := v.(string)
		if !ok {
			return false
		}
		s = strings.ToLower(s)
		var fn func(string) bool
		switch c.op {
		case StringContains, StringNotContains:
			fn = func(x string) bool { return strings.Contains(s, x) }
		case StringBeginsWith, StringNotBeginsWith:
			fn = func(x string) bool { return strings.HasPrefix(s, x) }
		case StringEndsWith, StringNotEndsWith:
			fn = func(x string) bool { return strings.HasSuffix(s, x) }
		default: // StringIn, StringNotIn
			fn = func(x string) bool { return s == x }
		}
		return slices.ContainsFunc(c.strs, fn)
	}
	return false
}
