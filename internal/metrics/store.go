package metrics

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Store defaults.
const (
	DefaultRecent    = time.Hour
	DefaultRetention = 30 * 24 * time.Hour
	minuteSeconds    = 60
	hourSeconds      = 3600
)

// StoreOptions configure OpenStore.
type StoreOptions struct {
	// Path of the SQLite history file (created if missing).
	Path string
	// Recent is how long the 1 s grain is kept (memory and disk);
	// default an hour. Retention is how long the 1 min grain is kept;
	// default 30 days.
	Recent, Retention time.Duration
	// GaugeEvery is how long gauge samples may wait in memory for their
	// write while nothing else is pending (counts, positions): an idle
	// hub's gauges do not change, and writing them each second was most
	// of its background CPU. A crash loses at most this much gauge
	// history; counts are replayed from the journal positions. Default a
	// minute.
	GaugeEvery time.Duration
	// Now is the clock of retention and the memory floor; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Store is the metrics history: 1 s cells in memory (and on disk) for
// Recent, 1 min cells on disk for Retention, and the journal positions the
// stored counts account for. Safe for concurrent use.
type Store struct {
	o   StoreOptions
	log *slog.Logger
	db  *sql.DB

	flushMu sync.Mutex // one Flush at a time: positions are written in order

	mu sync.Mutex
	// frames are the 1 s cells from floor (a whole minute, unix seconds)
	// on; memory answers queries from floor, the minute table before.
	// minutes are the merge of their closed seconds (all but the open
	// second's gauges), so long windows cost one step a minute.
	frames  map[int64]*frame
	minutes map[int64]*frame
	floor   int64
	// pending is what Flush writes next: the 1 s rows, and (pendingMin)
	// what they and the gauge seconds left out of them add to each
	// minute (and its hour). urgent: pending holds counts or positions,
	// so the next FlushDue writes it; gauges alone wait (GaugeEvery).
	pending      map[pendingKey]cell
	pendingMin   map[pendingKey]cell
	pendingTicks map[int64]int64
	urgent       bool
	heldSince    int64 // the oldest second whose tick is pending (0: none)
	// lastGauges are the gauge values of second lastGaugeTS: a gauge
	// second equal to the one before it gets no 1 s row unless it starts
	// a minute (load fills it in: see fillGauges). gaugeIDs are the
	// series rows known to be gauges (table gauge).
	lastGauges  map[seriesKey]cell
	lastGaugeTS int64
	gaugeKeys   map[seriesKey]bool
	gaugeIDs    map[int64]bool
	pendingPos  map[string]uint64
	positions   map[string]uint64 // as of the last flush or the open
	seriesIDs   map[seriesKey]int64
	stmts       writeStmts
	dims        map[string]map[string]string // dims key → decoded
	open        openSecond
	closed      bool
	lastPrune   time.Time
	// minutesOnly makes windows read the minute table alone, not the
	// hourly rollup (tests compare the two paths).
	minutesOnly bool
}

// frame is one second (or minute): how many seconds the sampler ran in
// it and its cells by metric, then dims key.
type frame struct {
	ticks int64
	cells map[string]map[string]cell
}

func (f *frame) merge(k seriesKey, c cell) {
	m := f.cells[k.metric]
	if m == nil {
		m = map[string]cell{}
		f.cells[k.metric] = m
	}
	cur := m[k.dims]
	cur.merge(c)
	m[k.dims] = cur
}

func (f *frame) set(k seriesKey, c cell) {
	m := f.cells[k.metric]
	if m == nil {
		m = map[string]cell{}
		f.cells[k.metric] = m
	}
	m[k.dims] = c
}

// seriesKey names a series: metric and its dimension values (dimsKey).
type seriesKey struct{ metric, dims string }

type pendingKey struct {
	ts int64
	k  seriesKey
}

// OpenStore opens (or creates) the history file and loads the recent
// seconds into memory.
func OpenStore(ctx context.Context, o StoreOptions) (*Store, error) {
	if o.Path == "" {
		return nil, errors.New("metrics: StoreOptions.Path is required")
	}
	if o.Recent <= 0 {
		o.Recent = DefaultRecent
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Retention < o.Recent {
		o.Retention = o.Recent
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.GaugeEvery <= 0 {
		o.GaugeEvery = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	params := url.Values{}
	params.Add("_pragma", "busy_timeout(10000)")
	params.Add("_pragma", "journal_mode(WAL)")
	params.Add("_pragma", "synchronous(NORMAL)")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: o.Path}).EscapedPath()+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("metrics: open %s: %w", o.Path, err)
	}
	db.SetMaxOpenConns(1) // one writer; reads are rare (windows older than Recent)
	s := &Store{
		o: o, log: o.Logger.With("component", "metrics"), db: db,
		frames: map[int64]*frame{}, minutes: map[int64]*frame{}, pending: map[pendingKey]cell{}, pendingMin: map[pendingKey]cell{},
		pendingTicks: map[int64]int64{}, gaugeKeys: map[seriesKey]bool{}, gaugeIDs: map[int64]bool{},
		pendingPos: map[string]uint64{}, positions: map[string]uint64{},
		seriesIDs: map[seriesKey]int64{}, dims: map[string]map[string]string{"": {}},
	}
	s.floor = ceilMinute(o.Now().Add(-o.Recent).Unix())
	if err := s.load(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("metrics: %s: %w", o.Path, err)
	}
	if err := s.stmts.prepare(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("metrics: %s: %w", o.Path, err)
	}
	return s, nil
}

// writeStmts are the statements of a Flush, prepared once: Flush runs
// every second, and preparing them in each transaction was a third of
// its CPU (SQLite parses each statement).
type writeStmts struct {
	sec, min, hour, ticks, pos, gauge *sql.Stmt
}

func (w *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	const upsert = ` (ts, series, sum, count, min, max) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (ts, series) DO UPDATE SET sum = sum + excluded.sum, count = count + excluded.count,
		min = min(min, excluded.min), max = max(max, excluded.max)`
	for _, p := range []struct {
		to  **sql.Stmt
		sql string
	}{
		{&w.sec, `INSERT INTO sec` + upsert},
		{&w.min, `INSERT INTO min` + upsert},
		{&w.hour, `INSERT INTO hour` + upsert},
		{&w.ticks, `INSERT INTO ticks (grain, ts, n) VALUES (?, ?, ?)
			ON CONFLICT (grain, ts) DO UPDATE SET n = n + excluded.n`},
		{&w.pos, `INSERT INTO position (stream, seq) VALUES (?, ?)
			ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq`},
		{&w.gauge, `INSERT INTO gauge (series) VALUES (?) ON CONFLICT DO NOTHING`},
	} {
		st, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return err
		}
		*p.to = st
	}
	return nil
}

