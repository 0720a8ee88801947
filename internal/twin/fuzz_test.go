package twin

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

var fuzzSeeds = []string{
	`{}`, `{"a":1}`, `{"telemetryConfig":{"status":null},"batteryLevel":null}`,
	`{"a":{"b":{"c":null}},"d":[1,{"e":"f"}]}`, `{"errors":{"x":1}}`, `{"$version":1}`,
	`{"a.b":1}`, `{"a":[null]}`, `{"n":4503599627370496}`, `{"n":1e999}`, `[]`, `null`, `{"a":}`,
	`{"a":1}{}`, "{\"k\\u0000\":1}", `{"a":"\ud800"}`, nest(12, `1`), `{"tags":{"x":1},"properties":{"desired":{"y":2}}}`,
}

// FuzzPatchReported: never panics; a refused patch is a 400 *Error and
// leaves the twin as it was; an accepted one gives what a plain RFC 7386
// merge gives, the right $version, and a twin that renders, keeps every
// limit and round-trips through Marshal.
func FuzzPatchReported(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, patch []byte) {
		tw := sampleTwin(t)
		before := mustMarshal(t, tw)
		prev, prevVersion := cloneObject(tw.Reported.Values), tw.Reported.Version
		v, err := tw.PatchReported(patch, at(100))
		if err != nil {
			wantRefused(t, tw, before, err)
			return
		}
		checkTwin(t, tw)
		p := decodeForTest(t, patch)
		if got, want := jsonOf(tw.Reported.Values), jsonOf(refMerge(prev, p)); got != want {
			t.Fatalf("patch %s gave %s, RFC 7386 gives %s", patch, got, want)
		}
		wantVersion := prevVersion + 1
		if len(p) == 0 {
			wantVersion = prevVersion
		}
		if v != wantVersion || tw.Reported.Version != wantVersion {
			t.Fatalf("version %d (section %d), want %d", v, tw.Reported.Version, wantVersion)
		}
	})
}

// FuzzServicePatch: the same for PATCH and PUT /twins bodies; reported
// never changes, and the desired push merges into the old desired values
// to give the new ones.
func FuzzServicePatch(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(`{"properties":{"desired":`+s+`}}`), true)
		f.Add([]byte(`{"tags":`+s+`,"properties":{"reported":{}}}`), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, replace bool) {
		tw := sampleTwin(t)
		before := mustMarshal(t, tw)
		prevDesired, prevTags, reported := cloneObject(tw.Desired.Values), cloneObject(tw.Tags), jsonOf(tw.Reported.Values)
		op := tw.ServicePatch
		if replace {
			op = tw.ServiceReplace
		}
		push, err := op(body, at(100))
		if err != nil {
			wantRefused(t, tw, before, err)
			return
		}
		checkTwin(t, tw)
		if jsonOf(tw.Reported.Values) != reported {
			t.Fatalf("a service write changed reported properties")
		}
		root := decodeForTest(t, body)
		tagsPart, _ := root["tags"].(map[string]any)
		if replace {
			prevTags = map[string]any{}
		}
		if got, want := jsonOf(tw.Tags), jsonOf(refMerge(prevTags, tagsPart)); got != want {
			t.Fatalf("tags %s, want %s", got, want)
		}
		if push == nil {
			if jsonOf(tw.Desired.Values) != jsonOf(prevDesired) {
				t.Fatalf("desired changed without a push")
			}
			return
		}
		p := decodeForTest(t, push)
		if p["$version"] != json.Number(itoa(tw.Desired.Version)) {
			t.Fatalf("push %s for desired $version %d", push, tw.Desired.Version)
		}
		delete(p, "$version")
		if got, want := jsonOf(refMerge(prevDesired, p)), jsonOf(tw.Desired.Values); got != want {
			t.Fatalf("device merging push %s has %s, hub has %s", push, got, want)
		}
	})
}

// FuzzUnmarshal: stored bytes never panic the decoder, and whatever it
// accepts re-encodes to a document it reads back the same.
func FuzzUnmarshal(f *testing.F) {
	f.Add(mustMarshal(f, New(t0)))
	f.Add(mustMarshal(f, sampleTwin(f)))
	f.Add([]byte(`{"fmt":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tw, err := Unmarshal(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		b := mustMarshal(t, tw)
		back, err := Unmarshal(b)
		if err != nil || !reflect.DeepEqual(back, tw) {
			t.Fatalf("re-encoded twin does not read back: %v\n%s", err, b)
		}
		if !json.Valid(tw.ServiceJSON(sampleDevice)) || !json.Valid(tw.DeviceJSON()) {
			t.Fatalf("stored twin renders invalid JSON")
		}
	})
}

// wantRefused checks a refusal: a client error, and the twin as before.
func wantRefused(t *testing.T, tw *Twin, before []byte, err error) {
	t.Helper()
	var te *Error
	if !errors.As(err, &te) || te.Status != 400 || te.Message == "" {
		t.Fatalf("refusal %v is not a 400 *twin.Error", err)
	}
	if after := mustMarshal(t, tw); !bytes.Equal(after, before) {
		t.Fatalf("refused write (%v) changed the twin", err)
	}
}

func decodeForTest(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("accepted input %s does not decode: %v", b, err)
	}
	return m
}

func itoa(n int64) string { return string(number(n)) }
