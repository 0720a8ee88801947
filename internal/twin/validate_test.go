package twin

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// nest wraps leaf in objects keyed k1…kn: nest(2, `1`) is {"k1":{"k2":1}}.
func nest(n int, leaf string) string {
	s := leaf
	for i := n; i >= 1; i-- {
		s = fmt.Sprintf(`{"k%d":%s}`, i, s)
	}
	return s
}

// arrays is n arrays nested around 1.
func arrays(n int) string { return strings.Repeat("[", n) + "1" + strings.Repeat("]", n) }

func str(n int) string { return strings.Repeat("x", n) }

func TestLimits(t *testing.T) {
	kb := func(n int) string { return strings.Repeat("é", n/2) } // n bytes of 2-byte runes
	for _, tc := range []struct {
		name  string
		patch string
		parts []string // empty: accepted
	}{
		// Keys: 1 KB of UTF-8.
		{"key of 1024 bytes", fmt.Sprintf(`{"%s":1}`, str(1024)), nil},
		{"key of 1025 bytes", fmt.Sprintf(`{"%s":1}`, str(1025)), []string{"key is 1025 bytes", "at most 1024 bytes"}},
		{"key of 1024 bytes in 2-byte runes", fmt.Sprintf(`{"%s":1}`, kb(1024)), nil},
		{"key of 1025 bytes in 2-byte runes", fmt.Sprintf(`{"%s":1}`, kb(1024)+"a"), []string{"key is 1025 bytes"}},
		{"nested key over 1 KB", fmt.Sprintf(`{"a":{"%s":1}}`, str(1025)), []string{"properties.reported.a[", "key is 1025 bytes"}},
		// Key characters.
		{"dot", `{"a.b":1}`, []string{`properties.reported["a.b"]`, `'.'`}},
		{"dollar inside", `{"a$b":1}`, []string{`["a$b"]`, `'$'`}},
		{"leading dollar", `{"$metadata":1}`, []string{`'$'`}},
		{"space", `{"a b":1}`, []string{`' '`}},
		{"C0 control", `{"a\u0001":1}`, []string{`'\x01'`}},
		{"tab", `{"a\tb":1}`, []string{`'\t'`}},
		{"DEL", `{"a\u007f":1}`, []string{`'\x7f'`}},
		{"C1 control", `{"a\u0085":1}`, []string{`'\u0085'`}},
		{"empty key", `{"":1}`, []string{"empty key"}},
		{"allowed punctuation", `{"a-b_c:d#e@f/g%h(i)\"j":1,"Ünïcödé":1,"数":1}`, nil},
		// String values: 4 KB.
		{"string of 4096 bytes", fmt.Sprintf(`{"s":"%s"}`, str(4096)), nil},
		{"string of 4097 bytes", fmt.Sprintf(`{"s":"%s"}`, str(4097)), []string{"properties.reported.s", "4097 bytes", "at most 4096 bytes"}},
		{"string of 4098 bytes in 2-byte runes", fmt.Sprintf(`{"s":"%s"}`, kb(4098)), []string{"4098 bytes"}},
		{"string in an array over 4 KB", fmt.Sprintf(`{"s":["a","%s"]}`, str(4097)), []string{"properties.reported.s[1]", "4097 bytes"}},
		// Depth: 10 levels of objects or arrays below the section root;
		// IoT Hub's own example of the deepest allowed is
		// tags.one.….ten.property, eleven keys.
		{"depth 10", nest(11, `"leaf"`), nil},
		{"depth 11", nest(12, `"leaf"`), []string{"properties.reported.k1.k2.k3.k4.k5.k6.k7.k8.k9.k10.k11:", "nesting depth 11", "at most 10"}},
		{"depth 10 ending in an array", nest(10, `[1,2]`), nil},
		{"depth 11 through an array", nest(10, `[{"a":1}]`), []string{"k10[0]", "depth 11"}},
		{"depth 10 of arrays", `{"a":` + arrays(10) + `}`, nil},
		{"depth 11 of arrays", `{"a":` + arrays(11) + `}`, []string{"properties.reported.a" + strings.Repeat("[0]", 10) + ":", "an array at nesting depth 11"}},
		// Integers: ±2^52.
		{"max integer", `{"n":4503599627370495}`, nil},
		{"max integer + 1", `{"n":4503599627370496}`, []string{"properties.reported.n", "integer 4503599627370496 is out of range", "-4503599627370496 and 4503599627370495"}},
		{"min integer", `{"n":-4503599627370496}`, nil},
		{"min integer - 1", `{"n":-4503599627370497}`, []string{"integer -4503599627370497 is out of range"}},
		{"integer beyond int64", `{"n":99999999999999999999}`, []string{"out of range"}},
		{"big float", `{"n":1.7976931348623157e308}`, nil},
		{"float overflowing float64", `{"n":1e400}`, []string{"number 1e400 is not representable"}},
		// Arrays: allowed, but not with null.
		{"arrays", `{"a":[1,"x",true,{"b":[2]},[]],"e":[]}`, nil},
		{"null in an array", `{"a":[1,null]}`, []string{"properties.reported.a[1]", "null"}},
		{"null member of an object in an array", `{"a":[{"b":null}]}`, []string{"properties.reported.a[0].b", "null"}},
		{"null member deeper in an array", `{"a":[{"b":{"c":null}}]}`, []string{"properties.reported.a[0].b.c", "null"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tw := mustReported(t, `{"keep":1}`)
			before := mustMarshal(t, tw)
			_, err := tw.PatchReported([]byte(tc.patch), at(5))
			if tc.parts == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				checkTwin(t, tw)
				return
			}
			wantTwinError(t, err, ErrArgumentInvalid, tc.parts...)
			if string(mustMarshal(t, tw)) != string(before) {
				t.Error("twin changed by a refused patch")
			}
		})
	}
}

