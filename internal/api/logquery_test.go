package api_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/kql"
)

// blockingQueries is a QueryRunner whose queries run until released, so
// the test decides how many are running.
type blockingQueries struct {
	started chan string
	release chan struct{}
}

func (b *blockingQueries) Run(ctx context.Context, req kql.Request) (*kql.Result, error) {
	b.started <- req.Query
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &kql.Result{Columns: []kql.Column{{Name: "n", Type: kql.TLong}}, Rows: [][]any{{int64(1)}}}, nil
}

// Issue 17 item 8: a query body over 1 MiB is refused 413 like every
// other endpoint's, not 400 "unexpected EOF".
func TestQueryBodyTooLarge(t *testing.T) {
	b := &blockingQueries{started: make(chan string, 1), release: make(chan struct{})}
	close(b.release)
	e := newEnv(t, func(d *api.Deps) { d.Query = b })
	big := `{"query": "AzureDiagnostics | where DeviceId == '` + strings.Repeat("x", 1<<20) + `'"}`
	w := e.do(req{Method: "POST", Path: "/api/v1/query", Body: big})
	if w.Code != 413 {
		t.Fatalf("status %d, want 413: %.300s", w.Code, w.Body)
	}
	if code, msg := v1Code(t, w); code != "RequestEntityTooLarge" || !strings.Contains(msg, "1048576 bytes") {
		t.Errorf("error %s %q", code, msg)
	}
	wantJSON(t, w)
	w = e.do(req{Method: "POST", Path: "/api/v1/query", Body: `{"query": "AzureDiagnostics | count"}`})
	if w.Code != 200 {
		t.Fatalf("a small query after it: %d %s", w.Code, w.Body)
	}
}

// Issue 17 item 1: queries beyond the running limits wait in a queue, and
// beyond the queue are refused 429 with Retry-After; one key cannot take
// every slot.
func TestQueryConcurrencyLimits(t *testing.T) {
	b := &blockingQueries{started: make(chan string, 10), release: make(chan struct{})}
	e := newEnv(t, func(d *api.Deps) {
		d.Query = b
		d.QueryLimits = api.QueryLimits{Running: 2, RunningPerCaller: 1, Queued: 2, QueuedPerCaller: 1, MaxWait: time.Minute}
	})
	owner, reader := e.token("iothubowner"), e.token("registryRead")
	var wg sync.WaitGroup
	results := make(chan *httptest.ResponseRecorder, 10)
	post := func(auth string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- e.do(req{Method: "POST", Path: "/api/v1/query", Body: `{"query": "AzureDiagnostics | count"}`, Auth: auth})
		}()
	}
	post(owner)
	<-b.started
	// The reader's query runs in the free slot.
	post(reader)
	<-b.started
	// Two more of the owner's: one waits (one running per key), the other
	// finds the owner's share of the queue taken and is refused at once.
	post(owner)
	post(owner)
	w := <-results
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("owner's third query: %d Retry-After %q, want 429 with Retry-After: %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if code, msg := v1Code(t, w); code != "ThrottledError" || !strings.Contains(msg, "per key") {
		t.Errorf("429 error %s %q", code, msg)
	}
	select {
	case q := <-b.started:
		t.Fatalf("a query started beyond the limits: %s", q)
	case <-time.After(50 * time.Millisecond):
	}
	close(b.release)
	wg.Wait()
	close(results)
	for w := range results {
		if w.Code != 200 {
			t.Errorf("queued query: %d %s", w.Code, w.Body)
		}
	}
}

// The answer is written row by row; it is the JSON the Log Analytics
// shape encodes to.
func TestQueryAnswerStreamed(t *testing.T) {
	ts := time.Date(2026, 3, 1, 7, 0, 0, 123456700, time.UTC)
	res := &kql.Result{
		Columns: []kql.Column{{Name: "s", Type: kql.TString}, {Name: "t", Type: kql.TDatetime}, {Name: "d", Type: kql.TTimespan},
			{Name: "j", Type: kql.TDynamic}, {Name: "r", Type: kql.TReal}, {Name: "n", Type: kql.TLong}},
		Rows: [][]any{
			{`a "quoted" <tag> & more`, ts, 90 * time.Minute, json.RawMessage(`{"a":[1,2]}`), math.NaN(), int64(7)},
			{"", nil, nil, nil, 1.5, nil},
		},
		Truncated: true, Reason: "the result has more than 2 rows",
	}
	e := newEnv(t, func(d *api.Deps) { d.Query = fixedQuery{res} })
	w := e.do(req{Method: "POST", Path: "/api/v1/query", Body: `{"query": "AzureDiagnostics"}`})
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	wantJSON(t, w)
	type table struct {
		Name    string       `json:"name"`
		Columns []kql.Column `json:"columns"`
		Rows    [][]any      `json:"rows"`
	}
	var rows [][]any
	for _, r := range res.Rows {
		var out []any
		for _, v := range r {
			out = append(out, kql.JSONCell(v))
		}
		rows = append(rows, out)
	}
	want, _ := json.Marshal(map[string]any{
		"tables": []table{{Name: "PrimaryResult", Columns: res.Columns, Rows: rows}},
		"error": map[string]any{"code": "PartialError", "message": "the result was truncated: " + res.Reason,
			"details": []map[string]string{{"code": "ResultTruncated", "message": res.Reason}}},
	})
	var got, exp any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, w.Body)
	}
	_ = json.Unmarshal(want, &exp)
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("answer\n%s\nwant\n%s", w.Body, want)
	}
}

type fixedQuery struct{ res *kql.Result }

func (f fixedQuery) Run(context.Context, kql.Request) (*kql.Result, error) { return f.res, nil }
