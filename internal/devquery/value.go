package devquery

import (
	"encoding/json"
	"math"
	"strconv"
)

// kind is a value's JSON type. The order is the one Cosmos DB sorts mixed
// types in (undefined < null < boolean < number < string < array <
// object); MIN, MAX and the order of GROUP BY rows use it.
type kind uint8

const (
	kUndef kind = iota
	kNull
	kBool
	kNum
	kStr
	kArr
	kObj
)

// num is a number: an exact int64 when the value is integral and fits,
// else a float64.
type num struct {
	i     int64
	f     float64
	isInt bool
}

// value is what expressions evaluate to. It lives on the stack: strings
// and objects refer to the document's own data, so evaluating a condition
// allocates nothing.
type value struct {
	k kind
	b bool
	n num
	s string
	x any // the array or object itself
}

var (
	undefined = value{}
	vTrue     = value{k: kBool, b: true}
	vFalse    = value{k: kBool}
)

func boolValue(b bool) value {
	if b {
		return vTrue
	}
	return vFalse
}

func numValue(n num) value { return value{k: kNum, n: n} }

func intNum(i int64) num { return num{i: i, f: float64(i), isInt: true} }

// floatNum makes a number from f; integral values within int64 become
// exact ints, so 5 and 5.0 compare, group and sum alike. Non-finite
// results are not JSON numbers: ok is false.
func floatNum(f float64) (num, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return num{}, false
	}
	if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
		return num{i: int64(f), f: f, isInt: true}, true
	}
	return num{f: f}, true
}

func floatValue(f float64) value {
	n, ok := floatNum(f)
	if !ok {
		return undefined
	}
	return numValue(n)
}

// fromAny converts what Doc.Lookup returned.
func fromAny(x any) value {
	switch x := x.(type) {
	case nil:
		return value{k: kNull}
	case string:
		return value{k: kStr, s: x}
	case bool:
		return boolValue(x)
	case map[string]any:
		return value{k: kObj, x: x}
	case []any:
		return value{k: kArr, x: x}
	}
	if n, ok := numOf(x); ok {
		return numValue(n)
	}
	return undefined
}

// parseNum reads a JSON number. Plain integers take a fast path that
// cannot allocate (strconv's errors would).
func parseNum(s string) (num, bool) {
	if i, ok := parseSmallInt(s); ok {
		return intNum(i), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return num{}, false
	}
	return floatNum(f)
}

// parseSmallInt parses an optionally negative decimal integer of at most
// 18 digits (which always fits in int64).
func parseSmallInt(s string) (int64, bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// cmpNum compares exactly, also an int64 against a float64 beyond 2^53.
func cmpNum(a, b num) int {
	switch {
	case a.isInt && b.isInt:
		return cmpOrdered(a.i, b.i)
	case !a.isInt && !b.isInt:
		return cmpOrdered(a.f, b.f)
	case a.isInt:
		return cmpIntFloat(a.i, b.f)
	}
	return -cmpIntFloat(b.i, a.f)
}

func cmpIntFloat(i int64, f float64) int {
	if f >= 1<<63 {
		return -1
	}
	if f < -(1 << 63) {
		return 1
	}
	t := math.Trunc(f)
	if c := cmpOrdered(i, int64(t)); c != 0 {
		return c
	}
	return cmpOrdered(0, f-t)
}

func cmpOrdered[T int64 | float64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// primitive reports whether v can take part in a comparison.
func (v value) primitive() bool { return v.k >= kNull && v.k <= kStr }

// compare orders two values of the same primitive type; ok is false for
// anything else (different types, undefined, objects, arrays), which makes
// the comparison undefined, as in IoT Hub and Cosmos DB.
func compare(a, b value) (c int, ok bool) {
	if a.k != b.k || !a.primitive() {
		return 0, false
	}
	switch a.k {
	case kNum:
		return cmpNum(a.n, b.n), true
	case kStr:
		return cmpOrdered(a.s, b.s), true
	case kBool:
		return cmpOrdered(boolInt(a.b), boolInt(b.b)), true
	}
	return 0, true // null = null
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// order is the total order of GROUP BY rows and of MIN and MAX: by type
// first, then by value; arrays and objects by their JSON text.
func order(a, b value) int {
	if a.k != b.k {
		return cmpOrdered(int64(a.k), int64(b.k))
	}
	if c, ok := compare(a, b); ok {
		return c
	}
	if a.k == kArr || a.k == kObj {
		ja, _ := json.Marshal(a.x)
		jb, _ := json.Marshal(b.x)
		return cmpOrdered(string(ja), string(jb))
	}
	return 0
}

// output turns a computed value back into what JSON encoding expects.
func (v value) output() (any, bool) {
	switch v.k {
	case kNull:
		return nil, true
	case kBool:
		return v.b, true
	case kNum:
		if v.n.isInt {
			return v.n.i, true
		}
		return v.n.f, true
	case kStr:
		return v.s, true
	case kArr, kObj:
		return v.x, true
	}
	return nil, false
}
