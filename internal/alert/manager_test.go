package alert

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestWindowIsHalfOpenAndEndsAtEvaluation(t *testing.T) {
	r := metricRule("low", LessThan, 90)
	r.Window, r.Frequency = 5*time.Second, time.Second
	e := newEnv(t, r)
	e.s.add(t0.Add(-5*time.Second), 10) // first instant of the window: counted
	e.s.add(t0, 10)                     // the evaluation instant: not yet
	e.s.add(t0.Add(-6*time.Second), 10) // before the window
	e.s.add(t0.Add(-time.Second), 100)
	e.eval(time.Second)
	q := e.s.queries[0]
	if !q.From.Equal(t0.Add(-5*time.Second)) || !q.To.Equal(t0) || q.Metric != "connectedDeviceCount" || q.Aggregation != Average {
		t.Fatalf("query %+v", q)
	}
	st := e.status("low")
	if st.Alerts[0].Value == nil || *st.Alerts[0].Value != 55 {
		t.Fatalf("average of the window = %v, want 55 (10 and 100)", st.Alerts[0].Value)
	}
	if got := conditions(e.rec.take()); !slices.Equal(got, []string{"Fired"}) {
		t.Fatalf("transitions %v", got)
	}
}

func TestAggregations(t *testing.T) {
	// samples 10, 20, 60 in the window: Average 30, Minimum 10, Maximum 60,
	// Total 90, Count 3.
	want := map[Aggregation]float64{Average: 30, Minimum: 10, Maximum: 60, Total: 90, Count: 3}
	for agg, v := range want {
		t.Run(string(agg), func(t *testing.T) {
			at := metricRule("at", GreaterThanOrEqual, v)
			above := metricRule("above", GreaterThan, v)
			at.Aggregation, above.Aggregation = agg, agg
			at.Window, above.Window = 10*time.Second, 10*time.Second
			e := newEnv(t, at, above)
			for i, x := range []float64{10, 20, 60} {
				e.s.add(t0.Add(-time.Duration(i+1)*time.Second), x)
			}
			e.eval(time.Second)
			if s := e.status("at"); s.State != Fired || *s.Alerts[0].Value != v {
				t.Errorf("%s >= %v: state %s value %v", agg, v, s.State, *s.Alerts[0].Value)
			}
			if s := e.status("above"); s.State != Inactive {
				t.Errorf("%s > %v: state %s", agg, v, s.State)
			}
		})
	}
}

func TestNoDataIsNoViolation(t *testing.T) {
	e := newEnv(t, metricRule("low", LessThan, 90))
	for range 3 {
		e.eval(time.Second) // no samples: Average of nothing
	}
	if s := e.status("low"); s.State != Inactive || len(e.rec.take()) != 0 {
		t.Fatalf("state %s", s.State)
	}
}

// violate makes the next evaluation of a "< 90" rule a violation or not.
func (e *env) violate(v bool) {
	x := 100.0
	if v {
		x = 80
	}
	e.s.add(e.now.Add(-time.Millisecond), x)
}

func TestNOfMPeriods(t *testing.T) {
	r := metricRule("low", LessThan, 90)
	r.MinFailing, r.Evaluations = 3, 5
	e := newEnv(t, r)
	// v v . . v: 3 of the last 5 at the fifth evaluation.
	pattern := []bool{true, true, false, false, true}
	for i, v := range pattern {
		e.violate(v)
		e.eval(time.Second)
		fired := e.status("low").State == Fired
		if fired != (i == 4) {
			t.Fatalf("evaluation %d: fired=%v", i+1, fired)
		}
	}
	if st := e.status("low"); st.Alerts[0].Violations != 3 {
		t.Fatalf("violations %d", st.Alerts[0].Violations)
	}
	// Old violations age out of the 5: v . . v . → . . v . . leaves 1 of 5,
	// but stays fired until the criterion is false 3 times in a row.
	got := []State{}
	for _, v := range []bool{false, false, false, false, false} {
		e.violate(v)
		e.eval(time.Second)
		got = append(got, e.status("low").State)
	}
	// After eval 6: v . . v . = 2 → false (1); eval 7: . . v . . → 1 (2);
	// eval 8 (3) → resolved.
	want := []State{Fired, Fired, Inactive, Inactive, Inactive}
	for i := range want {
		if (got[i] == Fired) != (want[i] == Fired) {
			t.Fatalf("states after the violations stop: %v", got)
		}
	}
	if c := conditions(e.rec.take()); !slices.Equal(c, []string{"Fired", "Resolved"}) {
		t.Fatalf("transitions %v", c)
	}
}

