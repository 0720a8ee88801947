package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestCheckJSONPositions(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":1}`, ""},
		{` [1, "x", null] `, ""},
		{`{"a":x}`, "line 1, column 6: invalid character 'x' looking for beginning of value"},
		{`{"a":1,}`, "line 1, column 8: invalid character '}' looking for beginning of object key string"},
		{"{\n  \"a\": 1\n  \"b\": 2\n}", "line 3, column 3: invalid character '\"' after object key:value pair"},
		{`{"a":`, "line 1, column 6: unexpected end of JSON input"},
		{"{\"a\":\n\n", "line 1, column 6: unexpected end of JSON input"},
		{`{"é":"ü",x}`, "line 1, column 10: invalid character 'x'"},
		{`{} {}`, "line 1, column 4: invalid character '{' after top-level value"},
		{"   ", "empty: give a JSON value"},
	} {
		err := checkJSON([]byte(tc.in))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
	// The caret sits under the bad character.
	err := checkJSON([]byte(`{"a":x}`))
	if !strings.HasSuffix(err.Error(), "\n  {\"a\":x}\n       ^") {
		t.Errorf("caret: %q", err)
	}
}

var posRE = regexp.MustCompile(`^not valid JSON at line (\d+), column (\d+): `)

// FuzzCheckJSON: valid JSON passes, anything else gets a position inside
// the text (or just past its end), and nothing panics.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":x}`, "{\n\"a\":\n", `[1,2,]`, `"\u00e9`, "\xff", `{"a":1}}`, "", "nul", `{"a":"b\nc"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := checkJSON(data)
		if len(bytes.TrimSpace(data)) == 0 {
			if err == nil {
				t.Fatal("blank input accepted")
			}
			return
		}
		if json.Valid(data) != (err == nil) {
			t.Fatalf("json.Valid %v, checkJSON %v", json.Valid(data), err)
		}
		if err == nil {
			return
		}
		m := posRE.FindStringSubmatch(err.Error())
		if m == nil {
			t.Fatalf("no position: %v", err)
		}
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		lines := strings.Split(string(data), "\n")
		if line < 1 || line > len(lines) || col < 1 || col > len([]rune(lines[line-1]))+1 {
			t.Fatal(fmt.Sprintf("position %d:%d outside the text (%d lines): %v", line, col, len(lines), err))
		}
	})
}

func TestFlattenTwin(t *testing.T) {
	var sec map[string]json.RawMessage
	json.Unmarshal([]byte(`{"b":{"c":1,"d":{}},"a":"x","$version":4,"$metadata":{"$lastUpdated":"t","a":{"$lastUpdated":"t"}},"arr":[1, 2]}`), &sec)
	var got []string
	for _, m := range flattenTwin(sec, false) {
		got = append(got, m.path+" = "+m.value)
	}
	want := []string{"$version = 4", `a = "x"`, "arr = [1,2]", "b.c = 1", "b.d = {}"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q", got)
	}
	if n := len(flattenTwin(sec, true)); n != 7 {
		t.Errorf("with metadata: %d leaves", n)
	}
}
