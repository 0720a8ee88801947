package metrics

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// fillDays writes days of random history before t0+days (all of it older
// than the store's memory floor when the clock is past it): gauge ticks at
// random seconds (the sampler is not always running) with dyadic values, so
// sums are exact in any order, and connects split by ResultType and
// Protocol, some arriving late.
func fillDays(t *testing.T, s *Store, rnd *rand.Rand, days int) {
	t.Helper()
	end := days * 86400
	rts := []string{"Success", "Unauthorized", "Throttled"}
	protos := []string{"Mqtt", "MqttWs"}
	for sec := rnd.IntN(40); sec < end; sec += 1 + rnd.IntN(300) {
		ts := t0.Add(time.Duration(sec) * time.Second)
		s.Tick(ts, []GaugeSample{{Metric: ConnectedDevices, Value: float64(rnd.IntN(4000)) / 4}})
		for range rnd.IntN(3) {
			late := max(0, sec-rnd.IntN(900))
			s.Add(Connects, t0.Add(time.Duration(late)*time.Second), 1,
				DimResultType, rts[rnd.IntN(len(rts))], DimProtocol, protos[rnd.IntN(len(protos))])
		}
		if rnd.IntN(500) == 0 {
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// randomQuery is a window of a random metric, aggregation, filter and
// split over [t0+a, t0+b) seconds; a third of the edges are on the hour.
func randomQuery(rnd *rand.Rand, span int) WindowQuery {
	edge := func() int {
		x := rnd.IntN(span + 1)
		if rnd.IntN(3) == 0 {
			x -= x % 3600
		}
		return x
	}
	a, b := edge(), edge()
	if a > b {
		a, b = b, a
	}
	if a == b {
		b++
	}
	q := WindowQuery{From: t0.Add(time.Duration(a) * time.Second), To: t0.Add(time.Duration(b) * time.Second)}
	if rnd.IntN(2) == 0 {
		q.Metric = ConnectedDevices
		q.Aggregation = []Aggregation{AggAverage, AggMinimum, AggMaximum}[rnd.IntN(3)]
		return q
	}
	q.Metric = Connects
	q.Aggregation = []Aggregation{AggTotal, AggCount}[rnd.IntN(2)]
	switch rnd.IntN(4) {
	case 1:
		q.SplitBy = []string{DimResultType}
	case 2:
		q.SplitBy = []string{DimResultType, DimProtocol}
		q.Filter = map[string][]string{DimProtocol: {"MqttWs"}}
	case 3:
		q.Filter = map[string][]string{DimResultType: {"Success", "Throttled"}}
	}
	return q
}

// both runs q through the hourly rollup and through the minutes alone.
func both(t *testing.T, s *Store, q WindowQuery) (rollup, minutes []WindowValue) {
	t.Helper()
	s.minutesOnly = false
	rollup = window(t, s, q)
	s.minutesOnly = true
	minutes = window(t, s, q)
	s.minutesOnly = false
	return rollup, minutes
}

// sampled tells whether any value of vs has samples (a check that the
// compared windows are not all empty).
func sampled(vs []WindowValue) bool {
	for _, v := range vs {
		if v.Samples > 0 {
			return true
		}
	}
	return false
}

func TestRollupMatchesMinutes(t *testing.T) {
	const days = 3
	clk := &clock{t: t0.Add(days*24*time.Hour + 2*time.Hour)}
	s, err := OpenStore(context.Background(), StoreOptions{Path: filepath.Join(t.TempDir(), "h.db"), Recent: time.Hour, Retention: 30 * 24 * time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	rnd := rand.New(rand.NewPCG(7, 14))
	fillDays(t, s, rnd, days)

	var hoursRead, nonEmpty int
	for range 200 {
		q := randomQuery(rnd, days*86400)
		got, want := both(t, s, q)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s %s filter %v split %v [%s, %s):\nrollup  %+v\nminutes %+v", q.Metric, q.Aggregation, q.Filter, q.SplitBy,
				q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), got, want)
		}
		if ceilHour(ceilMinute(q.From.Unix())) < floorHour(q.To.Unix()) {
			hoursRead++
		}
		if sampled(got) {
			nonEmpty++
		}
	}
	if hoursRead < 100 || nonEmpty < 160 {
		t.Fatalf("only %d windows read whole hours and %d had samples: the comparison proves little", hoursRead, nonEmpty)
	}

	// The API's series over 3 days by the hour (buckets on the grid, as the
	// metrics API makes them) and by 90 minutes (half of them off it).
	for _, interval := range []time.Duration{time.Hour, 90 * time.Minute} {
		q := WindowQuery{Metric: Connects, SplitBy: []string{DimResultType}, From: t0.Add(5 * time.Hour), To: t0.Add(77*time.Hour + 17*time.Minute)}
		aggs := []Aggregation{AggTotal, AggCount}
		s.minutesOnly = false
		got, err := s.Series(context.Background(), q, interval, aggs)
		if err != nil {
			t.Fatal(err)
		}
		s.minutesOnly = true
		want, err := s.Series(context.Background(), q, interval, aggs)
		s.minutesOnly = false
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) || len(got) != 3 {
			t.Fatalf("series by %s differ (or not 3 series): %d vs %d series", interval, len(got), len(want))
		}
	}
}

// rawDB opens the store's file directly (the store closed).
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func count(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A history written before the rollup existed (no hour table, or an empty
// one) gets it filled from its minutes when opened, with the answers it
// gave before; later writes keep it.
func TestRollupBackfillsAnOldHistory(t *testing.T) {
	for _, old := range []string{
		`DROP TABLE hour; DELETE FROM ticks WHERE grain = 3600`, // the schema before the rollup
		`DELETE FROM hour`, // the table there but empty
	} {
		t.Run(old, func(t *testing.T) {
			const days = 2
			path := filepath.Join(t.TempDir(), "h.db")
			clk := &clock{t: t0.Add(days*24*time.Hour + 2*time.Hour)}
			open := func() *Store {
				s, err := OpenStore(context.Background(), StoreOptions{Path: path, Recent: time.Hour, Retention: 30 * 24 * time.Hour, Now: clk.Now})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			s := open()
			rnd := rand.New(rand.NewPCG(3, 4))
			fillDays(t, s, rnd, days)
			queries := make([]WindowQuery, 100)
			answers := make([][]WindowValue, len(queries))
			for i := range queries {
				queries[i] = randomQuery(rnd, days*86400)
				answers[i] = window(t, s, queries[i])
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}

			db := rawDB(t, path)
			hourRows := count(t, db, `SELECT count(*) FROM hour`)
			hourTicks := count(t, db, `SELECT count(*) FROM ticks WHERE grain = 3600`)
			if hourRows < days*24 || hourTicks != days*24 {
				t.Fatalf("the rollup holds %d rows and %d tick hours over %d days", hourRows, hourTicks, days)
			}
			if _, err := db.Exec(old); err != nil {
				t.Fatal(err)
			}
			db.Close()

			s = open()
			t.Cleanup(func() { _ = s.Close(context.Background()) })
			for i, q := range queries {
				got, minutes := both(t, s, q)
				if !reflect.DeepEqual(got, answers[i]) || !reflect.DeepEqual(minutes, answers[i]) {
					t.Fatalf("after the backfill, %s %s [%s, %s): %+v, before %+v", q.Metric, q.Aggregation,
						q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), got, answers[i])
				}
			}
			// Writes after the backfill add to the filled hours.
			last := t0.Add(days*24*time.Hour - 30*time.Minute)
			s.Add(Connects, last, 1, DimResultType, "Success", DimProtocol, "Mqtt")
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			q := WindowQuery{Metric: Connects, Aggregation: AggTotal, From: t0, To: t0.Add(days * 24 * time.Hour)}
			got, minutes := both(t, s, q)
			if !reflect.DeepEqual(got, minutes) || !sampled(got) {
				t.Fatalf("after a write: rollup %+v, minutes %+v", got, minutes)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			db = rawDB(t, path)
			defer db.Close()
			if n, m := count(t, db, `SELECT count(*) FROM hour`), count(t, db, `SELECT count(*) FROM ticks WHERE grain = 3600`); n != hourRows || m != hourTicks {
				t.Fatalf("after the backfill the rollup holds %d rows and %d tick hours, written %d and %d", n, m, hourRows, hourTicks)
			}
		})
	}
}

// Retention drops minutes and hours by whole hours: what is left reads the
// same through the rollup, and nothing older than the retention rounded
// down to the hour stays.
func TestRollupRetention(t *testing.T) {
	const days = 3
	path := filepath.Join(t.TempDir(), "h.db")
	clk := &clock{t: t0.Add(days*24*time.Hour + 2*time.Hour)}
	s, err := OpenStore(context.Background(), StoreOptions{Path: path, Recent: time.Hour, Retention: 24 * time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	rnd := rand.New(rand.NewPCG(5, 6))
	fillDays(t, s, rnd, days)

	// The cutoff is mid-hour: now - 24 h = t0 + 2 d + 2 h 37 min.
	now := t0.Add(days*24*time.Hour + 2*time.Hour + 37*time.Minute)
	clk.Set(now)
	s.lastPrune = time.Time{}
	s.Add(Connects, now, 1, DimResultType, "Success", DimProtocol, "Mqtt")
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	cut := floorHour(now.Add(-24 * time.Hour).Unix())
	if cut != t0.Add(2*24*time.Hour+2*time.Hour).Unix() {
		t.Fatalf("cutoff %d", cut)
	}
	for _, q := range []string{
		`SELECT count(*) FROM min WHERE ts < ?`, `SELECT count(*) FROM hour WHERE ts < ?`,
		`SELECT count(*) FROM ticks WHERE grain IN (60, 3600) AND ts < ?`,
	} {
		if n := count(t, s.db, q, cut); n != 0 {
			t.Errorf("%s: %d rows older than the retention", q, n)
		}
	}
	for _, q := range []string{
		`SELECT count(*) FROM min WHERE ts >= ? AND ts < ?`, `SELECT count(*) FROM hour WHERE ts >= ? AND ts < ?`,
	} {
		if n := count(t, s.db, q, cut, cut+hourSeconds); n == 0 {
			t.Errorf("%s: the hour at the cutoff was dropped too", q)
		}
	}
	// Windows across the cutoff read the same both ways; before it, nothing.
	for i := range 100 {
		q := randomQuery(rnd, days*86400)
		got, want := both(t, s, q)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after retention, %s %s [%s, %s): rollup %+v, minutes %+v", q.Metric, q.Aggregation,
				q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), got, want)
		}
		if q.To.Unix() <= cut && sampled(got) {
			t.Fatalf("window %d before the cutoff has samples: %+v", i, got)
		}
	}
	got := window(t, s, WindowQuery{Metric: ConnectedDevices, Aggregation: AggCount, From: t0, To: time.Unix(cut, 0)})
	if sampled(got) {
		t.Fatalf("%+v before the cutoff", got)
	}
	got = window(t, s, WindowQuery{Metric: ConnectedDevices, Aggregation: AggCount, From: t0, To: t0.Add(days * 24 * time.Hour)})
	if !sampled(got) {
		t.Fatal(fmt.Sprint("nothing after the cutoff: ", got))
	}
}