func TestAutoResolveAfterConfiguredEvaluations(t *testing.T) {
	for _, after := range []int{1, 3, 5} {
		r := metricRule("low", LessThan, 90)
		r.ResolveAfter = after
		e := newEnv(t, r)
		e.violate(true)
		e.eval(time.Second)
		fired := e.rec.take()
		if len(fired) != 1 || fired[0].Condition != Fired || !fired[0].FiredAt.Equal(t0) {
			t.Fatalf("after=%d: %v", after, conditions(fired))
		}
		// after-1 evaluations without the condition, then one with it:
		// the count starts again.
		for range after - 1 {
			e.violate(false)
			e.eval(time.Second)
		}
		e.violate(true)
		e.eval(time.Second)
		for i := range after {
			if len(e.rec.alerts) != 0 {
				t.Fatalf("after=%d: resolved after %d evaluations", after, i)
			}
			e.violate(false)
			e.eval(time.Second)
		}
		got := e.rec.take()
		if len(got) != 1 || got[0].Condition != Resolved || got[0].ID != fired[0].ID {
			t.Fatalf("after=%d: %v", after, conditions(got))
		}
		if got[0].ResolvedAt.Sub(got[0].FiredAt) != time.Duration(2*after)*time.Second {
			t.Fatalf("after=%d: resolved at %s, fired at %s", after, got[0].ResolvedAt, got[0].FiredAt)
		}
		if !strings.Contains(got[0].Reason, "evaluations") {
			t.Fatalf("reason %q", got[0].Reason)
		}
		recs := e.hist.List(HistoryQuery{Rule: "low"})
		if len(recs) != 2 || recs[0].Condition != Fired || recs[1].Condition != Resolved || recs[1].ResolvedAt == nil {
			t.Fatalf("history %+v", recs)
		}
	}
}

func TestFlappingFiresOnce(t *testing.T) {
	e := newEnv(t, metricRule("low", LessThan, 90))
	for i := range 20 {
		e.violate(i%2 == 0)
		e.eval(time.Second)
	}
	if c := conditions(e.rec.take()); !slices.Equal(c, []string{"Fired"}) {
		t.Fatalf("flapping gave %v", c)
	}
	// Flapping 2 on, 2 off with resolve after 3: still one firing.
	for i := range 20 {
		e.violate(i%4 < 2)
		e.eval(time.Second)
	}
	if c := conditions(e.rec.take()); len(c) != 0 {
		t.Fatalf("flapping gave %v", c)
	}
	for range 3 {
		e.violate(false)
		e.eval(time.Second)
	}
	if c := conditions(e.rec.take()); !slices.Equal(c, []string{"Resolved"}) {
		t.Fatalf("stable input gave %v", c)
	}
}

