package events

import "strings"

// Filter selects the events a subscription receives (Event Grid's
// filter object, reference/iothub-facts.md §1.9). All parts must match.
type Filter struct {
	// IncludedEventTypes: the event types delivered; empty or ["All"]
	// means every type.
	IncludedEventTypes []EventType `json:"includedEventTypes,omitempty"`
	// SubjectBeginsWith / SubjectEndsWith: plain prefix and suffix of the
	// subject ("devices/{id}"), compared without regard to case unless
	// IsSubjectCaseSensitive.
	SubjectBeginsWith      string `json:"subjectBeginsWith,omitempty"`
	SubjectEndsWith        string `json:"subjectEndsWith,omitempty"`
	IsSubjectCaseSensitive bool   `json:"isSubjectCaseSensitive"`
	// EnableAdvancedFilteringOnArrays lets advanced filters look into
	// arrays of numbers, strings or booleans; without it an array value
	// matches no value.
	EnableAdvancedFilteringOnArrays bool `json:"enableAdvancedFilteringOnArrays"`
	// AdvancedFilters must all match (AND); the values of one filter are
	// alternatives (OR).
	AdvancedFilters []AdvancedFilter `json:"advancedFilters,omitempty"`
}

// AllEventTypes in IncludedEventTypes means every type.
const AllEventTypes EventType = "All"

// AdvancedFilter compares one key of the event with values.
//
// Which of Value and Values is used depends on the operator, as in Event
// Grid: "value" (one number or boolean) for NumberLessThan,
// NumberGreaterThan, NumberLessThanOrEquals, NumberGreaterThanOrEquals and
// BoolEquals; "values" (an array) for the In/NotIn, range and String
// operators, with [low, high] pairs for NumberInRange and
// NumberNotInRange; neither for IsNullOrUndefined and IsNotNull.
//
// Values are kept as decoded from JSON (float64, string, bool, []any) so
// that a definition with wrong types still decodes and Validate can name
// every problem; Match compiles them.
type AdvancedFilter struct {
	OperatorType Operator `json:"operatorType"`
	// Key: an envelope key of the subscription's schema (Event Grid: ID,
	// Topic, Subject, EventType, DataVersion; CloudEvents: id, source,
	// subject, type, time, specversion, datacontenttype or an extension
	// attribute name), or data.x.y: a member of data by dot path (names
	// containing dots cannot be reached, as in Event Grid).
	Key    string `json:"key"`
	Value  any    `json:"value,omitempty"`
	Values any    `json:"values,omitempty"`
}

// Operator is an advanced filter's operatorType.
type Operator string

// Operators (reference/iothub-facts.md §1.9).
const (
	NumberIn                  Operator = "NumberIn"
	NumberNotIn               Operator = "NumberNotIn"
	NumberLessThan            Operator = "NumberLessThan"
	NumberGreaterThan         Operator = "NumberGreaterThan"
	NumberLessThanOrEquals    Operator = "NumberLessThanOrEquals"
	NumberGreaterThanOrEquals Operator = "NumberGreaterThanOrEquals"
	NumberInRange             Operator = "NumberInRange"
	NumberNotInRange          Operator = "NumberNotInRange"
	BoolEquals                Operator = "BoolEquals"
	StringContains            Operator = "StringContains"
	StringNotContains         Operator = "StringNotContains"
	StringBeginsWith          Operator = "StringBeginsWith"
	StringNotBeginsWith       Operator = "StringNotBeginsWith"
	StringEndsWith            Operator = "StringEndsWith"
	StringNotEndsWith         Operator = "StringNotEndsWith"
	StringIn                  Operator = "StringIn"
	StringNotIn               Operator = "StringNotIn"
	IsNullOrUndefined         Operator = "IsNullOrUndefined"
	IsNotNull                 Operator = "IsNotNull"
)

// operand is what an operator compares with.
type operand int

const (
	noOperand operand = iota
	oneNumber         // value: number
	oneBool           // value: boolean
	numbers           // values: numbers
	ranges            // values: [low, high] pairs
	strs              // values: strings
)

// opInfo describes an operator: its operand and how it treats a missing
// key (missingMatches) and a present one (negated: true when the operator
// matches unless some value of the key matches one of the filter values).
type opInfo struct {
	operand        operand
	negated        bool
	missingMatches bool
}

// operators is the operator table. Missing keys (absent or null) are "not
// matched" for every operator but NumberNotIn and StringNotIn (Event
// Grid's documented rule), NumberNotInRange (not documented; treated like
// NumberNotIn) and IsNullOrUndefined.
var operators = map[Operator]opInfo{
	NumberIn:                  {operand: numbers},
	NumberNotIn:               {operand: numbers, negated: true, missingMatches: true},
	NumberLessThan:            {operand: oneNumber},
	NumberGreaterThan:         {operand: oneNumber},
	NumberLessThanOrEquals:    {operand: oneNumber},
	NumberGreaterThanOrEquals: {operand: oneNumber},
	NumberInRange:             {operand: ranges},
	NumberNotInRange:          {operand: ranges, negated: true, missingMatches: true},
	BoolEquals:                {operand: oneBool},
	StringContains:            {operand: strs},
	StringNotContains:         {operand: strs, negated: true},
	StringBeginsWith:          {operand: strs},
	StringNotBeginsWith:       {operand: strs, negated: true},
	StringEndsWith:            {operand: strs},
	StringNotEndsWith:         {operand: strs, negated: true},
	StringIn:                  {operand: strs},
	StringNotIn:               {operand: strs, negated: true, missingMatches: true},
	IsNullOrUndefined:         {operand: noOperand, missingMatches: true},
	IsNotNull:                 {operand: noOperand},
}

// ParseOperator returns the canonical spelling of an operator, matched
// without regard to case.
func ParseOperator(s string) (Operator, bool) {
	if _, ok := operators[Operator(s)]; ok {
		return Operator(s), true
	}
	for op := range operators {
		if strings.EqualFold(s, string(op)) {
			return op, true
		}
	}
	return "", false
}

// normalize spells event types and operators canonically and turns ["All"]
// into the empty list.
func (f *Filter) normalize() {
	for i, t := range f.IncludedEventTypes {
		if v, ok := ParseEventType(string(t)); ok {
			f.IncludedEventTypes[i] = v
		}
	}
	if len(f.IncludedEventTypes) == 1 && strings.EqualFold(string(f.IncludedEventTypes[0]), string(AllEventTypes)) {
		f.IncludedEventTypes = nil
	}
	for i := range f.AdvancedFilters {
		a := &f.AdvancedFilters[i]
		if op, ok := ParseOperator(string(a.OperatorType)); ok {
			a.OperatorType = op
		}
		a.Key = strings.TrimSpace(a.Key)
	}
}
