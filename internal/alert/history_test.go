package alert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFileHistoryRetentionAndDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts", "history.jsonl")
	h, skipped, err := OpenFileHistory(path, time.Hour, t0)
	if err != nil || skipped != 0 {
		t.Fatal(err, skipped)
	}
	rec := func(id string, c State, at time.Time) Record {
		return Record{Time: at, AlertID: id, Rule: "r", Condition: c, FiredAt: at}
	}
	for _, r := range []Record{
		rec("old", Fired, t0), rec("old", Resolved, t0.Add(time.Minute)),
		rec("still-fired", Fired, t0.Add(2*time.Minute)),
		rec("new", Fired, t0.Add(50*time.Minute)),
	} {
		if err := h.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	// Past 1h⅛ of history, memory drops resolved records older than 1 h.
	if err := h.Append(rec("new", Resolved, t0.Add(70*time.Minute))); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range h.List(HistoryQuery{}) {
		ids = append(ids, r.AlertID+"/"+string(r.Condition))
	}
	if strings.Join(ids, ",") != "still-fired/Fired,new/Fired,new/Resolved" {
		t.Fatalf("in memory: %v", ids)
	}
	h.Close()
	// A crash left half a line; reopening drops it and the expired records.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"time":"2026-11-26T13:`)
	f.Close()
	h, skipped, err = OpenFileHistory(path, time.Hour, t0.Add(90*time.Minute))
	if err != nil || skipped != 1 {
		t.Fatal(err, skipped)
	}
	defer h.Close()
	if got := h.List(HistoryQuery{}); len(got) != 3 || got[0].AlertID != "still-fired" || got[1].AlertID != "new" {
		t.Fatalf("after reopen: %+v", got)
	}
	if a := h.Active(); len(a) != 1 || a[0].AlertID != "still-fired" {
		t.Fatalf("active: %+v", a)
	}
	if got := h.List(HistoryQuery{Rule: "r", Limit: 1}); len(got) != 1 || got[0].Condition != Resolved {
		t.Fatalf("limit: %+v", got)
	}
	b, _ := os.ReadFile(path)
	if strings.Count(string(b), "\n") != 3 {
		t.Fatalf("file not rewritten:\n%s", b)
	}
}
