package twin

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestMarshalRoundTrip(t *testing.T) {
	for name, tw := range map[string]*Twin{
		"new":    New(t0),
		"sample": sampleTwin(t),
		"large numbers": mustReported(t,
			`{"i":4503599627370495,"f":0.1000000000000000055511151231257827,"e":-1.5E-300,"s":"\u0000\u2028<&>"}`),
		"emptied": mustReported(t, `{"a":{"b":1}}`, `{"a":null}`, `{"c":{"d":null}}`),
	} {
		t.Run(name, func(t *testing.T) {
			checkTwin(t, tw) // Unmarshal(Marshal()) is an equal twin
			b := mustMarshal(t, tw)
			back, _ := Unmarshal(b)
			if string(mustMarshal(t, back)) != string(b) {
				t.Error("Marshal is not deterministic")
			}
			// The restored twin renders and patches like the original.
			if string(back.ServiceJSON(sampleDevice)) != string(tw.ServiceJSON(sampleDevice)) {
				t.Error("restored twin renders differently")
			}
			v1, err1 := back.PatchReported([]byte(`{"z":1}`), at(50))
			v2, err2 := tw.Clone().PatchReported([]byte(`{"z":1}`), at(50))
			if err1 != nil || err2 != nil || v1 != v2 {
				t.Errorf("patching the restored twin: %d %v, the original: %d %v", v1, err1, v2, err2)
			}
		})
	}
}

func TestUnmarshalCorrupt(t *testing.T) {
	good := string(mustMarshal(t, mustReported(t, `{"a":{"b":1},"c":[1]}`)))
	for _, tc := range []struct{ name, data string }{
		{"empty", ``},
		{"not JSON", `{"fmt":1`},
		{"array", `[]`},
		{"trailing data", good + `{}`},
		{"unknown member", strings.Replace(good, `"fmt":1`, `"fmt":1,"x":1`, 1)},
		{"other format", strings.Replace(good, `"fmt":1`, `"fmt":2`, 1)},
		{"version 0", strings.Replace(good, `"version":3`, `"version":0`, 1)},
		{"etag 0", strings.Replace(good, `"etag":1`, `"etag":0`, 1)},
		{"no tags", strings.Replace(good, `"tags":{},`, ``, 1)},
		{"no desired", `{"fmt":1,"version":2,"etag":1,"tags":{},"reported":{"v":1,"values":{},"meta":{"t":0,"c":{}}}}`},
		{"section $version 0", strings.Replace(good, `"desired":{"v":1`, `"desired":{"v":0`, 1)},
		{"member without metadata", strings.Replace(good, `"values":{"a"`, `"values":{"x":1,"a"`, 1)},
		{"metadata without member", strings.Replace(good, `"c":{"a"`, `"c":{"x":{"t":0},"a"`, 1)},
		{"object metadata without members", strings.Replace(good, `"b":{"t":`, `"b":{"c":{},"t":`, 1)},
		{"null value", strings.Replace(good, `"b":1`, `"b":null`, 1)},
		{"null in an array", strings.Replace(good, `"c":[1]`, `"c":[null]`, 1)},
		{"null metadata", strings.Replace(good, fmt.Sprintf(`"c":{"t":%d}`, at(1).UnixNano()), `"c":null`, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.data == good {
				t.Fatalf("case does not change the document")
			}
			if _, err := Unmarshal([]byte(tc.data)); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Unmarshal(%s) = %v, want ErrCorrupt", tc.data, err)
			}
		})
	}
	if _, err := Unmarshal([]byte(good)); err != nil {
		t.Fatalf("the good document: %v", err)
	}
}
