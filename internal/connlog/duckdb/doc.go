//go:build cgo

// Package duckdb is the default embedded connlog.LogStore: one DuckDB file
// (github.com/duckdb/duckdb-go/v2, cgo), columnar and compressed.
//
// Layout. Records live in one table per UTC day, AzureDiagnostics_YYYYMMDD
// (a partition): retention drops whole tables instead of deleting rows,
// and a query's time window skips the days it does not touch. The view
// AzureDiagnostics is the UNION ALL of the day tables with the Log
// Analytics column names (connlog.Columns), so the KQL compiler
// (kql/duckdb) targets it like SQLite's table. Types: TimeGenerated is
// BIGINT Unix nanoseconds UTC (as in the SQLite store; its min/max zone
// maps prune time windows within a day), DurationMs BIGINT or NULL,
// strings VARCHAR NOT NULL (empty when missing). Low-cardinality strings
// (Category, Level, ResultType, the hub's resource columns…) need nothing
// special: DuckDB dictionary-compresses each column segment by itself.
//
// Two hidden columns: _Seq, a store-wide append counter (ties of
// TimeGenerated keep append order, as rowid does in SQLite), and
// _DeviceKey, a 32-bit hash of DeviceId (deviceKey). A day that is over is
// rewritten sorted by (_DeviceKey, TimeGenerated) in the background
// (compact.go), so the min/max zone maps of _DeviceKey find one device's
// rows of that day in one or two row groups; Find and the KQL dialect add
// `_DeviceKey = hash` to an equality on DeviceId. (DuckDB keeps only an
// 8-byte prefix of strings in its zone maps, which device ids with a
// common prefix defeat; an ART index on DeviceId would cost memory and
// bytes per record.) Today's table stays in append (≈ time) order.
//
// The ten resource columns (Location, ResourceId, SubscriptionId, …,
// TenantId: the hub in Azure's terms, the same in every record of a hub)
// are not stored in the day tables: _Res, a USMALLINT, numbers their tuple
// in tether_resources, and the view turns it back into the columns (a
// literal while there is one tuple, a CASE over them otherwise); Find
// fills them in Go. Ten string values fewer a record cut Append's CPU by
// about a fifth (resources.go).
//
// properties_s is not stored twice: the values it shares with the
// DeviceId, Protocol, SdkVersion and SequenceNumber columns are replaced
// by one-byte markers in the stored text (props) and put back by the view
// (properties.go), byte for byte. props is zstd-compressed (the rest use
// DuckDB's default choice): the JSON keys and similar values repeat across
// rows. CorrelationId, DeviceId + "/" + SequenceNumber in every
// Connections record, is stored as a one-byte marker then
// (correlation.go).
//
// Ingest: Append writes the batch to a stage segment file next to the
// database (one write, one fsync) and returns; a mover takes what is
// staged into DuckDB in one transaction every MoveRecords records or
// MoveInterval (stage.go). Readers do not wait for it: a tail inserter
// puts the staged rows, many Appends' at a time, in a tail table of an
// in-memory database, which a query (after inserting what is pending)
// reads beside the committed day tables, each record once (tail.go);
// the move stores them from there. A move dedups
// by _ItemId (see append.go: only records not newer than everything
// stored are looked up, within their own day and time range), then
// writes through DuckDB's Appender or Arrow, or from the tail tables.
// Open replays the segments a crash left behind. DuckDB's automatic checkpoint (which
// would run inside a commit and stall it) is off; a background loop
// checkpoints (checkpoint.go). An in-memory store appends directly.
// Stats says where ingest's time goes (held back by the mover, the
// stage's fsync, a move's columns, load and commit, checkpoints).
//
// Memory: Options.MemoryLimit (tether serve --log-memory) is the store's
// budget: half becomes DuckDB's memory_limit (DuckDB spills sorts
// and hash tables past it to temporary files next to the database), a
// sixteenth bounds the staged batches (Append's back-pressure), a move
// stores them in chunks of half that (a transaction each), and the rest
// is what DuckDB allocates outside its pool. The staged batches and a
// chunk's Arrow columns live in buffers outside the Go heap (bufpool.go),
// so the collector's headroom (GOGC) does not double them.
// Threads is DuckDB's threads (default 1).
package duckdb
