//go:build cgo

package duckdb

import (
	"context"
	"database/sql"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/kql"
)

// The stage's tail: reads that do not wait for the mover.
//
// A reader must see every record an Append returned for. Moving what is
// staged first (sync) made a query wait for the move under way and one
// of its own, 0.6-0.85 s each at 100k records/s (logbench 50M), where the
// query itself takes 10-90 ms. Instead, a staged frame's rows go, as
// day-table rows, into a tail table in the in-memory database arrowDB
// (tail_<segment>: one a stage segment), which the move of that segment's
// frames reads and then drops. They go there in batches (flushTails):
// the tail inserter's once Options.TailBatch records are pending, and a
// reader's or a move's of what is left when it starts. A query reads, in one
// transaction: the tail tables (its first statement, which fixes
// their snapshot), then tether_mark (the highest _Seq stored: every move's
// transaction writes it) and the day tables of the file's snapshot, and
// the view AzureDiagnostics over those tables and the tail rows above the
// mark. No lock the mover holds is waited for, and nothing is seen twice
// or missed: a row moved after the tails' snapshot was committed before
// the file's (the mover drops a tail table after its commit), and a
// frame is in the file's snapshot exactly when its last _Seq is not above
// the mark (moves store whole frames in _Seq order).
//
// (Arrow views cannot serve queries themselves: DuckDB's C API scan of an
// Arrow stream ignores the filters and column lists the optimizer pushes
// into it — a WHERE is dropped, a narrow SELECT crashes — so only
// INSERT … SELECT * reads them.)
//
// Repeats (an _ItemId already stored or staged, which a move skips): a
// record newer than every one staged or stored before it cannot be one
// (connlog.ItemID: a repeat has its original's TimeGenerated), and that is
// nearly every record. The others, the suspects (~1 in 8,000 in loggen's
// log: clocks a little apart), are looked up in their day table and among
// the earlier tail rows at their time, and the view leaves out those found.
//
// The mover stores a chunk whose frames are all in tail tables from them
// (appendTails): the columns are then made by the Appends and the tail
// inserter, beside the move under way, not by the mover between its
// transactions.

// tail is what the stage keeps of a frame in a tail table.
type tail struct {
	seq0   int64    // the first record's _Seq
	n      int      // records
	lo, hi int64    // their oldest and newest TimeGenerated
	gen    int      // its tail table's number (the stage segment's)
	days   []string // the day tables of its records
	susp   []suspect
	// seqs is the batch's _Seq column (number fills it), data its rows
	// until they are in the tail table.
	seqs []int64
	data tailData
	// lost: its insert failed (under the stage's mu); readers then move
	// the stage, and the move reads its frame.
	lost bool
}

// flushTails puts the pending tails into their tail tables: what a
// reader must see, and a move reads from there. A failed insert marks
// them lost.
func (st *stage) flushTails() error {
	if st.insertTails == nil {
		return nil
	}
	st.tailMu.Lock()
	defer st.tailMu.Unlock()
	st.mu.Lock()
	p := st.pending
	st.pending, st.pendingN = nil, 0
	st.mu.Unlock()
	if len(p) == 0 {
		return nil
	}
	err := st.insertTails(p)
	if err != nil {
		st.mu.Lock()
		for _, tl := range p {
			tl.lost = true
		}
		st.mu.Unlock()
	}
	return err
}

// inTables reports whether every frame of tails has its rows in a tail
// table (it has a tail, not lost).
func (st *stage) inTables(tails []*tail) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, tl := range tails {
		if tl == nil || tl.lost {
			return false
		}
	}
	return true
}

// tailInserter inserts the pending tails whenever TailBatch records wait,
// until Close.
func (s *Store) tailInserter() {
	defer s.done.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.stage.tailKick:
		}
		if err := s.stage.flushTails(); err != nil {
			s.log.Warn("connlog/duckdb: inserting tail rows; readers move the stage while they wait", "err", err)
		}
	}
}

// noTail is a stage's tail builder when there are no tail tables.
func noTail(string, []connlog.Record) *tail { return nil }

// suspect is a record that may be a repeat: its _Seq, time and _ItemId.
type suspect struct {
	seq, t int64
	id     string
}

// last is the tail's last _Seq.
func (tl *tail) last() int64 { return tl.seq0 + int64(tl.n) - 1 }

// tailData is a frame's rows before they are in its tail table
// (tail_arrow.go).
type tailData interface{ free() }

// arrowDB is the in-memory database the Arrow views live in: DuckDB
// makes a registered Arrow stream a (non-temporary) view, which a file
// database's WAL cannot hold ("Cannot serialize a table function with
// process-local bind input"), and a transaction may write to one
// database only, so they are made there, before the move's transaction.
const arrowDB = "tether_arrow"

