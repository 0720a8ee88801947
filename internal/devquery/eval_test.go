package devquery

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tether-hub/tether/internal/devquery/syntax"
)

// twinJSON is one device twin in the service shape, with values of every
// JSON type under tags.
const twinJSON = `{
  "deviceId": "dev-01", "etag": "AAAAAAAAAAc=", "status": "enabled", "connectionState": "Disconnected",
  "version": 7, "cloudToDeviceMessageCount": 0, "authenticationType": "sas",
  "capabilities": {"iotEdge": false},
  "tags": {
    "location": {"region": "US", "plant": "Redmond43"},
    "floor": 3, "ratio": 2.5, "big": 9007199254740993, "neg": -4, "zero": 0,
    "flag": true, "nothing": null, "list": [1, 2], "obj": {"a": 1}, "name": "Ünïcode",
    "Location": {"region": "EU"}
  },
  "properties": {
    "desired": {"$version": 4, "x": 1, "$metadata": {"$lastUpdated": "2024-04-01T00:00:00Z"}},
    "reported": {"$version": 7, "x": 1.0, "temp": 21.5, "$metadata": {"$lastUpdated": "2024-05-01T10:00:00Z"}}
  }
}`

// decodeDoc decodes s as a MapDoc; useNumber keeps numbers as json.Number
// (exact), otherwise they are float64.
func decodeDoc(t testing.TB, s string, useNumber bool) MapDoc {
	dec := json.NewDecoder(strings.NewReader(s))
	if useNumber {
		dec.UseNumber()
	}
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return MapDoc(m)
}

