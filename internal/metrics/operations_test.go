package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/journal"
)

func publishOps(t *testing.T, j *journal.Journal, ops ...journal.Operation) {
	t.Helper()
	p := journal.NewPublisher(j.JS, len(ops), slog.New(slog.DiscardHandler))
	for _, op := range ops {
		if err := p.Publish(journal.OperationMsg(op)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil || p.Failed() != 0 {
		t.Fatalf("publish: %v, %d failed", err, p.Failed())
	}
}

// op is an operation at at; sizes and failure as given.
func op(category, name string, at time.Time, req, resp int64, code string) journal.Operation {
	o := journal.Operation{ID: journal.NewOperationID(), Time: at, Hub: "h", Category: category, OperationName: name,
		DeviceID: "d1", Status: 200, RequestSize: req, ResponseSize: resp, ErrorCode: code}
	if category == journal.CategoryTwinQueries {
		o.DeviceID = ""
	}
	if code != "" {
		o.Status = 404
	}
	return o
}

func opWindow(t *testing.T, s *Store, metric string, agg Aggregation, from time.Time) (float64, int) {
	t.Helper()
	vals, err := s.Window(context.Background(), WindowQuery{Metric: metric, Aggregation: agg, From: from, To: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) == 0 {
		return 0, 0
	}
	return vals[0].Value, vals[0].Samples
}

func scrape(t *testing.T, c *Collector) string {
	t.Helper()
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// The collector turns journalled operations into IoT Hub's operation
// metrics: successes and failures counted in the second of the
// operation, sizes of successes as distributions (replace counts as a
// back-end update, a method the device answered with 500 as a success),
// and the Prometheus families; after a restart it resumes from its saved
// position, counting nothing twice; an operation of a kind it has no
// metric for, and an undecodable message, only move the position.
func TestCollectorCountsOperations(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, filepath.Join(dir, "j"))
	at := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	answered500 := op(journal.CategoryDirectMethods, journal.OpSend, at, 4, 100, "")
	answered500.Status = 500
	publishOps(t, j,
		op(journal.CategoryDirectMethods, journal.OpSend, at, 10, 20, ""),
		answered500,
		op(journal.CategoryDirectMethods, journal.OpSend, at.Add(time.Second), 7, 0, "404103"),
		op(journal.CategoryDirectMethods, journal.OpSend, at.Add(time.Second), 7, 0, "504101"),
		op(journal.CategoryD2CTwinOperations, journal.OpGet, at, 0, 400, ""),
		op(journal.CategoryD2CTwinOperations, journal.OpGet, at, 0, 600, ""),
		op(journal.CategoryD2CTwinOperations, journal.OpUpdate, at, 30, 0, ""),
		op(journal.CategoryD2CTwinOperations, journal.OpUpdate, at, 30, 0, "400004"),
		op(journal.CategoryC2DTwinOperations, journal.OpRead, at, 0, 1000, ""),
		op(journal.CategoryC2DTwinOperations, journal.OpRead, at, 0, 0, "404001"),
		op(journal.CategoryC2DTwinOperations, journal.OpUpdate, at, 50, 900, ""),
		op(journal.CategoryC2DTwinOperations, journal.OpReplace, at, 150, 900, ""),
		op(journal.CategoryC2DTwinOperations, journal.OpReplace, at, 150, 0, "412001"),
		op(journal.CategoryTwinQueries, journal.OpQuery, at, 60, 2048, ""),
		op(journal.CategoryTwinQueries, journal.OpQuery, at, 60, 0, "400000"),
	)
	// A later version's category, and garbage, on TETHER_OPS.
	later := []byte(`{"id":"x","time":"` + at.Format(time.RFC3339) + `","category":"C2DCommands","operationName":"send"}`)
	for _, data := range [][]byte{later, []byte("{not json")} {
		if _, err := j.JS.Publish(context.Background(), journal.OpsSubject("C2DCommands", "d1"), data); err != nil {
			t.Fatal(err)
		}
	}

	path := filepath.Join(dir, "h.db")
	s, err := OpenStore(context.Background(), StoreOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	c := startCollector(t, j, s)
	from := at.Add(-time.Second)
	counts := map[string]float64{
		MethodsSuccess: 2, MethodsFailure: 2,
		D2CTwinReadSuccess: 2, D2CTwinReadFailure: 0, D2CTwinUpdateSuccess: 1, D2CTwinUpdateFailure: 1,
		C2DTwinReadSuccess: 1, C2DTwinReadFailure: 1, C2DTwinUpdateSuccess: 2, C2DTwinUpdateFailure: 1,
		TwinQueriesSuccess: 1, TwinQueriesFailure: 1,
	}
	checkCounts := func() error {
		for m, want := range counts {
			if got, _ := opWindow(t, s, m, AggTotal, from); got != want {
				return fmt.Errorf("%s: total %v, want %v", m, got, want)
			}
		}
		return nil
	}
	eventually(t, checkCounts)
	// Sizes: Average over successes only (Count = their number).
	for _, tc := range []struct {
		metric  string
		agg     Aggregation
		want    float64
		samples int
	}{
		{MethodsRequestSize, AggAverage, 7, 2},
		{MethodsResponseSize, AggMaximum, 100, 2},
		{MethodsResponseSize, AggMinimum, 20, 2},
		{D2CTwinReadSize, AggAverage, 500, 2},
		{D2CTwinUpdateSize, AggTotal, 30, 1},
		{C2DTwinReadSize, AggCount, 1, 1},
		{C2DTwinUpdateSize, AggAverage, 100, 2}, // update and replace: the requests, 50 and 150
		{TwinQueriesResultSize, AggAverage, 2048, 1},
	} {
		if got, n := opWindow(t, s, tc.metric, tc.agg, from); got != tc.want || n != tc.samples {
			t.Errorf("%s %s = %v from %d samples, want %v from %d", tc.metric, tc.agg, got, n, tc.want, tc.samples)
		}
	}
	// In the second of the operation.
	if got, _ := opWindow(t, s, MethodsFailure, AggTotal, at.Add(time.Second)); got != 2 {
		t.Errorf("failures from their second on: %v, want 2", got)
	}
	if got, _ := opWindow(t, s, MethodsSuccess, AggTotal, at.Add(time.Second)); got != 0 {
		t.Errorf("successes after their second: %v, want 0", got)
	}
	// Sizes allow Average (the default), counts only Total and Count.
	if d, _ := Lookup(MethodsRequestSize); d.Aggregations[0] != AggAverage || d.Unit != "Bytes" {
		t.Errorf("%s: default %s, unit %s", d.Name, d.Aggregations[0], d.Unit)
	}
	if d, _ := Lookup(TwinQueriesSuccess); d.Allows(AggAverage) == nil {
		t.Errorf("%s allows Average", d.Name)
	}

	body := scrape(t, c)
	for _, want := range []string{
		`tether_direct_method_calls_total{result="success"} 2`,
		`tether_direct_method_calls_total{result="failure"} 2`,
		`tether_direct_method_payload_bytes_sum{part="request"} 14`,
		`tether_direct_method_payload_bytes_count{part="response"} 2`,
		`tether_twin_operations_total{direction="c2d",operation="update",result="success"} 2`,
		`tether_twin_operations_total{direction="d2c",operation="update",result="failure"} 1`,
		`tether_twin_operation_size_bytes_sum{direction="d2c",operation="read"} 1000`,
		`tether_twin_queries_total{result="failure"} 1`,
		`tether_twin_query_result_bytes_sum 2048`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Restart on the kept history: nothing counted twice; new operations
	// are counted.
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err = OpenStore(context.Background(), StoreOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	c = startCollector(t, j, s)
	publishOps(t, j, op(journal.CategoryDirectMethods, journal.OpSend, at, 1, 1, "404103"))
	counts[MethodsFailure] = 3
	eventually(t, checkCounts)
	if got := scrape(t, c); !strings.Contains(got, `tether_direct_method_calls_total{result="failure"} 1`+"\n") ||
		strings.Contains(got, `tether_direct_method_calls_total{result="success"}`) {
		t.Errorf("after the restart /metrics counts what this process saw:\n%s", got)
	}
}