func TestDimensionSplit(t *testing.T) {
	r := metricRule("disconnects", GreaterThan, 5)
	r.Metric, r.Aggregation, r.Window = "deviceDisconnects", Total, 10*time.Second
	r.SplitBy = []string{"ResultType"}
	r.Filter = map[string][]string{"Protocol": {"Mqtt", "MqttWs"}}
	e := newEnv(t, r)
	for range 6 {
		e.s.add(t0.Add(-time.Second), 1, "ResultType", "404104", "Protocol", "Mqtt")
		e.s.add(t0.Add(-time.Second), 1, "ResultType", "400027", "Protocol", "Amqp") // filtered out
	}
	for range 3 {
		e.s.add(t0.Add(-time.Second), 1, "ResultType", "400027", "Protocol", "MqttWs")
	}
	e.eval(time.Second)
	got := e.rec.take()
	if c := conditions(got); !slices.Equal(c, []string{"Fired(ResultType=404104)"}) {
		t.Fatalf("transitions %v", c)
	}
	if got[0].Value != 6 || got[0].Dimensions["ResultType"] != "404104" {
		t.Fatalf("alert %+v", got[0])
	}
	st := e.status("disconnects")
	if len(st.Alerts) != 2 || st.State != Fired {
		t.Fatalf("instances %+v", st.Alerts)
	}
	// 400027 now also crosses; 404104 stays fired (new samples).
	for range 6 {
		e.s.add(t0.Add(time.Second/2), 1, "ResultType", "400027", "Protocol", "Mqtt")
	}
	e.eval(time.Second)
	if c := conditions(e.rec.take()); !slices.Equal(c, []string{"Fired(ResultType=400027)"}) {
		t.Fatalf("transitions %v", c)
	}
	// Both series vanish once their samples leave the 10 s window: each
	// resolves after 3 evaluations without data.
	e.now = t0.Add(20 * time.Second)
	for range 3 {
		e.eval(time.Second)
	}
	c := conditions(e.rec.take())
	slices.Sort(c)
	if !slices.Equal(c, []string{"Resolved(ResultType=400027)", "Resolved(ResultType=404104)"}) {
		t.Fatalf("transitions %v", c)
	}
	if st := e.status("disconnects"); len(st.Alerts) != 0 {
		t.Fatalf("idle instances kept: %+v", st.Alerts)
	}
}

func TestEvaluationErrorKeepsState(t *testing.T) {
	e := newEnv(t, metricRule("low", LessThan, 90))
	e.violate(true)
	e.eval(time.Second)
	e.s.fail = errors.New("store down")
	for range 5 {
		if err := e.m.EvaluateAll(context.Background(), e.now); err == nil {
			t.Fatal("no error")
		}
		e.now = e.now.Add(time.Second)
	}
	st := e.status("low")
	if st.State != Fired || !strings.Contains(st.LastError, "store down") || st.Failures != 5 {
		t.Fatalf("status %+v", st)
	}
	e.s.fail = nil
	e.violate(true)
	e.eval(time.Second)
	if st := e.status("low"); st.LastError != "" || st.State != Fired {
		t.Fatalf("status %+v", st)
	}
	if c := conditions(e.rec.take()); !slices.Equal(c, []string{"Fired"}) {
		t.Fatalf("transitions %v", c)
	}
}

