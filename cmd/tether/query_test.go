package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/connlog"
	logsqlite "github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/kql"
	kqlsqlite "github.com/tether-hub/tether/internal/kql/sqlite"
	"github.com/tether-hub/tether/internal/presence"
)

// startQueryHub serves the API with the real query engine over a memory
// log holding two records of thermo-1 from an hour ago.
func startQueryHub(t *testing.T, maxRows int) *cliHub {
	t.Helper()
	store, err := logsqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	var recs []connlog.Record
	for i, e := range []presence.ConnectionEvent{
		{ID: "thermo-1/1", Kind: presence.Connected, Time: at, DeviceID: "thermo-1", Protocol: "MQTT", Sequence: "1"},
		{ID: "thermo-1/2", Kind: presence.Disconnected, Time: at.Add(time.Minute), DeviceID: "thermo-1", Protocol: "MQTT", Sequence: "2",
			Reason: presence.ReasonKeepAlive, Result: presence.ResultClosedRemotely, Detail: "no packet, \"keep-alive\""},
	} {
		rs, err := connlog.FromConnectionEvent(connlog.Resource{}, e)
		if err != nil {
			t.Fatal(i, err)
		}
		recs = append(recs, rs...)
	}
	if err := store.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	eng := &kql.Engine{DB: store, Table: kql.AzureDiagnostics(), Dialect: kqlsqlite.Dialect{}, MaxRows: maxRows}
	return startCLIHub(t, func(d *api.Deps) { d.Query = eng })
}

func TestQueryCommand(t *testing.T) {
	h := startQueryHub(t, 10)
	q := `AzureDiagnostics | where DeviceId == "thermo-1" | order by TimeGenerated asc | project OperationName, Level, ResultType, n = 1`

	out, err := h.run(t, "query", q)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Fields(lines[0])[0] != "OperationName" ||
		strings.Join(strings.Fields(lines[2]), " ") != "deviceDisconnect Error 404104 1" {
		t.Errorf("table output:\n%s", out)
	}

	out, err = h.run(t, "query", q, "-o", "csv")
	if err != nil {
		t.Fatal(err)
	}
	if want := "OperationName,Level,ResultType,n\ndeviceConnect,Information,,1\ndeviceDisconnect,Error,404104,1\n"; out != want {
		t.Errorf("csv output %q, want %q", out, want)
	}

	out, err = h.run(t, "query", `AzureDiagnostics | summarize n = count(), last = max(TimeGenerated)`, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var res queryResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	if len(res.Tables) != 1 || res.Tables[0].Name != "PrimaryResult" || len(res.Tables[0].Columns) != 2 ||
		res.Tables[0].Columns[1].Type != "datetime" || res.Tables[0].Rows[0][0] != float64(2) {
		t.Errorf("json output %s", out)
	}

	// The hour-old records are outside --timespan 30m.
	out, err = h.run(t, "query", `AzureDiagnostics | count`, "--timespan", "30m", "-o", "csv")
	if err != nil || out != "Count\n0\n" {
		t.Errorf("--timespan 30m: %q %v", out, err)
	}

	_, err = h.run(t, "query", "AzureDiagnostics\n| where DeviceID == 'x'")
	if err == nil || !strings.Contains(err.Error(), "2:9: column 'DeviceID' not found; did you mean 'DeviceId'?\n  | where DeviceID == 'x'\n          ^") {
		t.Errorf("error: %v", err)
	}
	if _, err := h.run(t, "query", q, "-o", "yaml"); err == nil {
		t.Error("-o yaml accepted")
	}
	if _, err := h.run(t, "query", q, "--timespan", "yesterday"); err == nil || !strings.Contains(err.Error(), "timespan") {
		t.Errorf("--timespan yesterday: %v", err)
	}
}

func TestQueryCommandTruncated(t *testing.T) {
	h := startQueryHub(t, 1)
	var out, errOut syncBuffer
	if err := h.runCtx(context.Background(), &out, &errOut, "query", "AzureDiagnostics | project DeviceId"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "truncated") || strings.Count(out.String(), "thermo-1") != 1 {
		t.Errorf("stdout %q stderr %q", out.String(), errOut.String())
	}
}
