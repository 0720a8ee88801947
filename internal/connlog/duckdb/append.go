//go:build cgo

package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
)

// Append stores records, all or none, skipping known _ItemIds. In a
// database file it stages them (stage.go): once Append returns they are
// on disk and every reader sees them, though DuckDB takes them in later,
// many batches in one transaction. In memory (":memory:") it appends
// them in one transaction of their own.
func (s *Store) Append(ctx context.Context, records []connlog.Record) error {
	if len(records) == 0 {
		return ctx.Err()
	}
	for i := range records {
		if err := records[i].Validate(); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	st := s.stage
	if st == nil {
		return s.appendNow(ctx, records)
	}
	s.stats.appends.Add(1)
	// Back-pressure: DuckDB is behind; slow down to the mover's pace, and
	// at the limit wait for it to take the staged records in.
	held := time.Now()
	if d := st.pace(len(records), s.o.MaxStaged, s.o.MaxStagedBytes); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if err := st.waitRoom(ctx, s.o.MaxStaged, s.o.MaxStagedBytes); err != nil {
		return err
	}
	since(&s.stats.held, held)
	put := time.Now()
	build := s.buildTail
	if s.tailConn == nil {
		build = noTail
	}
	n, first, err := st.put(records, build, &s.stats.stageSync)
	since(&s.stats.stageWrite, put)
	if err != nil {
		return fmt.Errorf("connlog/duckdb: append: %w", err)
	}
	if first || n >= s.o.MoveRecords {
		st.wake()
	}
	return nil
}

// appendNow stores records in one transaction, skipping known _ItemIds:
// as one frame (stage_codec.go) that append reads, the way a move reads
// the staged ones.
//
// Dedup without a unique index (which DuckDB would hold in memory for
// every stored id): a record newer than everything stored (s.hwm) cannot
// be a repeat, and that is nearly every record of a live log. The others
// — a redelivery after a crash, a late event — are looked up in their own
// day table, within the batch's time range there, where the zone maps of
// TimeGenerated leave a row group or two to read. This relies on what
// connlog.ItemID guarantees: a repeated _ItemId comes with the same
// TimeGenerated.
func (s *Store) appendNow(ctx context.Context, records []connlog.Record) error {
	var rs rows
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	if err := rs.add(framePayload(encodeFrame(nil, records)), s.seq+1); err != nil {
		return fmt.Errorf("connlog/duckdb: append: %w", err)
	}
	if err := s.append(ctx, &rs); err != nil {
		return fmt.Errorf("connlog/duckdb: append: %w", err)
	}
	return nil
}

// append stores rs in one transaction, skipping known _ItemIds (see
// appendNow). The caller holds writeMu.
func (s *Store) append(ctx context.Context, rs *rows) error {
	w, err := s.writer(ctx)
	if err != nil {
		return err
	}
	// Repeats within the batch, then in the store. Records are kept by
	// index: _Seq follows the order of rs.
	prep := time.Now()
	n := rs.len()
	fresh := make([]int32, 0, n)
	var old []int32
	// A repeat has its original's TimeGenerated (connlog.ItemID): only
	// records at a time that occurs more than once in rs can be repeats
	// of each other, and only their _ItemIds go through seen (a map of
	// every _ItemId of a chunk whose times were not strictly increasing,
	// as the log's are not quite, was ~2 % of logbench's CPU at 10M).
	shared := sharedTimes(rs.times)
	var seen map[string]struct{}
	if shared != nil {
		seen = make(map[string]struct{})
	}
	for i := range n {
		if _, ok := shared[rs.times[i]]; ok {
			id := rs.itemID(i)
			if _, dup := seen[id]; dup {
				continue
			}
			seen[id] = struct{}{}
		}
		if rs.times[i] > s.hwm {
			fresh = append(fresh, int32(i))
		} else {
			old = append(old, int32(i))
		}
	}
	if len(old) > 0 {
		known, err := s.knownIDs(ctx, w, rs, old)
		if err != nil {
			return err
		}
		for _, i := range old {
			if !known[rs.itemID(int(i))] {
				fresh = append(fresh, i)
			}
		}
	}
	lastSeq := max(s.seq, rs.seqs[n-1])
	if len(fresh) == 0 {
		s.seq = lastSeq
		return ctx.Err()
	}
	// Group by day, keeping batch order within a day (fresh puts "old"
	// ones last). Nearly every batch is of one day or two: the groups are
	// a short list, the one the last record went to looked at first.
	var days []string
	var byDay [][]int32
	var day dayCache
	g := -1
	for _, i := range fresh {
		d := day.table(rs.times[i])
		if g < 0 || days[g] != d {
			g = slices.Index(days, d)
			if g < 0 {
				days, byDay = append(days, d), append(byDay, nil)
				g = len(days) - 1
			}
		}
		byDay[g] = append(byDay[g], i)
	}
	// What the transaction writes is made before it begins (the Arrow
	// loader must register its views outside it): each record's resource
	// tuple and the bytes of its strings, one record decoded at a time.
	res := resAssigner{res: s.resources, index: s.resIndex}
	loads := make([]dayLoad, len(days))
	var r connlog.Record
	for g, d := range days {
		idx := byDay[g]
		ld := dayLoad{table: d, rows: rs, idx: idx, seqs: make([]int64, len(idx)), res: make([]uint16, len(idx))}
		for j, i := range idx {
			ld.seqs[j] = rs.seqs[i]
			rs.decode(int(i), &r)
			if ld.res[j], err = res.id(&r); err != nil {
				return err
			}
			for f, p := range recordStrings(&r) {
				ld.bytes[f] += len(*p)
			}
		}
		loads[g] = ld
	}
	ld, err := prepareLoad(ctx, w, loads)
	if err != nil {
		return err
	}
	defer ld.close(ctx, w)
	tables, bytes, err := s.loadTx(ctx, w, prep, days, res.res, ld, lastSeq)
	if err != nil {
		return err
	}
	s.tables = tables
	if len(res.res) > len(s.resources) {
		for id := len(s.resources); id < len(res.res); id++ {
			s.resIndex[res.res[id]] = uint16(id)
		}
		s.resources = res.res
		s.publishResources()
	}
	s.seq = lastSeq
	for _, i := range fresh {
		s.hwm = max(s.hwm, rs.times[i])
	}
	s.walAdd(bytes)
	return nil
}

// loadTx runs a move's transaction, prepared since prep: appendTx with
// days, res and ld, and commit with lastSeq. The caller holds writeMu.
func (s *Store) loadTx(ctx context.Context, w *sql.Conn, prep time.Time, days []string, res []resTuple, ld loader, lastSeq int64) ([]string, int64, error) {
	since(&s.stats.movePrep, prep)
	load := time.Now()
	if _, err := w.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		s.dropWriter()
		return nil, 0, err
	}
	tables, bytes, err := s.appendTx(ctx, w, days, res, ld)
	since(&s.stats.moveLoad, load)
	if err = s.commit(ctx, w, err, lastSeq); err != nil {
		return nil, 0, err
	}
	return tables, bytes, nil
}