// TestMatch runs conditions against the twin, with numbers both as
// json.Number and as float64 (exactOnly cases need json.Number: float64
// cannot hold 2^53+1).
func TestMatch(t *testing.T) {
	many := "'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'"
	for _, tc := range []struct {
		cond      string
		want      bool
		exactOnly bool
	}{
		// Strings; field names of the twin's shape in any case, others exact.
		{cond: `connectionState = 'Disconnected'`, want: true},
		{cond: `connectionState = 'disconnected'`},
		{cond: `ConnectionState = 'Disconnected'`, want: true},
		{cond: `devices.deviceId = 'dev-01'`, want: true},
		{cond: `DEVICES.DEVICEID = 'dev-01'`, want: true},
		{cond: `[[connectionstate]] = 'Disconnected'`},
		{cond: `PROPERTIES.Reported.temp = 21.5`, want: true},
		{cond: `properties.reported.Temp = 21.5`},
		{cond: `tags.location.region = 'US'`, want: true},
		{cond: `tags.Location.region = 'EU'`, want: true},
		{cond: `status != 'disabled'`, want: true},
		{cond: `status <> 'enabled'`},
		{cond: `tags.location.region > 'UA'`, want: true},
		{cond: `'US' < tags.location.region`},
		{cond: `tags.name = 'Ünïcode'`, want: true},
		{cond: `properties.reported.$metadata.$lastUpdated > '2024-05-01'`, want: true},
		{cond: `properties.reported.$metadata.$lastUpdated > properties.desired.$metadata.$lastUpdated`, want: true},
		{cond: `deviceId = "dev-01"`, want: true},
		// Numbers: exact, mixed int and float.
		{cond: `tags.floor = 3`, want: true},
		{cond: `tags.floor = 3.0`, want: true},
		{cond: `tags.floor = 3e0`, want: true},
		{cond: `tags.floor = 0x3`, want: true},
		{cond: `tags.floor > 2.5`, want: true},
		{cond: `tags.floor < 3`},
		{cond: `tags.floor >= 3`, want: true},
		{cond: `tags.floor <= 2.99`},
		{cond: `tags.ratio = 2.5`, want: true},
		{cond: `tags.ratio > 2 AND tags.ratio < 3`, want: true},
		{cond: `tags.neg = -4 AND tags.neg < 0 AND -tags.neg = 4`, want: true},
		{cond: `tags.zero = -0`, want: true},
		{cond: `properties.desired.x = properties.reported.x`, want: true},
		{cond: `properties.desired.$version = 4 AND properties.reported.$version >= 7`, want: true},
		{cond: `tags.big = 9007199254740993`, want: true, exactOnly: true},
		{cond: `tags.big > 9007199254740992`, want: true, exactOnly: true},
		{cond: `tags.big > 9007199254740992.5`, want: true, exactOnly: true},
		{cond: `tags.big < 9007199254740993.5`, want: true},
		{cond: `9223372036854775807 < 9223372036854775808.0`, want: true},
		{cond: `-9223372036854775808 > -9223372036854777856.0`, want: true},
		{cond: `-9223372036854775808 = -9223372036854775809.0`, want: true}, // the float rounds to -2^63
		// Booleans and null.
		{cond: `tags.flag = true`, want: true},
		{cond: `tags.flag > false`, want: true},
		{cond: `tags.flag`, want: true},
		{cond: `capabilities.iotEdge`},
		{cond: `NOT capabilities.iotEdge`, want: true},
		{cond: `tags.nothing = null`, want: true},
		{cond: `tags.nothing != null`},
		{cond: `tags.nothing <= null`, want: true},
		{cond: `tags.missing = null`},
		// Different types, undefined, objects and arrays: undefined, so false
		// whatever the operator, also under NOT.
		{cond: `tags.floor = '3'`},
		{cond: `tags.floor != '3'`},
		{cond: `NOT tags.floor = '3'`},
		{cond: `tags.flag = 'true'`},
		{cond: `tags.nothing = 0`},
		{cond: `tags.nothing != 0`},
		{cond: `tags.missing != 'x'`},
		{cond: `NOT tags.missing = 'x'`},
		{cond: `tags.missing = undefined`},
		{cond: `tags.obj = tags.obj`},
		{cond: `tags.list = tags.list`},
		{cond: `tags.location = 'US'`},
		{cond: `tags.location.region.x = 'US'`},
		{cond: `tags.name`},
		// Three-valued AND, OR, NOT.
		{cond: `tags.missing = 1 OR status = 'enabled'`, want: true},
		{cond: `status = 'enabled' OR tags.missing = 1`, want: true},
		{cond: `tags.missing = 1 AND status = 'enabled'`},
		{cond: `NOT (tags.missing = 1)`},
		{cond: `NOT (tags.missing = 1 AND false)`, want: true},
		{cond: `NOT (false AND tags.missing = 1)`, want: true},
		{cond: `NOT (tags.missing = 1 OR true)`},
		{cond: `NOT (tags.missing = 1 OR false)`},
		{cond: `status = 'enabled' AND 'x'`},
		{cond: `NOT 'x'`},
		{cond: `true AND NOT false AND NOT NOT true`, want: true},
		// IN and NIN.
		{cond: `tags.location.region IN ['EU', 'US']`, want: true},
		{cond: `tags.location.region NIN ['EU', 'US']`},
		{cond: `tags.location.region NIN ['EU']`, want: true},
		{cond: `tags.floor IN [1, 2, 3.0]`, want: true},
		{cond: `tags.floor IN ['3']`},
		{cond: `tags.floor NIN ['3']`, want: true},
		{cond: `tags.missing IN ['x']`},
		{cond: `tags.missing NIN ['x']`},
		{cond: `tags.obj IN [1]`},
		{cond: `tags.obj NIN [1]`},
		{cond: `tags.nothing IN [null]`, want: true},
		{cond: `tags.flag IN [false, true]`, want: true},
		{cond: `deviceId IN [` + many + `, 'dev-01']`, want: true},
		{cond: `deviceId NIN [` + many + `, 'dev-01']`},
		{cond: `deviceId IN [` + many + `, 1, 'z']`},
		{cond: `tags.floor IN [` + many + `, 3]`, want: true},
		{cond: `deviceId IN []`},
		{cond: `deviceId NIN []`, want: true},
		// Type functions.
		{cond: `IS_DEFINED(tags.nothing)`, want: true},
		{cond: `is_defined(tags.missing)`},
		{cond: `IS_DEFINED(properties.reported.connectivity)`},
		{cond: `IS_NULL(tags.nothing) AND NOT IS_NULL(tags.zero)`, want: true},
		{cond: `IS_NULL(tags.missing)`},
		{cond: `IS_BOOL(tags.flag) AND NOT IS_BOOL(tags.name)`, want: true},
		{cond: `IS_NUMBER(tags.ratio) AND IS_NUMBER(tags.floor) AND NOT IS_NUMBER('1')`, want: true},
		{cond: `IS_STRING(deviceId) AND NOT IS_STRING(tags.missing)`, want: true},
		{cond: `IS_OBJECT(tags.obj) AND NOT IS_OBJECT(tags.list)`, want: true},
		{cond: `IS_ARRAY(tags.list) AND NOT IS_ARRAY(tags.obj)`, want: true},
		{cond: `IS_PRIMITIVE(tags.nothing) AND IS_PRIMITIVE(tags.flag) AND IS_PRIMITIVE(deviceId) AND IS_PRIMITIVE(tags.floor)`, want: true},
		{cond: `IS_PRIMITIVE(tags.obj) OR IS_PRIMITIVE(tags.list) OR IS_PRIMITIVE(tags.missing)`},
		// String functions.
		{cond: `STARTSWITH(deviceId, 'dev-')`, want: true},
		{cond: `ENDSWITH(deviceId, '01')`, want: true},
		{cond: `STARTSWITH(deviceId, 'DEV')`},
		{cond: `STARTSWITH(tags.floor, '3')`},
		{cond: `NOT STARTSWITH(tags.floor, '3')`},
		{cond: `STARTSWITH(deviceId, '')`, want: true},
		// Math functions and arithmetic.
		{cond: `ABS(tags.neg) = 4 AND ABS(-2.5) = 2.5`, want: true},
		{cond: `ABS(-9223372036854775808) > 9223372036854775807`, want: true},
		{cond: `CEILING(tags.ratio) = 3 AND FLOOR(tags.ratio) = 2 AND CEILING(tags.floor) = 3`, want: true},
		{cond: `ROUND(tags.ratio) = 3 AND ROUND(-2.5) = -3 AND ROUND(2.4) = 2`, want: true},
		{cond: `SIGN(tags.neg) = -1 AND SIGN(tags.zero) = 0 AND SIGN(tags.ratio) = 1`, want: true},
		{cond: `SQRT(16) = 4 AND SQUARE(tags.floor) = 9 AND POWER(2, 10) = 1024 AND EXP(0) = 1`, want: true},
		{cond: `SQRT(-1) = SQRT(-1)`},
		{cond: `EXP(1000) > 0`},
		{cond: `ABS('x') = 'x'`},
		{cond: `SQUARE(3037000500) > 9223372036854775807`, want: true},
		{cond: `tags.floor + 1 = 4 AND tags.floor - 4 = -1 AND tags.floor * tags.ratio = 7.5`, want: true},
		{cond: `tags.floor / 2 = 1.5 AND 6 / 3 = 2 AND tags.floor % 2 = 1 AND 7.5 % 2 = 1.5`, want: true},
		{cond: `tags.floor / 0 = tags.floor / 0`},
		{cond: `tags.floor % 0 = 0`},
		{cond: `9223372036854775807 + 1 > 9223372036854775807`, want: true},
		{cond: `-9223372036854775808 - 4096 < -9223372036854775808`, want: true},
		{cond: `-9223372036854775808 * -1 > 0 AND -9223372036854775808 / -1 > 0 AND -9223372036854775808 % -1 = 0`, want: true},
		{cond: `'a' + 'b' = 'ab'`},
		{cond: `-'a' = -'a'`},
		{cond: `tags.ratio - 0.5 = 2`, want: true},
	} {
		for _, exact := range []bool{true, false} {
			if tc.exactOnly && !exact {
				continue
			}
			q, err := Parse("SELECT * FROM devices WHERE " + tc.cond)
			if err != nil {
				t.Errorf("%s: %v", tc.cond, err)
				break
			}
			if got := q.Match(decodeDoc(t, twinJSON, exact)); got != tc.want {
				t.Errorf("%s (json.Number %v): match %v, want %v", tc.cond, exact, got, tc.want)
			}
		}
	}
}