func TestReload(t *testing.T) {
	low := metricRule("low", LessThan, 90)
	other := metricRule("other", LessThan, 90)
	e := newEnv(t, low, other)
	e.violate(true)
	e.eval(time.Second)
	fired := e.rec.take()
	if len(fired) != 2 {
		t.Fatalf("transitions %v", conditions(fired))
	}

	// Same definitions (new description, action groups): nothing changes.
	low2 := low
	low2.Description, low2.ActionGroups = "new text", []string{"ops"}
	if err := e.m.SetRules([]Rule{low2, other}); err != nil {
		t.Fatal(err)
	}
	if st := e.status("low"); st.State != Fired || st.Alerts[0].Violations != 1 || st.Description != "new text" {
		t.Fatalf("unchanged rule lost state: %+v", st)
	}

	// Changed threshold: still fired with the same id, past evaluations
	// forgotten; the new condition is false, so it resolves after 3.
	low3 := low2
	low3.Threshold = 50
	if err := e.m.SetRules([]Rule{low3, other}); err != nil {
		t.Fatal(err)
	}
	st := e.status("low")
	if st.State != Fired || st.Alerts[0].Violations != 0 || st.Alerts[0].AlertID != fired[0].ID && st.Alerts[0].AlertID != fired[1].ID {
		t.Fatalf("changed rule: %+v", st)
	}
	if len(e.rec.take()) != 0 {
		t.Fatal("a reload notified")
	}

	// Removed rule: resolved at once; disabled rule likewise.
	otherOff := other
	otherOff.Disabled = true
	if err := e.m.SetRules([]Rule{otherOff}); err != nil {
		t.Fatal(err)
	}
	got := e.rec.take()
	reasons := map[string]string{}
	for _, a := range got {
		if a.Condition != Resolved {
			t.Fatalf("transitions %v", conditions(got))
		}
		reasons[a.Rule.Name] = a.Reason
	}
	if reasons["low"] != "rule removed" || reasons["other"] != "rule disabled" {
		t.Fatalf("reasons %v", reasons)
	}
	if rs := e.m.Rules(); len(rs) != 1 || rs[0].Enabled || rs[0].State != Inactive {
		t.Fatalf("rules %+v", rs)
	}
	// A disabled rule is not evaluated.
	e.violate(true)
	e.eval(time.Second)
	if len(e.rec.take()) != 0 || e.status("other").EvalCount != 1 {
		t.Fatal("disabled rule evaluated")
	}
	// Enabled again: fires again with a new id.
	if err := e.m.SetRules([]Rule{other}); err != nil {
		t.Fatal(err)
	}
	e.violate(true)
	e.eval(time.Second)
	again := e.rec.take()
	if len(again) != 1 || again[0].Condition != Fired || again[0].ID == fired[0].ID || again[0].ID == fired[1].ID {
		t.Fatalf("re-enabled: %v", conditions(again))
	}
	if active := e.hist.Active(); len(active) != 1 || active[0].AlertID != again[0].ID {
		t.Fatalf("active in history: %+v", active)
	}
}

func TestSetRulesRefusesInvalid(t *testing.T) {
	e := newEnv(t)
	bad := metricRule("x", LessThan, 1)
	bad.Frequency = 500 * time.Millisecond
	if err := e.m.SetRules([]Rule{bad}); err == nil {
		t.Fatal("accepted 500ms frequency")
	}
	r := metricRule("x", LessThan, 1)
	if err := e.m.SetRules([]Rule{r, r}); err == nil {
		t.Fatal("accepted a duplicate")
	}
}

func TestRestartRestoresFiredAlerts(t *testing.T) {
	dir := t.TempDir()
	e := newEnvIn(t, dir, metricRule("low", LessThan, 90), metricRule("gone", LessThan, 90))
	e.violate(true)
	e.eval(time.Second)
	fired := map[string]string{}
	for _, a := range e.rec.take() {
		fired[a.Rule.Name] = a.ID
	}
	e.hist.Close()

	// Restart: "gone" was removed from the rules file meanwhile.
	e2 := newEnvIn(t, dir, metricRule("low", LessThan, 90))
	got := e2.rec.take()
	if len(got) != 1 || got[0].Rule.Name != "gone" || got[0].Condition != Resolved || got[0].ID != fired["gone"] {
		t.Fatalf("at restart: %v", conditions(got))
	}
	st := e2.status("low")
	if st.State != Fired || st.Alerts[0].AlertID != fired["low"] {
		t.Fatalf("restored: %+v", st)
	}
	// Still violated: no second Fired.
	e2.now = t0.Add(time.Minute)
	e2.violate(true)
	e2.eval(time.Second)
	if len(e2.rec.take()) != 0 {
		t.Fatal("fired twice across a restart")
	}
	for range 3 {
		e2.violate(false)
		e2.eval(time.Second)
	}
	got = e2.rec.take()
	if len(got) != 1 || got[0].Condition != Resolved || got[0].ID != fired["low"] || !got[0].FiredAt.Equal(t0) {
		t.Fatalf("after restart: %+v", got)
	}
	if len(e2.hist.Active()) != 0 {
		t.Fatalf("active: %+v", e2.hist.Active())
	}
}