// commit ends the writer's transaction: on err (of the statements in it)
// it rolls back and returns err; otherwise it records lastSeq as the
// highest _Seq stored (tether_mark, which readers of the stage's tail
// compare with: tail.go) and commits. The caller holds writeMu.
func (s *Store) commit(ctx context.Context, w *sql.Conn, err error, lastSeq int64) error {
	if err == nil {
		_, err = w.ExecContext(ctx, "UPDATE "+markTable+" SET seq = ?", lastSeq)
	}
	if err == nil {
		commit := time.Now()
		_, err = w.ExecContext(ctx, "COMMIT")
		since(&s.stats.moveCommit, commit)
	}
	if err != nil {
		if _, rerr := w.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil && !strings.Contains(rerr.Error(), "no transaction") {
			s.dropWriter()
		}
	}
	return err
}

// dayLoad is what a move appends to one day table: the records (rows
// idx of rows), their _Seq and _Res, and the bytes of each string field
// over them (in recordStrings order), which size the Arrow loader's
// columns.
type dayLoad struct {
	table string
	rows  *rows
	idx   []int32
	seqs  []int64
	res   []uint16
	bytes [stringFieldCount]int
}

// appendTx creates missing day tables and resource tuples (res beyond
// s.resources; and the view over them) and appends the records of ld,
// inside the caller's transaction. It returns the day tables after it and
// the bytes appended (estimate, for the checkpoint loop).
func (s *Store) appendTx(ctx context.Context, w *sql.Conn, days []string, res []resTuple, ld loader) ([]string, int64, error) {
	tables := s.tables
	var created bool
	for _, d := range days {
		if !slices.Contains(tables, d) {
			if _, err := w.ExecContext(ctx, createTableSQL(d)); err != nil {
				return nil, 0, err
			}
			tables = append(slices.Clone(tables), d)
			created = true
		}
	}
	if err := insertResources(ctx, w, res, len(s.resources)); err != nil {
		return nil, 0, err
	}
	if created || len(res) > len(s.resources) {
		slices.Sort(tables)
		if _, err := w.ExecContext(ctx, viewSQL(tables, res)); err != nil {
			return nil, 0, err
		}
	}
	var bytes int64
	for i := range days {
		n, err := ld.load(ctx, w, i)
		if err != nil {
			return nil, 0, err
		}
		bytes += n
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
	}
	return tables, bytes, nil
}