// TestMatchGoNumbers: documents built in Go may hold int, int64 or
// float32 rather than JSON's types.
func TestMatchGoNumbers(t *testing.T) {
	doc := MapDoc{"a": 3, "b": int64(-5), "c": float32(1.5), "d": uint64(1 << 63), "e": int32(7), "f": uint32(8), "g": struct{}{}}
	for cond, want := range map[string]bool{
		`a = 3 AND b = -5 AND c = 1.5 AND e = 7 AND f = 8`: true,
		`d = 9223372036854775808.0`:                        true,
		`d > 9223372036854775807`:                          true,
		`IS_DEFINED(g) AND NOT IS_PRIMITIVE(g)`:            false,
	} {
		q, err := Parse("SELECT * FROM devices WHERE " + cond)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Match(doc); got != want {
			t.Errorf("%s: %v, want %v", cond, got, want)
		}
	}
}

// TestMatchNoWhere: without WHERE everything matches.
func TestMatchNoWhere(t *testing.T) {
	q, err := Parse("SELECT * FROM devices")
	if err != nil {
		t.Fatal(err)
	}
	if !q.Match(MapDoc{}) {
		t.Error("SELECT * FROM devices does not match an empty document")
	}
}

// TestMatchDoesNotAllocate: conditions on strings, numbers (json.Number
// included), booleans, IN lists and functions evaluate without allocating.
func TestMatchDoesNotAllocate(t *testing.T) {
	doc := decodeDoc(t, twinJSON, true)
	for _, cond := range []string{
		`connectionState = 'Disconnected'`,
		`status = 'enabled' AND tags.floor > 2 AND tags.ratio <= 2.5`,
		`tags.location.region IN ['EU', 'US'] OR tags.big > 1`,
		`deviceId NIN ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']`,
		`IS_DEFINED(tags.x) OR STARTSWITH(deviceId, 'dev') AND ABS(tags.neg) + 1 = 5`,
		`NOT tags.flag = false AND properties.desired.x = properties.reported.x`,
	} {
		q, err := Parse("SELECT * FROM devices WHERE " + cond)
		if err != nil {
			t.Fatal(err)
		}
		if !q.Match(doc) {
			t.Errorf("%s does not match", cond)
		}
		if n := testing.AllocsPerRun(100, func() { q.Match(doc) }); n != 0 {
			t.Errorf("%s: %v allocations per Match, want 0", cond, n)
		}
	}
}