func TestLogRuleCountAndSplit(t *testing.T) {
	r := Rule{
		Name: "keepalive", Kind: KindLog, Severity: 1, Operator: GreaterThan, Threshold: 2,
		Query:     `AzureDiagnostics | where ResultType == "404104"`,
		Frequency: time.Minute, Window: 5 * time.Minute,
	}
	split := r
	split.Name, split.SplitBy = "per-device", []string{"DeviceId"}
	e := newEnv(t, r, split)
	var queries []LogQuery
	rows := [][]any{{"d1", "404104"}, {"d1", "404104"}, {"d2", "404104"}, {"d1", "404104"}}
	e.logs = func(_ context.Context, q LogQuery) (LogTable, error) {
		queries = append(queries, q)
		return LogTable{Columns: []string{"DeviceId", "ResultType"}, Rows: rows}, nil
	}
	e.eval(time.Minute)
	if len(queries) != 2 || queries[0].Query != r.Query || !queries[0].From.Equal(t0.Add(-5*time.Minute)) || !queries[0].To.Equal(t0) {
		t.Fatalf("queries %+v", queries)
	}
	got := e.rec.take()
	c := conditions(got)
	slices.Sort(c)
	if !slices.Equal(c, []string{"Fired", "Fired(DeviceId=d1)"}) {
		t.Fatalf("transitions %v", c)
	}
	for _, a := range got {
		if a.Rule.Kind.SignalType() != "Log" || a.Value != map[string]float64{"keepalive": 4, "per-device": 3}[a.Rule.Name] {
			t.Fatalf("alert %+v", a)
		}
	}
	// No rows: count 0 is data (the unsplit rule resolves), the split one
	// has no series.
	rows = nil
	for range 3 {
		e.eval(time.Minute)
	}
	if c := conditions(e.rec.take()); len(c) != 2 {
		t.Fatalf("transitions %v", c)
	}
	if st := e.status("keepalive"); st.Alerts[0].Value == nil || *st.Alerts[0].Value != 0 {
		t.Fatalf("count of no rows: %+v", st.Alerts)
	}
}

func TestLogRuleMeasure(t *testing.T) {
	tab := LogTable{Columns: []string{"DeviceId", "n"}, Rows: [][]any{{"a", int64(3)}, {"b", 7.5}, {"a", "4"}}}
	for agg, want := range map[Aggregation]float64{Total: 14.5, Maximum: 7.5, Minimum: 3, Average: 14.5 / 3, Count: 3} {
		r := Rule{Name: "m", Kind: KindLog, Query: "q", Measure: "n", Aggregation: agg}
		obs, err := logObservations(&r, tab)
		if err != nil || len(obs) != 1 || math.Abs(obs[0].value-want) > 1e-9 || !obs[0].hasData {
			t.Errorf("%s: %+v %v", agg, obs, err)
		}
	}
	r := Rule{Name: "m", Kind: KindLog, Query: "q", Measure: "n", Aggregation: Maximum, SplitBy: []string{"DeviceId"}}
	obs, err := logObservations(&r, tab)
	if err != nil || len(obs) != 2 || obs[0].value != 4 || obs[1].value != 7.5 {
		t.Fatalf("split: %+v %v", obs, err)
	}
	r.Measure = "missing"
	if _, err := logObservations(&r, tab); err == nil || !strings.Contains(err.Error(), `no column "missing"`) {
		t.Fatalf("missing column: %v", err)
	}
	r.Measure = "DeviceId"
	if _, err := logObservations(&r, tab); err == nil || !strings.Contains(err.Error(), "not a number") {
		t.Fatalf("text measure: %v", err)
	}
	r.Measure, r.SplitBy = "n", nil
	obs, _ = logObservations(&r, LogTable{Columns: []string{"n"}})
	if len(obs) != 1 || obs[0].hasData {
		t.Fatalf("max of nothing: %+v", obs)
	}
}

