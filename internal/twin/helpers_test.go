package twin

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// t0 is when test twins are created; at(n) is n seconds later plus a
// sub-second part with seven significant digits.
var t0 = time.Date(2026, 12, 6, 11, 0, 0, 123456700, time.UTC)

func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

// canon re-renders JSON text with sorted keys, numbers as written.
func canon(t testing.TB, s string) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("canon(%s): %v", s, err)
	}
	return string(appendValue(nil, v))
}

func jsonOf(v any) string { return string(appendValue(nil, v)) }

// mustReported builds a new twin and applies the reported patches in order,
// one second apart.
func mustReported(t testing.TB, patches ...string) *Twin {
	t.Helper()
	tw := New(t0)
	for i, p := range patches {
		if _, err := tw.PatchReported([]byte(p), at(i+1)); err != nil {
			t.Fatalf("PatchReported(%s): %v", p, err)
		}
	}
	return tw
}

func mustMarshal(t testing.TB, tw *Twin) []byte {
	t.Helper()
	b, err := tw.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantTwinError checks that err is a *Error of the given kind whose message
// holds every part.
func wantTwinError(t testing.TB, err error, kind *Error, parts ...string) {
	t.Helper()
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T), want *twin.Error", err, err)
	}
	if !errors.Is(err, kind) || te.Status != kind.Status || te.Code != kind.Code {
		t.Fatalf("error %d %s %d %q, want %d %s %d", te.Status, te.Code, te.Number, te.Message, kind.Status, kind.Code, kind.Number)
	}
	for _, p := range parts {
		if !bytes.Contains([]byte(te.Message), []byte(p)) {
			t.Errorf("message %q does not mention %q", te.Message, p)
		}
	}
}

// checkTwin checks what must hold for every twin an operation left behind:
// it renders valid JSON, keeps every limit, has metadata for exactly its
// members, and survives Marshal/Unmarshal unchanged.
func checkTwin(t testing.TB, tw *Twin) {
	t.Helper()
	if !json.Valid(tw.DeviceJSON()) {
		t.Fatalf("DeviceJSON not valid: %s", tw.DeviceJSON())
	}
	if sj := tw.ServiceJSON(DeviceInfo{DeviceID: "d"}); !json.Valid(sj) {
		t.Fatalf("ServiceJSON not valid: %s", sj)
	}
	for _, s := range []struct {
		name   string
		values map[string]any
		limit  int
	}{{sectionTags, tw.Tags, MaxTagsBytes}, {sectionDesired, tw.Desired.Values, MaxPropertiesBytes}, {sectionReported, tw.Reported.Values, MaxPropertiesBytes}} {
		if err := validate(s.name, s.values); err != nil {
			t.Fatalf("twin breaks a rule: %v", err)
		}
		if n := Size(s.values); n > s.limit {
			t.Fatalf("%s is %d bytes, over %d", s.name, n, s.limit)
		}
	}
	b := mustMarshal(t, tw)
	back, err := Unmarshal(b)
	if err != nil {
		t.Fatalf("Unmarshal(Marshal()): %v\n%s", err, b)
	}
	if !reflect.DeepEqual(back, tw) {
		t.Fatalf("Unmarshal(Marshal()) differs:\n%s\n%s", mustMarshal(t, back), b)
	}
}

// refMerge is RFC 7386 written the obvious way (in place, on a copy), to
// check the copy-on-write merge against.
func refMerge(target, patch map[string]any) map[string]any {
	for k, pv := range patch {
		switch pv := pv.(type) {
		case nil:
			delete(target, k)
		case map[string]any:
			cur, ok := target[k].(map[string]any)
			if !ok {
				cur = map[string]any{}
			}
			target[k] = refMerge(cur, pv)
		default:
			target[k] = pv
		}
	}
	return target
}