// TestSemanticErrors: mistakes only the compiler can see, with exact
// messages.
func TestSemanticErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`SELECT * FROM devices.modules`, `line 1, column 15: FROM devices.modules is not supported: Tether has device twins only; query FROM devices`},
		{`SELECT * FROM Devices.Jobs WHERE a = 1`, `line 1, column 15: FROM Devices.Jobs is not supported: Tether has device twins only; query FROM devices`},
		{`SELECT * FROM twins`, `line 1, column 15: unknown collection 'twins'; the collection of device twins is devices`},
		{`SELECT * FROM devices WHERE STARTS_WITH(deviceId, 'a')`, `line 1, column 29: unknown function 'STARTS_WITH'; did you mean 'STARTSWITH'?`},
		{`SELECT * FROM devices WHERE CONTAINS(deviceId, 'a')`,
			`line 1, column 29: unknown function 'CONTAINS'; the functions are ABS, CEILING, ENDSWITH, EXP, FLOOR, IS_ARRAY, IS_BOOL, IS_DEFINED, IS_NULL, IS_NUMBER, IS_OBJECT, IS_PRIMITIVE, IS_STRING, POWER, ROUND, SIGN, SQRT, SQUARE, STARTSWITH`},
		{`SELECT * FROM devices WHERE is_defind(a)`, `line 1, column 29: unknown function 'IS_DEFIND'; did you mean 'IS_DEFINED'?`},
		{`SELECT * FROM devices WHERE STARTSWITH(deviceId)`, `line 1, column 29: STARTSWITH takes 2 arguments, found 1`},
		{`SELECT * FROM devices WHERE IS_DEFINED(a, b)`, `line 1, column 29: IS_DEFINED takes 1 argument, found 2`},
		{`SELECT * FROM devices WHERE ABS()`, `line 1, column 29: ABS takes 1 argument, found 0`},
		{`SELECT * FROM devices WHERE COUNT() > 1`, `line 1, column 29: aggregate COUNT() is only allowed in the select list`},
		{`SELECT * FROM devices WHERE x = 1 AND ABS(NOPE(a)) = 1`, `line 1, column 43: unknown function 'NOPE'; the functions are ABS, CEILING, ENDSWITH, EXP, FLOOR, IS_ARRAY, IS_BOOL, IS_DEFINED, IS_NULL, IS_NUMBER, IS_OBJECT, IS_PRIMITIVE, IS_STRING, POWER, ROUND, SIGN, SQRT, SQUARE, STARTSWITH`},
		{`SELECT * FROM devices WHERE devices = 1`, `line 1, column 29: 'devices' alone is the whole twin; name one of its attributes (devices.deviceId) or SELECT *`},
		{`SELECT * FROM devices GROUP BY status`, `line 1, column 8: SELECT * cannot be grouped; select the GROUP BY attributes and aggregates such as COUNT()`},
		{`SELECT status, COUNT() FROM devices`, `line 1, column 8: 'status' must be in GROUP BY when the select list has aggregates`},
		{`SELECT status, tags.x, COUNT() FROM devices GROUP BY status`, `line 1, column 16: 'tags.x' is neither an aggregate nor one of the GROUP BY attributes`},
		{`SELECT tags.x FROM devices GROUP BY tags.y`, `line 1, column 8: 'tags.x' is neither an aggregate nor one of the GROUP BY attributes`},
		{`SELECT deviceId, tags.deviceId FROM devices`, `line 1, column 18: two items of the select list are named 'deviceId'; rename one with AS`},
		{`SELECT a AS x, b AS x FROM devices`, `line 1, column 21: two items of the select list are named 'x'; rename one with AS`},
		{`SELECT COUNT() AS n, SUM(x) AS n FROM devices`, `line 1, column 32: two items of the select list are named 'n'; rename one with AS`},
		{`SELECT COUNT(), a AS $1 FROM devices GROUP BY a`, `line 1, column 22: two items of the select list are named '$1'; rename one with AS`},
	} {
		_, err := Parse(tc.src)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q)\n got %v\nwant %s", tc.src, err, tc.want)
		}
		var se *SyntaxError
		if err != nil && !asSyntaxError(err, &se) {
			t.Errorf("Parse(%q): error %T is not a *SyntaxError", tc.src, err)
		}
	}
}

