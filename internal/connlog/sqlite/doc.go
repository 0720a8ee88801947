// Package sqlite is the embedded connlog.LogStore: one SQLite file
// (modernc.org/sqlite, pure Go, no cgo) in WAL mode with synchronous=NORMAL.
//
// The table is named AzureDiagnostics and its columns carry the Log
// Analytics names (connlog.Columns), so a KQL→SQL compiler can target it
// directly. Types: string columns are TEXT NOT NULL (missing values are empty strings),
// TimeGenerated is INTEGER Unix nanoseconds UTC (compile datetime literals
// to that; bin() is integer division), DurationMs is INTEGER or NULL,
// _ResourceId is a virtual column equal to ResourceId. Indexes:
// (Category, TimeGenerated), (DeviceId, TimeGenerated), (TimeGenerated) and
// the unique _ItemId that makes Append idempotent. Rows of equal
// TimeGenerated keep append order through rowid.
//
// Measurements behind the choices: shared/reference/deps.md §4.
package sqlite
