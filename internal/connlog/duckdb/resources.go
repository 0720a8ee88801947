//go:build cgo

package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/tether-hub/tether/internal/connlog"
)

// resourceColumns are the columns that name the hub in Azure's terms: the
// same for every record a hub writes (connlog.Resource). A day table does
// not store them; it stores _Res, the number of their tuple in
// tether_resources, and the view turns it back into the columns with a
// CASE over the (few) tuples. Ten string columns fewer cut the append's
// work (each string value is a cgo call and a column to compress) by
// about a fifth.
var resourceColumns = []string{
	connlog.ColLocation, connlog.ColResourceID, connlog.ColSubscriptionID,
	connlog.ColResourceGroup, connlog.ColResource, connlog.ColResourceProvider,
	connlog.ColResourceType, connlog.ColType, connlog.ColSourceSystem, connlog.ColTenantID,
}

// isResourceColumn reports whether name is one of resourceColumns.
func isResourceColumn(name string) bool {
	for _, c := range resourceColumns {
		if c == name {
			return true
		}
	}
	return false
}

// resTuple is one record's values of resourceColumns, in that order.
type resTuple [10]string

// maxResources bounds the tuples (_Res is a USMALLINT).
const maxResources = 1 << 16

func tupleOf(r *connlog.Record) resTuple {
	var t resTuple
	for i, c := range resourceColumns {
		t[i] = *stringField(r, c)
	}
	return t
}

// setResource sets r's resource columns to t.
func setResource(r *connlog.Record, t *resTuple) {
	for i, c := range resourceColumns {
		*stringField(r, c) = t[i]
	}
}

// resourcesSQL creates the tuple table.
func resourcesSQL() string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS tether_resources (id USMALLINT PRIMARY KEY")
	for _, c := range resourceColumns {
		b.WriteString(", " + quote(c) + " VARCHAR NOT NULL")
	}
	b.WriteString(")")
	return b.String()
}

// loadResources reads the tuples, by id.
func loadResources(ctx context.Context, w *sql.Conn) ([]resTuple, error) {
	rows, err := w.QueryContext(ctx, "SELECT * FROM tether_resources ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []resTuple
	for rows.Next() {
		var id int
		var t resTuple
		dests := []any{&id}
		for i := range t {
			dests = append(dests, &t[i])
		}
		if err := rows.Scan(dests...); err != nil {
			return nil, err
		}
		if id != len(out) {
			return nil, fmt.Errorf("tether_resources: id %d where %d was expected", id, len(out))
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// resAssigner gives records their _Res: the tuple's id in index, or the
// next free id for a tuple not there yet. res starts as the Store's tuples
// and gets the new ones appended (so more than the Store's when they must
// be inserted and the view made again: insertResources); index and the
// Store's slice stay as they are.
type resAssigner struct {
	res    []resTuple
	index  map[resTuple]uint16
	added  map[resTuple]uint16
	last   resTuple
	lastID uint16
	any    bool
}

// id is the _Res of r.
func (a *resAssigner) id(r *connlog.Record) (uint16, error) {
	t := tupleOf(r)
	if a.any && t == a.last {
		return a.lastID, nil
	}
	id, ok := a.index[t]
	if !ok {
		id, ok = a.added[t]
	}
	if !ok {
		if len(a.res) >= maxResources {
			return 0, fmt.Errorf("more than %d distinct resource column tuples", maxResources)
		}
		id = uint16(len(a.res))
		if a.added == nil {
			a.added = map[resTuple]uint16{}
			a.res = a.res[:len(a.res):len(a.res)] // appends copy: the Store's slice stays
		}
		// Cloned: t's strings may be slices of a stage frame, whose
		// buffer the next Append reuses (bufpool.go).
		for i := range t {
			t[i] = strings.Clone(t[i])
		}
		a.res = append(a.res, t)
		a.added[t] = id
	}
	a.last, a.lastID, a.any = t, id, true
	return id, nil
}

// insertResources adds the tuples res[from:] (ids from on) to
// tether_resources, inside the caller's transaction.
func insertResources(ctx context.Context, w *sql.Conn, res []resTuple, from int) error {
	for id := from; id < len(res); id++ {
		args := []any{id}
		for _, v := range res[id] {
			args = append(args, v)
		}
		if _, err := w.ExecContext(ctx, "INSERT INTO tether_resources VALUES (?"+strings.Repeat(", ?", len(res[id]))+")", args...); err != nil {
			return err
		}
	}
	return nil
}

// resourceSQL is the view's expression for resource column i: a CASE over
// the tuples' values (NULL-free: ” when there is no tuple).
func resourceSQL(res []resTuple, i int) string {
	if len(res) == 0 {
		return "''"
	}
	same := true
	for _, t := range res {
		same = same && t[i] == res[0][i]
	}
	if same {
		return literal(res[0][i])
	}
	var b strings.Builder
	b.WriteString("CASE " + colRes)
	for id, t := range res {
		fmt.Fprintf(&b, " WHEN %d THEN %s", id, literal(t[i]))
	}
	b.WriteString(" END")
	return b.String()
}

// literal is s as an SQL string expression (a NUL byte, which the
// statement's text cannot carry, as chr(0)).
func literal(s string) string {
	parts := strings.Split(s, "\x00")
	for i, p := range parts {
		parts[i] = "'" + strings.ReplaceAll(p, "'", "''") + "'"
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, " || chr(0) || ") + ")"
}