const schema = `
CREATE TABLE IF NOT EXISTS series (
	id     INTEGER PRIMARY KEY,
	metric TEXT NOT NULL,
	dims   TEXT NOT NULL, -- JSON object, keys sorted: dimension → value
	UNIQUE (metric, dims)
);
CREATE TABLE IF NOT EXISTS sec (
	ts INTEGER NOT NULL, series INTEGER NOT NULL,
	sum REAL NOT NULL, count INTEGER NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
	PRIMARY KEY (ts, series)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS min (
	ts INTEGER NOT NULL, series INTEGER NOT NULL,
	sum REAL NOT NULL, count INTEGER NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
	PRIMARY KEY (ts, series)
) WITHOUT ROWID;
-- hour: the merge of each series' minute rows of an hour (a rollup kept in
-- the transaction that writes the minutes), so long windows read whole
-- hours here and only their edge minutes from min.
CREATE TABLE IF NOT EXISTS hour (
	ts INTEGER NOT NULL, series INTEGER NOT NULL,
	sum REAL NOT NULL, count INTEGER NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
	PRIMARY KEY (ts, series)
) WITHOUT ROWID;
-- ticks: how many seconds of a grain the sampler ran (1 s grain: 1; also
-- 60 and 3600).
CREATE TABLE IF NOT EXISTS ticks (
	grain INTEGER NOT NULL, ts INTEGER NOT NULL, n INTEGER NOT NULL,
	PRIMARY KEY (grain, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS position (
	stream TEXT PRIMARY KEY, seq INTEGER NOT NULL
);
-- gauge: the series that are gauges. Their 1 s rows are written when the
-- value changes and at the first second of each minute; a second with a
-- tick and no row has the value of the second before (a row of count 0
-- ends the series there). Files from before this table have every row.
CREATE TABLE IF NOT EXISTS gauge (series INTEGER PRIMARY KEY);`

