// Package backup takes a consistent snapshot of a hub's state while the
// hub runs (Take) and rebuilds a data dir from one (Restore).
//
// A backup is a directory (or, on the wire, a tar stream of it):
//
//	backup.json               Manifest: when it was taken, by what, the data dir
//	                          format, every stream (config, state) and file (size, SHA-256)
//	jetstream/<stream>.snap   JetStream's own snapshot of each stream: the journal streams,
//	                          the KV buckets (registry, policies, twins, subscriptions,
//	                          diagnostic settings, state) and their consumers' positions
//	metrics.db, logs.db       SQLite copies (VACUUM INTO)
//	logs.duckdb               the DuckDB log store's copy (its BackupTo), in default builds
//	alerts/…, archive/…       files, cut at their last complete line
//
// Consistency. Every piece is a point-in-time copy of itself, and the
// pieces are taken in an order that makes their differences harmless:
//
//  1. the metrics history first: its journal positions are then never
//     ahead of the streams, so after a restore the collector counts what
//     came between (taken the other way round it would skip new events);
//  2. the streams, each with its consumers (one snapshot each);
//  3. what journal consumers fill idempotently — the log store (records
//     keyed by _ItemId), the archive files (lines by hash) — and plain
//     files last: they may hold more than the consumers' acked positions
//     say, and a restored hub's consumers deliver that part again, which
//     the stores ignore.
//
// So everything the hub acknowledged before Manifest.Started (a device's
// CONNACK or PUBACK, an API answer) is in the backup: in a stream, or in a
// store a stream's consumer had already filled. What happened while the
// backup ran may be in it or not; deliveries to event subscriptions
// resume from their consumers' positions, so some may be sent again.
package backup