// tailPin is a table of arrowDB a reader reads first: its snapshot of
// the tail tables.
const tailPin = arrowDB + ".main.tail_pin"

// tailTable is the name of tail table gen.
func tailTable(gen int) string { return arrowDB + ".main.tail_" + strconv.Itoa(gen) }

// number gives the records of a frame being staged their _Seq and, with
// tl, fills its _Seq column and finds its suspects. The caller holds mu.
func (st *stage) number(records []connlog.Record, tl *tail) *tail {
	seq0 := st.nextSeq
	st.nextSeq += int64(len(records))
	if tl != nil {
		tl.seq0, tl.n, tl.lo, tl.hi, tl.gen = seq0, len(records), math.MaxInt64, math.MinInt64, st.n
	}
	var day dayCache
	for i := range records {
		t := records[i].TimeGenerated.UnixNano()
		if tl != nil {
			if d := day.table(t); len(tl.days) == 0 || tl.days[len(tl.days)-1] != d && !slices.Contains(tl.days, d) {
				tl.days = append(tl.days, d)
			}
			tl.seqs[i] = seq0 + int64(i)
			if t <= st.hwm {
				tl.susp = append(tl.susp, suspect{seq0 + int64(i), t, strings.Clone(records[i].ItemID)})
			}
			tl.lo, tl.hi = min(tl.lo, t), max(tl.hi, t)
		}
		st.hwm = max(st.hwm, t)
	}
	return tl
}

// suspects returns the suspects of every frame being moved or staged;
// false if a frame has no tail (the reader then moves what is staged and
// reads DuckDB alone).
func (st *stage) suspects() ([]suspect, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []suspect
	for _, l := range [][]*tail{st.inflight, st.tails} {
		for _, tl := range l {
			if tl == nil || tl.lost {
				return nil, false
			}
			out = append(out, tl.susp...)
		}
	}
	return out, true
}

// retire records that a move stored tails (the first of inflight).
func (st *stage) retire(tails []*tail) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(tails) > 0 && len(st.inflight) >= len(tails) && st.inflight[0] == tails[0] {
		st.inflight = st.inflight[len(tails):]
	}
}

// knownFunc reports which of ids are stored in day table table within
// [lo, hi] (TimeGenerated, Unix ns); a table the reader's snapshot does
// not have holds none.
type knownFunc func(table string, lo, hi int64, ids []string) (map[string]bool, error)

// atTimesFunc returns the tail rows above the reader's mark at any of
// times, as suspects (_Seq, time, _ItemId).
type atTimesFunc func(times []int64) ([]suspect, error)

// repeats returns the _Seq of those of sus above after that repeat a
// record before them (known stored, or a tail row before them at the same
// time with the same _ItemId), in increasing order; nil when none. A move
// skips exactly these.
func repeats(sus []suspect, after int64, known knownFunc, atTimes atTimesFunc) ([]int64, error) {
	sus = slices.DeleteFunc(slices.Clone(sus), func(s suspect) bool { return s.seq <= after })
	if len(sus) == 0 {
		return nil, nil
	}
	rep := map[int64]bool{}
	// Stored (all of it is before the tail rows above after): looked up
	// in each day table over its suspects' time range.
	type span struct {
		lo, hi int64
		ids    []string
	}
	spans := map[string]*span{}
	var day dayCache
	var times []int64
	for _, s := range sus {
		d := day.table(s.t)
		sp := spans[d]
		if sp == nil {
			sp = &span{lo: s.t, hi: s.t}
			spans[d] = sp
		}
		sp.lo, sp.hi = min(sp.lo, s.t), max(sp.hi, s.t)
		sp.ids = append(sp.ids, s.id)
		times = append(times, s.t)
	}
	for d, sp := range spans {
		k, err := known(d, sp.lo, sp.hi, sp.ids)
		if err != nil {
			return nil, err
		}
		for _, s := range sus {
			if k[s.id] && day.table(s.t) == d {
				rep[s.seq] = true
			}
		}
	}
	// Staged: an earlier tail row at the same time.
	slices.Sort(times)
	rows, err := atTimes(slices.Compact(times))
	if err != nil {
		return nil, err
	}
	for _, s := range sus {
		for _, r := range rows {
			if r.t == s.t && r.seq < s.seq && r.id == s.id {
				rep[s.seq] = true
			}
		}
	}
	out := make([]int64, 0, len(rep))
	for q := range rep {
		out = append(out, q)
	}
	slices.Sort(out)
	return out, nil
}

// int64List is ns as an SQL list of literals.
func int64List(ns []int64) string {
	parts := make([]string, len(ns))
	for i, q := range ns {
		parts[i] = strconv.FormatInt(q, 10)
	}
	return strings.Join(parts, ", ")
}

