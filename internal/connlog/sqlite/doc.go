// Package sqlite is the embedded connlog.LogStore: one SQLite file
// (modernc.org/sqlite, pure Go, no cgo) in WAL mode with synchronous=NORMAL.
//
// The table is named AzureDiagnostics and its columns carry the Log
// Analytics names (connlog.Columns), so a KQL→SQL compiler can target it
// directly. Types: string columns are TEXT NOT NULL (missing values are empty strings),
// TimeGenerated is INTEGER Unix nanoseconds UTC (compile datetime literals
// to that; bin() is integer division), DurationMs is INTEGER or NULL,
// _ResourceId is a virtual column equal to ResourceId. Rows of equal
// TimeGenerated keep append order through rowid.
//
// Indexes, and the queries they serve:
//
//	(Category, TimeGenerated)  Find by category (and time); KQL `where Category == …`
//	(DeviceId, TimeGenerated)  Find by device, newest first; the portal's per-device view
//	(TimeGenerated)            Find with no device or category (`tether logs`: the newest N
//	                           of everything, ORDER BY TimeGenerated DESC LIMIT N walks it
//	                           backwards), time-only and level-only filters, retention's
//	                           DELETE … WHERE TimeGenerated < ?
//	UNIQUE (_ItemId)           idempotent Append (INSERT OR IGNORE)
//
// Ingest cost: three of the four indexes take their inserts at their end —
// time grows, and _ItemId starts with the record's time (connlog.ItemID) —
// so a batch dirties a few pages of each. (DeviceId, TimeGenerated) takes
// them wherever the device sorts: in a large log every record costs about
// one page write there, which is the price of the per-device index.
// Writes go through one connection with a larger page cache and rarer
// checkpoints (writerPragmas) and prepared multi-row INSERTs.
//
// Measurements behind the choices: shared/reference/deps.md §4,
// BenchmarkAppendStorm here and connlog's BenchmarkWriter.
package sqlite
