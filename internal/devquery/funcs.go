package devquery

import (
	"math"
	"sort"
	"strings"
)

// function is a built-in scalar function of one or two arguments (none
// takes more), kept apart so calls pass values, not slices, and allocate
// nothing.
type function struct {
	f1 func(value) value
	f2 func(value, value) value
}

// functions are those IoT Hub documents for twin queries (IS_DEFINED,
// STARTSWITH, ENDSWITH) and its routing conditions' type checks and math,
// plus ROUND from Cosmos DB. A function given what it cannot work on
// (ABS('x')) is undefined, which makes the condition false.
var functions = map[string]function{
	"IS_DEFINED":   {f1: func(v value) value { return boolValue(v.k != kUndef) }},
	"IS_NULL":      {f1: func(v value) value { return boolValue(v.k == kNull) }},
	"IS_BOOL":      {f1: func(v value) value { return boolValue(v.k == kBool) }},
	"IS_NUMBER":    {f1: func(v value) value { return boolValue(v.k == kNum) }},
	"IS_STRING":    {f1: func(v value) value { return boolValue(v.k == kStr) }},
	"IS_OBJECT":    {f1: func(v value) value { return boolValue(v.k == kObj) }},
	"IS_ARRAY":     {f1: func(v value) value { return boolValue(v.k == kArr) }},
	"IS_PRIMITIVE": {f1: func(v value) value { return boolValue(v.primitive()) }},
	"STARTSWITH":   {f2: strFunc(strings.HasPrefix)},
	"ENDSWITH":     {f2: strFunc(strings.HasSuffix)},
	"ABS": {f1: numFunc(math.Abs, func(i int64) (int64, bool) {
		if i < 0 {
			return -i, i != math.MinInt64
		}
		return i, true
	})},
	"CEILING": {f1: numFunc(math.Ceil, same)},
	"FLOOR":   {f1: numFunc(math.Floor, same)},
	"ROUND":   {f1: numFunc(math.Round, same)},
	"SIGN": {f1: numFunc(func(f float64) float64 {
		switch {
		case f > 0:
			return 1
		case f < 0:
			return -1
		}
		return 0
	}, func(i int64) (int64, bool) { return int64(cmpOrdered(i, 0)), true })},
	"SQRT": {f1: numFunc(math.Sqrt, nil)},
	"EXP":  {f1: numFunc(math.Exp, nil)},
	"SQUARE": {f1: func(v value) value {
		if v.k != kNum {
			return undefined
		}
		return arith("*", v, v)
	}},
	"POWER": {f2: func(a, b value) value {
		if a.k != kNum || b.k != kNum {
			return undefined
		}
		return floatValue(math.Pow(a.n.f, b.n.f))
	}},
}

func same(i int64) (int64, bool) { return i, true }

func strFunc(f func(s, affix string) bool) func(value, value) value {
	return func(a, b value) value {
		if a.k != kStr || b.k != kStr {
			return undefined
		}
		return boolValue(f(a.s, b.s))
	}
}

// numFunc applies fi to exact integers when given (falling back to ff when
// fi reports overflow) and ff to everything else.
func numFunc(ff func(float64) float64, fi func(int64) (int64, bool)) func(value) value {
	return func(v value) value {
		if v.k != kNum {
			return undefined
		}
		if v.n.isInt && fi != nil {
			if i, ok := fi(v.n.i); ok {
				return numValue(intNum(i))
			}
		}
		return floatValue(ff(v.n.f))
	}
}

// arith is + - * / % on numbers: exact on integers while the result fits,
// in floating point otherwise. Anything else, and division by zero, is
// undefined.
func arith(op string, a, b value) value {
	if a.k != kNum || b.k != kNum {
		return undefined
	}
	x, y := a.n, b.n
	if x.isInt && y.isInt {
		if r, ok := intArith(op, x.i, y.i); ok {
			return numValue(intNum(r))
		}
	}
	switch op {
	case "+":
		return floatValue(x.f + y.f)
	case "-":
		return floatValue(x.f - y.f)
	case "*":
		return floatValue(x.f * y.f)
	case "/":
		if y.f == 0 {
			return undefined
		}
		return floatValue(x.f / y.f)
	}
	if y.f == 0 {
		return undefined
	}
	return floatValue(math.Mod(x.f, y.f))
}

// intArith is exact integer arithmetic; ok is false on overflow, on a
// division that leaves a remainder and on division by zero.
func intArith(op string, x, y int64) (int64, bool) {
	switch op {
	case "+":
		r := x + y
		return r, (r > x) == (y > 0)
	case "-":
		r := x - y
		return r, (r < x) == (y > 0)
	case "*":
		if x == 0 || y == 0 {
			return 0, true
		}
		r := x * y
		return r, r/y == x && !(x == -1 && y == math.MinInt64) && !(y == -1 && x == math.MinInt64)
	case "/":
		if y == 0 || x%y != 0 || x == math.MinInt64 && y == -1 {
			return 0, false
		}
		return x / y, true
	}
	if y == 0 || y == -1 {
		return 0, y == -1
	}
	return x % y, true
}

// functionNames lists the functions for error messages.
func functionNames() string {
	names := make([]string, 0, len(functions))
	for n := range functions {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