// The schedule: with the real loop under synctest's fake clock, a 1 s rule
// is evaluated at every whole second, its window ending there.
func TestRunEvaluatesOnSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &series{}
		h, _, err := OpenFileHistory(t.TempDir()+"/h.jsonl", 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		rec := &recorder{}
		m, err := NewManager(Options{Metrics: s.query, History: h, Notify: rec.notify})
		if err != nil {
			t.Fatal(err)
		}
		r := metricRule("low", LessThan, 90)
		r.Window = 2 * time.Second
		if err := m.SetRules([]Rule{r}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { m.Run(ctx); close(done) }()
		start := time.Now()
		time.Sleep(3550 * time.Millisecond)
		synctest.Wait()
		// A rule added while running is scheduled too.
		r2 := metricRule("added", LessThan, 90)
		r2.Frequency, r2.Window = 2*time.Second, 2*time.Second
		if err := m.SetRules([]Rule{r, r2}); err != nil {
			t.Fatal(err)
		}
		s.add(time.Now(), 10)
		time.Sleep(1600 * time.Millisecond)
		synctest.Wait()
		cancel()
		<-done
		// "low" at 0 1 2 3 4 5 s, "added" (from 3.55 s, every 2 s) at 4 s,
		// each 100 ms late (Offset).
		var lowTimes []time.Duration
		for _, q := range s.queries {
			lowTimes = append(lowTimes, q.To.Sub(start)-100*time.Millisecond)
		}
		want := []time.Duration{0, 1, 2, 3, 4, 4, 5}
		if len(lowTimes) != len(want) {
			t.Fatalf("evaluations at %v", lowTimes)
		}
		for i := range want {
			if lowTimes[i] != want[i]*time.Second {
				t.Fatalf("evaluations at %v, want %v s", lowTimes, want)
			}
		}
		if c := conditions(rec.take()); !slices.Equal(c, []string{"Fired", "Fired"}) {
			t.Fatalf("transitions %v", c)
		}
	})
}

// With an IDSeed, two managers (two nodes of a cluster) that fire one
// series at the same evaluation give it the same id, so one node's
// Resolved names the alert another node's Fired announced; the next
// firing is a new alert, and another seed (another hub) gives other ids.
func TestSeededAlertIDsAgreeAcrossManagers(t *testing.T) {
	fire := func(seed string) (ids []string) {
		r := metricRule("low", LessThan, 90)
		r.ResolveAfter = 1
		s, rec := &series{}, &recorder{}
		h, _, err := OpenFileHistory(filepath.Join(t.TempDir(), "history.jsonl"), DefaultRetention, t0)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		now := t0
		m, err := NewManager(Options{Metrics: s.query, Notify: rec.notify, History: h, Now: func() time.Time { return now }, IDSeed: seed})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.SetRules([]Rule{r}); err != nil {
			t.Fatal(err)
		}
		for _, v := range []float64{80, 100, 80} { // fire, resolve, fire again
			s.add(now.Add(-time.Millisecond), v)
			if err := m.EvaluateAll(context.Background(), now); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Second)
		}
		for _, a := range rec.take() {
			ids = append(ids, a.ID)
		}
		return ids
	}
	a, b, other := fire("hub-a"), fire("hub-a"), fire("hub-b")
	if len(a) != 3 || a[0] != a[1] || a[2] == a[0] {
		t.Fatalf("Fired, Resolved, Fired ids: %v; want the first two equal, the third new", a)
	}
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, same evaluations: %v and %v", a, b)
	}
	if other[0] == a[0] || other[2] == a[2] {
		t.Fatalf("another seed gave the same ids: %v, %v", other, a)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(a[0]) {
		t.Fatalf("id %s is not a version 8 UUID", a[0])
	}
}