// tailRows is a query of the rows of tail tables tables with cond.
func tailRows(tables []string, cond string) string {
	branches := make([]string, len(tables))
	for i, t := range tables {
		branches[i] = "SELECT * FROM " + t
	}
	return "SELECT * FROM (" + strings.Join(branches, " UNION ALL ") + ") WHERE " + cond
}

// atTimes is an atTimesFunc over tail tables tables, rows above after.
func atTimes(ctx context.Context, q queryer, tables []string, after int64) atTimesFunc {
	return func(times []int64) ([]suspect, error) {
		if len(tables) == 0 {
			return nil, nil
		}
		rows, err := q.QueryContext(ctx, "SELECT "+colSeq+", TimeGenerated, "+quote(connlog.ColItemID)+" FROM ("+
			tailRows(tables, colSeq+" > "+strconv.FormatInt(after, 10)+" AND TimeGenerated IN ("+int64List(times)+")")+")")
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []suspect
		for rows.Next() {
			var s suspect
			if err := rows.Scan(&s.seq, &s.t, &s.id); err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, rows.Err()
	}
}

// readTail is ReadQueryIn over DuckDB's committed records and the tail
// tables: see the top of this file. ok false: a staged frame has no tail
// (nothing was read).
func (s *Store) readTail(ctx context.Context, bounds kql.TimeRange, query string, args []any, scan func(*sql.Rows) error) (ok bool, err error) {
	// The records of every Append that returned into the tail tables.
	flush := time.Now()
	if err := s.stage.flushTails(); err != nil {
		return false, nil
	}
	since(&s.stats.readFlush, flush)
	prep := time.Now()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	// The tails' snapshot first (see the top of this file).
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+tailPin).Scan(new(int64)); err != nil {
		return false, err
	}
	sus, ok := s.stage.suspects()
	if !ok {
		return false, nil
	}
	// Then the file's: the mark and the day tables; and the tail tables
	// of the tails' snapshot.
	var mark int64
	var names, tnames sql.NullString
	if err := tx.QueryRowContext(ctx, "SELECT (SELECT max(seq) FROM "+markTable+"), "+
		"(SELECT string_agg(table_name, ',') FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' AND starts_with(table_name, ?)), "+
		"(SELECT string_agg(table_name, ',') FROM duckdb_tables() WHERE database_name = '"+arrowDB+"' AND starts_with(table_name, 'tail_') AND table_name <> 'tail_pin')",
		tablePrefix).Scan(&mark, &names, &tnames); err != nil {
		return true, err
	}
	var tails []string
	for _, name := range strings.Split(tnames.String, ",") {
		if name != "" {
			tails = append(tails, arrowDB+".main."+name)
		}
	}
	var all []string
	for _, name := range strings.Split(names.String, ",") {
		if _, ok := tableDay(name); ok {
			all = append(all, name)
		}
	}
	slices.Sort(all)
	tables := tablesWithin(all, bounds.Start, bounds.End)
	branches := make([]string, 0, len(tables)+2)
	for _, t := range tables {
		branches = append(branches, "SELECT * FROM "+quote(t))
	}
	if len(branches) == 0 {
		branches = append(branches, "SELECT * FROM "+quote(emptyTable))
	}
	if len(tails) > 0 {
		rep, err := repeats(sus, mark, func(table string, lo, hi int64, ids []string) (map[string]bool, error) {
			if !slices.Contains(all, table) {
				return nil, nil
			}
			return knownIn(ctx, tx, table, lo, hi, ids)
		}, atTimes(ctx, tx, tails, mark))
		if err != nil {
			return true, err
		}
		cond := colSeq + " > " + strconv.FormatInt(mark, 10)
		if len(rep) > 0 {
			cond += " AND " + colSeq + " NOT IN (" + int64List(rep) + ")"
		}
		for _, t := range tails {
			branches = append(branches, "SELECT * FROM "+t+" WHERE "+cond)
		}
	}
	res := s.resSnap.Load().list
	if _, err := tx.ExecContext(ctx, viewOverSQL(branches, res, true)); err != nil {
		return true, err
	}
	since(&s.stats.readPrep, prep)
	s.stats.tailReads.Add(1)
	run := time.Now()
	defer since(&s.stats.readRun, run)
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return true, err
	}
	defer rows.Close()
	if err := scan(rows); err != nil {
		return true, err
	}
	return true, rows.Close()
}