func TestSize(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want int
	}{
		{`{}`, 0},
		{`{"ab":"xyz"}`, 5},
		{`{"n":1}`, 1 + 8},
		{`{"n":1.5e300}`, 1 + 8},
		{`{"b":true}`, 1 + 4},
		{`{"o":{"c":"d"}}`, 1 + 2},
		{`{"arr":[1,"xy",false]}`, 3 + 8 + 2 + 4},
		{`{"é":"数"}`, 2 + 3},
		{`{"s":"a\nb\u0000c\u0085"}`, 1 + 3}, // control characters are not counted
	} {
		var v map[string]any
		dec := json.NewDecoder(strings.NewReader(tc.doc))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if got := Size(v); got != tc.want {
			t.Errorf("Size(%s) = %d, want %d", tc.doc, got, tc.want)
		}
	}
}

// sized is a patch of string members whose Size is exactly n (n >= 4).
func sized(n int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; n > 0; i++ {
		key := fmt.Sprintf("k%03d", i) // 4 bytes
		v := min(n-len(key), MaxStringBytes)
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `%q:%q`, key, str(v))
		n -= len(key) + v
	}
	b.WriteString("}")
	return b.String()
}

func TestSectionSizeLimits(t *testing.T) {
	for _, tc := range []struct {
		section string
		limit   int
		apply   func(*Twin, string, time.Time) error
	}{
		{sectionReported, MaxPropertiesBytes, func(tw *Twin, p string, now time.Time) error {
			_, err := tw.PatchReported([]byte(p), now)
			return err
		}},
		{sectionDesired, MaxPropertiesBytes, func(tw *Twin, p string, now time.Time) error {
			_, err := tw.PatchDesired([]byte(p), now)
			return err
		}},
		{sectionTags, MaxTagsBytes, func(tw *Twin, p string, now time.Time) error {
			_, err := tw.ServicePatch([]byte(`{"tags":`+p+`}`), now)
			return err
		}},
		{sectionDesired + " (replace)", MaxPropertiesBytes, func(tw *Twin, p string, now time.Time) error {
			_, err := tw.ServiceReplace([]byte(`{"properties":{"desired":`+p+`}}`), now)
			return err
		}},
		{sectionTags + " (replace)", MaxTagsBytes, func(tw *Twin, p string, now time.Time) error {
			_, err := tw.ServiceReplace([]byte(`{"tags":`+p+`}`), now)
			return err
		}},
	} {
		t.Run(tc.section, func(t *testing.T) {
			tw := New(t0)
			if err := tc.apply(tw, sized(tc.limit), at(1)); err != nil {
				t.Fatalf("exactly %d bytes refused: %v", tc.limit, err)
			}
			checkTwin(t, tw)

			tw = New(t0)
			before := mustMarshal(t, tw)
			err := tc.apply(tw, sized(tc.limit+1), at(1))
			wantTwinError(t, err, ErrArgumentInvalid, strings.Fields(tc.section)[0], fmt.Sprintf("would be %d bytes", tc.limit+1), fmt.Sprintf("limit of %d bytes", tc.limit))
			if string(mustMarshal(t, tw)) != string(before) {
				t.Error("twin changed by a refused write")
			}
		})
	}

	// Growth is what is refused: a twin over the limit (limits lowered
	// since it was stored) may still shrink, and not grow.
	tw := mustReported(t, sized(MaxPropertiesBytes-14), `{"over":"`+str(10)+`"}`)
	tw.Reported.Values["k000"] = str(MaxStringBytes) + "xyz" // 3 bytes over
	if _, err := tw.PatchReported([]byte(`{"over":"`+str(8)+`"}`), at(5)); err != nil {
		t.Errorf("shrinking a section that stays over its limit refused: %v", err)
	}
	if _, err := tw.PatchReported([]byte(`{"over":"`+str(9)+`"}`), at(6)); err == nil {
		t.Errorf("growing a section over its limit accepted")
	}
}

func TestErrorShapes(t *testing.T) {
	tw := New(t0)
	_, err := tw.PatchReported([]byte(`{"a":{"b c":1}}`), t0)
	var te *Error
	wantTwinError(t, err, ErrArgumentInvalid)
	te = err.(*Error)
	if te.Status != 400 || te.Number != 400004 || te.Code != "ArgumentInvalid" {
		t.Errorf("error identity %d %d %s", te.Status, te.Number, te.Code)
	}
	if got, want := te.RESTMessage(), `ErrorCode:ArgumentInvalid;properties.reported.a["b c"]: key contains ' '; twin keys may not contain '.', '$', space or control characters`; got != want {
		t.Errorf("RESTMessage %s\nwant %s", got, want)
	}
	body := te.DeviceJSON("abc", time.Date(2021, 1, 12, 22, 23, 43, 642612400, time.UTC))
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("DeviceJSON %s: %v", body, err)
	}
	if m["errorCode"] != 400004.0 || m["trackingId"] != "abc" || m["message"] != te.Message || m["timestampUtc"] != "2021-01-12T22:23:43.6426124Z" {
		t.Errorf("DeviceJSON %s", body)
	}
	if _, err := tw.PatchReported([]byte(`{`), t0); err.(*Error).Number != 400006 || err.(*Error).Code != "IotHubFormatError" {
		t.Errorf("malformed JSON: %v", err)
	}
	pf := PreconditionFailed(`"x"`, tw.ETag())
	if pf.Status != 412 || pf.Number != 412001 || !strings.Contains(pf.Message, tw.ETag()) {
		t.Errorf("PreconditionFailed %+v", pf)
	}
}
