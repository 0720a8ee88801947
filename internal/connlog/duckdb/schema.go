//go:build cgo

package duckdb

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
)

// schemaVersion is the version this package writes into tether_meta.
// Version 2 replaced the resource columns by _Res (resources.go).
const schemaVersion = 2

// View is the name queries use, Log Analytics' table name.
const View = "AzureDiagnostics"

// tablePrefix starts the name of every day table; the date follows.
const tablePrefix = "AzureDiagnostics_"

// emptyTable has the day tables' columns and no rows: the view's only
// branch while there is no day table.
const emptyTable = "AzureDiagnostics_empty"

// Hidden columns of the day tables.
const (
	colSeq       = "_Seq"       // store-wide append counter
	colDeviceKey = "_DeviceKey" // deviceKey(DeviceId)
	colProps     = "props"      // properties_s with shared values replaced by markers
	colRes       = "_Res"       // the record's tuple in tether_resources
)

// dayTable is the table holding the records of t's UTC day.
func dayTable(t time.Time) string {
	return tablePrefix + t.UTC().Format("20060102")
}

// dayCache is dayTable with the last answer kept: a move's records are
// nearly all of one day, and formatting the date was a tenth of a
// microsecond a record.
type dayCache struct {
	day  int64 // Unix day of name
	name string
}

// table is dayTable of a time in Unix nanoseconds.
func (d *dayCache) table(ns int64) string {
	const dayNs = 86400 * int64(time.Second)
	day := ns / dayNs
	if ns < 0 && ns%dayNs != 0 {
		day--
	}
	if d.name == "" || day != d.day {
		d.day, d.name = day, dayTable(unixNano(ns))
	}
	return d.name
}

// tableDay is the UTC day a day table holds; ok false for other names.
func tableDay(name string) (time.Time, bool) {
	s, ok := strings.CutPrefix(name, tablePrefix)
	if !ok || len(s) != 8 {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102", s)
	return t, err == nil
}

// DeviceKey is the _DeviceKey of a device id: FNV-1a, 32 bits. Exported
// for the KQL dialect, which adds `_DeviceKey = DeviceKey(id)` to an
// equality on DeviceId so zone maps prune.
func DeviceKey(id string) uint32 {
	// hash/fnv's New32a, written out: no hash object and no copy of id
	// a record (the same sums: TestDeviceKeyIsFNV1a).
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return h
}

// storedColumns are the record columns a day table stores, in
// connlog.Columns order: all but the virtual _ResourceId and the resource
// columns (_Res stands for them); properties_s is stored as props.
var storedColumns = func() []connlog.Column {
	var cols []connlog.Column
	for _, c := range connlog.Columns {
		if c.Name != connlog.ColResourceIDStd && !isResourceColumn(c.Name) {
			cols = append(cols, c)
		}
	}
	return cols
}()

// createTableSQL creates a day table (or the empty one) named name.
func createTableSQL(name string) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + quote(name) + " (\n")
	for _, c := range storedColumns {
		switch {
		case c.Name == connlog.ColProperties:
			// zstd: the JSON's keys and the values of similar records
			// repeat across rows, which zstd's window sees and DuckDB's
			// default (dictionary + FSST, per value) does not; measured on
			// loggen records: 128 → 35 bytes a record for this column.
			b.WriteString("\t" + colProps + " VARCHAR NOT NULL USING COMPRESSION zstd,\n")
		case c.Type == connlog.TypeDatetime:
			b.WriteString("\t" + quote(c.Name) + " BIGINT NOT NULL, -- Unix nanoseconds UTC\n")
		case c.Type == connlog.TypeLong:
			b.WriteString("\t" + quote(c.Name) + " BIGINT,\n")
		default:
			b.WriteString("\t" + quote(c.Name) + " VARCHAR NOT NULL,\n")
		}
	}
	b.WriteString("\t" + colSeq + " BIGINT NOT NULL,\n")
	b.WriteString("\t" + colDeviceKey + " UINTEGER NOT NULL,\n")
	b.WriteString("\t" + colRes + " USMALLINT NOT NULL\n)")
	return b.String()
}

// appendColumnCount is the number of a day table's columns, the values
// of one Appender row: the stored record columns, _Seq, _DeviceKey, _Res.
func appendColumnCount() int { return len(storedColumns) + 3 }

// viewSelect is the SELECT list of the view: the record columns under
// their Log Analytics names, properties_s and the resource columns (of
// the tuples res) rebuilt.
func viewSelect(res []resTuple) string {
	var parts []string
	for _, c := range connlog.Columns {
		switch {
		case c.Name == connlog.ColProperties:
			parts = append(parts, propertiesSQL(colProps)+" AS "+quote(c.Name))
		case c.Name == connlog.ColCorrelationID:
			parts = append(parts, correlationSQL(quote(c.Name))+" AS "+quote(c.Name))
		case c.Name == connlog.ColResourceIDStd:
			parts = append(parts, resourceSQL(res, slices.Index(resourceColumns, connlog.ColResourceID))+" AS "+quote(c.Name))
		case isResourceColumn(c.Name):
			parts = append(parts, resourceSQL(res, slices.Index(resourceColumns, c.Name))+" AS "+quote(c.Name))
		default:
			parts = append(parts, quote(c.Name))
		}
	}
	parts = append(parts, colSeq, colDeviceKey)
	return strings.Join(parts, ", ")
}

// viewSQL (re)creates the view over tables (day tables, oldest first)
// and the resource tuples res:
// the record columns computed once over the UNION ALL of the tables'
// stored columns (computing them in every branch made DuckDB bind the
// properties_s expression once per day: ~10 ms a day table per query).
func viewSQL(tables []string, res []resTuple) string {
	if len(tables) == 0 {
		tables = []string{emptyTable}
	}
	branches := make([]string, len(tables))
	for i, t := range tables {
		branches[i] = "SELECT * FROM " + quote(t)
	}
	return viewOverSQL(branches, res, false)
}

// viewOverSQL creates the view (temp: a reader's, in its transaction)
// over the UNION ALL of branches, queries of day-table rows.
func viewOverSQL(branches []string, res []resTuple, temp bool) string {
	kind := "VIEW"
	if temp {
		kind = "TEMP VIEW"
	}
	return "CREATE OR REPLACE " + kind + " " + View + " AS\nSELECT " + viewSelect(res) + " FROM (\n" + strings.Join(branches, "\nUNION ALL\n") + "\n)"
}

// quote quotes an identifier.
func quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// metaSQL creates the store's own small table: schema version, which day
// tables are compacted.
var metaSQL = []string{
	"CREATE TABLE IF NOT EXISTS tether_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
	resourcesSQL(),
	"CREATE TABLE IF NOT EXISTS " + markTable + " (seq BIGINT NOT NULL)",
}

// markTable holds the highest _Seq stored, written by every move's
// transaction: what a reader's snapshot holds of the stage (tail.go).
const markTable = "tether_mark"

func versionCheck(v string) error {
	if v != fmt.Sprint(schemaVersion) {
		return fmt.Errorf("schema version %s is not this build's %d (version 1, of the first DuckDB builds, stored the resource columns in every row: move the file away and run `tether logs migrate` from logs.db, or start with an empty log)", v, schemaVersion)
	}
	return nil
}
