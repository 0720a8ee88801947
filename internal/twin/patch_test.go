package twin

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"
)

func TestMergeSemantics(t *testing.T) {
	for _, tc := range []struct {
		name         string
		before       string // reported values before
		patch, after string
	}{
		{"add", `{}`, `{"a":1}`, `{"a":1}`},
		{"nested merge keeps siblings", `{"a":{"b":1,"c":2},"d":3}`, `{"a":{"b":3}}`, `{"a":{"b":3,"c":2},"d":3}`},
		{"deep merge", `{"a":{"b":{"c":{"d":1,"e":2}}}}`, `{"a":{"b":{"c":{"e":3,"f":4}}}}`, `{"a":{"b":{"c":{"d":1,"e":3,"f":4}}}}`},
		{"null deletes", `{"a":1,"b":2}`, `{"a":null}`, `{"b":2}`},
		{"null deletes nested", `{"a":{"b":1,"c":2}}`, `{"a":{"b":null}}`, `{"a":{"c":2}}`},
		{"null deletes an object", `{"a":{"b":1},"c":1}`, `{"a":null}`, `{"c":1}`},
		{"delete of a missing key", `{"a":1}`, `{"x":null}`, `{"a":1}`},
		{"delete below a missing key leaves an empty object", `{}`, `{"p":{"q":null}}`, `{"p":{}}`},
		{"delete below a scalar makes it an empty object", `{"p":5}`, `{"p":{"q":null}}`, `{"p":{}}`},
		{"object replaced by scalar", `{"a":{"b":1}}`, `{"a":5}`, `{"a":5}`},
		{"scalar replaced by object", `{"a":5}`, `{"a":{"b":1}}`, `{"a":{"b":1}}`},
		{"and back", `{"a":{"b":1}}`, `{"a":"x"}`, `{"a":"x"}`},
		{"array replaced whole", `{"a":[1,2,3]}`, `{"a":[4]}`, `{"a":[4]}`},
		{"array replaced by object", `{"a":[1]}`, `{"a":{"x":[{"y":1}]}}`, `{"a":{"x":[{"y":1}]}}`},
		{"same value again", `{"a":1}`, `{"a":1}`, `{"a":1}`},
		{"numbers exactly as written", `{}`, `{"i":4503599627370495,"n":-4503599627370496,"f":1.000000000000000000001,"e":1E+300,"z":-0}`, `{"e":1E+300,"f":1.000000000000000000001,"i":4503599627370495,"n":-4503599627370496,"z":-0}`},
		{"strings and unicode keys", `{}`, `{"température":"21 °C","k":"<&>\"\\\n"}`, `{"k":"<&>\"\\\n","température":"21 °C"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tw := mustReported(t, tc.before)
			if _, err := tw.PatchReported([]byte(tc.patch), at(10)); err != nil {
				t.Fatal(err)
			}
			if got, want := jsonOf(tw.Reported.Values), canon(t, tc.after); got != want {
				t.Errorf("after %s on %s:\n got %s\nwant %s", tc.patch, tc.before, got, want)
			}
			checkTwin(t, tw)
		})
	}
}

func TestMergeDoesNotChangeWhatReadersHold(t *testing.T) {
	tw := mustReported(t, `{"a":{"b":{"c":1}},"x":[1,2]}`)
	a := tw.Reported.Values["a"].(map[string]any)
	b := a["b"].(map[string]any)
	meta := tw.Reported.Meta
	before := jsonOf(tw.Reported.Values)
	if _, err := tw.PatchReported([]byte(`{"a":{"b":{"c":2,"d":3}},"x":null}`), at(5)); err != nil {
		t.Fatal(err)
	}
	if jsonOf(a) != `{"b":{"c":1}}` || jsonOf(b) != `{"c":1}` {
		t.Errorf("maps a reader held changed: a=%s b=%s", jsonOf(a), jsonOf(b))
	}
	if !meta.LastUpdated.Equal(at(1)) || meta.Children["x"] == nil {
		t.Errorf("metadata a reader held changed")
	}
	if jsonOf(tw.Reported.Values) == before {
		t.Errorf("patch not applied")
	}
}

func TestReportedMetadata(t *testing.T) {
	tw := mustReported(t, `{"a":{"b":1,"c":2},"d":3}`) // at(1), version 2
	if _, err := tw.PatchReported([]byte(`{"a":{"b":5}}`), at(2)); err != nil {
		t.Fatal(err)
	}
	m := tw.Reported.Meta
	for _, c := range []struct {
		name string
		m    *Meta
		want time.Time
	}{
		{"root", m, at(2)},
		{"a (parent of what was written)", m.Children["a"], at(2)},
		{"a.b (written)", m.Children["a"].Children["b"], at(2)},
		{"a.c (sibling, untouched)", m.Children["a"].Children["c"], at(1)},
		{"d (untouched)", m.Children["d"], at(1)},
	} {
		if c.m == nil {
			t.Fatalf("%s: no metadata", c.name)
		}
		if !c.m.LastUpdated.Equal(c.want) {
			t.Errorf("%s: $lastUpdated %s, want %s", c.name, FormatTime(c.m.LastUpdated), FormatTime(c.want))
		}
		if c.m.LastUpdatedVersion != 0 {
			t.Errorf("%s: reported metadata has $lastUpdatedVersion %d", c.name, c.m.LastUpdatedVersion)
		}
	}

	// A deletion leaves no member to stamp; its parent shows it.
	if _, err := tw.PatchReported([]byte(`{"a":{"c":null}}`), at(3)); err != nil {
		t.Fatal(err)
	}
	a := tw.Reported.Meta.Children["a"]
	if _, ok := a.Children["c"]; ok {
		t.Errorf("metadata of deleted a.c kept")
	}
	if !a.LastUpdated.Equal(at(3)) || !a.Children["b"].LastUpdated.Equal(at(2)) {
		t.Errorf("after deleting a.c: a at %s (want %s), a.b at %s (want %s)",
			FormatTime(a.LastUpdated), FormatTime(at(3)), FormatTime(a.Children["b"].LastUpdated), FormatTime(at(2)))
	}

	// Replacing an object by a scalar drops the object's member metadata;
	// the reverse creates it.
	if _, err := tw.PatchReported([]byte(`{"a":1,"d":{"e":{"f":true}}}`), at(4)); err != nil {
		t.Fatal(err)
	}
	if tw.Reported.Meta.Children["a"].Children != nil {
		t.Errorf("scalar a kept member metadata")
	}
	if f := tw.Reported.Meta.Children["d"].Children["e"].Children["f"]; f == nil || !f.LastUpdated.Equal(at(4)) {
		t.Errorf("new object d.e.f not stamped")
	}
	checkTwin(t, tw)
}

func TestDesiredMetadataVersions(t *testing.T) {
	tw := New(t0)
	if tw.Desired.Meta.LastUpdatedVersion != 0 {
		t.Fatal("a new twin's desired root has a $lastUpdatedVersion")
	}
	mustDesired := func(p string, n int) {
		t.Helper()
		if _, err := tw.PatchDesired([]byte(p), at(n)); err != nil {
			t.Fatal(err)
		}
	}
	mustDesired(`{"cfg":{"rate":5,"mode":"a"},"fw":"1.0"}`, 1) // $version 2
	mustDesired(`{"cfg":{"rate":10}}`, 2)                      // $version 3
	m := tw.Desired.Meta
	for _, c := range []struct {
		name string
		m    *Meta
		t    time.Time
		v    int64
	}{
		{"root", m, at(2), 3},
		{"cfg", m.Children["cfg"], at(2), 3},
		{"cfg.rate", m.Children["cfg"].Children["rate"], at(2), 3},
		{"cfg.mode", m.Children["cfg"].Children["mode"], at(1), 2},
		{"fw", m.Children["fw"], at(1), 2},
	} {
		if !c.m.LastUpdated.Equal(c.t) || c.m.LastUpdatedVersion != c.v {
			t.Errorf("%s: %s v%d, want %s v%d", c.name, FormatTime(c.m.LastUpdated), c.m.LastUpdatedVersion, FormatTime(c.t), c.v)
		}
	}
	checkTwin(t, tw)
}

func TestVersionCounting(t *testing.T) {
	tw := New(t0)
	type counters struct{ version, etag, desired, reported int64 }
	check := func(step string, want counters) {
		t.Helper()
		got := counters{tw.Version, tw.ETagVersion, tw.Desired.Version, tw.Reported.Version}
		if got != want {
			t.Fatalf("%s: version/etag/desired/reported = %v, want %v", step, got, want)
		}
	}
	check("new", counters{2, 1, 1, 1})
	if tw.ETag() != "AAAAAAAAAAE=" {
		t.Errorf("new twin etag %s", tw.ETag())
	}

	v, err := tw.PatchReported([]byte(`{"a":1}`), at(1))
	if err != nil || v != 2 {
		t.Fatalf("PatchReported = %d, %v", v, err)
	}
	check("reported", counters{3, 1, 1, 2})

	v, _ = tw.PatchReported([]byte(`{"a":1}`), at(2))
	check("same reported again (no-op values still a write)", counters{4, 1, 1, 3})
	if v != 3 {
		t.Errorf("PatchReported returned %d, want 3", v)
	}

	v, _ = tw.PatchReported([]byte(`{}`), at(3))
	check("empty reported patch changes nothing", counters{4, 1, 1, 3})
	if v != 3 {
		t.Errorf("empty patch returned %d, want the current 3", v)
	}

	if _, err := tw.PatchDesired([]byte(`{"x":1}`), at(4)); err != nil {
		t.Fatal(err)
	}
	check("desired", counters{5, 2, 2, 3})

	if _, err := tw.ServicePatch([]byte(`{"tags":{"t":1},"properties":{"desired":{"x":2}}}`), at(5)); err != nil {
		t.Fatal(err)
	}
	check("tags and desired in one patch: one change", counters{6, 3, 3, 3})

	if _, err := tw.ServicePatch([]byte(`{"tags":{"t":2}}`), at(6)); err != nil {
		t.Fatal(err)
	}
	check("tags only", counters{7, 4, 3, 3})

	if _, err := tw.ServicePatch([]byte(`{"deviceId":"d","etag":"x","tags":{},"properties":{"desired":{}}}`), at(7)); err != nil {
		t.Fatal(err)
	}
	check("nothing to write", counters{7, 4, 3, 3})

	if _, err := tw.ServiceReplace([]byte(`{"tags":{"t":2},"properties":{"desired":{"x":2}}}`), at(8)); err != nil {
		t.Fatal(err)
	}
	check("replace with the same content", counters{8, 5, 4, 3})

	if _, err := tw.PatchReported([]byte(`{"a$":1}`), at(9)); err == nil {
		t.Fatal("bad patch accepted")
	}
	check("refused patch", counters{8, 5, 4, 3})
	if tw.ETag() != "AAAAAAAAAAU=" {
		t.Errorf("etag %s, want AAAAAAAAAAU=", tw.ETag())
	}
}

func TestPatchDesiredPush(t *testing.T) {
	tw := New(t0)
	push, err := tw.PatchDesired([]byte(`{"b":{"c":null,"d":[1,"x"]},"a":null,"$version":99,"$metadata":{}}`), at(1))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":null,"b":{"c":null,"d":[1,"x"]},"$version":2}`; string(push) != want {
		t.Errorf("push %s, want %s", push, want)
	}
	if got := jsonOf(tw.Desired.Values); got != `{"b":{"d":[1,"x"]}}` {
		t.Errorf("desired %s", got)
	}
	if push, err := tw.PatchDesired([]byte(` {} `), at(2)); err != nil || push != nil || tw.Desired.Version != 2 {
		t.Errorf("empty desired patch: push %s, err %v, $version %d", push, err, tw.Desired.Version)
	}
}

func TestServicePatch(t *testing.T) {
	tw := mustReported(t, `{"temp":21.5,"fw":{"v":"1.0"}}`)
	push, err := tw.ServicePatch([]byte(`{"tags":{"loc":{"b":"43","f":1}},"properties":{"desired":{"rate":5}}}`), at(5))
	if err != nil {
		t.Fatal(err)
	}
	if string(push) != `{"rate":5,"$version":2}` {
		t.Errorf("push %s", push)
	}
	if got := jsonOf(tw.Tags); got != `{"loc":{"b":"43","f":1}}` {
		t.Errorf("tags %s", got)
	}

	push, err = tw.ServicePatch([]byte(`{"tags":{"loc":{"f":null,"r":"x"}}}`), at(6))
	if err != nil || push != nil {
		t.Fatalf("tags-only patch: push %s, err %v", push, err)
	}
	if got := jsonOf(tw.Tags); got != `{"loc":{"b":"43","r":"x"}}` {
		t.Errorf("tags %s", got)
	}
	checkTwin(t, tw)
}

// A twin read with GET /twins/{id} and sent back whole (what .NET's
// UpdateTwinAsync(id, twin, etag) does) is accepted: the device fields are
// ignored, reported is unchanged, desired's $metadata and $version are
// dropped, its values written again.
func TestServicePatchWholeTwinSentBack(t *testing.T) {
	tw := mustReported(t, `{"temp":21.5,"list":[1,2],"fw":{"v":"1.0"}}`)
	if _, err := tw.ServicePatch([]byte(`{"tags":{"a":1},"properties":{"desired":{"rate":5}}}`), at(5)); err != nil {
		t.Fatal(err)
	}
	var whole map[string]any
	if err := json.Unmarshal(tw.ServiceJSON(DeviceInfo{DeviceID: "d1", Status: "enabled"}), &whole); err != nil {
		t.Fatal(err)
	}
	whole["tags"].(map[string]any)["a"] = 2
	body, _ := json.Marshal(whole)
	reportedBefore := jsonOf(tw.Reported.Values)
	push, err := tw.ServicePatch(body, at(6))
	if err != nil {
		t.Fatalf("whole twin sent back: %v\n%s", err, body)
	}
	if string(push) != `{"rate":5,"$version":3}` {
		t.Errorf("push %s", push)
	}
	if jsonOf(tw.Tags) != `{"a":2}` || jsonOf(tw.Reported.Values) != reportedBefore {
		t.Errorf("tags %s reported %s", jsonOf(tw.Tags), jsonOf(tw.Reported.Values))
	}

	// new Twin() in .NET: nulls for the identity fields, an empty reported.
	push, err = tw.ServicePatch([]byte(`{"deviceId":null,"etag":null,"version":null,"properties":{"desired":{"x":"y"},"reported":{}}}`), at(7))
	if err != nil || string(push) != `{"x":"y","$version":4}` {
		t.Errorf(".NET new Twin() patch: push %s, err %v", push, err)
	}
	checkTwin(t, tw)
}

func TestServiceReplace(t *testing.T) {
	tw := mustReported(t, `{"temp":21.5}`)
	if _, err := tw.ServicePatch([]byte(`{"tags":{"old":1},"properties":{"desired":{"a":{"x":1,"y":2},"b":1,"s":"v"}}}`), at(5)); err != nil {
		t.Fatal(err)
	}
	push, err := tw.ServiceReplace([]byte(`{"etag":"*","tags":{"new":{"k":null,"v":2}},"properties":{"desired":{"a":{"x":1},"c":2,"s":{"n":1},"$version":1}}}`), at(6))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":{"x":1,"y":null},"b":null,"c":2,"s":{"n":1},"$version":3}`; string(push) != want {
		t.Errorf("push %s, want %s", push, want)
	}
	if got := jsonOf(tw.Tags); got != `{"new":{"v":2}}` {
		t.Errorf("tags %s", got)
	}
	if got := jsonOf(tw.Desired.Values); got != `{"a":{"x":1},"c":2,"s":{"n":1}}` {
		t.Errorf("desired %s", got)
	}
	if got := jsonOf(tw.Reported.Values); got != `{"temp":21.5}` || tw.Reported.Version != 2 {
		t.Errorf("reported %s v%d, want untouched", got, tw.Reported.Version)
	}
	// Everything written is stamped with the replacement.
	x := tw.Desired.Meta.Children["a"].Children["x"]
	if !x.LastUpdated.Equal(at(6)) || x.LastUpdatedVersion != 3 {
		t.Errorf("a.x stamped %s v%d", FormatTime(x.LastUpdated), x.LastUpdatedVersion)
	}

	// Merging the push into what the device had gives the new document.
	dev := map[string]any{"a": map[string]any{"x": json.Number("1"), "y": json.Number("2")}, "b": json.Number("1"), "s": "v"}
	var p map[string]any
	dec := json.NewDecoder(bytes.NewReader(push))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	delete(p, "$version")
	if got := jsonOf(refMerge(dev, p)); got != jsonOf(tw.Desired.Values) {
		t.Errorf("device merging the push has %s, hub has %s", got, jsonOf(tw.Desired.Values))
	}

	// An empty body empties tags and desired.
	push, err = tw.ServiceReplace([]byte(`{}`), at(7))
	if err != nil || string(push) != `{"a":null,"c":null,"s":null,"$version":4}` || len(tw.Tags) != 0 || len(tw.Desired.Values) != 0 {
		t.Errorf("empty replace: push %s err %v tags %s", push, err, jsonOf(tw.Tags))
	}
	checkTwin(t, tw)
}

// Refused bodies: the error names what is wrong, and the twin is as it was.
func TestRefusedBodies(t *testing.T) {
	ops := map[string]func(*Twin, []byte, time.Time) error{
		"PatchReported":  func(tw *Twin, b []byte, now time.Time) error { _, err := tw.PatchReported(b, now); return err },
		"PatchDesired":   func(tw *Twin, b []byte, now time.Time) error { _, err := tw.PatchDesired(b, now); return err },
		"ServicePatch":   func(tw *Twin, b []byte, now time.Time) error { _, err := tw.ServicePatch(b, now); return err },
		"ServiceReplace": func(tw *Twin, b []byte, now time.Time) error { _, err := tw.ServiceReplace(b, now); return err },
	}
	service := []string{"ServicePatch", "ServiceReplace"}
	for _, tc := range []struct {
		name, body string
		only       []string // nil: every operation
		kind       *Error
		parts      []string
	}{
		{"empty", ``, nil, ErrFormat, []string{"body is empty"}},
		{"one space (what a twin GET carries)", ` `, nil, ErrFormat, []string{"body is empty"}},
		{"truncated", `{"a":`, nil, ErrFormat, []string{"not valid JSON", "ends before"}},
		{"syntax", `{"a" 1}`, nil, ErrFormat, []string{"not valid JSON", "at byte 6"}},
		{"trailing data", `{"a":1} x`, nil, ErrFormat, []string{"unexpected data after the JSON value"}},
		{"two objects", `{"a":1}{"b":2}`, nil, ErrFormat, []string{"unexpected data after the JSON value"}},
		{"array", `[1,2]`, nil, ErrArgumentInvalid, []string{"must be a JSON object, not an array"}},
		{"string", `"x"`, nil, ErrArgumentInvalid, []string{"not a string"}},
		{"number", `5`, nil, ErrArgumentInvalid, []string{"not a number"}},
		{"null", `null`, nil, ErrArgumentInvalid, []string{"not null"}},
		{"$version sent back by a device", `{"$version":3,"a":1}`, []string{"PatchReported"}, ErrArgumentInvalid, []string{`properties.reported["$version"]`, "'$'"}},
		{"reported written", `{"properties":{"reported":{"temp":30}}}`, service, ErrArgumentInvalid, []string{"properties.reported", "only be written by the device"}},
		{"reported deleted", `{"properties":{"reported":{"temp":null}}}`, service, ErrArgumentInvalid, []string{"properties.reported"}},
		{"reported not an object", `{"properties":{"reported":5}}`, service, ErrArgumentInvalid, []string{"properties.reported must be a JSON object, not a number"}},
		{"tags not an object", `{"tags":"x"}`, service, ErrArgumentInvalid, []string{"tags must be a JSON object, not a string"}},
		{"properties an array", `{"properties":[]}`, service, ErrArgumentInvalid, []string{"properties must be a JSON object, not an array"}},
		{"desired not an object", `{"properties":{"desired":true}}`, service, ErrArgumentInvalid, []string{"properties.desired must be a JSON object, not a boolean"}},
		{"bad tag key", `{"tags":{"a":{"b.c":1}}}`, service, ErrArgumentInvalid, []string{`tags.a["b.c"]`, "'.'"}},
		{"bad desired value", `{"properties":{"desired":{"a":[null]}}}`, service, ErrArgumentInvalid, []string{"properties.desired.a[0]", "null"}},
		{"bad desired key", `{"a":{"b":{" ":1}}}`, []string{"PatchDesired"}, ErrArgumentInvalid, []string{`properties.desired.a.b[" "]`}},
		{"malformed service body", `{"tags":{"a":}}`, service, ErrFormat, []string{"not valid JSON", "at byte 14"}},
	} {
		names := tc.only
		if names == nil {
			names = slices.Sorted(maps.Keys(ops))
		}
		for _, name := range names {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				tw := mustReported(t, `{"temp":21.5}`)
				before := mustMarshal(t, tw)
				wantTwinError(t, ops[name](tw, []byte(tc.body), at(9)), tc.kind, tc.parts...)
				if string(mustMarshal(t, tw)) != string(before) {
					t.Error("twin changed by a refused body")
				}
			})
		}
	}
}
