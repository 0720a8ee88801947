package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestDeviceQueryCLI(t *testing.T) {
	h := startTwinHub(t)
	var key string
	for i := range 25 {
		k := h.create(fmt.Sprintf("q-%02d", i))
		if i == 7 {
			key = k
		}
	}
	h.connectDevice("q-07", key, answerMethods)
	h.mustRun(t, "device", "twin", "update", "q-03", "--tags", `{"site":"berlin","floor":2,"zone":"a","room":"r1"}`)
	h.mustRun(t, "device", "twin", "update", "q-04", "--tags", `{"site":"berlin"}`, "--desired", `{"fw":"2.0"}`)
	h.mustRun(t, "device", "twin", "update", "q-05", "--tags", `{"site":"paris"}`, "--desired", `{"fw":"1.0"}`)

	// SELECT *: one row per device, with its first tags.
	out := h.mustRun(t, "device", "query", "SELECT * FROM devices WHERE connectionState = 'Connected'")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "DEVICE ID") || !strings.HasPrefix(lines[1], "q-07") || !strings.Contains(lines[1], "Connected") {
		t.Fatalf("connected devices:\n%s", out)
	}
	out = h.mustRun(t, "device", "query", "SELECT * FROM devices WHERE tags.site = 'berlin'")
	if !strings.Contains(out, "floor=2,room=r1,site=berlin,+1 more") || !strings.Contains(out, "q-04") || strings.Contains(out, "q-05") {
		t.Fatalf("berlin:\n%s", out)
	}

	// Every page is followed: 25 devices 10 at a time, in id order, no repeats.
	var twins []struct {
		DeviceID string `json:"deviceId"`
		ETag     string `json:"etag"`
	}
	out = h.mustRun(t, "device", "query", "SELECT * FROM devices", "--page-size", "10", "-o", "json")
	if err := json.Unmarshal([]byte(out), &twins); err != nil || len(twins) != 25 {
		t.Fatalf("all pages: %v, %d twins", err, len(twins))
	}
	for i, tw := range twins {
		if tw.DeviceID != fmt.Sprintf("q-%02d", i) || tw.ETag == "" {
			t.Fatalf("twin %d: %+v", i, tw)
		}
	}
	out = h.mustRun(t, "device", "query", "SELECT * FROM devices", "--page-size", "4")
	if n := strings.Count(out, "\nq-"); n != 25 {
		t.Fatalf("table over pages of 4: %d rows\n%s", n, out)
	}

	// --max stops early, silently; the default cap says so on stderr.
	out = h.mustRun(t, "device", "query", "SELECT deviceId FROM devices", "--max", "7", "-o", "json")
	var ids []map[string]string
	if err := json.Unmarshal([]byte(out), &ids); err != nil || len(ids) != 7 || ids[6]["deviceId"] != "q-06" {
		t.Fatalf("--max 7: %v %s", err, out)
	}
	defer func(n int) { defaultQueryCap = n }(defaultQueryCap)
	defaultQueryCap = 12
	out, errOut, err := h.runIn("", "device", "query", "SELECT deviceId FROM devices", "--page-size", "5")
	if err != nil || strings.Count(out, "\nq-") != 12 || !strings.Contains(errOut, "showing the first 12 items; the query has more: give --all") {
		t.Fatalf("default cap: %v\n%s\nstderr: %s", err, out, errOut)
	}
	out, errOut, err = h.runIn("", "device", "query", "SELECT deviceId FROM devices", "--all", "--page-size", "5")
	if err != nil || strings.Count(out, "\nq-") != 25 || errOut != "" {
		t.Fatalf("--all: %v\n%s\nstderr: %s", err, out, errOut)
	}
	defaultQueryCap = 25 // exactly all: no note
	if _, errOut, err = h.runIn("", "device", "query", "SELECT deviceId FROM devices"); err != nil || errOut != "" {
		t.Fatalf("cap equal to the result: %v %q", err, errOut)
	}

	// Projections: one column per member name, in first-seen order; "-" where missing.
	out = h.mustRun(t, "device", "query", "SELECT deviceId, tags.site, properties.desired.fw FROM devices WHERE IS_DEFINED(tags.site)")
	want := "deviceId  site    fw\nq-03      berlin  -\nq-04      berlin  2.0\nq-05      paris   1.0\n"
	if out != want {
		t.Errorf("projection:\n%s\nwant:\n%s", out, want)
	}
	// Aggregates.
	out = h.mustRun(t, "device", "query", "SELECT tags.site AS site, COUNT() AS n FROM devices WHERE IS_DEFINED(tags.site) GROUP BY tags.site")
	if out != "site    n\nberlin  2\nparis   1\n" {
		t.Errorf("group by:\n%s", out)
	}
	out = h.mustRun(t, "device", "query", "SELECT COUNT() AS n FROM devices WHERE status = 'enabled'", "-o", "json")
	if strings.Join(strings.Fields(out), "") != `[{"n":25}]` {
		t.Errorf("count json: %s", out)
	}
	// JSON is the items as the hub wrote them, indented.
	h.mustRun(t, "device", "twin", "update", "q-06", "--tags", `{"note":"a<b & c>d"}`)
	out = h.mustRun(t, "device", "query", "SELECT tags.note FROM devices WHERE IS_DEFINED(tags.note)", "-o", "json")
	var notes []map[string]string
	if err := json.Unmarshal([]byte(out), &notes); err != nil || len(notes) != 1 || notes[0]["note"] != "a<b & c>d" || !strings.HasPrefix(out, "[\n  {\n    \"note\": ") {
		t.Errorf("json: %v %q", err, out)
	}
	if out = h.mustRun(t, "device", "query", "SELECT * FROM devices WHERE tags.site = 'tokyo'"); out != "(no devices)\n" {
		t.Errorf("empty SELECT *: %q", out)
	}
	if out = h.mustRun(t, "device", "query", "SELECT deviceId FROM devices WHERE tags.site = 'tokyo'", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("empty json: %q", out)
	}

	// Errors: the hub's line:column with a caret under the query.
	_, err = h.run(t, "device", "query", "SELECT * FROM devices\nWHERE tags.site = 'x' AND")
	if err == nil || !strings.Contains(err.Error(), "hub answered 400") || !strings.Contains(err.Error(), "line 2, column 26") ||
		!strings.HasSuffix(err.Error(), "\n  WHERE tags.site = 'x' AND\n                           ^") {
		t.Errorf("syntax error: %v", err)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"device", "query", "SELECT * FROM devices", "--all", "--max", "3"}, "[all max] were all set"},
		{[]string{"device", "query", "SELECT * FROM devices", "--page-size", "0"}, "--page-size 0: use 1 to 1000"},
		{[]string{"device", "query", "SELECT * FROM devices", "--page-size", "1001"}, "--page-size 1001: use 1 to 1000"},
		{[]string{"device", "query", "SELECT * FROM devices", "--max", "0"}, "--max 0: give a positive number"},
		{[]string{"device", "query", " "}, "the query is empty"},
		{[]string{"device", "query"}, "takes the query (quote it)"},
		{[]string{"device", "query", "SELECT * FROM devices.modules"}, "400"},
	} {
		_, err := h.run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("tether %q: error %v, want %q", tc.args, err, tc.msg)
		}
	}
}
