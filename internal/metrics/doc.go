// Package metrics computes the hub's metrics from the journal and keeps
// their history for alert rules and the Azure Monitor–style metrics API.
//
// # Sources
//
// A Collector reads the journal with ordered (ephemeral) JetStream
// consumers, never acknowledging anything, so it holds no state in
// JetStream:
//
//   - TETHER_CONN, last message per device subject then live
//     (DeliverLastPerSubject on tether.conn.*.connected|disconnected): the
//     set of connected devices (connectedDeviceCount). It is whole before
//     Start returns, so the first sample is right.
//   - TETHER_CONN from the history's saved position, through the node's
//     journal.ConnFanout (one unacknowledged consumer shared with the
//     insight feed, each event decoded once): connects, disconnects
//     and authentication failures, by ResultType, protocol and reason;
//     connects also by TokenRenewal (presence's renewal mark), so renewals
//     are told from real drops without reading the log.
//   - TETHER_TELEMETRY from the saved position, headers only (payloads are
//     not fetched): d2c.telemetry.ingress.success.
//   - TETHER_OPS from the saved position: IoT Hub's twin, direct-method and
//     twin-query metrics (c2d.methods.*, d2c.twin.*, c2d.twin.*,
//     twinQueries.*), counted by outcome, sizes of successes observed
//     (operations.go).
//
// What the journal does not hold comes from the hub through small
// functions: device counts (the registry: creations older than the
// journal's 30 days are not in it), C2D sends (they go from the API to
// the broker), webhook delivery outcomes and latency (the delivery
// engine), and the lag of the durable consumers (JetStream consumer info).
//
// # History
//
// Every value lands in a Store as a cell (sum, count, min, max) of a
// metric's series (its dimension values) in a grain: a counted event is a
// sample of 1 in the second of its event time, a gauge is sampled once a
// second by Tick. Cells are kept in memory for Recent (1 s grain) and
// written to SQLite (history.db) as additive upserts into three tables,
// one per grain (1 s for Recent, 1 min and 1 h for Retention), in the same
// transaction as the journal positions they account for: within a second
// of a count, otherwise once a minute (StoreOptions.GaugeEvery: an idle
// hub's gauges do not change, and writing them each second was most of
// its background CPU). A gauge's 1 s row is written only when its value
// changed, at the first second of each minute, and after a second without
// a sample; opening the file fills the seconds in between with the value
// before (a row of count 0 marks a gauge that ended). The hour table is a
// rollup of the minutes (filled from them once when a history without it
// is opened). A crash loses only what was not written, and the journal
// delivers that again from the saved position: counts rebuild from the
// journal (delete the file and they are recounted from what the journal
// still holds). Gauges cannot be rebuilt: they are sampled as they are,
// and a crash loses up to GaugeEvery of them.
//
// # Queries
//
// Store.Window aggregates one metric over [From, To) with Azure Monitor's
// aggregations, filter and split. Seconds since the memory floor come
// from memory (1 s grain); older whole hours from the 1 h table and the
// minutes at their edges from the 1 min table, with the same answers as
// the minutes alone.
package metrics
