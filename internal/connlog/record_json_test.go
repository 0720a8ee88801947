package connlog_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/presence"
)

func sampleRecord(t *testing.T) connlog.Record {
	e := event(presence.Disconnected)
	e.Reason, e.Result, e.Detail = presence.ReasonKeepAlive, presence.ResultClosedRemotely, "idle > 1.5×keep-alive <&>"
	recs, err := connlog.FromConnectionEvent(res, e)
	if err != nil {
		t.Fatal(err)
	}
	return recs[0]
}

func columnNames() []string {
	var names []string
	for _, c := range connlog.Columns {
		names = append(names, c.Name)
	}
	return names
}

func TestMapKeysAreTheColumns(t *testing.T) {
	m := sampleRecord(t).Map()
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := columnNames()
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Fatalf("Map keys %v, want %v", keys, want)
	}
	if m["_ResourceId"] != resourceID || m["ResourceId"] != resourceID || m["DurationMs"] != nil {
		t.Errorf("Map values: %v", m)
	}
}

func TestMarshalJSONKeysInColumnOrder(t *testing.T) {
	r := sampleRecord(t)
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var keys []string
	dec.Token() // {
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var skip json.RawMessage
		dec.Decode(&skip)
	}
	if want := columnNames(); !slices.Equal(keys, want) {
		t.Fatalf("JSON keys %v,\nwant %v", keys, want)
	}
	if !strings.Contains(string(data), `"TimeGenerated":"2025-06-01T12:00:00.123456789Z"`) ||
		!strings.Contains(string(data), `"DurationMs":null`) {
		t.Errorf("JSON form: %s", data)
	}
	// MarshalJSON itself leaves HTML characters alone (json.Marshal of a
	// value holding it escapes them again, equivalently).
	if raw, _ := r.MarshalJSON(); !strings.Contains(string(raw), `<&>`) {
		t.Errorf("MarshalJSON escaped HTML: %s", raw)
	}
	// Map encodes to the same object.
	var viaMap, viaMarshal map[string]any
	mdata, _ := json.Marshal(r.Map())
	json.Unmarshal(mdata, &viaMap)
	json.Unmarshal(data, &viaMarshal)
	if !reflect.DeepEqual(viaMap, viaMarshal) {
		t.Errorf("Map and MarshalJSON disagree:\n%s\n%s", mdata, data)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := sampleRecord(t)
	d := int64(17)
	r.DurationMs = &d
	data, _ := json.Marshal([]connlog.Record{r})
	var back []connlog.Record
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != 1 || !reflect.DeepEqual(back[0], r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, r)
	}
	// An encoded Map decodes too; only _ResourceId is enough.
	m := r.Map()
	delete(m, "ResourceId")
	data, _ = json.Marshal(m)
	var fromMap connlog.Record
	if err := json.Unmarshal(data, &fromMap); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromMap, r) {
		t.Fatalf("from Map:\n got %+v\nwant %+v", fromMap, r)
	}
}

func TestValidate(t *testing.T) {
	r := sampleRecord(t)
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*connlog.Record){
		"no id":       func(r *connlog.Record) { r.ItemID = "" },
		"no time":     func(r *connlog.Record) { r.TimeGenerated = r.TimeGenerated.AddDate(-3000, 0, 0) },
		"no category": func(r *connlog.Record) { r.Category = "" },
	} {
		bad := r
		edit(&bad)
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, bad)
		}
	}
}