// appendTails stores a chunk of staged frames from their tail tables, in
// one transaction, skipping repeats (as append does). The caller holds
// writeMu.
func (s *Store) appendTails(ctx context.Context, tails []*tail) error {
	w, err := s.writer(ctx)
	if err != nil {
		return err
	}
	prep := time.Now()
	var days, gens []string
	var sus []suspect
	first, lastSeq, hwm := tails[0].seq0, s.seq, s.hwm
	for _, tl := range tails {
		for _, d := range tl.days {
			if !slices.Contains(days, d) {
				days = append(days, d)
			}
		}
		if g := tailTable(tl.gen); !slices.Contains(gens, g) {
			gens = append(gens, g)
		}
		sus = append(sus, tl.susp...)
		lastSeq, hwm = max(lastSeq, tl.last()), max(hwm, tl.hi)
	}
	rep, err := repeats(sus, s.seq, func(table string, lo, hi int64, ids []string) (map[string]bool, error) {
		if !slices.Contains(s.tables, table) {
			return nil, nil
		}
		return knownIn(ctx, w, table, lo, hi, ids)
	}, atTimes(ctx, w, gens, s.seq))
	if err != nil {
		return err
	}
	cond := colSeq + " BETWEEN " + strconv.FormatInt(first, 10) + " AND " + strconv.FormatInt(lastSeq, 10)
	if len(rep) > 0 {
		cond += " AND " + colSeq + " NOT IN (" + int64List(rep) + ")"
	}
	ld := &tailLoad{days: days, gens: gens}
	for _, d := range days {
		c := cond
		if len(days) > 1 {
			start, _ := tableDay(d)
			c += " AND TimeGenerated BETWEEN " + strconv.FormatInt(start.UnixNano(), 10) + " AND " + strconv.FormatInt(start.Add(24*time.Hour).UnixNano()-1, 10)
		}
		ld.conds = append(ld.conds, c)
	}
	tables, bytes, err := s.loadTx(ctx, w, prep, days, s.resources, ld, lastSeq)
	if err != nil {
		return err
	}
	s.tables = tables
	s.seq, s.hwm = lastSeq, hwm
	s.walAdd(bytes)
	return nil
}

// tailLoad is the loader of appendTails: day i's rows of the tail tables
// gens within conds[i].
type tailLoad struct {
	days, gens, conds []string
}

func (l *tailLoad) load(ctx context.Context, w *sql.Conn, i int) (int64, error) {
	r, err := w.ExecContext(ctx, "INSERT INTO "+quote(l.days[i])+" "+tailRows(l.gens, l.conds[i]))
	if err != nil {
		return 0, err
	}
	n, _ := r.RowsAffected()
	return n * tailRowBytes, nil
}

func (l *tailLoad) close(context.Context, *sql.Conn) {}

// tailRowBytes is what the checkpoint loop counts for a row a move
// stores from a tail table (the Arrow columns' size of a loggen record,
// about).
const tailRowBytes = 400

// openTails makes arrowDB's tail_pin and gives the stage a connection of
// its own to insert tails with (insertTailRows: tail_arrow.go,
// tail_appender.go).
func (s *Store) openTails(ctx context.Context, st *stage) error {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	var main string
	if err := c.QueryRowContext(ctx, "SELECT current_database()").Scan(&main); err != nil {
		c.Close()
		return err
	}
	// The connection stays in arrowDB: the Arrow views of the inserts
	// are made there without the USE statements of registerArrow.
	for _, q := range []string{"ATTACH IF NOT EXISTS ':memory:' AS " + arrowDB, "CREATE TABLE IF NOT EXISTS " + tailPin + " (x INTEGER)", "USE " + arrowDB} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			c.Close()
			return err
		}
	}
	s.tailConn = c
	made := -1
	st.insertTails = func(tails []*tail) error {
		defer func() {
			for _, tl := range tails {
				tl.data.free()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// One insert a tail table (a stage segment: nearly always one).
		for lo := 0; lo < len(tails); {
			gen := tails[lo].gen
			hi := lo + 1
			for hi < len(tails) && tails[hi].gen == gen {
				hi++
			}
			if gen > made {
				// A new segment: its table, with the day tables' columns.
				if _, err := c.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+tailTable(gen)+" AS SELECT * FROM "+quote(main)+".main."+quote(emptyTable)+" LIMIT 0"); err != nil {
					return err
				}
				made = gen
			}
			if err := insertTailRows(ctx, c, tailTable(gen), tails[lo:hi]); err != nil {
				return err
			}
			lo = hi
		}
		return nil
	}
	return nil
}

// dropTails drops the tail tables of gens (their rows stored). The caller
// holds writeMu.
func (s *Store) dropTails(ctx context.Context, gens []int) {
	w, err := s.writer(ctx)
	if err != nil {
		return
	}
	for _, g := range gens {
		if _, err := w.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+tailTable(g)); err != nil {
			s.log.Warn("connlog/duckdb: dropping a moved tail table", "table", tailTable(g), "err", err)
		}
	}
}