// load creates the schema and reads series, positions and the seconds
// from the floor on.
func (s *Store) load(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if err := s.backfillHours(ctx); err != nil {
		return fmt.Errorf("hourly rollup: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, metric, dims FROM series`)
	if err != nil {
		return err
	}
	ids := map[int64]seriesKey{}
	for rows.Next() {
		var id int64
		var k seriesKey
		var js string
		if err := rows.Scan(&id, &k.metric, &js); err != nil {
			rows.Close()
			return err
		}
		if k.dims, err = keyFromJSON(js); err != nil {
			rows.Close()
			return fmt.Errorf("series %d: %w", id, err)
		}
		s.seriesIDs[k] = id
		ids[id] = k
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if rows, err = s.db.QueryContext(ctx, `SELECT stream, seq FROM position`); err != nil {
		return err
	}
	for rows.Next() {
		var stream string
		var seq uint64
		if err := rows.Scan(&stream, &seq); err != nil {
			rows.Close()
			return err
		}
		s.positions[stream] = seq
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if rows, err = s.db.QueryContext(ctx, `SELECT series FROM gauge`); err != nil {
		return err
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		s.gaugeIDs[id] = true
		if k, ok := ids[id]; ok {
			s.gaugeKeys[k] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if rows, err = s.db.QueryContext(ctx, `SELECT ts, series, sum, count, min, max FROM sec WHERE ts >= ?`, s.floor); err != nil {
		return err
	}
	ends := map[pendingKey]bool{} // count-0 rows: the gauge ended before ts
	for rows.Next() {
		var ts, id int64
		var c cell
		if err := rows.Scan(&ts, &id, &c.Sum, &c.Count, &c.Min, &c.Max); err != nil {
			rows.Close()
			return err
		}
		k, ok := ids[id]
		switch {
		case !ok:
		case c.Count == 0:
			ends[pendingKey{ts, k}] = true
		default:
			s.frame(ts).set(k, c)
			s.minute(ts).merge(k, c)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if rows, err = s.db.QueryContext(ctx, `SELECT ts, n FROM ticks WHERE grain = 1 AND ts >= ?`, s.floor); err != nil {
		return err
	}
	for rows.Next() {
		var ts, n int64
		if err := rows.Scan(&ts, &n); err != nil {
			rows.Close()
			return err
		}
		s.frame(ts).ticks = n
		s.minute(ts).ticks += n
		s.open.ts = max(s.open.ts, ts)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	s.fillGauges(ends)
	return nil
}

// fillGauges gives each loaded second with a tick the gauge values of the
// second before it that it has no row of (they had not changed), unless
// a row of count 0 ended that gauge (ends). Seconds go in order, so a
// value carries over a run of seconds.
func (s *Store) fillGauges(ends map[pendingKey]bool) {
	secs := make([]int64, 0, len(s.frames))
	for ts, f := range s.frames {
		if f.ticks > 0 {
			secs = append(secs, ts)
		}
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	for _, ts := range secs {
		prev := s.frames[ts-1]
		if prev == nil || prev.ticks == 0 {
			continue
		}
		f := s.frames[ts]
		for metric, byDims := range prev.cells {
			for dims, c := range byDims {
				k := seriesKey{metric, dims}
				if !s.gaugeKeys[k] || ends[pendingKey{ts, k}] {
					continue
				}
				if _, ok := f.cells[metric][dims]; ok {
					continue
				}
				f.set(k, c)
				s.minute(ts).merge(k, c)
			}
		}
	}
}

// frame returns the second ts, making it. Callers hold mu.
func (s *Store) frame(ts int64) *frame {
	f := s.frames[ts]
	if f == nil {
		f = &frame{cells: map[string]map[string]cell{}}
		s.frames[ts] = f
	}
	return f
}

// minute returns the minute of second ts, making it. Callers hold mu.
func (s *Store) minute(ts int64) *frame {
	m := floorMinute(ts)
	f := s.minutes[m]
	if f == nil {
		f = &frame{cells: map[string]map[string]cell{}}
		s.minutes[m] = f
	}
	return f
}

// Position is the journal stream sequence the stored counts of stream
// include (0: none).
func (s *Store) Position(stream string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.pendingPos[stream]; ok {
		return p
	}
	return s.positions[stream]
}

// SetPosition records that the counts added so far include stream up to
// seq; it is written with them.
func (s *Store) SetPosition(stream string, seq uint64) {
	s.mu.Lock()
	s.pendingPos[stream] = seq
	s.urgent = true
	s.mu.Unlock()
}

// Add records a sample of value v of metric at t, in the series of dims
// (name, value pairs). Counters add 1 per occurrence; distributions their
// observation.
func (s *Store) Add(metric string, t time.Time, v float64, dims ...string) {
	s.add(seriesKey{metric, dimsKey(dims)}, t, v)
}

// add is Add of a series whose key the caller keeps.
func (s *Store) add(k seriesKey, t time.Time, v float64) {
	s.mu.Lock()
	s.addLocked(t.Unix(), k, sample(v))
	s.mu.Unlock()
}

func (s *Store) addLocked(ts int64, k seriesKey, c cell) {
	if s.closed {
		return
	}
	if ts >= s.floor {
		s.frame(ts).merge(k, c)
		s.minute(ts).merge(k, c)
	}
	mergeInto(s.pending, pendingKey{ts, k}, c)
	mergeInto(s.pendingMin, pendingKey{floorMinute(ts), k}, c)
	s.urgent = true
}

func mergeInto(m map[pendingKey]cell, k pendingKey, c cell) {
	cur := m[k]
	cur.merge(c)
	m[k] = cur
}

// GaugeSample is one gauge value for Tick.
type GaugeSample struct {
	Metric string
	Dims   []string // name, value pairs
	Value  float64
}

// openSecond is the second the sampler is in: its gauge values may still
// be replaced (the sample of a second is the last value taken in it) and
// reach pending only when the next second starts.
type openSecond struct {
	ts    int64
	cells map[seriesKey]cell // nil: closed (after a restart)
}

// Tick records that the sampler ran in now's second, with the gauges'
// values then. Within one second, a later Tick replaces the values it
// names (so the newest second is up to date between whole seconds); an
// earlier second than the last one is ignored (false).
func (s *Store) Tick(now time.Time, gauges []GaugeSample) bool {
	ts := now.Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || ts < s.open.ts || ts == s.open.ts && s.open.cells == nil {
		return false
	}
	if ts > s.open.ts {
		s.commitOpenLocked()
		s.open = openSecond{ts: ts, cells: map[seriesKey]cell{}}
		s.pendingTicks[ts] = 1
		if s.heldSince == 0 {
			s.heldSince = ts
		}
		if ts >= s.floor {
			s.frame(ts).ticks = 1
		}
	}
	for _, g := range gauges {
		k, c := seriesKey{g.Metric, dimsKey(g.Dims)}, sample(g.Value)
		s.open.cells[k] = c
		if ts >= s.floor {
			s.frame(ts).set(k, c)
		}
	}
	return true
}

// commitOpenLocked closes the open second: its gauge values go to its
// minute, in memory and pending, and to pending 1 s rows where they
// differ from the second before (or start a minute, or follow a second
// without a tick); a gauge the second before had and this one has not
// gets a row of count 0, which ends it (see fillGauges).
func (s *Store) commitOpenLocked() {
	if s.open.cells == nil {
		return
	}
	ts := s.open.ts
	inMemory := ts >= s.floor
	adjacent := s.lastGaugeTS == ts-1
	rowEach := !adjacent || floorMinute(ts) == ts
	for k, c := range s.open.cells {
		s.gaugeKeys[k] = true
		mergeInto(s.pendingMin, pendingKey{floorMinute(ts), k}, c)
		if last, ok := s.lastGauges[k]; rowEach || !ok || last != c {
			mergeInto(s.pending, pendingKey{ts, k}, c)
		}
		if inMemory {
			s.minute(ts).merge(k, c)
		}
	}
	if adjacent {
		for k := range s.lastGauges {
			if _, ok := s.open.cells[k]; !ok {
				s.pending[pendingKey{ts, k}] = cell{}
			}
		}
	}
	if inMemory {
		s.minute(ts).ticks++
	}
	s.lastGauges, s.lastGaugeTS = s.open.cells, ts
	s.open.cells = nil
}

// FlushDue flushes (Flush) when counts or positions are pending, or the
// oldest pending second is GaugeEvery old; otherwise the gauge seconds
// keep waiting in memory, which answers every query about them.
func (s *Store) FlushDue(ctx context.Context) error {
	s.mu.Lock()
	due := s.urgent || s.heldSince != 0 && s.o.Now().Unix()-s.heldSince >= int64(s.o.GaugeEvery/time.Second)
	s.mu.Unlock()
	if !due {
		return nil
	}
	return s.Flush(ctx)
}

// Flush writes what was added since the last Flush, with the positions,
// in one transaction; on failure it is kept for the next Flush. It also
// drops what is past the retention (at most once a minute).
func (s *Store) Flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	pending, pendingMin, ticks, pos := s.pending, s.pendingMin, s.pendingTicks, s.pendingPos
	urgent, heldSince := s.urgent, s.heldSince
	s.pending, s.pendingMin, s.pendingTicks, s.pendingPos = map[pendingKey]cell{}, map[pendingKey]cell{}, map[int64]int64{}, map[string]uint64{}
	s.urgent, s.heldSince = false, 0
	gauges := map[seriesKey]bool{}
	for pk := range pending {
		if s.gaugeKeys[pk.k] {
			gauges[pk.k] = true
		}
	}
	s.mu.Unlock()

	err := s.write(ctx, pending, pendingMin, ticks, pos, gauges)
	s.mu.Lock()
	if err != nil {
		// Put it back under what came meanwhile.
		for _, p := range []struct{ from, to map[pendingKey]cell }{{pending, s.pending}, {pendingMin, s.pendingMin}} {
			for k, c := range p.from {
				cur := c
				cur.merge(p.to[k])
				p.to[k] = cur
			}
		}
		s.urgent = s.urgent || urgent
		if heldSince != 0 && (s.heldSince == 0 || heldSince < s.heldSince) {
			s.heldSince = heldSince
		}
		for ts, n := range ticks {
			s.pendingTicks[ts] += n
		}
		for st, seq := range pos {
			if _, newer := s.pendingPos[st]; !newer {
				s.pendingPos[st] = seq
			}
		}
		s.mu.Unlock()
		return fmt.Errorf("metrics: flush: %w", err)
	}
	for st, seq := range pos {
		s.positions[st] = seq
	}
	now := s.o.Now()
	prune := now.Sub(s.lastPrune) >= time.Minute
	if prune {
		s.lastPrune = now
		s.pruneMemoryLocked(now)
	}
	s.mu.Unlock()
	if prune {
		return s.pruneDisk(ctx, now)
	}
	return nil
}

// write writes the 1 s rows (pending), the minutes and their hours
// (pendingMin), the ticks and the positions in one transaction; gauges
// are the series of pending that are gauges.
func (s *Store) write(ctx context.Context, pending, pendingMin map[pendingKey]cell, ticks map[int64]int64, pos map[string]uint64, gauges map[seriesKey]bool) error {
	if len(pending) == 0 && len(pendingMin) == 0 && len(ticks) == 0 && len(pos) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st := s.stmts
	sec, mins, hours := tx.StmtContext(ctx, st.sec), tx.StmtContext(ctx, st.min), tx.StmtContext(ctx, st.hour)
	// The hourly rollup gets each series' merge of this write's cells per
	// hour: one upsert an hour instead of one a second.
	type hourKey struct{ ts, id int64 }
	perHour := map[hourKey]cell{}
	horizon := s.o.Now().Add(-s.o.Recent).Unix()
	// Series rows made in this transaction are cached only once it has
	// committed: after a rollback their ids belong to nobody.
	made := map[seriesKey]int64{}
	madeGauges := map[int64]bool{}
	for pk, c := range pending {
		if pk.ts < horizon {
			continue
		}
		id, err := s.seriesID(ctx, tx, pk.k, made)
		if err != nil {
			return err
		}
		if gauges[pk.k] && !s.isGaugeID(id) && !madeGauges[id] {
			if _, err := tx.StmtContext(ctx, st.gauge).ExecContext(ctx, id); err != nil {
				return err
			}
			madeGauges[id] = true
		}
		if _, err := sec.ExecContext(ctx, pk.ts, id, c.Sum, c.Count, c.Min, c.Max); err != nil {
			return err
		}
	}
	for pk, c := range pendingMin {
		if c.Count == 0 {
			continue
		}
		id, err := s.seriesID(ctx, tx, pk.k, made)
		if err != nil {
			return err
		}
		if _, err := mins.ExecContext(ctx, pk.ts, id, c.Sum, c.Count, c.Min, c.Max); err != nil {
			return err
		}
		hk := hourKey{floorHour(pk.ts), id}
		cur := perHour[hk]
		cur.merge(c)
		perHour[hk] = cur
	}
	for hk, c := range perHour {
		if c.Count == 0 {
			continue
		}
		if _, err := hours.ExecContext(ctx, hk.ts, hk.id, c.Sum, c.Count, c.Min, c.Max); err != nil {
			return err
		}
	}
	hourTicks := map[int64]int64{}
	for ts, n := range ticks {
		for _, g := range []struct{ grain, ts int64 }{{1, ts}, {minuteSeconds, floorMinute(ts)}} {
			if _, err := tx.StmtContext(ctx, st.ticks).ExecContext(ctx, g.grain, g.ts, n); err != nil {
				return err
			}
		}
		hourTicks[floorHour(ts)] += n
	}
	for ts, n := range hourTicks {
		if _, err := tx.StmtContext(ctx, st.ticks).ExecContext(ctx, hourSeconds, ts, n); err != nil {
			return err
		}
	}
	for stream, seq := range pos {
		if _, err := tx.StmtContext(ctx, st.pos).ExecContext(ctx, stream, seq); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.mu.Lock()
	for k, id := range made {
		s.seriesIDs[k] = id
	}
	for id := range madeGauges {
		s.gaugeIDs[id] = true
	}
	s.mu.Unlock()
	return nil
}

func (s *Store) isGaugeID(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gaugeIDs[id]
}

// seriesID finds or makes the row of k within tx; made holds the rows
// this transaction made.
func (s *Store) seriesID(ctx context.Context, tx *sql.Tx, k seriesKey, made map[seriesKey]int64) (int64, error) {
	s.mu.Lock()
	id, ok := s.seriesIDs[k]
	s.mu.Unlock()
	if ok {
		return id, nil
	}
	if id, ok := made[k]; ok {
		return id, nil
	}
	err := tx.QueryRowContext(ctx, `INSERT INTO series (metric, dims) VALUES (?, ?)
		ON CONFLICT (metric, dims) DO UPDATE SET metric = excluded.metric RETURNING id`, k.metric, dimsJSON(k.dims)).Scan(&id)
	if err != nil {
		return 0, err
	}
	made[k] = id
	return id, nil
}

// pruneMemoryLocked moves the floor to the start of the recent window and
// drops the seconds before it.
func (s *Store) pruneMemoryLocked(now time.Time) {
	s.floor = max(s.floor, ceilMinute(now.Add(-s.o.Recent).Unix()))
	for ts := range s.frames {
		if ts < s.floor {
			delete(s.frames, ts)
		}
	}
	for ts := range s.minutes {
		if ts < s.floor {
			delete(s.minutes, ts)
		}
	}
}

// pruneDisk drops seconds past Recent, and minutes and hours past the
// Retention. Minutes go by whole hours (the retention rounded down to an
// hour; up to 59 minutes more are kept), so an hour row never stands for
// minutes that are gone: a window reads the same from either table.
func (s *Store) pruneDisk(ctx context.Context, now time.Time) error {
	secs := now.Add(-s.o.Recent).Unix()
	mins := floorHour(now.Add(-s.o.Retention).Unix())
	for _, q := range []struct {
		sql string
		arg int64
	}{
		{`DELETE FROM sec WHERE ts < ?`, secs},
		{`DELETE FROM ticks WHERE grain = 1 AND ts < ?`, secs},
		{`DELETE FROM min WHERE ts < ?`, mins},
		{`DELETE FROM ticks WHERE grain = 60 AND ts < ?`, mins},
		{`DELETE FROM hour WHERE ts < ?`, mins},
		{`DELETE FROM ticks WHERE grain = 3600 AND ts < ?`, mins},
	} {
		if _, err := s.db.ExecContext(ctx, q.sql, q.arg); err != nil {
			return fmt.Errorf("metrics: retention: %w", err)
		}
	}
	return nil
}

// Close writes what is pending and closes the file. Idempotent.
func (s *Store) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.commitOpenLocked()
	s.mu.Unlock()
	err := s.Flush(ctx)
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return errors.Join(err, s.db.Close())
}

func floorMinute(ts int64) int64 {
	r := ts % minuteSeconds
	if r < 0 {
		r += minuteSeconds
	}
	return ts - r
}

func floorHour(ts int64) int64 {
	r := ts % hourSeconds
	if r < 0 {
		r += hourSeconds
	}
	return ts - r
}

func ceilHour(ts int64) int64 {
	f := floorHour(ts)
	if f == ts {
		return ts
	}
	return f + hourSeconds
}

func ceilMinute(ts int64) int64 {
	f := floorMinute(ts)
	if f == ts {
		return ts
	}
	return f + minuteSeconds
}

// dimsKey is the canonical form of name, value pairs: "name=value" lines,
// sorted by name, joined by '\x1f' (a separator a value cannot hold:
// dimsKey replaces control characters). "" for none.
func dimsKey(pairs []string) string {
	if len(pairs) < 2 {
		return ""
	}
	parts := make([]string, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		parts = append(parts, clean(pairs[i])+"="+clean(pairs[i+1]))
	}
	sort.Strings(parts)
	return strings.Join(parts, "\x1f")
}

// clean replaces control characters (names hold no '=', so a value may).
func clean(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r < ' ' }) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' {
			return '?'
		}
		return r
	}, s)
}

// decodeDims parses a dims key (cached). Callers hold mu or own s.
func (s *Store) decodeDims(key string) (map[string]string, error) {
	if m, ok := s.dims[key]; ok {
		return m, nil
	}
	m := map[string]string{}
	for _, part := range strings.Split(key, "\x1f") {
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("metrics: bad dimensions key %q", key)
		}
		m[name] = value
	}
	s.dims[key] = m
	return m, nil
}

// dimsJSON is the key as the JSON object the table keeps (readable with
// any SQLite client).
func dimsJSON(key string) string {
	m := map[string]string{}
	if key != "" {
		for _, part := range strings.Split(key, "\x1f") {
			name, value, _ := strings.Cut(part, "=")
			m[name] = value
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// keyFromJSON is the dims key of a series row's JSON object.
func keyFromJSON(js string) (string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		return "", fmt.Errorf("metrics: series dimensions %q: %w", js, err)
	}
	pairs := make([]string, 0, 2*len(m))
	for name, value := range m {
		pairs = append(pairs, name, value)
	}
	return dimsKey(pairs), nil
}

// Adder adds one sample (see Store.Add); Apply hands one out.
type Adder func(metric string, t time.Time, v float64, dims ...string)

// Apply runs fn, whose samples account for a journal message, and moves
// stream's position to seq, atomically with respect to Flush: the file
// never holds the samples without the position or the other way round.
func (s *Store) Apply(stream string, seq uint64, fn func(add Adder)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(func(metric string, t time.Time, v float64, dims ...string) {
		s.addLocked(t.Unix(), seriesKey{metric, dimsKey(dims)}, sample(v))
	})
	if !s.closed {
		s.pendingPos[stream] = seq
	}
}
