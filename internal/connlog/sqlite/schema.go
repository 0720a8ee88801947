package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/tether-hub/tether/internal/connlog"
)

// schemaVersion is PRAGMA user_version of a database this package made.
const schemaVersion = 1

// table is the table name, Log Analytics' for IoT Hub resource logs.
const table = "AzureDiagnostics"

// storedColumns are the columns Append writes, in connlog.Columns order
// (every column but the virtual _ResourceId).
var storedColumns = func() []connlog.Column {
	var cols []connlog.Column
	for _, c := range connlog.Columns {
		if c.Name != connlog.ColResourceIDStd {
			cols = append(cols, c)
		}
	}
	return cols
}()

// selectColumns are the columns Find reads, in storedColumns order.
var selectColumns = func() string {
	names := make([]string, len(storedColumns))
	for i, c := range storedColumns {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}()

func createTableSQL() string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + table + " (\n")
	for _, c := range storedColumns {
		switch {
		case c.Name == connlog.ColItemID:
			b.WriteString("\t" + c.Name + " TEXT NOT NULL UNIQUE,\n")
		case c.Type == connlog.TypeDatetime:
			b.WriteString("\t" + c.Name + " INTEGER NOT NULL, -- Unix nanoseconds UTC\n")
		case c.Type == connlog.TypeLong:
			b.WriteString("\t" + c.Name + " INTEGER,\n")
		default:
			b.WriteString("\t" + c.Name + " TEXT NOT NULL DEFAULT '',\n")
		}
	}
	b.WriteString("\t" + connlog.ColResourceIDStd + " TEXT GENERATED ALWAYS AS (" + connlog.ColResourceID + ") VIRTUAL\n)")
	return b.String()
}

var indexSQL = []string{
	"CREATE INDEX IF NOT EXISTS " + table + "_Category_Time ON " + table + " (Category, TimeGenerated)",
	"CREATE INDEX IF NOT EXISTS " + table + "_DeviceId_Time ON " + table + " (DeviceId, TimeGenerated)",
	"CREATE INDEX IF NOT EXISTS " + table + "_Time ON " + table + " (TimeGenerated)",
}

// pageSize is the page size of databases this package creates: rows are
// about 1.4 KB (properties_s alone ~600 bytes), and 16 KiB pages made
// batched ingest ~1.3× faster than SQLite's default 4 KiB (fewer WAL
// frames, write calls and b-tree splits per record; measured with
// bench/cmd/loggen, bench/README.md "Log ingest"). Databases made before
// keep their page size.
var pageSize = 16384

// setPageSize gives a database that has no pages yet the page size
// pageSize. The DSN's pragmas have already put it in WAL mode, which fixes
// the page size of an empty database too, so it leaves WAL mode, sets the
// size, rebuilds the (empty) file and goes back to WAL.
func setPageSize(ctx context.Context, db *sql.Conn) error {
	var tables int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
		return err
	}
	if tables > 0 {
		return nil
	}
	for _, q := range []string{"PRAGMA journal_mode = DELETE", fmt.Sprintf("PRAGMA page_size = %d", pageSize), "VACUUM", "PRAGMA journal_mode = WAL"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// migrate creates the schema in an empty database and refuses one made by
// a newer version.
func migrate(ctx context.Context, db *sql.Conn) error {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this build's %d", v, schemaVersion)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, stmt := range append([]string{createTableSQL()}, indexSQL...) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%w\n%s", err, stmt)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}
