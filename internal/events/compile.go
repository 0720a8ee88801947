package events

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// compiledFilter is an AdvancedFilter ready to evaluate: typed values,
// strings in lower case (string comparisons ignore case).
type compiledFilter struct {
	op   Operator
	info opInfo
	key  keyRef
	nums []float64
	rngs [][2]float64
	strs []string
	b    bool
}

// compileFilter checks a and converts it; errs name every problem, with
// field paths under path. nvalues is how many values a counts against the
// subscription's limit.
func compileFilter(schema Schema, a AdvancedFilter, path string) (c compiledFilter, nvalues int, errs []FieldError) {
	fail := func(field, msg string) { errs = append(errs, FieldError{Field: path + field, Message: msg}) }
	op, ok := ParseOperator(string(a.OperatorType))
	if !ok {
		if a.OperatorType == "" {
			fail(".operatorType", "required")
		} else {
			fail(".operatorType", "unknown operator "+quote(string(a.OperatorType)))
		}
	}
	key, msg := parseKey(schema, strings.TrimSpace(a.Key))
	if msg != "" {
		fail(".key", msg)
	}
	c = compiledFilter{op: op, info: operators[op], key: key}
	if !ok {
		return c, 0, errs
	}
	hasValue, hasValues := a.Value != nil, a.Values != nil
	switch c.info.operand {
	case noOperand:
		if hasValue {
			fail(".value", string(op)+" takes no value")
		}
		if hasValues {
			fail(".values", string(op)+" takes no values")
		}
		return c, 0, errs
	case oneNumber, oneBool:
		if hasValues {
			fail(".values", string(op)+` takes one "value", not "values"`)
		}
		if !hasValue {
			fail(".value", "required")
			return c, 0, errs
		}
		if c.info.operand == oneBool {
			b, isBool := a.Value.(bool)
			if !isBool {
				fail(".value", "must be true or false")
			}
			c.b = b
		} else {
			f, msg := toNumber(a.Value)
			if msg != "" {
				fail(".value", msg)
			}
			c.nums = []float64{f}
		}
		return c, 1, errs
	}
	if hasValue {
		fail(".value", string(op)+` takes "values" (an array), not "value"`)
	}
	if !hasValues {
		fail(".values", "required")
		return c, 0, errs
	}
	list, isList := toList(a.Values)
	if !isList {
		fail(".values", "must be an array")
		return c, 0, errs
	}
	if len(list) == 0 {
		fail(".values", "must hold at least one value")
	}
	for i, v := range list {
		at := ".values[" + strconv.Itoa(i) + "]"
		switch c.info.operand {
		case numbers:
			f, msg := toNumber(v)
			if msg != "" {
				fail(at, msg)
			}
			c.nums = append(c.nums, f)
		case ranges:
			pair, isPair := toList(v)
			if !isPair || len(pair) != 2 {
				fail(at, "must be a [low, high] pair of numbers")
				continue
			}
			lo, msg1 := toNumber(pair[0])
			hi, msg2 := toNumber(pair[1])
			if msg1 != "" || msg2 != "" {
				fail(at, "must be a [low, high] pair of numbers")
				continue
			}
			if lo > hi {
				fail(at, "low is greater than high")
			}
			c.rngs = append(c.rngs, [2]float64{lo, hi})
		case strs:
			s, isString := v.(string)
			if !isString {
				fail(at, "must be a string")
				continue
			}
			if n := utf8.RuneCountInString(s); n > MaxAdvancedFilterStringLength {
				fail(at, "longer than "+strconv.Itoa(MaxAdvancedFilterStringLength)+" characters ("+strconv.Itoa(n)+")")
			}
			c.strs = append(c.strs, strings.ToLower(s))
		}
	}
	return c, len(list), errs
}

// toNumber accepts what JSON decodes numbers to (float64, json.Number) and
// Go's numeric types.
func toNumber(v any) (float64, string) {
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case json.Number:
		x, err := n.Float64()
		if err != nil {
			return 0, "must be a number"
		}
		f = x
	default:
		r := reflect.ValueOf(v)
		switch {
		case r.CanInt():
			f = float64(r.Int())
		case r.CanUint():
			f = float64(r.Uint())
		case r.CanFloat():
			f = r.Float()
		default:
			return 0, "must be a number"
		}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, "must be a finite number"
	}
	return f, ""
}

// toList accepts []any (decoded JSON arrays) and any other Go slice or
// array, so that definitions written in Go ([]string{…}) work too.
func toList(v any) ([]any, bool) {
	if l, ok := v.([]any); ok {
		return l, true
	}
	r := reflect.ValueOf(v)
	if r.Kind() != reflect.Slice && r.Kind() != reflect.Array {
		return nil, false
	}
	if r.Kind() == reflect.Slice && r.Type().Elem().Kind() == reflect.Uint8 {
		return nil, false // []byte is a string in JSON
	}
	out := make([]any, r.Len())
	for i := range out {
		out[i] = r.Index(i).Interface()
	}
	return out, true
}
