package jsonenc

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "thermo-1", "a\"b\\c", "<script>&", "\u2028\u2029", "\x00\x1f\x7f", "é日本", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := String(nil, s); !bytes.Equal(got, want) {
			t.Errorf("String(%q) = %s, encoding/json %s", s, got, want)
		}
	})
}

func FuzzTime(f *testing.F) {
	f.Add(int64(0), 0)
	f.Add(int64(1748779200123456789), 3600)
	f.Add(int64(-62135596800000000), -7200)
	f.Add(int64(5), 86400)
	f.Add(int64(5), -86399)
	f.Fuzz(func(t *testing.T, nanos int64, offset int) {
		tm := time.Unix(0, nanos).In(time.FixedZone("z", offset%(100*3600)))
		want, werr := json.Marshal(tm)
		got, gerr := Time(nil, tm)
		if (werr == nil) != (gerr == nil) || (werr == nil && !bytes.Equal(got, want)) {
			t.Errorf("Time(%v) = %s, %v; encoding/json %s, %v", tm, got, gerr, want, werr)
		}
	})
	if _, err := Time(nil, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		f.Error("year 10000 accepted")
	}
}

// FuzzIsCompact: whatever IsCompact accepts, encoding/json writes as it
// is when it is valid JSON in a RawMessage.
func TestIsCompact(t *testing.T) {
	for raw, want := range map[string]bool{
		`{"detail":"no packet for 90s (keep-alive 60s)"}`: true,
		`{"a":"x\" ,y"}`: true,
		`{"a": 1}`:       false,
		`{"a":"<"}`:      false,
		`"é"`:            false,
		`"\\"`:           true,
		``:               false,
	} {
		if got := IsCompact([]byte(raw)); got != want {
			t.Errorf("IsCompact(%s) = %v, want %v", raw, got, want)
		}
	}
}

func FuzzIsCompact(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a": 1}`, `{"a":"<"}`, `["x",null,true,1.5e3]`, `"é"`, ``,
		`{"detail":"no packet for 90s (keep-alive 60s)"}`, `{"a":"x\" ,y"}`, `{"a":"\\"}`, `[ "a"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !IsCompact(raw) || !json.Valid(raw) {
			return
		}
		got, err := json.Marshal(json.RawMessage(raw))
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("IsCompact(%s) but encoding/json writes %s (%v)", raw, got, err)
		}
	})
}