func asSyntaxError(err error, target **SyntaxError) bool {
	se, ok := err.(*SyntaxError)
	*target = se
	return ok
}

// TestProjection: members in select order, named by alias or last name,
// undefined ones left out.
func TestProjection(t *testing.T) {
	doc := decodeDoc(t, twinJSON, true)
	for _, tc := range []struct{ query, want string }{
		{`SELECT DeviceId, LastActivityTime, tags.location.region AS region, properties.reported.temp FROM devices`,
			`{"deviceId":"dev-01","region":"US","temp":21.5}`},
		{`SELECT properties.reported.$metadata.$lastUpdated, properties.desired.$version AS v FROM devices`,
			`{"$lastUpdated":"2024-05-01T10:00:00Z","v":4}`},
		{`SELECT tags.obj, tags.list, tags.nothing, tags.big FROM devices`,
			`{"obj":{"a":1},"list":[1,2],"nothing":null,"big":9007199254740993}`},
		{`SELECT tags.missing, tags.location.x FROM devices`, `{}`},
		{`SELECT devices.status AS [[a b]] FROM devices`, `{"a b":"enabled"}`},
	} {
		q, err := Parse(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(q.project(doc))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, []byte(tc.want)) {
			t.Errorf("%s\n got %s\nwant %s", tc.query, got, tc.want)
		}
	}
}

// TestFastPathsAgree: the compiled shortcuts for path OP constant give
// what the general comparison gives, for every operator and value type.
func TestFastPathsAgree(t *testing.T) {
	values := []any{"a", "3", "", "Disconnected", json.Number("3"), json.Number("3.0"), json.Number("2.5"),
		json.Number("-4"), json.Number("9007199254740993"), json.Number("1e3"), 3.0, 2.5, float64(1 << 62), int64(-4),
		true, false, nil, map[string]any{}, []any{"a"}}
	strs := []string{"a", "3", "", "Disconnected", "b"}
	nums := []string{"3", "2.5", "-4", "9007199254740993", "1000", "0x10", "-9223372036854775808"}
	general := func(x any, ok bool, op cmpOp, lit value) tri {
		v := undefined
		if ok {
			v = fromAny(x)
		}
		if c, ok := compare(v, lit); ok {
			return triOf(op.holds(c))
		}
		return unknown
	}
	path := []string{"v"}
	for op := opEq; op <= opGe; op++ {
		for _, x := range append(values, "missing") {
			doc := MapDoc{"v": x}
			if x == "missing" {
				doc = MapDoc{}
			}
			got, ok := doc.Lookup(path)
			for _, s := range strs {
				if fast, want := stringCompare(path, op, s)(doc), general(got, ok, op, value{k: kStr, s: s}); fast != want {
					t.Errorf("%#v op %d '%s': fast %d, general %d", x, op, s, fast, want)
				}
			}
			for _, n := range nums {
				v, _ := syntaxNumber(n)
				if fast, want := numberCompare(path, op, v.n)(doc), general(got, ok, op, v); fast != want {
					t.Errorf("%#v op %d %s: fast %d, general %d", x, op, n, fast, want)
				}
			}
		}
	}
}

func syntaxNumber(text string) (value, error) {
	q, err := Parse("SELECT * FROM devices WHERE x = " + text)
	if err != nil {
		return value{}, err
	}
	return literal(q.ast.Where.(*syntax.Binary).R.(*syntax.Literal)), nil
}