// stringField is the Record field of a string column.
func stringField(r *connlog.Record, col string) *string {
	switch col {
	case connlog.ColItemID:
		return &r.ItemID
	case connlog.ColCategory:
		return &r.Category
	case connlog.ColOperationName:
		return &r.OperationName
	case connlog.ColLevel:
		return &r.Level
	case connlog.ColResultType:
		return &r.ResultType
	case connlog.ColResultDescription:
		return &r.ResultDescription
	case connlog.ColProperties:
		return &r.Properties
	case connlog.ColLocation:
		return &r.Location
	case connlog.ColResourceID:
		return &r.ResourceID
	case connlog.ColSubscriptionID:
		return &r.SubscriptionID
	case connlog.ColResourceGroup:
		return &r.ResourceGroup
	case connlog.ColResource:
		return &r.Resource
	case connlog.ColResourceProvider:
		return &r.ResourceProvider
	case connlog.ColResourceType:
		return &r.ResourceType
	case connlog.ColType:
		return &r.Type
	case connlog.ColSourceSystem:
		return &r.SourceSystem
	case connlog.ColTenantID:
		return &r.TenantID
	case connlog.ColCorrelationID:
		return &r.CorrelationID
	case connlog.ColCallerIPAddress:
		return &r.CallerIPAddress
	case connlog.ColDeviceID:
		return &r.DeviceID
	case connlog.ColProtocol:
		return &r.Protocol
	case connlog.ColSDKVersion:
		return &r.SDKVersion
	case connlog.ColSequenceNumber:
		return &r.SequenceNumber
	}
	panic("connlog/duckdb: no field for column " + col)
}

// init checks at start-up that every string column has a field.
func init() {
	var r connlog.Record
	for _, c := range storedColumns {
		if c.Type == connlog.TypeString {
			stringField(&r, c.Name)
		}
	}
}

// knownIDs looks the records idx of rs up in their day tables and
// returns the _ItemIds already stored.
func (s *Store) knownIDs(ctx context.Context, w *sql.Conn, rs *rows, idx []int32) (map[string]bool, error) {
	type span struct {
		lo, hi int64
		ids    []string
	}
	spans := map[string]*span{}
	var day dayCache
	for _, i := range idx {
		d := day.table(rs.times[i])
		if !slices.Contains(s.tables, d) {
			continue
		}
		t := rs.times[i]
		sp := spans[d]
		if sp == nil {
			sp = &span{lo: t, hi: t}
			spans[d] = sp
		}
		sp.lo, sp.hi = min(sp.lo, t), max(sp.hi, t)
		sp.ids = append(sp.ids, rs.itemID(int(i)))
	}
	known := map[string]bool{}
	for d, sp := range spans {
		k, err := knownIn(ctx, w, d, sp.lo, sp.hi, sp.ids)
		if err != nil {
			return nil, err
		}
		for id := range k {
			known[id] = true
		}
	}
	return known, nil
}

// queryer is a *sql.Conn or a *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// knownIn returns which of ids are stored in day table table with a
// TimeGenerated in [lo, hi].
func knownIn(ctx context.Context, q queryer, table string, lo, hi int64, ids []string) (map[string]bool, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+quote(connlog.ColItemID)+" FROM "+quote(table)+
		" WHERE TimeGenerated BETWEEN ? AND ? AND "+quote(connlog.ColItemID)+" IN (SELECT unnest(?::VARCHAR[]))",
		lo, hi, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	known := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		known[id] = true
	}
	return known, rows.Err()
}

// loader appends a move's dayLoads inside its transaction: through the
// Appender (load_appender.go), or Arrow (load_arrow.go, build tag
// duckdb_arrow). prepareLoad makes one before the transaction begins.
type loader interface {
	// load appends the i-th dayLoad and returns its bytes (estimate).
	load(ctx context.Context, w *sql.Conn, i int) (int64, error)
	// close frees what prepareLoad made, after the transaction.
	close(ctx context.Context, w *sql.Conn)
}
